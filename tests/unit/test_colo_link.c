/*
 * The COLO network link's writer (src/colo/net/link.c): it never blocks its
 * caller, keeps its queue within the limit (dropping and counting what does not
 * fit), delivers what it accepted intact and in order, and reports a peer that
 * stops reading or goes away exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "colo/net/link.h"

#define FRAME 1500
#define LIMIT (64u << 10)

struct failure {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, err;
};

static void on_failed(void *opaque, int err)
{
	struct failure *f = opaque;

	pthread_mutex_lock(&f->lock);
	f->calls++;
	f->err = err;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* Waits up to 20 s for the failure report; its error, or 0. */
static int wait_failure(struct failure *f)
{
	struct timespec until;
	int err;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&f->lock);
	while (!f->calls && pthread_cond_timedwait(&f->cond, &f->lock, &until) == 0)
		;
	err = f->err;
	pthread_mutex_unlock(&f->lock);
	return err;
}

static void failure_init(struct failure *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
}

static void make_pair(int sv[2])
{
	int small = 16 << 10;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
}

/* A writer on one end of a socket pair whose other end reads nothing yet. */
struct rig {
	struct colo_link_writer w;
	struct failure f;
	int sv[2];
};

static void rig_start(struct rig *r, unsigned stall_ms)
{
	failure_init(&r->f);
	make_pair(r->sv);
	assert_int_equal(colo_link_writer_start(&r->w, r->sv[0], LIMIT, stall_ms, on_failed, &r->f), 0);
}

static void rig_stop(struct rig *r)
{
	colo_link_writer_stop(&r->w);
	close(r->sv[0]);
	if (r->sv[1] >= 0)
		close(r->sv[1]);
}

static void fill_frame(uint8_t *f, uint64_t seq)
{
	for (size_t i = 0; i < FRAME; i++)
		f[i] = (uint8_t)(seq * 7 + i);
}

struct received {
	uint64_t count, last_seq;
	int bad;
};

static void on_frame(void *opaque, const struct colo_link_hdr *h, uint8_t *frame)
{
	struct received *r = opaque;
	uint8_t want[FRAME];

	fill_frame(want, h->seq);
	if (h->len != FRAME || h->seq <= r->last_seq || h->epoch != 3 || memcmp(frame, want, FRAME))
		r->bad++;
	r->last_seq = h->seq;
	r->count++;
}

/* A peer that reads nothing: every send returns at once; the queue stays within its limit. */
static void test_never_blocks_and_bounds_the_queue(void **state)
{
	struct colo_link_writer_stats st;
	struct colo_link_reader rd;
	struct received got = { 0 };
	uint8_t frame[FRAME], buf[8192];
	uint64_t accepted = 0, dropped = 0, last_accepted = 0;
	struct rig r;

	(void)state;
	rig_start(&r, 60000);
	for (uint64_t seq = 1; seq <= 1000; seq++) {
		int ret;

		fill_frame(frame, seq);
		ret = colo_link_send(&r.w, 3, seq, frame, FRAME);
		assert_true(ret == 0 || ret == -ENOBUFS);
		if (ret == 0) {
			accepted++;
			last_accepted = seq;
		} else {
			dropped++;
		}
	}
	colo_link_writer_get_stats(&r.w, &st);
	assert_true(dropped > 0); /* 1.5 MB into 16 KiB of socket and 64 KiB of queue */
	assert_int_equal(st.dropped, dropped);
	assert_int_equal(st.frames, accepted);
	assert_true(st.queued_max <= LIMIT + FRAME + COLO_LINK_HDR_LEN); /* + one frame begun on the wire */
	assert_int_equal(st.error, 0);
	/* The peer reads again: exactly the accepted frames arrive, whole and in order. */
	assert_int_equal(colo_link_reader_init(&rd), 0);
	while (got.count < accepted) {
		ssize_t n = recv(r.sv[1], buf, sizeof(buf), 0);

		assert_true(n > 0);
		assert_int_equal(colo_link_feed(&rd, buf, (size_t)n, on_frame, &got), 0);
	}
	assert_int_equal(got.bad, 0);
	assert_int_equal(got.last_seq, last_accepted);
	rig_stop(&r);
	assert_int_equal(r.f.calls, 0);
	colo_link_reader_free(&rd);
}

/* A peer that stops reading is reported once, as silent, after stall_ms; sends then fail. */
static void test_stalled_peer_is_reported(void **state)
{
	uint8_t frame[FRAME] = { 0 };
	struct rig r;

	(void)state;
	rig_start(&r, 200);
	for (uint64_t seq = 1; seq <= 200; seq++)
		colo_link_send(&r.w, 0, seq, frame, FRAME);
	assert_int_equal(wait_failure(&r.f), -ETIMEDOUT);
	assert_int_equal(colo_link_send(&r.w, 0, 999, frame, FRAME), -ETIMEDOUT);
	rig_stop(&r);
	assert_int_equal(r.f.calls, 1);
}

/* A peer that goes away is reported once with the socket's error. */
static void test_closed_peer_is_reported(void **state)
{
	uint8_t frame[FRAME] = { 0 };
	struct rig r;
	int ret = 0;

	(void)state;
	rig_start(&r, 60000);
	close(r.sv[1]);
	r.sv[1] = -1;
	for (uint64_t seq = 1; seq <= 100 && (ret == 0 || ret == -ENOBUFS); seq++)
		ret = colo_link_send(&r.w, 0, seq, frame, FRAME);
	assert_int_equal(wait_failure(&r.f), -EPIPE);
	assert_int_equal(colo_link_send(&r.w, 0, 999, frame, FRAME), -EPIPE);
	rig_stop(&r);
	assert_int_equal(r.f.calls, 1);
}

/* Stopping with a full queue and a peer that reads nothing returns, without a report. */
static void test_stop_discards_the_queue(void **state)
{
	uint8_t frame[FRAME] = { 0 };
	struct rig r;

	(void)state;
	rig_start(&r, 60000);
	for (uint64_t seq = 1; seq <= 200; seq++)
		colo_link_send(&r.w, 0, seq, frame, FRAME);
	rig_stop(&r);
	assert_int_equal(r.f.calls, 0);
}

static void test_refuses_impossible_lengths(void **state)
{
	static uint8_t big[COLO_LINK_MAX_FRAME + 1];
	struct rig r;

	(void)state;
	rig_start(&r, 60000);
	assert_int_equal(colo_link_send(&r.w, 0, 1, big, 11), -EINVAL);
	assert_int_equal(colo_link_send(&r.w, 0, 1, big, sizeof(big)), -EINVAL);
	rig_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_never_blocks_and_bounds_the_queue),
		cmocka_unit_test(test_stalled_peer_is_reported),
		cmocka_unit_test(test_closed_peer_is_reported),
		cmocka_unit_test(test_stop_discards_the_queue),
		cmocka_unit_test(test_refuses_impossible_lengths),
	};

	return cmocka_run_group_tests_name("colo_link", tests, NULL, NULL);
}
