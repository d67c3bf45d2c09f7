#include "dev/virtio_mmio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "vm/vm.h"

#define VIRTIO_MMIO_STATE_VERSION 1

#define STATUS_KNOWN_BITS                                                                  \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK |      \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED)

static struct virtio_mmio *to_virtio_mmio(struct device *dev)
{
	return (struct virtio_mmio *)dev; /* dev is the first member */
}

bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned bit)
{
	return bit < 64 && (t->driver_features >> bit) & 1;
}

bool virtio_mmio_is_live(const struct virtio_mmio *t)
{
	return t->active && !(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* ---- interrupts ---------------------------------------------------------- */

/* The GSI follows interrupt_status: asserted while any bit is set. Each 0 -> 1
 * is an edge, so this also works for an edge-programmed IOAPIC pin as long as
 * the driver acknowledges before it looks at the rings (every driver does). */
static void irq_update(struct virtio_mmio *t)
{
	int level = t->interrupt_status != 0;

	if (level == t->irq_level)
		return;
	t->irq_level = level;
	vm_irq_line(t->vm, t->gsi, level);
}

static void irq_raise(struct virtio_mmio *t, uint32_t bits)
{
	t->interrupt_status |= bits;
	irq_update(t);
}

void virtio_mmio_notify_used(struct virtio_mmio *t, uint16_t q)
{
	if (q < t->vops->nqueues && virtq_needs_interrupt(&t->queues[q]))
		irq_raise(t, VIRTIO_MMIO_INT_VRING);
	/* Even with interrupts suppressed: a polling guest may sit in the idle call. */
	vm_wake_idle(t->vm);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	t->config_generation++;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		irq_raise(t, VIRTIO_MMIO_INT_CONFIG);
}

/* A guest can break and reset a device in a loop: log the first few only. */
static bool guest_error_should_log(struct virtio_mmio *t)
{
	if (t->guest_errors_logged >= VIRTIO_MMIO_GUEST_ERROR_LOG_MAX)
		return false;
	t->guest_errors_logged++;
	return true;
}

void virtio_mmio_device_error(struct virtio_mmio *t, const char *why)
{
	if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	if (guest_error_should_log(t))
		log_warn("%s: %s; device needs reset", t->name, why);
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	/* Spec 2.1.2: with DRIVER_OK set, tell the driver through a config change. */
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		irq_raise(t, VIRTIO_MMIO_INT_CONFIG);
	vm_wake_idle(t->vm);
}

/* ---- status state machine ------------------------------------------------ */

static void transport_reset(struct virtio_mmio *t)
{
	t->status = 0;
	t->driver_features = 0;
	t->device_features_sel = t->driver_features_sel = t->queue_sel = 0;
	t->active = 0;
	for (int i = 0; i < t->vops->nqueues; i++)
		virtq_reset(&t->queues[i]);
	t->interrupt_status = 0;
	irq_update(t);
	/* config_generation stays: it must never go back for a driver that caches config. */
	if (t->vops->reset)
		t->vops->reset(t);
}

static bool features_acceptable(const struct virtio_mmio *t)
{
	return !(t->driver_features & ~t->device_features) &&
	       virtio_mmio_has_feature(t, VIRTIO_F_VERSION_1);
}

/* Each step of the handshake needs the one before it (spec 3.1.1). */
static bool status_order_ok(uint32_t v)
{
	if ((v & VIRTIO_STATUS_DRIVER) && !(v & VIRTIO_STATUS_ACKNOWLEDGE))
		return false;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(v & VIRTIO_STATUS_DRIVER))
		return false;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK))
		return false;
	return true;
}

static void transport_activate(struct virtio_mmio *t)
{
	for (int i = 0; i < t->vops->nqueues; i++) {
		t->queues[i].event_idx = virtio_mmio_has_feature(t, VIRTIO_RING_F_EVENT_IDX);
		t->queues[i].indirect = virtio_mmio_has_feature(t, VIRTIO_RING_F_INDIRECT_DESC);
	}
	if (t->vops->activate && t->vops->activate(t) < 0) {
		virtio_mmio_device_error(t, "the driver's queue setup was refused");
		return;
	}
	t->active = 1;
	/* A kick that came before DRIVER_OK was ignored: look at every queue once. */
	for (uint16_t i = 0; i < t->vops->nqueues; i++)
		if (t->queues[i].ready && virtio_mmio_is_live(t))
			t->vops->notify(t, i);
}

