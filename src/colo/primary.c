/* The primary side of COLO: the checkpoint loop (see colo.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "colo/colo_internal.h"
#include "state/vmstate.h"
#include "util/log.h"
#include "vm/dirty.h"
#include "vm/vm.h"

static uint64_t us_since(uint64_t t_ns) { return (stream_now_ns() - t_ns) / 1000; }

#define TEST_STALL_MAX_MS 60000

/* Test hook: once, the primary stops dead in phase `at` (no heartbeat, no
 * progress) for a minute, to be killed or frozen there by a test. */
static void primary_test_stall(struct colo *c, enum colo_test_phase at)
{
	int expected = at;
	struct timespec tick = { 0, 10 * 1000000 };

	if (!__atomic_compare_exchange_n(&c->test.stall_phase, &expected, COLO_TEST_PHASE_NONE, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	log_warn("test hook: the COLO primary stalls in phase %s", colo_test_phase_names[at]);
	__atomic_store_n(&c->test.stalled_in, at, __ATOMIC_RELEASE);
	for (int ms = 0; ms < TEST_STALL_MAX_MS; ms += 10)
		nanosleep(&tick, NULL);
	__atomic_store_n(&c->test.stalled_in, COLO_TEST_PHASE_NONE, __ATOMIC_RELEASE);
}

/*
 * RAM dirtied since the last checkpoint and not sent ahead (c->bitmap holds
 * what the pre-copy left), then END; optionally a hash of all RAM and the
 * participants' digests (x-check-ram, x-check-disk).
 */
static int primary_send_ram(struct colo *c)
{
	struct vmstate_ram_stats rs = { 0 };
	uint64_t words = dirty_bitmap_words(c->vm);
	int64_t n;
	int ret;

	n = dirty_harvest(c->vm, c->bitmap);
	if (n < 0)
		return (int)n;
	if ((ret = colo_send_msg_value(c, COLO_MSG_VMSTATE_SEND, colo_participant_mark(c))))
		return ret;
	primary_test_stall(c, COLO_TEST_PHASE_RAM);
	if ((ret = vmstate_write_ram(&c->out, c->vm, c->bitmap, &rs)))
		return ret;
	if (__atomic_load_n(&c->check_ram, __ATOMIC_ACQUIRE)) {
		uint64_t hash = vmstate_ram_hash(c->vm);

		pthread_mutex_lock(&c->lock);
		c->stats.last_ram_hash = hash;
		pthread_mutex_unlock(&c->lock);
		if ((ret = vmstate_write_ram_hash(&c->out, hash)))
			return ret;
	}
	if (__atomic_load_n(&c->check_disk, __ATOMIC_ACQUIRE) &&
	    (ret = colo_write_participant_digests(c, &c->out)))
		return ret;
	pthread_mutex_lock(&c->lock);
	c->stats.pages += rs.pages;
	c->stats.bytes += rs.bytes;
	pthread_mutex_unlock(&c->lock);
	memset(c->bitmap, 0, words * sizeof(uint64_t));
	return vmstate_write_end(&c->out);
}

/*
 * Before stopping anything: if many pages are dirty, send them now while both
 * VMs run; the stop then only covers what the guest dirtied meanwhile.
 */
static int primary_precopy(struct colo *c)
{
	struct vmstate_ram_stats rs = { 0 };
	uint64_t words = dirty_bitmap_words(c->vm), t0 = stream_now_ns();
	int64_t n;
	int ret;

	n = dirty_harvest(c->vm, c->bitmap); /* c->bitmap is empty between checkpoints */
	if (n < 0)
		return (int)n;
	if (n < COLO_PRECOPY_MIN_PAGES) {
		/* Too few to be worth a round: they go with the checkpoint itself. */
		pthread_mutex_lock(&c->lock);
		c->stats.phase_precopy_us = 0;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if ((ret = colo_send_msg(c, COLO_MSG_RAM_BACKGROUND)))
		return ret;
	primary_test_stall(c, COLO_TEST_PHASE_PRECOPY);
	if ((ret = vmstate_write_ram(&c->out, c->vm, c->bitmap, &rs)) || (ret = vmstate_write_end(&c->out)))
		return ret;
	memset(c->bitmap, 0, words * sizeof(uint64_t));
	pthread_mutex_lock(&c->lock);
	c->stats.pages += rs.pages;
	c->stats.precopy_pages += rs.pages;
	c->stats.bytes += rs.bytes;
	c->stats.phase_precopy_us = (stream_now_ns() - t0) / 1000;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Test hook: damage one byte of the next device-state blob (its checksum fails). */
static void primary_maybe_corrupt(struct colo *c, struct sbuf *blob)
{
	if (!__atomic_exchange_n(&c->test.corrupt_next, false, __ATOMIC_ACQ_REL) || !blob->len)
		return;
	blob->data[blob->len / 2] ^= 0x5a;
}

/*
 * Test hook: the next blob's vCPU record gets one byte too many, under a
 * valid checksum. The stream checks pass; decoding the record refuses it.
 */
static int primary_maybe_spoil_vcpu(struct colo *c, struct sbuf *blob)
{
	struct stream_out out;
	struct sbuf spoiled;
	size_t pos = 0;
	int ret;

	if (!__atomic_exchange_n(&c->test.refuse_next, false, __ATOMIC_ACQ_REL))
		return 0;
	sbuf_init(&spoiled);
	ret = stream_out_init_capture(&out, &spoiled);
	while (ret == 0 && pos + 24 <= blob->len) {
		uint32_t type, version;
		uint64_t len;

		memcpy(&type, blob->data + pos, 4);
		memcpy(&version, blob->data + pos + 4, 4);
		memcpy(&len, blob->data + pos + 8, 8);
		if (len > blob->len - pos - 24)
			break;
		if (type == VMSTATE_SEC_VCPU) {
			uint8_t *rec = malloc(len + 1);

			if (!rec)
				ret = -ENOMEM;
			else {
				memcpy(rec, blob->data + pos + 16, len);
				rec[len] = 0;
				ret = vmstate_write_section(&out, type, version, rec, len + 1);
			}
			free(rec);
		} else {
			ret = stream_out_write(&out, blob->data + pos, 24 + len);
		}
		pos += 24 + len;
	}
	if (ret == 0)
		ret = stream_out_flush(&out);
	stream_out_free(&out);
	if (ret == 0) {
		struct sbuf old = *blob;

		*blob = spoiled;
		spoiled = old;
	}
	sbuf_free(&spoiled);
	return ret;
}

/* Machine state as one blob: vmstate-size with its length, then the bytes. */
static int primary_send_device_state(struct colo *c)
{
	struct stream_out cap;
	int ret = stream_out_init_capture(&cap, &c->device_blob);

	sbuf_reset(&c->device_blob);
	if (ret == 0 && (ret = vmstate_write_machine(&cap, c->vm)) == 0)
		ret = vmstate_write_end(&cap);
	stream_out_free(&cap);
	if (ret < 0)
		return ret;
	primary_maybe_corrupt(c, &c->device_blob);
	if ((ret = primary_maybe_spoil_vcpu(c, &c->device_blob)) < 0)
		return ret;
	if ((ret = colo_send_msg_value(c, COLO_MSG_VMSTATE_SIZE, c->device_blob.len)))
		return ret;
	stream_out_write(&c->out, c->device_blob.data, c->device_blob.len);
	return stream_out_flush(&c->out);
}

/* One checkpoint transaction. The PVM is stopped from the reply to vmstate-loaded. */
static int primary_checkpoint(struct colo *c, enum colo_reason why)
{
	uint64_t t0 = stream_now_ns(), t_stop, t_stopped, t_ram, t_dev, t_recv;
	int ret;

	if ((ret = primary_precopy(c)) < 0)
		return ret;
	t0 = stream_now_ns();
	if ((ret = colo_send_msg(c, COLO_MSG_CHECKPOINT_REQUEST)))
		return ret;
	primary_test_stall(c, COLO_TEST_PHASE_REQUEST);
	if ((ret = colo_expect_msg(c, COLO_MSG_CHECKPOINT_REPLY, NULL)))
		return ret;
	t_stop = stream_now_ns();
	if ((ret = vm_pause_quiet(c->vm)) < 0) { /* also when stopped: `cont` must wait */
		colo_fail(c, "cannot stop the VM for a checkpoint: %s", strerror(-ret));
		return ret;
	}
	t_stopped = stream_now_ns();
	ret = colo_run_participants(c, COLO_STEP_PREPARE, 0);
	if (ret == 0)
		ret = primary_send_ram(c);
	t_ram = stream_now_ns();
	if (ret == 0)
		primary_test_stall(c, COLO_TEST_PHASE_DEVICE);
	if (ret == 0)
		ret = primary_send_device_state(c);
	t_dev = stream_now_ns();
	if (ret == 0 && (ret = colo_expect_msg(c, COLO_MSG_VMSTATE_RECEIVED, NULL)) == 0) {
		t_recv = stream_now_ns();
		/* Output commit: the secondary holds everything that produced it. */
		ret = colo_run_participants(c, COLO_STEP_COMMITTED, 0);
		primary_test_stall(c, COLO_TEST_PHASE_RECEIVED);
		if (ret == 0)
			ret = colo_expect_msg(c, COLO_MSG_VMSTATE_LOADED, NULL);
		pthread_mutex_lock(&c->lock);
		c->stats.phase_request_us = (t_stop - t0) / 1000;
		c->stats.phase_stop_us = (t_stopped - t_stop) / 1000;
		c->stats.phase_ram_us = (t_ram - t_stopped) / 1000;
		c->stats.phase_device_us = (t_dev - t_ram) / 1000;
		c->stats.phase_received_us = (t_recv - t_dev) / 1000;
		c->stats.phase_apply_us = us_since(t_recv);
		c->stats.by_reason[why]++;
		pthread_mutex_unlock(&c->lock);
	}
	vm_resume_quiet(c->vm); /* runs again unless the monitor stopped it */
	if (ret == 0)
		colo_record_pause(c, us_since(t_stop));
	return ret;
}

/* Which reason is due now, or -1: requests first, then the period. */
static int primary_due(struct colo *c)
{
	unsigned pending;
	uint64_t v;

	/* The wake-up first, then the reasons: a request between the two keeps its
	 * bit and its wake-up (the other order could consume a newer wake-up). */
	if (read(c->trigger_fd, &v, sizeof(v)) < 0) {
		/* nothing queued */
	}
	pending = __atomic_exchange_n(&c->pending_reasons, 0, __ATOMIC_ACQ_REL);
	for (int r = COLO_REASON_COMPARATOR; r >= 0; r--)
		if (pending & (1u << r))
			return r;
	return stream_now_ns() >= c->next_periodic_ns ? COLO_REASON_PERIODIC : -1;
}

/* Sleeps until a trigger, a heartbeat from the peer, or the next deadline. */
static void primary_wait(struct colo *c)
{
	struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = c->trigger_fd, .events = POLLIN } };
	uint64_t now = stream_now_ns(), wake = c->last_sent_ns + (uint64_t)COLO_HEARTBEAT_MS * 1000000;
	int64_t ms;

	if (c->next_periodic_ns < wake)
		wake = c->next_periodic_ns;
	ms = wake > now ? (int64_t)((wake - now) / 1000000) + 1 : 0;
	if (stream_in_buffered(&c->in))
		ms = 0;
	poll(p, 2, (int)ms);
}

static void primary_schedule_next(struct colo *c)
{
	uint32_t delay;

	pthread_mutex_lock(&c->lock);
	delay = c->delay_ms;
	pthread_mutex_unlock(&c->lock);
	c->next_periodic_ns = stream_now_ns() + (uint64_t)delay * 1000000;
}

/* The guest ended by itself: its VM is down with a guest's reason. The
 * secondary ends its VM the same way, and COLO ends. 1 if announced. */
static int primary_announce_guest_end(struct colo *c)
{
	uint64_t value;
	int ret;

	if (!colo_guest_has_ended(c, &value))
		return 0;
	c->guest_ended = true;
	ret = colo_send_msg_value(c, COLO_MSG_GUEST_ENDED, value);
	return ret < 0 ? ret : 1;
}

static int primary_loop(struct colo *c)
{
	int ret = colo_run_participants(c, COLO_STEP_START, 0);

	if (ret < 0)
		return ret;
	if ((ret = colo_expect_msg(c, COLO_MSG_CHECKPOINT_READY, NULL)) < 0)
		return ret;
	if (c->resume_vm) {
		vm_resume(c->vm); /* stopped by the migration's stop-and-copy */
		c->resume_vm = false;
	}
	primary_schedule_next(c);
	while (__atomic_load_n(&c->failover, __ATOMIC_ACQUIRE) == COLO_FAILOVER_NONE) {
		int why;

		primary_wait(c);
		if ((ret = primary_announce_guest_end(c)) != 0)
			return ret < 0 ? ret : 0;
		if ((ret = colo_keepalive(c)) < 0)
			return ret;
		why = primary_due(c);
		if (why < 0)
			continue;
		primary_schedule_next(c);
		if ((ret = primary_checkpoint(c, why)) < 0)
			return ret;
	}
	return 0;
}

void *colo_primary_thread(void *arg)
{
	struct colo *c = arg;

	c->bitmap = calloc(dirty_bitmap_words(c->vm), sizeof(uint64_t));
	if (!c->bitmap)
		colo_fail(c, "out of memory");
	else
		primary_loop(c);
	/* Whatever ended COLO, the PVM runs on alone (never left stopped). */
	colo_leave_loop(c);
	if (c->resume_vm)
		vm_resume(c->vm);
	colo_finish(c, true);
	free(c->bitmap);
	c->bitmap = NULL;
	return NULL;
}
