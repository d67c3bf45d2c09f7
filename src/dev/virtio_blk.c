#include "dev/virtio_blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "dev/virtio_blk_req.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vm/vm.h"

#define VIRTIO_BLK_STATE_VERSION 1
/* struct virtio_blk_config up to num_queues (virtio 1.2, 5.2.4). */
#define VIRTIO_BLK_CONFIG_SIZE 36

static const struct virtio_dev_ops virtio_blk_ops;

static struct virtio_blk *to_blk(struct virtio_mmio *t) { return (struct virtio_blk *)t; }

/* ---- the request pool (io_lock) ------------------------------------------ */

static void req_free(struct virtio_blk *b, struct virtio_blk_req *r)
{
	r->next_free = b->free_reqs;
	b->free_reqs = r;
	b->in_flight--;
}

/* Returns a list of jobs (cancelled or finished ones nobody will complete) to the pool. */
static void req_free_jobs(struct virtio_blk *b, struct blk_job *job)
{
	while (job) {
		struct blk_job *next = job->next;

		req_free(b, (struct virtio_blk_req *)job);
		job = next;
	}
}

/* ---- kick: chains to the worker (vCPU, io_lock) --------------------------- */

static const char *submit_one(struct virtio_blk *b, struct virtio_blk_req *r)
{
	if (virtio_blk_req_parse(r) < 0)
		return "malformed request (header under 16 bytes or no status byte)";
	b->free_reqs = r->next_free;
	b->in_flight++;
	blk_worker_submit(&b->worker, &r->job);
	return NULL;
}

/* Hands every chain the driver made available to the worker. Returns why the
 * queue is broken, or NULL. */
static const char *submit_avail(struct virtio_blk *b)
{
	struct virtq *q = &b->mmio.queues[0];
	const char *broken;
	int ret;

	do {
		for (;;) {
			/* The pool holds as many requests as the largest queue has
			 * entries: a driver with more out has reused descriptors. */
			if (!b->free_reqs)
				return virtq_avail_count(q) > 0 ? "more requests in flight than the queue holds"
								 : NULL;
			ret = virtq_pop_avail(q, &b->free_reqs->chain);
			if (ret <= 0)
				break;
			if ((broken = submit_one(b, b->free_reqs)))
				return broken;
		}
		if (ret < 0)
			return "malformed descriptor chain or avail ring";
	} while (virtq_enable_notify(q));
	return NULL;
}

static void blk_notify(struct virtio_mmio *t, uint16_t qi)
{
	struct virtio_blk *b = to_blk(t);
	const char *broken;

	if (qi != 0 || b->paused) /* resume looks at the queue again */
		return;
	broken = submit_avail(b);
	if (broken)
		virtio_mmio_device_error(t, broken);
}

/* ---- completion (io_lock) ------------------------------------------------ */

/* Puts every request the worker has finished into the used ring. */
static void complete_done(struct virtio_blk *b)
{
	struct virtq *q = &b->mmio.queues[0];
	struct blk_job *job = blk_worker_take_done(&b->worker);
	const char *broken = NULL;
	bool pushed = false;

	while (job) {
		struct virtio_blk_req *r = (struct virtio_blk_req *)job;

		job = job->next;
		if (broken) {
			/* the device is already broken: nothing more goes to the driver */
		} else if (virtio_blk_req_finish(r) < 0) {
			broken = "request status byte not writable";
		} else if (virtq_push_used(q, r->chain.head, r->written + 1) < 0) {
			broken = "used ring not writable";
		} else {
			pushed = true;
		}
		req_free(b, r);
	}
	if (pushed)
		virtio_mmio_notify_used(&b->mmio, 0);
	if (broken)
		virtio_mmio_device_error(&b->mmio, broken);
}

/* Event loop: the worker finished something. */
static void blk_on_done(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;

	(void)events;
	vm_io_lock(b->mmio.vm);
	complete_done(b);
	vm_io_unlock(b->mmio.vm);
}

/* ---- virtio device ops --------------------------------------------------- */

/*
 * io_lock held (vm_pause_devices), vCPU parked. Waiting for the worker here
 * cannot deadlock: it takes no lock but its own. Everything handed to it is
 * then finished and completed into the used ring before we return, so the
 * state saved next has no request in flight, and the guest sees each one
 * completed exactly once.
 */
static void blk_pause(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	b->paused = true;
	blk_worker_drain(&b->worker);
	complete_done(b);
}

/* The guest may have queued chains while we were paused, or a loaded state
 * may hold some: look at the ring again. */
static void blk_resume(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	b->paused = false;
	if (virtio_mmio_is_live(t) && t->queues[0].ready)
		blk_notify(t, 0);
}

/* The driver reset the device (io_lock held; the rings are already gone):
 * requests not started are dropped, the one under way is waited for, and
 * nothing is completed into a ring the driver no longer has. */
static void blk_reset(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	req_free_jobs(b, blk_worker_cancel(&b->worker));
	req_free_jobs(b, blk_worker_take_done(&b->worker));
}

static int blk_activate(struct virtio_mmio *t) { return t->queues[0].ready ? 0 : -EINVAL; }

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void blk_config_read(struct virtio_mmio *t, uint32_t off, void *data, uint32_t len)
{
	struct virtio_blk *b = to_blk(t);
	uint8_t cfg[VIRTIO_BLK_CONFIG_SIZE] = { 0 };

	put_le32(cfg + 0, (uint32_t)b->capacity); /* capacity, u64 */
	put_le32(cfg + 4, (uint32_t)(b->capacity >> 32));
	put_le32(cfg + 12, VIRTIO_BLK_SEG_MAX);   /* seg_max */
	put_le32(cfg + 20, VIRTIO_BLK_SECTOR_SIZE); /* blk_size */
	memcpy(data, cfg + off, len);
}