static void status_write(struct virtio_mmio *t, uint32_t v)
{
	uint32_t old = t->status, added;

	if (v == 0) {
		transport_reset(t);
		return;
	}
	/* NEEDS_RESET belongs to the device; other bits only go away by reset. */
	v = (v & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET) | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	if ((old & ~v) || (v & ~STATUS_KNOWN_BITS) || !status_order_ok(v))
		return;
	added = v & ~old;
	/* FEATURES_OK sticks only for an acceptable feature set; the driver reads
	 * the status back and gives up if it is clear. */
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(t))
		v &= ~(VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	t->status = v;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && (v & VIRTIO_STATUS_DRIVER_OK))
		transport_activate(t);
}

static void driver_features_write(struct virtio_mmio *t, uint32_t v)
{
	/* Only while negotiating: after FEATURES_OK the set is frozen. */
	if (!(t->status & VIRTIO_STATUS_DRIVER) || (t->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	if (t->driver_features_sel == 0)
		t->driver_features = (t->driver_features & ~0xffffffffULL) | v;
	else if (t->driver_features_sel == 1)
		t->driver_features = (t->driver_features & 0xffffffffULL) | (uint64_t)v << 32;
}

static uint32_t device_features_read(const struct virtio_mmio *t)
{
	if (t->device_features_sel == 0)
		return (uint32_t)t->device_features;
	if (t->device_features_sel == 1)
		return (uint32_t)(t->device_features >> 32);
	return 0;
}

/* ---- queues -------------------------------------------------------------- */

static struct virtq *selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->vops->nqueues ? &t->queues[t->queue_sel] : NULL;
}

static void set_low(uint64_t *r, uint32_t v) { *r = (*r & ~0xffffffffULL) | v; }
static void set_high(uint64_t *r, uint32_t v) { *r = (*r & 0xffffffffULL) | (uint64_t)v << 32; }

/* QueueReady = 1 is refused (reads back 0) unless the layout is sound, so a
 * ready queue is always safe to walk; activation then fails for a device
 * that needs the queue. */
static void queue_ready_write(struct virtio_mmio *t, struct virtq *q, uint32_t v)
{
	if (!v) {
		q->ready = 0;
		return;
	}
	if (q->ready)
		return;
	if (virtq_check_layout(q)) {
		if (guest_error_should_log(t))
			log_warn("%s: queue %u: size %u or rings outside RAM/misaligned, not enabled",
				 t->name, t->queue_sel, q->size);
		return;
	}
	q->last_avail_idx = q->used_idx = q->signalled_used = 0; /* a fresh ring */
	q->ready = 1;
}

static void queue_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *q = selected_queue(t);

	/* Queue setup happens between FEATURES_OK and DRIVER_OK (spec 3.1.1). */
	if (!q || !(t->status & VIRTIO_STATUS_FEATURES_OK) ||
	    (t->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		queue_ready_write(t, q, v);
		return;
	}
	if (q->ready) /* a live ring does not move */
		return;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		if (v <= q->max_size)
			q->size = (uint16_t)v;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: set_low(&q->desc, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_high(&q->desc, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: set_low(&q->avail, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: set_high(&q->avail, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: set_low(&q->used, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: set_high(&q->used, v); break;
	}
}

static void queue_notify(struct virtio_mmio *t, uint32_t v)
{
	if (!virtio_mmio_is_live(t) || v >= t->vops->nqueues || !t->queues[v].ready)
		return;
	t->vops->notify(t, (uint16_t)v);
}

static uint32_t queue_read(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *q = selected_queue(t);

	if (!q)
		return 0; /* QueueNumMax 0: no such queue */
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return q->max_size;
	case VIRTIO_MMIO_QUEUE_NUM: return q->size;
	case VIRTIO_MMIO_QUEUE_READY: return q->ready;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: return (uint32_t)q->desc;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: return (uint32_t)(q->desc >> 32);
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: return (uint32_t)q->avail;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: return (uint32_t)(q->avail >> 32);
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: return (uint32_t)q->used;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return (uint32_t)(q->used >> 32);
	}
	return 0;
}

/* ---- register access ----------------------------------------------------- */

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return VIRTIO_MMIO_VERSION_2;
	case VIRTIO_MMIO_DEVICE_ID: return t->vops->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES: return device_features_read(t);
	case VIRTIO_MMIO_INTERRUPT_STATUS: return t->interrupt_status;
	case VIRTIO_MMIO_STATUS: return t->status;
	case VIRTIO_MMIO_CONFIG_GENERATION: return t->config_generation;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return queue_read(t, off);
	}
	return 0;
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: t->device_features_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES: driver_features_write(t, v); break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: t->driver_features_sel = v; break;
	case VIRTIO_MMIO_QUEUE_SEL: t->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NOTIFY: queue_notify(t, v); break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->interrupt_status &= ~v;
		irq_update(t);
		break;
	case VIRTIO_MMIO_STATUS: status_write(t, v); break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: queue_write(t, off, v); break;
	}
}

static void mmio_io_read(struct device *dev, uint64_t off, void *data, uint32_t len)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);
	uint32_t v;

	memset(data, 0, len);
	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t coff = off - VIRTIO_MMIO_CONFIG;

		if (coff < t->vops->config_size && t->vops->config_read) {
			uint32_t n = len < t->vops->config_size - coff
					     ? len
					     : (uint32_t)(t->vops->config_size - coff);

			t->vops->config_read(t, (uint32_t)coff, data, n);
		}
		return;
	}
	if (len != 4 || off % 4) /* registers are 32-bit only */
		return;
	v = reg_read(t, off);
	memcpy(data, &v, 4);
}

