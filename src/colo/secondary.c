/* The secondary side of COLO: RAM cache, checkpoint apply, failover (see colo.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "colo/colo_internal.h"
#include "state/vmstate.h"
#include "util/log.h"
#include "vm/dirty.h"
#include "vm/vm.h"

/* Pages copied between two heartbeat checks while filling the cache (64 MiB). */
#define CACHE_FILL_CHUNK_PAGES 16384

/* The cache starts as a copy of RAM (both sides hold the same state now). */
static int secondary_cache_init(struct colo *c)
{
	struct gmem *mem = &c->vm->mem;
	uint64_t pages = gmem_page_count(mem), *scratch;

	/* A memfd, so that memory is reserved (fallocate) before any page is written
	 * into it: a full host refuses a checkpoint instead of killing us. */
	c->cache_fd = memfd_create("lockstep-colo-cache", MFD_CLOEXEC);
	if (c->cache_fd < 0 || ftruncate(c->cache_fd, (off_t)mem->size) < 0)
		return -errno;
	c->cache = mmap(NULL, mem->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->cache_fd, 0);
	c->cache_dirty = calloc(dirty_bitmap_words(c->vm), sizeof(uint64_t));
	c->bitmap = calloc(dirty_bitmap_words(c->vm), sizeof(uint64_t));
	if (c->cache == MAP_FAILED || !c->cache_dirty || !c->bitmap) {
		if (c->cache == MAP_FAILED)
			c->cache = NULL;
		return -ENOMEM;
	}
	for (uint64_t p = 0; p < pages;) {
		uint64_t data = gmem_next_data(mem, p), hole = gmem_next_hole(mem, data);

		if (hole > data + CACHE_FILL_CHUNK_PAGES)
			hole = data + CACHE_FILL_CHUNK_PAGES;
		if (hole > data && fallocate(c->cache_fd, FALLOC_FL_KEEP_SIZE, (off_t)(data * GMEM_PAGE_SIZE),
					     (off_t)((hole - data) * GMEM_PAGE_SIZE)) < 0)
			return -errno;
		if (hole > data)
			memcpy(c->cache + data * GMEM_PAGE_SIZE, gmem_page_hva(mem, data),
			       (hole - data) * GMEM_PAGE_SIZE);
		p = hole;
		if (colo_tell_peer_alive(c) < 0) /* a large guest takes a while: slow is not dead */
			return -EPIPE;
	}
	if (c->test.cache_fill_delay_ms && colo_sleep_alive(c, c->test.cache_fill_delay_ms) < 0)
		return -EPIPE;
	/* Dirty tracking of the SVM starts now: what it writes from here on is
	 * overwritten from the cache at the next checkpoint. */
	scratch = c->bitmap;
	return dirty_harvest(c->vm, scratch) < 0 ? -EIO : 0;
}

static void secondary_cache_free(struct colo *c)
{
	if (c->cache)
		munmap(c->cache, c->vm->mem.size);
	c->cache = NULL;
	if (c->cache_fd >= 0)
		close(c->cache_fd);
	c->cache_fd = -1;
	free(c->cache_dirty);
	free(c->bitmap);
	c->cache_dirty = c->bitmap = NULL;
}

/* RAM pages of the checkpoint into the cache (never into guest RAM yet); l is initialised. */
static int secondary_receive_ram(struct colo *c, struct vmstate_loader *l)
{
	int ret;

	l->have_config = 1;
	l->ram_target = c->cache;
	l->ram_target_fd = c->cache_fd;
	l->ram_target_dirty = c->cache_dirty;
	l->ram_only = 1;
	ret = vmstate_load_stream_body(l, &c->in);
	if (ret < 0)
		colo_fail(c, "checkpoint RAM refused: %s", l->error[0] ? l->error : strerror(-ret));
	return ret;
}

static int secondary_receive_device_state(struct colo *c, struct vmstate_loader *l)
{
	struct stream_in mem;
	uint64_t len;
	void *p;
	int ret = colo_expect_msg(c, COLO_MSG_VMSTATE_SIZE, &len);

	if (ret < 0)
		return ret;
	if (len > VMSTATE_MAX_SECTION) {
		colo_fail(c, "checkpoint device state of %llu bytes is too large", (unsigned long long)len);
		return -EPROTO;
	}
	p = sbuf_set_len(&c->device_blob, (size_t)len);
	if (!p)
		return -ENOMEM;
	if (stream_in_read(&c->in, p, (size_t)len) < 0) {
		colo_fail(c, "connection to the primary lost in the device state");
		return c->in.error;
	}
	stream_in_init_mem(&mem, c->device_blob.data, c->device_blob.len);
	l->ram_only = 0;
	ret = vmstate_load_stream_body(l, &mem);
	if (ret < 0)
		colo_fail(c, "checkpoint device state refused: %s", l->error[0] ? l->error : strerror(-ret));
	return ret;
}

