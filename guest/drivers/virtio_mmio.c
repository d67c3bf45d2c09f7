/*
 * virtio-mmio (version 2) driver side: probe, the status handshake, feature
 * negotiation, split-virtqueue setup and use. Registers are 32-bit only; the
 * config space is read with the natural width of each field.
 */
#include "drivers/virtio_mmio.h"

#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LO 0x080
#define REG_QUEUE_DESC_HI 0x084
#define REG_QUEUE_DRIVER_LO 0x090
#define REG_QUEUE_DRIVER_HI 0x094
#define REG_QUEUE_DEVICE_LO 0x0a0
#define REG_QUEUE_DEVICE_HI 0x0a4
#define REG_CONFIG_GENERATION 0x0fc
#define REG_CONFIG 0x100

#define MMIO_MAGIC 0x74726976 /* "virt" */

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_FAILED 128

#define PAGE_SIZE 4096
#define RESET_POLLS 1000000 /* a device that never finishes its reset is broken */

static uint32_t reg_read(const struct virtio_dev *dev, uint32_t off) { return mmio_read32(dev->base + off); }
static void reg_write(const struct virtio_dev *dev, uint32_t off, uint32_t v) { mmio_write32(dev->base + off, v); }

/* ---- probe --------------------------------------------------------------- */

static bool probe(const struct virtio_mmio_dev *slot, uint32_t device_id)
{
	if (mmio_read32(slot->base + REG_MAGIC) != MMIO_MAGIC)
		return false;
	if (mmio_read32(slot->base + REG_VERSION) != 2)
		return false; /* legacy (version 1) devices are not supported */
	return mmio_read32(slot->base + REG_DEVICE_ID) == device_id;
}

int virtio_find(uint32_t device_id, struct virtio_dev *dev)
{
	struct virtio_mmio_dev slots[16];
	int n = cmdline_virtio_devices(slots, (int)ARRAY_SIZE(slots));

	for (int i = 0; i < n; i++) {
		if (!probe(&slots[i], device_id))
			continue;
		*dev = (struct virtio_dev){ .base = slots[i].base, .gsi = slots[i].gsi, .device_id = device_id };
		return 0;
	}
	return -1;
}

/* ---- status and features ------------------------------------------------- */

static void status_set(struct virtio_dev *dev, uint32_t bits) { reg_write(dev, REG_STATUS, reg_read(dev, REG_STATUS) | bits); }

void virtio_fail(struct virtio_dev *dev) { status_set(dev, STATUS_FAILED); }

static uint64_t device_features(const struct virtio_dev *dev)
{
	uint64_t f;

	reg_write(dev, REG_DEVICE_FEATURES_SEL, 1);
	f = (uint64_t)reg_read(dev, REG_DEVICE_FEATURES) << 32;
	reg_write(dev, REG_DEVICE_FEATURES_SEL, 0);
	return f | reg_read(dev, REG_DEVICE_FEATURES);
}