/* Device record: u32 version, u64 capacity, u8 readonly. Nothing in it changes
 * at run time; the loader only checks that the disk it was given matches.
 * Requests in flight are not part of it: a paused device has none (-EBUSY
 * if asked while it has). */
static int blk_save(struct virtio_mmio *t, struct sbuf *out)
{
	struct virtio_blk *b = to_blk(t);

	if (b->in_flight)
		return -EBUSY;
	sbuf_put_u32(out, VIRTIO_BLK_STATE_VERSION);
	sbuf_put_u64(out, b->capacity);
	sbuf_put_u8(out, (uint8_t)b->backend->readonly);
	return 0;
}

static int blk_load(struct virtio_mmio *t, struct sbuf_reader *in)
{
	struct virtio_blk *b = to_blk(t);
	uint32_t version = sbuf_get_u32(in);
	uint64_t capacity = sbuf_get_u64(in);
	uint8_t readonly = sbuf_get_u8(in);

	if (sbuf_reader_error(in) || sbuf_remaining(in) || version != VIRTIO_BLK_STATE_VERSION)
		return -EINVAL;
	if (capacity != b->capacity || readonly != b->backend->readonly) {
		log_error("%s: saved disk has %llu sectors%s, this one %llu%s", t->name,
			  (unsigned long long)capacity, readonly ? " (read-only)" : "",
			  (unsigned long long)b->capacity, b->backend->readonly ? " (read-only)" : "");
		return -EINVAL;
	}
	/* The loaded rings replace ours: a request of ours would complete into them. */
	return b->in_flight ? -EBUSY : 0;
}

/* No io_lock: the VM is going away and its vCPU is gone. */
static void blk_destroy(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	if (b->done_watched)
		evloop_del_sync(t->vm->loop, b->worker.done_fd);
	blk_worker_stop(&b->worker);
	blk_backend_close(b->backend);
	free(b->reqs);
	free(b);
}

static const struct virtio_dev_ops virtio_blk_ops = {
	.kind = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.config_read = blk_config_read,
	.activate = blk_activate,
	.notify = blk_notify,
	.reset = blk_reset,
	.pause = blk_pause,
	.resume = blk_resume,
	.save = blk_save,
	.load = blk_load,
	.destroy = blk_destroy,
};

/* ---- construction -------------------------------------------------------- */

static int blk_alloc_reqs(struct virtio_blk *b)
{
	b->reqs = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*b->reqs));
	if (!b->reqs)
		return -ENOMEM;
	for (int i = VIRTIO_BLK_QUEUE_SIZE - 1; i >= 0; i--) {
		struct virtio_blk_req *r = &b->reqs[i];

		r->blk = b;
		r->job.run = virtio_blk_req_run;
		r->next_free = b->free_reqs;
		b->free_reqs = r;
	}
	return 0;
}

/* The worker, and its completions on the VM's event loop. */
static int blk_start_worker(struct virtio_blk *b)
{
	struct vm *vm = b->mmio.vm;
	int ret;

	if (!vm->loop)
		return -EINVAL;
	ret = blk_worker_start(&b->worker, b->mmio.name);
	if (ret < 0)
		return ret;
	ret = evloop_add(vm->loop, b->worker.done_fd, EPOLLIN, blk_on_done, b);
	if (ret < 0)
		return ret;
	b->done_watched = true;
	return 0;
}

static uint64_t blk_features(const struct blk_backend *be)
{
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
		     1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
		     1ULL << VIRTIO_RING_F_EVENT_IDX;

	return be->readonly ? f | 1ULL << VIRTIO_BLK_F_RO : f;
}

int virtio_blk_create(struct vm *vm, struct blk_backend *be, struct device **out)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	uint64_t size = blk_backend_size(be);
	int ret;

	if (!b) {
		blk_backend_close(be);
		return -ENOMEM;
	}
	b->backend = be;
	b->worker.done_fd = -1;
	b->capacity = size / VIRTIO_BLK_SECTOR_SIZE;
	virtio_mmio_init(&b->mmio, vm, &virtio_blk_ops, blk_features(be));
	if (size % VIRTIO_BLK_SECTOR_SIZE)
		log_warn("%s: disk size is not a multiple of 512; the last %llu bytes are not visible",
			 b->mmio.name, (unsigned long long)(size % VIRTIO_BLK_SECTOR_SIZE));
	snprintf(b->serial, sizeof(b->serial), "lockstep-disk%d", b->mmio.index);
	if ((ret = blk_alloc_reqs(b)) || (ret = blk_start_worker(b)) ||
	    (ret = virtio_mmio_attach(&b->mmio))) {
		blk_destroy(&b->mmio);
		return ret;
	}
	*out = &b->mmio.dev;
	return 0;
}

/* ---- test hook ----------------------------------------------------------- */

struct virtio_blk *virtio_blk_of(struct device *dev)
{
	struct virtio_mmio *t = virtio_mmio_of(dev);

	return t && t->vops == &virtio_blk_ops ? to_blk(t) : NULL;
}

void virtio_blk_set_test_delay(struct virtio_blk *b, uint32_t ms)
{
	__atomic_store_n(&b->test_delay_ms, ms, __ATOMIC_RELAXED);
}

uint32_t virtio_blk_test_delay(const struct virtio_blk *b)
{
	return __atomic_load_n(&b->test_delay_ms, __ATOMIC_RELAXED);
}