/* What the SVM dirtied since the last checkpoint (it is stopped: the set is final). */
static int secondary_harvest(struct colo *c)
{
	memset(c->bitmap, 0, dirty_bitmap_words(c->vm) * sizeof(uint64_t));
	return dirty_harvest(c->vm, c->bitmap) < 0 ? -EIO : 0;
}

/* Calls fn for each run of pages dirtied by either side since the last checkpoint. */
static int for_each_flush_run(struct colo *c, int (*fn)(struct colo *, uint64_t, uint64_t))
{
	uint64_t pages = gmem_page_count(&c->vm->mem);
	int ret = 0;

	for (uint64_t p = 0; p < pages && ret == 0;) {
		uint64_t w = p / 64, bits = (c->bitmap[w] | c->cache_dirty[w]) >> (p % 64), run;

		if (!bits) {
			p = (w + 1) * 64;
			continue;
		}
		p += (uint64_t)__builtin_ctzll(bits);
		for (run = 1; p + run < pages; run++) {
			uint64_t q = p + run, m = 1ULL << (q % 64);

			if (!((c->bitmap[q / 64] | c->cache_dirty[q / 64]) & m))
				break;
		}
		ret = fn(c, p, run);
		p += run;
	}
	return ret;
}

static int reserve_run(struct colo *c, uint64_t first, uint64_t count)
{
	return gmem_reserve(&c->vm->mem, first, count);
}

static int copy_run(struct colo *c, uint64_t first, uint64_t count)
{
	memcpy(gmem_page_hva(&c->vm->mem, first), c->cache + first * GMEM_PAGE_SIZE, count * GMEM_PAGE_SIZE);
	return 0;
}

/* The RAM check the primary asked for, on RAM as it will be after the flush. */
static int secondary_check_ram_hash(struct colo *c, struct vmstate_loader *l)
{
	uint64_t mine;

	if (!l->ram_hash_expected)
		return 0;
	mine = vmstate_ram_hash_overlay(c->vm, c->cache, c->bitmap, c->cache_dirty);
	pthread_mutex_lock(&c->lock);
	c->stats.last_ram_hash = mine;
	c->stats.ram_checks += mine == l->ram_hash;
	pthread_mutex_unlock(&c->lock);
	if (mine == l->ram_hash)
		return 0;
	colo_fail(c, "RAM would differ from the primary's after the checkpoint");
	return -EPROTO;
}

/*
 * Everything that can refuse a checkpoint, before vmstate-received: the
 * records are all there, RAM for the flush is allocated, the RAM check
 * passes, and the machine state is applied (all or nothing, rolled back if a
 * record is refused). On error the SVM is exactly as it was.
 */
static int secondary_validate_and_apply_machine(struct colo *c, struct vmstate_loader *l)
{
	int ret = secondary_harvest(c);

	if (ret < 0) {
		colo_fail(c, "cannot read the dirty pages of the SVM: %s", strerror(-ret));
		return ret;
	}
	if (!l->vcpu.len || !l->platform.len) {
		colo_fail(c, "checkpoint without vCPU or platform state");
		return -EPROTO;
	}
	if ((ret = for_each_flush_run(c, reserve_run)) < 0) {
		colo_fail(c, "no memory for the checkpoint's pages: %s", strerror(-ret));
		return ret;
	}
	if ((ret = secondary_check_ram_hash(c, l)) < 0)
		return ret;
	if ((ret = colo_run_participants(c, COLO_STEP_PREPARE, 0)) < 0)
		return ret;
	if ((ret = vmstate_apply_machine(l)) < 0)
		colo_fail(c, "checkpoint state refused: %s", l->error);
	return ret;
}

/* This secondary's state can never run (why: the error COLO ended with). */
static void secondary_mark_unusable(struct colo *c)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->unusable, sizeof(c->unusable), "%s", c->error);
	pthread_mutex_unlock(&c->lock);
}

/*
 * The checkpoint's pages into RAM (memory reserved above: cannot fail), then
 * the participants, and the digests the primary sent (x-check-disk). Should one fail even so, RAM and devices are the new
 * checkpoint's and its state is not: this SVM may never run again.
 */
