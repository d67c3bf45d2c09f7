/* COLO bookkeeping shared by both roles: failover state, participants, stats, messages. */
#include "colo/colo_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/evloop.h"
#include "vm/vm.h"

void colo_init(struct colo *c, struct vm *vm)
{
	memset(c, 0, sizeof(*c));
	c->vm = vm;
	c->fd = -1;
	c->listen_fd = -1;
	c->cache_fd = -1;
	c->trigger_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->delay_ms = COLO_DEFAULT_DELAY_MS;
	c->peer_timeout_ms = COLO_DEFAULT_PEER_TIMEOUT_MS;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->decision, NULL);
	sbuf_init(&c->device_blob);
}

static void colo_stop_thread(struct colo *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->running && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	c->abandon = true; /* a secondary waiting for a decision leaves without one */
	pthread_cond_broadcast(&c->decision);
	pthread_mutex_unlock(&c->lock);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	c->thread_started = false;
}

void colo_destroy(struct colo *c)
{
	colo_stop_thread(c);
	if (c->trigger_fd >= 0)
		close(c->trigger_fd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	sbuf_free(&c->device_blob);
	pthread_cond_destroy(&c->decision);
	pthread_mutex_destroy(&c->lock);
}

struct colo *colo_create(struct vm *vm)
{
	struct colo *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	colo_init(c, vm);
	if (c->trigger_fd < 0) {
		colo_destroy(c);
		free(c);
		return NULL;
	}
	return c;
}

void colo_free(struct colo *c)
{
	if (!c)
		return;
	colo_destroy(c);
	free(c);
}

void colo_set_peer_timeout(struct colo *c, uint32_t ms) { c->peer_timeout_ms = ms; }

void colo_set_peer_uri(struct colo *c, const char *uri)
{
	snprintf(c->peer_uri, sizeof(c->peer_uri), "%s", uri);
}

void colo_set_listen_fd(struct colo *c, int fd) { c->listen_fd = fd; }

void colo_set_check_ram(struct colo *c, bool on) { __atomic_store_n(&c->check_ram, on, __ATOMIC_RELEASE); }
void colo_set_check_disk(struct colo *c, bool on) { __atomic_store_n(&c->check_disk, on, __ATOMIC_RELEASE); }

uint32_t colo_get_delay(struct colo *c)
{
	uint32_t ms;

	pthread_mutex_lock(&c->lock);
	ms = c->delay_ms;
	pthread_mutex_unlock(&c->lock);
	return ms;
}

void colo_set_exit_handler(struct colo *c, colo_exit_fn fn, void *opaque)
{
	c->on_exit = fn;
	c->exit_opaque = opaque;
}

struct colo_test_hooks *colo_test_hooks(struct colo *c) { return &c->test; }

int colo_add_participant(struct colo *c, const struct colo_participant *p)
{
	for (int i = 0; i < c->n_participants; i++)
		if (c->participants[i].mark && p->mark)
			return -EBUSY;
	if (c->n_participants == COLO_MAX_PARTICIPANTS)
		return -ENOSPC;
	c->participants[c->n_participants++] = *p;
	return 0;
}

uint64_t colo_participant_mark(struct colo *c)
{
	for (int i = 0; i < c->n_participants; i++)
		if (c->participants[i].mark)
			return c->participants[i].mark(c->participants[i].opaque);
	return 0;
}

int colo_write_participant_digests(struct colo *c, struct stream_out *out)
{
	for (int i = 0; i < c->n_participants; i++) {
		const struct colo_participant *p = &c->participants[i];
		uint64_t digest;
		int ret;

		if (!p->digest)
			continue;
		if ((ret = p->digest(p->opaque, &digest)) < 0) {
			colo_fail(c, "%s cannot digest its state: %s", p->name, strerror(-ret));
			return ret;
		}
		if ((ret = vmstate_write_digest(out, p->name, digest)) < 0)
			return ret;
	}
	return 0;
}

static const struct colo_participant *participant_named(struct colo *c, const char *name)
{
	for (int i = 0; i < c->n_participants; i++)
		if (!strcmp(c->participants[i].name, name))
			return &c->participants[i];
	return NULL;
}

int colo_verify_participant_digests(struct colo *c, const struct vmstate_digest *d, int n)
{
	for (int i = 0; i < n; i++) {
		const struct colo_participant *p = participant_named(c, d[i].name);
		int ret;

		if (!p || !p->verify) {
			colo_fail(c, "the primary checks %s, which this secondary does not have", d[i].name);
			return -EPROTO;
		}
		if ((ret = p->verify(p->opaque, d[i].value)) < 0) {
			colo_fail(c, "%s %s", p->name, ret == -EILSEQ ? "differs from the primary's after the checkpoint"
								 : "cannot be checked");
			return ret;
		}
		pthread_mutex_lock(&c->lock);
		c->stats.disk_checks++;
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

static int participant_step(struct colo *c, const struct colo_participant *p, enum colo_step step,
			    uint64_t mark)
{
	switch (step) {
	case COLO_STEP_START: {
		struct colo_peer peer = { .mode = c->mode, .uri = c->peer_uri,
					  .listen_fd = c->listen_fd, .timeout_ms = c->peer_timeout_ms };

		return p->start ? p->start(p->opaque, &peer) : 0;
	}
	case COLO_STEP_PREPARE:
		return p->prepare ? p->prepare(p->opaque) : 0;
	case COLO_STEP_COMMITTED:
		return p->committed ? p->committed(p->opaque) : 0;
	case COLO_STEP_APPLIED:
		return p->applied ? p->applied(p->opaque, mark) : 0;
	}
	return -EINVAL;
}

const char *const colo_step_names[] = {
	[COLO_STEP_START] = "start",
	[COLO_STEP_PREPARE] = "prepare",
	[COLO_STEP_COMMITTED] = "committed",
	[COLO_STEP_APPLIED] = "applied",
};

int colo_run_participants(struct colo *c, enum colo_step step, uint64_t mark)
{
	int armed = (int)step + 1;
	static const char *const what[] = {
		[COLO_STEP_START] = "cannot start",
		[COLO_STEP_PREPARE] = "cannot take part in the checkpoint",
		[COLO_STEP_COMMITTED] = "failed at the output commit",
		[COLO_STEP_APPLIED] = "failed to apply the checkpoint",
	};

	/* Test hook (x-colo-test fail-step): a participant that fails here once. */
	if (__atomic_compare_exchange_n(&c->test.fail_step, &armed, 0, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		colo_fail(c, "test hook %s: %s", what[step], strerror(EIO));
		return -EIO;
	}
	for (int i = 0; i < c->n_participants; i++) {
		int ret = participant_step(c, &c->participants[i], step, mark);

		if (ret < 0) {
			colo_fail(c, "%s %s: %s", c->participants[i].name, what[step], strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void colo_participants_failover(struct colo *c)
{
	for (int i = 0; i < c->n_participants; i++)
		if (c->participants[i].failover)
			c->participants[i].failover(c->participants[i].opaque);
}

bool colo_failover_cas(struct colo *c, int from, int to)
{
	return __atomic_compare_exchange_n(&c->failover, &from, to, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}

static const char *const guest_end_reasons[] = { "guest-shutdown", "guest-reset", "guest-panic" };
#define GUEST_END_REASONS (sizeof(guest_end_reasons) / sizeof(guest_end_reasons[0]))

int colo_guest_end_encode(int exit_status, const char *reason, uint64_t *value)
{
	for (unsigned i = 0; reason && i < GUEST_END_REASONS; i++) {
		if (strcmp(reason, guest_end_reasons[i]) == 0) {
			*value = (uint64_t)(exit_status & 0xff) | (uint64_t)i << 8;
			return 0;
		}
	}
	return -EINVAL;
}

const char *colo_guest_end_decode(uint64_t value, int *exit_status)
{
	*exit_status = (int)(value & 0xff);
	return value >> 8 < GUEST_END_REASONS ? guest_end_reasons[value >> 8] : NULL;
}

bool colo_guest_has_ended(struct colo *c, uint64_t *value)
{
	const char *reason;
	int status;

	return vm_shutdown_info(c->vm, &status, &reason) && colo_guest_end_encode(status, reason, value) == 0;
}

void colo_wait_guest_end(struct colo *c)
{
	uint64_t one = 1, value;

	if (!colo_guest_has_ended(c, &value))
		return; /* not the guest's own end: nothing to announce */
	for (int ms = 0; ms < 1000; ms += 10) { /* the COLO thread sends it and leaves */
		bool primary;

		pthread_mutex_lock(&c->lock);
		primary = c->running && c->mode == COLO_MODE_PRIMARY;
		pthread_mutex_unlock(&c->lock);
		if (!primary)
			return;
		if (write(c->trigger_fd, &one, sizeof(one)) < 0) {
			/* already signalled */
		}
		usleep(10000);
	}
}

void colo_request_checkpoint(struct colo *c, enum colo_reason why)
{
	uint64_t one = 1;

	__atomic_fetch_or(&c->pending_reasons, 1u << why, __ATOMIC_ACQ_REL);
	if (write(c->trigger_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: the loop wakes anyway */
	}
}

void colo_set_delay(struct colo *c, uint32_t delay_ms)
{
	bool running;

	pthread_mutex_lock(&c->lock);
	c->delay_ms = delay_ms;
	running = c->running && c->mode == COLO_MODE_PRIMARY;
	pthread_mutex_unlock(&c->lock);
	/* Like QEMU: a new period starts with a checkpoint now. */
	if (running)
		colo_request_checkpoint(c, COLO_REASON_PERIODIC);
}

void colo_link_failed(struct colo *c, const char *why)
{
	pthread_mutex_lock(&c->lock);
	if (c->running && !c->leaving && c->fd >= 0) {
		if (!c->error[0])
			snprintf(c->error, sizeof(c->error), "network link to the peer failed: %s", why);
		shutdown(c->fd, SHUT_RDWR); /* wakes the COLO thread wherever it waits */
	}
	pthread_mutex_unlock(&c->lock);
}

int colo_lost_heartbeat(struct colo *c)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (c->unusable[0]) {
		ret = -ESTALE;
	} else if (c->decision_open) { /* a secondary that lost its primary: the decision */
		if (c->decided) {
			ret = -EALREADY;
		} else {
			c->decided = true;
			pthread_cond_signal(&c->decision);
		}
	} else if (!c->running || c->leaving) {
		ret = -ENOTCONN;
	} else if (c->applying) {
		/* The secondary is applying a checkpoint: failing over now would start
		 * from half-applied state. Defer until the apply completes. */
		if (!colo_failover_cas(c, COLO_FAILOVER_NONE, COLO_FAILOVER_RELAUNCH))
			ret = -EALREADY;
	} else if (!colo_failover_cas(c, COLO_FAILOVER_NONE, COLO_FAILOVER_REQUIRE)) {
		ret = -EALREADY;
	} else if (c->fd >= 0) {
		shutdown(c->fd, SHUT_RDWR); /* wakes the COLO thread wherever it waits */
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void colo_query(struct colo *c, enum colo_mode *mode, enum colo_mode *last_mode,
		enum colo_exit_reason *reason, int *failover, bool *waiting)
{
	pthread_mutex_lock(&c->lock);
	*mode = c->running ? c->mode : COLO_MODE_NONE;
	*last_mode = c->last_mode;
	*reason = c->running && __atomic_load_n(&c->failover, __ATOMIC_ACQUIRE) != COLO_FAILOVER_NONE
			  ? COLO_EXIT_PROCESSING
			  : c->reason;
	*failover = __atomic_load_n(&c->failover, __ATOMIC_ACQUIRE);
	*waiting = c->waiting;
	pthread_mutex_unlock(&c->lock);
}

void colo_get_stats(struct colo *c, struct colo_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}

void colo_get_error(struct colo *c, char *buf, size_t len)
{
	pthread_mutex_lock(&c->lock);
	snprintf(buf, len, "%s", c->error);
	pthread_mutex_unlock(&c->lock);
}

void colo_record_pause(struct colo *c, uint64_t pause_us)
{
	struct colo_stats *s = &c->stats;

	pthread_mutex_lock(&c->lock);
	s->pauses[s->checkpoints % COLO_PAUSE_HISTORY] = pause_us;
	s->checkpoints++;
	s->pause_last_us = pause_us;
	s->pause_total_us += pause_us;
	if (pause_us > s->pause_max_us)
		s->pause_max_us = pause_us;
	pthread_mutex_unlock(&c->lock);
}

const char *colo_mode_name(enum colo_mode m)
{
	return m == COLO_MODE_PRIMARY ? "primary" : m == COLO_MODE_SECONDARY ? "secondary" : "none";
}

const char *colo_exit_reason_name(enum colo_exit_reason r)
{
	static const char *const names[] = { "none", "request", "error", "processing" };

	return r <= COLO_EXIT_PROCESSING ? names[r] : "unknown";
}

const char *colo_failover_name(int f)
{
	static const char *const names[] = { "none", "require", "active", "completed", "relaunch" };

	return f >= 0 && f <= COLO_FAILOVER_RELAUNCH ? names[f] : "unknown";
}

const char *colo_reason_name(enum colo_reason r)
{
	static const char *const names[] = { "periodic", "request", "comparator" };

	return r < COLO_REASON_COUNT ? names[r] : "unknown";
}

void colo_fail(struct colo *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->lock);
	if (!c->error[0]) {
		va_start(ap, fmt);
		vsnprintf(c->error, sizeof(c->error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&c->lock);
}

/* Blocked reads and writes give up after the peer timeout (a silent peer). */
static void colo_set_socket_timeouts(struct colo *c, int fd)
{
	struct timeval tv = { .tv_sec = c->peer_timeout_ms / 1000,
			      .tv_usec = (c->peer_timeout_ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A new pair (also after an earlier one in this process ended): a fresh session. */
static void colo_reset_session(struct colo *c, int fd, enum colo_mode mode)
{
	pthread_mutex_lock(&c->lock);
	c->fd = fd;
	c->mode = mode;
	c->running = true;
	c->reason = COLO_EXIT_NONE;
	c->error[0] = '\0';
	c->unusable[0] = '\0';
	c->failover = COLO_FAILOVER_NONE;
	c->leaving = false;
	c->applying = false;
	c->decision_open = c->waiting = c->decided = c->exit_announced = false;
	c->pending_reasons = 0;
	memset(&c->stats, 0, sizeof(c->stats));
	c->last_heard_ns = c->last_sent_ns = stream_now_ns();
	pthread_mutex_unlock(&c->lock);
}

static int colo_start(struct colo *c, int fd, enum colo_mode mode, void *(*fn)(void *))
{
	int ret;

	if (c->thread_started) { /* the previous pair's thread has ended (colo_finish) */
		pthread_join(c->thread, NULL);
		c->thread_started = false;
	}
	if ((ret = stream_out_init(&c->out, fd)) < 0)
		return ret;
	colo_set_socket_timeouts(c, fd);
	colo_reset_session(c, fd, mode);
	ret = pthread_create(&c->thread, NULL, fn, c);
	if (ret) {
		pthread_mutex_lock(&c->lock);
		c->running = false;
		c->fd = -1;
		pthread_mutex_unlock(&c->lock);
		stream_out_free(&c->out);
		return -ret;
	}
	c->thread_started = true;
	return 0;
}

int colo_start_primary(struct colo *c, int fd, bool resume_vm, bool check_ram)
{
	int ret = stream_in_init(&c->in, fd);

	if (ret < 0)
		return ret;
	c->resume_vm = resume_vm;
	c->check_ram = check_ram;
	return colo_start(c, fd, COLO_MODE_PRIMARY, colo_primary_thread);
}

int colo_start_secondary(struct colo *c, int fd, struct stream_in *in, bool check_ram)
{
	c->in = *in; /* keeps what the migration already buffered */
	memset(in, 0, sizeof(*in));
	c->check_ram = check_ram;
	return colo_start(c, fd, COLO_MODE_SECONDARY, colo_secondary_thread);
}

/* ---- messages ---- */

int colo_send_msg(struct colo *c, enum colo_msg msg)
{
	uint32_t v = msg;

	stream_out_write(&c->out, &v, sizeof(v));
	c->last_sent_ns = stream_now_ns();
	return stream_out_flush(&c->out);
}

int colo_send_msg_value(struct colo *c, enum colo_msg msg, uint64_t value)
{
	uint32_t v = msg;

	stream_out_write(&c->out, &v, sizeof(v));
	stream_out_write(&c->out, &value, sizeof(value));
	c->last_sent_ns = stream_now_ns();
	return stream_out_flush(&c->out);
}

const char *const colo_test_phase_names[COLO_TEST_PHASE_COUNT] = {
	[COLO_TEST_PHASE_NONE] = "none",	   [COLO_TEST_PHASE_PRECOPY] = "precopy",
	[COLO_TEST_PHASE_REQUEST] = "request",	   [COLO_TEST_PHASE_RAM] = "ram",
	[COLO_TEST_PHASE_DEVICE] = "device",	   [COLO_TEST_PHASE_RECEIVED] = "received",
};

static const char *const colo_msg_names[COLO_MSG_COUNT] = {
	[COLO_MSG_CHECKPOINT_READY] = "checkpoint-ready",
	[COLO_MSG_CHECKPOINT_REQUEST] = "checkpoint-request",
	[COLO_MSG_CHECKPOINT_REPLY] = "checkpoint-reply",
	[COLO_MSG_VMSTATE_SEND] = "vmstate-send",
	[COLO_MSG_VMSTATE_SIZE] = "vmstate-size",
	[COLO_MSG_VMSTATE_RECEIVED] = "vmstate-received",
	[COLO_MSG_VMSTATE_LOADED] = "vmstate-loaded",
	[COLO_MSG_HEARTBEAT] = "heartbeat",
	[COLO_MSG_RAM_BACKGROUND] = "ram-background",
	[COLO_MSG_GUEST_ENDED] = "guest-ended",
};

/* expect: the message waited for, or COLO_MSG_COUNT for any. */
static int colo_read_msg(struct colo *c, uint32_t *msg, enum colo_msg expect)
{
	int ret = stream_in_read(&c->in, msg, sizeof(*msg));

	if (ret < 0) {
		colo_fail(c, "connection to the peer lost%s%s: %s", expect < COLO_MSG_COUNT ? " waiting for " : "",
			  expect < COLO_MSG_COUNT ? colo_msg_names[expect] : "",
			  ret == -EPIPE ? "closed" : ret == -EAGAIN ? "peer silent" : strerror(-ret));
		return ret;
	}
	if (*msg >= COLO_MSG_COUNT) {
		colo_fail(c, "unknown COLO message %u from the peer", *msg);
		return -EPROTO;
	}
	c->last_heard_ns = stream_now_ns();
	return 0;
}

int colo_expect_msg(struct colo *c, enum colo_msg expect, uint64_t *value)
{
	uint32_t msg;
	int ret;

	do {
		if ((ret = colo_read_msg(c, &msg, expect)) < 0)
			return ret;
	} while (msg == COLO_MSG_HEARTBEAT);
	if (msg != expect) {
		colo_fail(c, "unexpected COLO message %s (waiting for %s)", colo_msg_names[msg],
			  colo_msg_names[expect]);
		return -EPROTO;
	}
	if (value && stream_in_read(&c->in, value, sizeof(*value)) < 0) {
		colo_fail(c, "connection to the peer lost in message %u", msg);
		return c->in.error;
	}
	return 0;
}

int colo_peer_silent(struct colo *c)
{
	return stream_now_ns() - c->last_heard_ns > (uint64_t)c->peer_timeout_ms * 1000000;
}

/* Reads what is there without blocking: only heartbeats may arrive unasked. */
static int colo_drain_heartbeats(struct colo *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	while (stream_in_buffered(&c->in) >= 4 || poll(&p, 1, 0) > 0) {
		uint32_t msg;
		int ret = colo_read_msg(c, &msg, COLO_MSG_COUNT);

		if (ret < 0)
			return ret;
		if (msg != COLO_MSG_HEARTBEAT) {
			colo_fail(c, "unexpected COLO message %s while idle", colo_msg_names[msg]);
			return -EPROTO;
		}
	}
	return 0;
}

int colo_keepalive(struct colo *c)
{
	int ret = colo_drain_heartbeats(c);

	return ret < 0 ? ret : colo_heartbeat(c);
}

int colo_tell_peer_alive(struct colo *c)
{
	if (stream_now_ns() - c->last_sent_ns >= (uint64_t)COLO_HEARTBEAT_MS * 1000000)
		return colo_send_msg(c, COLO_MSG_HEARTBEAT);
	return 0;
}

int colo_sleep_alive(struct colo *c, uint32_t ms)
{
	int ret = 0;

	for (uint32_t slept = 0; slept < ms && ret == 0; slept += COLO_HEARTBEAT_MS / 2) {
		uint32_t step = ms - slept < COLO_HEARTBEAT_MS / 2 ? ms - slept : COLO_HEARTBEAT_MS / 2;

		usleep(step * 1000);
		ret = colo_tell_peer_alive(c);
	}
	return ret;
}

int colo_heartbeat(struct colo *c)
{
	if (colo_peer_silent(c)) {
		colo_fail(c, "the peer has been silent for more than %u ms", c->peer_timeout_ms);
		return -ETIMEDOUT;
	}
	if (stream_now_ns() - c->last_sent_ns >= (uint64_t)COLO_HEARTBEAT_MS * 1000000)
		return colo_send_msg(c, COLO_MSG_HEARTBEAT);
	return 0;
}

/* ---- the end of COLO ---- */

struct colo_exit_event {
	struct colo *c;
	enum colo_mode mode;
	enum colo_exit_reason reason;
	bool waiting;
};

static void deliver_exit(void *arg)
{
	struct colo_exit_event *e = arg;

	if (e->c->on_exit)
		e->c->on_exit(e->c->exit_opaque, e->mode, e->reason, e->waiting);
	free(e);
}

/* COLO_EXIT, delivered on the event loop (the monitor lives there). */
static void post_exit(struct colo *c, enum colo_mode mode, enum colo_exit_reason reason, bool waiting)
{
	struct colo_exit_event *e = malloc(sizeof(*e));

	if (!e)
		return;
	*e = (struct colo_exit_event){ c, mode, reason, waiting };
	if (!c->vm->loop || evloop_post(c->vm->loop, deliver_exit, e) < 0)
		free(e);
}

/*
 * The COLO thread has left its loop: a failover asked for becomes active; one
 * asked for from now on is refused, so the command's answer and the exit
 * reason agree (an error exit cannot turn into "request" or the reverse).
 */
void colo_leave_loop(struct colo *c)
{
	pthread_mutex_lock(&c->lock);
	c->leaving = true;
	if (!colo_failover_cas(c, COLO_FAILOVER_REQUIRE, COLO_FAILOVER_ACTIVE))
		colo_failover_cas(c, COLO_FAILOVER_RELAUNCH, COLO_FAILOVER_ACTIVE);
	/* A secondary leaving on an error takes a decision from now on, also one that
	 * arrives before it has stopped its VM and begun to wait. */
	c->decided = false;
	c->decision_open = c->mode == COLO_MODE_SECONDARY &&
			   __atomic_load_n(&c->failover, __ATOMIC_ACQUIRE) == COLO_FAILOVER_NONE;
	pthread_mutex_unlock(&c->lock);
}

/*
 * A secondary whose primary is gone (dead, silent or in error), its VM
 * stopped: COLO has ended with an error and it says it waits (COLO_EXIT,
 * query-colo-status), then blocks until x-colo-lost-heartbeat decides the
 * takeover (true) or the process ends (false). It never decides on its own: a
 * silent primary may still be serving. An arbiter's lease would decide here.
 */
bool colo_await_takeover(struct colo *c)
{
	bool decided;

	pthread_mutex_lock(&c->lock);
	if (c->fd >= 0) { /* a primary that comes back finds no secondary and runs alone */
		shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
		c->fd = -1;
	}
	c->waiting = true;
	c->exit_announced = true;
	c->last_mode = c->mode;
	c->reason = COLO_EXIT_ERROR;
	c->running = false;
	pthread_mutex_unlock(&c->lock);
	post_exit(c, c->mode, COLO_EXIT_ERROR, true);
	pthread_mutex_lock(&c->lock);
	while (!c->decided && !c->abandon)
		pthread_cond_wait(&c->decision, &c->lock);
	decided = c->decided;
	c->waiting = false;
	c->decision_open = false;
	if (decided)
		__atomic_store_n(&c->failover, COLO_FAILOVER_ACTIVE, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->lock);
	return decided;
}

/*
 * The COLO thread is leaving: failover is completed if it was asked for
 * (reason "request"), otherwise this is an error exit. If vm_runs_alone, the
 * caller has arranged that, and the failover hooks take the host's backends.
 */
void colo_finish(struct colo *c, bool vm_runs_alone)
{
	bool requested = colo_failover_cas(c, COLO_FAILOVER_ACTIVE, COLO_FAILOVER_COMPLETED);
	enum colo_exit_reason reason = requested ? COLO_EXIT_REQUEST : c->guest_ended ? COLO_EXIT_NONE
											: COLO_EXIT_ERROR;
	enum colo_mode mode;
	bool announced;

	pthread_mutex_lock(&c->lock);
	mode = c->mode;
	c->last_mode = mode;
	announced = c->exit_announced;
	if (!announced) /* else the reason stays the error that began the wait */
		c->reason = reason;
	c->exit_announced = false;
	c->decision_open = false;
	c->running = false;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	pthread_mutex_unlock(&c->lock);
	stream_in_free(&c->in);
	stream_out_free(&c->out);
	if (vm_runs_alone)
		colo_participants_failover(c);
	if (!announced)
		post_exit(c, mode, reason, false);
}