static void mmio_io_write(struct device *dev, uint64_t off, const void *data, uint32_t len)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);
	uint32_t v;

	if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t coff = off - VIRTIO_MMIO_CONFIG;

		if (t->vops->config_write && coff < t->vops->config_size &&
		    len <= t->vops->config_size - coff)
			t->vops->config_write(t, (uint32_t)coff, data, len);
		return;
	}
	if (len != 4 || off % 4)
		return;
	memcpy(&v, data, 4);
	reg_write(t, off, v);
}

/* ---- device ops ---------------------------------------------------------- */

static void mmio_reset(struct device *dev) { transport_reset(to_virtio_mmio(dev)); }

static void mmio_pause(struct device *dev)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);

	if (t->vops->pause)
		t->vops->pause(t);
}

static void mmio_resume(struct device *dev)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);

	if (t->vops->resume)
		t->vops->resume(t);
}

static void mmio_detach_backend(struct device *dev)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);

	if (t->vops->detach_backend)
		t->vops->detach_backend(t);
}

static int mmio_attach_backend(struct device *dev)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);

	return t->vops->attach_backend ? t->vops->attach_backend(t) : 0;
}

static void mmio_destroy(struct device *dev)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);

	t->vops->destroy(t);
}

/*
 * Record (little-endian), version 1:
 *   u32 version, u32 device id, u64 device features, u64 driver features,
 *   u32 device features sel, u32 driver features sel, u32 queue sel,
 *   u32 status, u32 interrupt status, u32 config generation, u8 active,
 *   u16 queue count, that many virtq records (virtq_save),
 *   u32 length + device-specific bytes.
 */
static int mmio_save(struct device *dev, struct sbuf *out)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);
	struct sbuf ds;
	int ret = 0;

	sbuf_put_u32(out, VIRTIO_MMIO_STATE_VERSION);
	sbuf_put_u32(out, t->vops->device_id);
	sbuf_put_u64(out, t->device_features);
	sbuf_put_u64(out, t->driver_features);
	sbuf_put_u32(out, t->device_features_sel);
	sbuf_put_u32(out, t->driver_features_sel);
	sbuf_put_u32(out, t->queue_sel);
	sbuf_put_u32(out, t->status);
	sbuf_put_u32(out, t->interrupt_status);
	sbuf_put_u32(out, t->config_generation);
	sbuf_put_u8(out, (uint8_t)t->active);
	sbuf_put_u16(out, t->vops->nqueues);
	for (int i = 0; i < t->vops->nqueues; i++)
		virtq_save(&t->queues[i], out);
	sbuf_init(&ds);
	if (t->vops->save)
		ret = t->vops->save(t, &ds);
	if (!ret)
		ret = ds.error;
	sbuf_put_u32(out, (uint32_t)ds.len);
	sbuf_put(out, ds.data, ds.len);
	sbuf_free(&ds);
	return ret ? ret : out->error;
}