static int secondary_finish_apply(struct colo *c, const struct vmstate_loader *l)
{
	int ret;

	for_each_flush_run(c, copy_run);
	memset(c->cache_dirty, 0, dirty_bitmap_words(c->vm) * sizeof(uint64_t));
	ret = colo_run_participants(c, COLO_STEP_APPLIED, c->checkpoint_mark);
	if (ret == 0)
		ret = colo_verify_participant_digests(c, l->digests, l->ndigests);
	if (ret < 0)
		secondary_mark_unusable(c);
	return ret;
}

/* Pages the primary sends ahead of a checkpoint: into the cache while our VM runs. */
static int secondary_receive_background(struct colo *c)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	int ret;

	if (!l)
		return -ENOMEM;
	vmstate_loader_init(l, c->vm, 1);
	ret = secondary_receive_ram(c, l);
	pthread_mutex_lock(&c->lock);
	c->stats.pages += l->ram_pages;
	c->stats.precopy_pages += l->ram_pages;
	pthread_mutex_unlock(&c->lock);
	vmstate_loader_free(l);
	free(l);
	c->last_heard_ns = stream_now_ns(); /* the transfer itself was news from the primary */
	return ret;
}

static void secondary_set_applying(struct colo *c, bool applying)
{
	pthread_mutex_lock(&c->lock);
	c->applying = applying;
	pthread_mutex_unlock(&c->lock);
}

/* The checkpoint's RAM and device state, received whole and checked at the stream level. */
static int secondary_receive_checkpoint(struct colo *c, struct vmstate_loader *l)
{
	int ret = colo_send_msg(c, COLO_MSG_CHECKPOINT_REPLY);

	if (ret == 0)
		ret = colo_expect_msg(c, COLO_MSG_VMSTATE_SEND, &c->checkpoint_mark);
	if (ret == 0)
		ret = secondary_receive_ram(c, l);
	if (ret == 0)
		ret = secondary_receive_device_state(c, l);
	return ret;
}

/*
 * One checkpoint, from the request to vmstate-loaded. vmstate-received means
 * "validated and applied as far as anything can fail": the primary releases
 * output on it, so nothing after it may leave the SVM short of this checkpoint.
 */
static int secondary_checkpoint(struct colo *c)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	uint64_t t_stop = stream_now_ns(), t_apply = 0;
	bool applied = false;
	int ret;

	if (!l)
		return -ENOMEM;
	/* Before anything can fail: the loader is freed on every path. */
	vmstate_loader_init(l, c->vm, 1);
	vm_pause_quiet(c->vm);
	ret = secondary_receive_checkpoint(c, l);
	if (ret == 0) {
		t_apply = stream_now_ns();
		secondary_set_applying(c, true);
		ret = secondary_validate_and_apply_machine(c, l);
		applied = ret == 0;
	}
	if (applied && (ret = secondary_finish_apply(c, l)) == 0) {
		ret = colo_send_msg(c, COLO_MSG_VMSTATE_RECEIVED);
		if (c->test.apply_delay_ms && colo_sleep_alive(c, c->test.apply_delay_ms) < 0)
			ret = ret ? ret : -EPIPE;
	}
	if (t_apply) {
		/* The primary only waited for us meanwhile: its silence counts from now. */
		c->last_heard_ns = stream_now_ns();
		secondary_set_applying(c, false);
		pthread_mutex_lock(&c->lock);
		c->stats.pages += l->ram_pages;
		c->stats.phase_apply_us = (stream_now_ns() - t_apply) / 1000;
		pthread_mutex_unlock(&c->lock);
	}
	vmstate_loader_free(l);
	free(l);
	/* Refused or cut short, COLO ends: the SVM stays stopped where it is, with
	 * its own state, which nothing touched (it then waits for a decision). */
	if (ret < 0)
		return ret;
	vm_resume_quiet(c->vm);
	if (__atomic_load_n(&c->failover, __ATOMIC_ACQUIRE) == COLO_FAILOVER_RELAUNCH)
		return -ECANCELED; /* a failover waited for this apply: do it now */
	if ((ret = colo_send_msg(c, COLO_MSG_VMSTATE_LOADED)) == 0)
		colo_record_pause(c, (stream_now_ns() - t_stop) / 1000);
	return ret;
}

