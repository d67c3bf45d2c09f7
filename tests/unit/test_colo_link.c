/*
 * The COLO network link's writer (src/net/colo_link.c): it never blocks its
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

#include "net/colo_link.h"

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
	struct colo_link_writer w;
	struct colo_link_writer_stats st;
	struct colo_link_reader rd;
	struct received got = { 0 };
	struct failure f;
	uint8_t frame[FRAME], buf[8192];
	uint64_t accepted = 0, dropped = 0, last_accepted = 0;
	int sv[2];

	(void)state;
	failure_init(&f);
	make_pair(sv);
	assert_int_equal(colo_link_writer_start(&w, sv[0], LIMIT, 60000, on_failed, &f), 0);
	for (uint64_t seq = 1; seq <= 1000; seq++) {
		int ret;

		fill_frame(frame, seq);
		ret = colo_link_send(&w, 3, seq, frame, FRAME);
		assert_true(ret == 0 || ret == -ENOBUFS);
		if (ret == 0) {
			accepted++;
			last_accepted = seq;
		} else {
			dropped++;
		}
	}
	colo_link_writer_get_stats(&w, &st);
	assert_true(dropped > 0); /* 1.5 MB into 16 KiB of socket and 64 KiB of queue */
	assert_int_equal(st.dropped, dropped);
	assert_int_equal(st.frames, accepted);
	assert_true(st.queued_max <= LIMIT + FRAME + COLO_LINK_HDR_LEN); /* + one frame begun on the wire */
	assert_int_equal(st.error, 0);
	/* The peer reads again: exactly the accepted frames arrive, whole and in order. */
	assert_int_equal(colo_link_reader_init(&rd), 0);
	while (got.count < accepted) {
		ssize_t n = recv(sv[1], buf, sizeof(buf), 0);

		assert_true(n > 0);
		assert_int_equal(colo_link_feed(&rd, buf, (size_t)n, on_frame, &got), 0);
	}
	assert_int_equal(got.bad, 0);
	assert_int_equal(got.last_seq, last_accepted);
	colo_link_writer_stop(&w);
	assert_int_equal(f.calls, 0);
	colo_link_reader_free(&rd);
	close(sv[0]);
	close(sv[1]);
}

/* A peer that stops reading is reported once, as silent, after stall_ms; sends then fail. */
static void test_stalled_peer_is_reported(void **state)
{
	struct colo_link_writer w;
	struct failure f;
	uint8_t frame[FRAME] = { 0 };
	int sv[2];

	(void)state;
	failure_init(&f);
	make_pair(sv);
	assert_int_equal(colo_link_writer_start(&w, sv[0], LIMIT, 200, on_failed, &f), 0);
	for (uint64_t seq = 1; seq <= 200; seq++)
		colo_link_send(&w, 0, seq, frame, FRAME);
	assert_int_equal(wait_failure(&f), -ETIMEDOUT);
	assert_int_equal(colo_link_send(&w, 0, 999, frame, FRAME), -ETIMEDOUT);
	colo_link_writer_stop(&w);
	assert_int_equal(f.calls, 1);
	close(sv[0]);
	close(sv[1]);
}

/* A peer that goes away is reported once with the socket's error. */
static void test_closed_peer_is_reported(void **state)
{
	struct colo_link_writer w;
	struct failure f;
	uint8_t frame[FRAME] = { 0 };
	int sv[2], ret = 0;

	(void)state;
	failure_init(&f);
	make_pair(sv);
	assert_int_equal(colo_link_writer_start(&w, sv[0], LIMIT, 60000, on_failed, &f), 0);
	close(sv[1]);
	for (uint64_t seq = 1; seq <= 100 && (ret == 0 || ret == -ENOBUFS); seq++)
		ret = colo_link_send(&w, 0, seq, frame, FRAME);
	assert_int_equal(wait_failure(&f), -EPIPE);
	assert_int_equal(colo_link_send(&w, 0, 999, frame, FRAME), -EPIPE);
	colo_link_writer_stop(&w);
	assert_int_equal(f.calls, 1);
	close(sv[0]);
}

/* Stopping with a full queue and a peer that reads nothing returns, without a report. */
static void test_stop_discards_the_queue(void **state)
{
	struct colo_link_writer w;
	struct failure f;
	uint8_t frame[FRAME] = { 0 };
	int sv[2];

	(void)state;
	failure_init(&f);
	make_pair(sv);
	assert_int_equal(colo_link_writer_start(&w, sv[0], LIMIT, 60000, on_failed, &f), 0);
	for (uint64_t seq = 1; seq <= 200; seq++)
		colo_link_send(&w, 0, seq, frame, FRAME);
	colo_link_writer_stop(&w);
	assert_int_equal(f.calls, 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_refuses_impossible_lengths(void **state)
{
	struct colo_link_writer w;
	struct failure f;
	static uint8_t big[COLO_LINK_MAX_FRAME + 1];
	int sv[2];

	(void)state;
	failure_init(&f);
	make_pair(sv);
	assert_int_equal(colo_link_writer_start(&w, sv[0], LIMIT, 60000, on_failed, &f), 0);
	assert_int_equal(colo_link_send(&w, 0, 1, big, 11), -EINVAL);
	assert_int_equal(colo_link_send(&w, 0, 1, big, sizeof(big)), -EINVAL);
	colo_link_writer_stop(&w);
	close(sv[0]);
	close(sv[1]);
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