/* Everything but the device-specific part, checked against this device. */
static int transport_state_check(const struct virtio_mmio *t, const struct virtio_mmio *s)
{
	if (s->device_features != t->device_features ||
	    (s->driver_features & ~s->device_features) || (s->status & ~STATUS_KNOWN_BITS) ||
	    !status_order_ok(s->status) || (s->interrupt_status & ~3u) || s->active > 1)
		return -EINVAL;
	if ((s->status & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(s))
		return -EINVAL;
	if (s->active && !(s->status & VIRTIO_STATUS_DRIVER_OK))
		return -EINVAL;
	for (int i = 0; i < t->vops->nqueues; i++) {
		const struct virtq *q = &s->queues[i];

		if (s->active && q->ready &&
		    (q->event_idx != virtio_mmio_has_feature(s, VIRTIO_RING_F_EVENT_IDX) ||
		     q->indirect != virtio_mmio_has_feature(s, VIRTIO_RING_F_INDIRECT_DESC)))
			return -EINVAL;
	}
	return 0;
}

static void transport_state_commit(struct virtio_mmio *t, const struct virtio_mmio *s)
{
	t->driver_features = s->driver_features;
	t->device_features_sel = s->device_features_sel;
	t->driver_features_sel = s->driver_features_sel;
	t->queue_sel = s->queue_sel;
	t->status = s->status;
	t->interrupt_status = s->interrupt_status;
	t->config_generation = s->config_generation;
	t->active = s->active;
	memcpy(t->queues, s->queues, sizeof(t->queues));
}

static int mmio_load(struct device *dev, struct sbuf_reader *in)
{
	struct virtio_mmio *t = to_virtio_mmio(dev);
	struct virtio_mmio s = *t; /* decoded into a copy; t changes only at the end */
	struct sbuf_reader ds;
	uint32_t version, device_id, ds_len;
	uint16_t nqueues;
	int ret;

	version = sbuf_get_u32(in);
	device_id = sbuf_get_u32(in);
	s.device_features = sbuf_get_u64(in);
	s.driver_features = sbuf_get_u64(in);
	s.device_features_sel = sbuf_get_u32(in);
	s.driver_features_sel = sbuf_get_u32(in);
	s.queue_sel = sbuf_get_u32(in);
	s.status = sbuf_get_u32(in);
	s.interrupt_status = sbuf_get_u32(in);
	s.config_generation = sbuf_get_u32(in);
	s.active = sbuf_get_u8(in);
	nqueues = sbuf_get_u16(in);
	if (sbuf_reader_error(in) || version != VIRTIO_MMIO_STATE_VERSION ||
	    device_id != t->vops->device_id || nqueues != t->vops->nqueues)
		return -EINVAL;
	for (int i = 0; i < nqueues; i++)
		if (virtq_load(&s.queues[i], in))
			return -EINVAL;
	ret = transport_state_check(t, &s);
	if (ret)
		return ret;
	ds_len = sbuf_get_u32(in);
	if (sbuf_reader_error(in) || ds_len > sbuf_remaining(in))
		return -EINVAL;
	sbuf_reader_init(&ds, in->data + in->pos, ds_len);
	in->pos += ds_len;
	if (t->vops->load)
		ret = t->vops->load(t, &ds);
	else if (ds_len)
		ret = -EINVAL;
	if (ret)
		return ret;
	transport_state_commit(t, &s);
	/* Drive the line to what the restored interrupt status says. */
	t->irq_level = t->interrupt_status != 0;
	vm_irq_line(t->vm, t->gsi, t->irq_level);
	if (t->vops->post_load)
		t->vops->post_load(t);
	return 0;
}

static const struct device_ops virtio_mmio_device_ops = {
	.reset = mmio_reset,
	.io_read = mmio_io_read,
	.io_write = mmio_io_write,
	.save = mmio_save,
	.load = mmio_load,
	.pause = mmio_pause,
	.resume = mmio_resume,
	.detach_backend = mmio_detach_backend,
	.attach_backend = mmio_attach_backend,
	.destroy = mmio_destroy,
};

/* ---- construction -------------------------------------------------------- */

struct virtio_mmio *virtio_mmio_of(struct device *dev)
{
	return dev->ops == &virtio_mmio_device_ops ? to_virtio_mmio(dev) : NULL;
}

void virtio_mmio_init(struct virtio_mmio *t, struct vm *vm, const struct virtio_dev_ops *vops,
		      uint64_t features)
{
	memset(t, 0, sizeof(*t));
	t->vops = vops;
	t->vm = vm;
	t->device_features = features | 1ULL << VIRTIO_F_VERSION_1;
	t->dev.ops = &virtio_mmio_device_ops;
	t->dev.name = t->name;
	t->dev.vm = vm;
	for (t->index = 0;; t->index++) {
		snprintf(t->name, sizeof(t->name), "%s%d", vops->kind, t->index);
		if (!vm_find_device(vm, t->name))
			break;
	}
	for (int i = 0; i < vops->nqueues && i < VIRTIO_MMIO_MAX_QUEUES; i++)
		virtq_init(&t->queues[i], &vm->mem, vops->queue_max);
}

int virtio_mmio_attach(struct virtio_mmio *t)
{
	struct vm *vm = t->vm;
	int ret;

	/* Checked first so that vm_add_device cannot fail once the bus points at t. */
	if (vm->ndevices >= VM_MAX_DEVICES)
		return -ENOSPC;
	ret = vm_alloc_virtio_mmio(vm, &t->base, &t->gsi);
	if (ret < 0)
		return ret;
	ret = vm_register_mmio(vm, t->base, VIRTIO_MMIO_SIZE, &t->dev);
	if (ret < 0)
		return ret;
	return vm_add_device(vm, &t->dev);
}