static void driver_features_write(const struct virtio_dev *dev, uint64_t f)
{
	reg_write(dev, REG_DRIVER_FEATURES_SEL, 0);
	reg_write(dev, REG_DRIVER_FEATURES, (uint32_t)f);
	reg_write(dev, REG_DRIVER_FEATURES_SEL, 1);
	reg_write(dev, REG_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted)
{
	uint64_t f;
	int polls = 0;

	reg_write(dev, REG_STATUS, 0); /* reset; reads back 0 when done */
	while (reg_read(dev, REG_STATUS) != 0)
		if (++polls == RESET_POLLS)
			return -1;
	status_set(dev, STATUS_ACKNOWLEDGE);
	status_set(dev, STATUS_DRIVER);
	f = device_features(dev) & (wanted | 1UL << VIRTIO_F_VERSION_1);
	if (!(f >> VIRTIO_F_VERSION_1 & 1)) {
		virtio_fail(dev);
		return -1;
	}
	driver_features_write(dev, f);
	status_set(dev, STATUS_FEATURES_OK);
	/* The device clears FEATURES_OK when it cannot live with our subset. */
	if (!(reg_read(dev, REG_STATUS) & STATUS_FEATURES_OK)) {
		virtio_fail(dev);
		return -1;
	}
	dev->features = f;
	return 0;
}

void virtio_driver_ok(struct virtio_dev *dev) { status_set(dev, STATUS_DRIVER_OK); }

/* ---- config space -------------------------------------------------------- */

/* Retries while the device changes the config under us (spec 4.2.2.2). */
#define CONFIG_READ(dev, type, off, reader)                                        \
	({                                                                             \
		uint32_t gen_;                                                         \
		type v_;                                                               \
		do {                                                                   \
			gen_ = reg_read(dev, REG_CONFIG_GENERATION);                   \
			v_ = reader;                                                   \
		} while (reg_read(dev, REG_CONFIG_GENERATION) != gen_);                \
		v_;                                                                    \
	})

uint8_t virtio_config_read8(struct virtio_dev *dev, uint32_t off)
{
	return CONFIG_READ(dev, uint8_t, off, mmio_read8(dev->base + REG_CONFIG + off));
}

uint32_t virtio_config_read32(struct virtio_dev *dev, uint32_t off)
{
	return CONFIG_READ(dev, uint32_t, off, mmio_read32(dev->base + REG_CONFIG + off));
}

/* A 64-bit field is two 32-bit reads; the generation check makes them one value. */
uint64_t virtio_config_read64(struct virtio_dev *dev, uint32_t off)
{
	return CONFIG_READ(dev, uint64_t, off,
			   mmio_read32(dev->base + REG_CONFIG + off) |
				   (uint64_t)mmio_read32(dev->base + REG_CONFIG + off + 4) << 32);
}

uint32_t virtio_irq_ack(struct virtio_dev *dev)
{
	uint32_t status = reg_read(dev, REG_INTERRUPT_STATUS);

	if (status)
		reg_write(dev, REG_INTERRUPT_ACK, status);
	return status;
}

/* ---- virtqueue setup ----------------------------------------------------- */

static size_t pages_for(size_t bytes) { return (bytes + PAGE_SIZE - 1) / PAGE_SIZE; }

static uint16_t pow2_floor(uint32_t n)
{
	uint32_t p = 1;

	while (p * 2 <= n && p < 32768)
		p *= 2;
	return (uint16_t)p;
}

static void vq_alloc_rings(struct vq *vq)
{
	size_t n = vq->size;

	vq->desc = page_alloc(pages_for(n * sizeof(struct vring_desc)));
	vq->avail = page_alloc(pages_for(sizeof(struct vring_avail) + n * 2 + 2));
	vq->used = page_alloc(pages_for(sizeof(struct vring_used) + n * sizeof(struct vring_used_elem) + 2));
	vq->cookies = page_alloc(pages_for(n * sizeof(void *)));
	/* Free list: every descriptor, chained through `next`. */
	for (uint16_t i = 0; i + 1 < vq->size; i++)
		vq->desc[i].next = i + 1;
	vq->free_head = 0;
	vq->num_free = vq->size;
}

static void reg_write64(const struct virtio_dev *dev, uint32_t lo, uint64_t v)
{
	reg_write(dev, lo, (uint32_t)v);
	reg_write(dev, lo + 4, (uint32_t)(v >> 32));
}

int virtio_setup_vq(struct virtio_dev *dev, struct vq *vq, uint16_t index, uint16_t max_size)
{
	uint32_t max;

	reg_write(dev, REG_QUEUE_SEL, index);
	if (reg_read(dev, REG_QUEUE_READY))
		return -1; /* in use after a reset: the device is confused */
	max = reg_read(dev, REG_QUEUE_NUM_MAX);
	if (max == 0)
		return -1; /* no such queue */
	*vq = (struct vq){ .dev = dev, .index = index, .size = pow2_floor(max < max_size ? max : max_size) };
	vq_alloc_rings(vq);
	reg_write(dev, REG_QUEUE_NUM, vq->size);
	reg_write64(dev, REG_QUEUE_DESC_LO, (uint64_t)vq->desc);
	reg_write64(dev, REG_QUEUE_DRIVER_LO, (uint64_t)vq->avail);
	reg_write64(dev, REG_QUEUE_DEVICE_LO, (uint64_t)vq->used);
	reg_write(dev, REG_QUEUE_READY, 1);
	/* The device refuses (reads back 0) a layout it cannot use. */
	return reg_read(dev, REG_QUEUE_READY) == 1 ? 0 : -1;
}

/* ---- virtqueue use ------------------------------------------------------- */

int vq_add_chain(struct vq *vq, const struct vq_seg *segs, int n_out, int n_in, void *cookie)
{
	int n = n_out + n_in;
	uint16_t head = vq->free_head, i = head, last = head;

	if (n <= 0 || n > vq->num_free || !cookie)
		return -1;
	for (int s = 0; s < n; s++) {
		struct vring_desc *d = &vq->desc[i];

		d->addr = (uint64_t)segs[s].addr;
		d->len = segs[s].len;
		d->flags = (s >= n_out ? VRING_DESC_F_WRITE : 0) | (s + 1 < n ? VRING_DESC_F_NEXT : 0);
		last = i;
		i = d->next;
	}
	vq->free_head = vq->desc[last].next;
	vq->num_free -= (uint16_t)n;
	vq->cookies[head] = cookie;
	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
	/* The descriptors and ring slot must be visible before the new index. */
	wmb();
	vq->avail_idx++;
	*(volatile uint16_t *)&vq->avail->idx = vq->avail_idx;
	return head;
}

void vq_kick(struct vq *vq)
{
	/* Publishing avail->idx must be ordered before reading used->flags. */
	mb();
	if (*(volatile uint16_t *)&vq->used->flags & VRING_USED_F_NO_NOTIFY)
		return;
	reg_write(vq->dev, REG_QUEUE_NOTIFY, vq->index);
}

/* Returns the chain starting at head to the free list. */
static void vq_free_chain(struct vq *vq, uint16_t head)
{
	uint16_t i = head, n = 1;

	while (vq->desc[i].flags & VRING_DESC_F_NEXT) {
		i = vq->desc[i].next;
		n++;
	}
	vq->desc[i].next = vq->free_head;
	vq->free_head = head;
	vq->num_free += n;
}

void *vq_get_used(struct vq *vq, uint32_t *len)
{
	struct vring_used_elem e;
	void *cookie;

	mb(); /* see the device's latest used->idx, not a stale one */
	if (!vq_has_used(vq))
		return NULL;
	rmb(); /* the element is read after the index that covers it */
	e = ((volatile struct vring_used_elem *)vq->used->ring)[vq->last_used & (vq->size - 1)];
	vq->last_used++;
	if (e.id >= vq->size || !vq->cookies[e.id])
		panic("virtio: device %u queue %u returned bad id %u", vq->dev->device_id, vq->index, e.id);
	cookie = vq->cookies[e.id];
	vq->cookies[e.id] = NULL;
	vq_free_chain(vq, (uint16_t)e.id);
	if (len)
		*len = e.len;
	return cookie;
}