/* The primary's guest ended: ours ends the same way; no takeover, no wait. */
static int secondary_end_with_guest(struct colo *c)
{
	const char *reason;
	uint64_t value;
	int status;

	if (stream_in_read(&c->in, &value, sizeof(value)) < 0) {
		colo_fail(c, "connection to the primary lost in message guest-ended");
		return c->in.error;
	}
	if (!(reason = colo_guest_end_decode(value, &status))) {
		colo_fail(c, "guest-ended with an unknown reason %llu", (unsigned long long)(value >> 8));
		return -EPROTO;
	}
	c->guest_ended = true;
	vm_request_shutdown(c->vm, status, reason);
	return -ESHUTDOWN;
}

static int secondary_loop(struct colo *c)
{
	int ret = colo_send_msg(c, COLO_MSG_CHECKPOINT_READY);

	/* The peer's silence counts from here: setting up the cache and the link
	 * took time during which the primary only waited for us. */
	c->last_heard_ns = stream_now_ns();
	while (ret == 0 && __atomic_load_n(&c->failover, __ATOMIC_ACQUIRE) == COLO_FAILOVER_NONE) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		uint32_t msg;

		if (!stream_in_buffered(&c->in) && poll(&p, 1, COLO_HEARTBEAT_MS) == 0) {
			ret = colo_heartbeat(c);
			continue;
		}
		if ((ret = stream_in_read(&c->in, &msg, sizeof(msg))) < 0) {
			colo_fail(c, "connection to the primary lost: %s",
				  ret == -EPIPE ? "closed" : strerror(-ret));
			break;
		}
		c->last_heard_ns = stream_now_ns();
		if (msg == COLO_MSG_CHECKPOINT_REQUEST)
			ret = secondary_checkpoint(c);
		else if (msg == COLO_MSG_RAM_BACKGROUND)
			ret = secondary_receive_background(c);
		else if (msg == COLO_MSG_GUEST_ENDED)
			ret = secondary_end_with_guest(c);
		else if (msg != COLO_MSG_HEARTBEAT)
			colo_fail(c, "unexpected COLO message %u from the primary", msg), ret = -EPROTO;
		if (ret == 0)
			ret = colo_heartbeat(c);
	}
	return ret;
}

/*
 * COLO has ended. A failover that was asked for takes over at once. Any other
 * end (the primary dead, silent, or in error) stops the SVM where it is (its
 * state follows the last checkpoint it fully applied, and its output matched
 * the primary's) and waits for the decision.
 */
static bool secondary_take_over(struct colo *c)
{
	bool unusable;

	pthread_mutex_lock(&c->lock);
	unusable = c->unusable[0] != '\0';
	pthread_mutex_unlock(&c->lock);
	if (c->guest_ended) { /* the guest is gone on both sides: nothing to take over */
		if (vm_get_state(c->vm) == VM_STATE_RUNNING)
			vm_pause_quiet(c->vm);
		return false;
	}
	if (unusable) { /* never runs again: the primary serves on alone */
		if (vm_get_state(c->vm) == VM_STATE_RUNNING)
			vm_pause_quiet(c->vm);
		log_error("COLO secondary: cannot take over: %s", c->unusable);
		return false;
	}
	if (__atomic_load_n(&c->failover, __ATOMIC_ACQUIRE) == COLO_FAILOVER_ACTIVE)
		return true;
	if (vm_get_state(c->vm) == VM_STATE_RUNNING)
		vm_pause_quiet(c->vm);
	return colo_await_takeover(c);
}

void *colo_secondary_thread(void *arg)
{
	struct colo *c = arg;
	const char *failed = NULL;
	int ret = secondary_cache_init(c);

	if (ret < 0)
		colo_fail(c, "cannot set up the RAM cache: %s", strerror(-ret));
	/* A participant that could not start (a disk copy cut short) leaves this
	 * VM with state that is not the primary's: it must never run. */
	if (ret == 0 && (ret = colo_run_participants(c, COLO_STEP_START, 0)) < 0)
		secondary_mark_unusable(c);
	else if (ret == 0 && (ret = vm_start(c->vm)) < 0)
		colo_fail(c, "cannot start the VM: %s", strerror(-ret));
	if (ret == 0)
		secondary_loop(c);
	colo_leave_loop(c);
	if (!secondary_take_over(c)) {
		secondary_cache_free(c);
		colo_finish(c, false);
		return NULL;
	}
	/* The SVM becomes the VM: it takes its host backends and runs on. */
	if (vm_attach_backends(c->vm, &failed) < 0)
		colo_fail(c, "failover: cannot take the backend of %s", failed);
	if (vm_get_state(c->vm) == VM_STATE_PAUSED)
		vm_resume_quiet(c->vm);
	secondary_cache_free(c);
	colo_finish(c, true);
	return NULL;
}
