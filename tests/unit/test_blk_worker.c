/*
 * The block I/O worker on its own: jobs run off the submitting thread, in
 * order; drain waits for all of them, cancel takes back those not started,
 * done_fd tells when finished jobs wait, stop ends the thread with jobs left.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/blk_worker.h"

#define NJOBS 8

struct test_job {
	struct blk_job job; /* first */
	int id;
	bool ran;
	bool on_worker;
};

static struct blk_worker w;
static struct test_job jobs[NJOBS];
static pthread_t test_thread;
static int order[NJOBS], nran;

/* A gate the jobs wait at, so a test can hold one in the worker. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_shut;
static int gate_inside;

static void job_run(struct blk_job *job)
{
	struct test_job *t = (struct test_job *)job;

	pthread_mutex_lock(&gate_lock);
	gate_inside++;
	pthread_cond_broadcast(&gate_cond);
	while (gate_shut)
		pthread_cond_wait(&gate_cond, &gate_lock);
	gate_inside--;
	order[nran++] = t->id;
	pthread_mutex_unlock(&gate_lock);
	t->ran = true;
	t->on_worker = !pthread_equal(pthread_self(), test_thread);
}

static void gate_set(bool shut)
{
	pthread_mutex_lock(&gate_lock);
	gate_shut = shut;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

static void gate_wait_inside(void)
{
	pthread_mutex_lock(&gate_lock);
	while (!gate_inside)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
}

static bool done_fd_readable(int timeout_ms)
{
	struct pollfd p = { .fd = w.done_fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1;
}

static int count(struct blk_job *j)
{
	int n = 0;

	for (; j; j = j->next)
		n++;
	return n;
}

static int setup(void **state)
{
	(void)state;
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < NJOBS; i++) {
		jobs[i].id = i;
		jobs[i].job.run = job_run;
	}
	nran = 0;
	gate_shut = false;
	gate_inside = 0;
	test_thread = pthread_self();
	return blk_worker_start(&w, "test-worker") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	gate_set(false);
	blk_worker_stop(&w);
	return 0;
}

static void test_jobs_run_in_order_on_the_worker(void **state)
{
	struct blk_job *done;

	(void)state;
	assert_false(done_fd_readable(0));
	for (int i = 0; i < NJOBS; i++)
		blk_worker_submit(&w, &jobs[i].job);
	blk_worker_drain(&w);
	assert_true(done_fd_readable(0));
	for (int i = 0; i < NJOBS; i++) {
		assert_true(jobs[i].ran);
		assert_true(jobs[i].on_worker);
		assert_int_equal(order[i], i);
	}
	done = blk_worker_take_done(&w);
	assert_int_equal(count(done), NJOBS);
	for (int i = 0; done; done = done->next, i++)
		assert_ptr_equal(done, &jobs[i].job);
	assert_false(done_fd_readable(0));
	assert_null(blk_worker_take_done(&w));
}

/* done_fd wakes a poller: how an event loop learns of finished jobs. */
static void test_done_fd_wakes(void **state)
{
	(void)state;
	gate_set(true);
	blk_worker_submit(&w, &jobs[0].job);
	gate_wait_inside();
	assert_false(done_fd_readable(50));
	gate_set(false);
	assert_true(done_fd_readable(5000));
	assert_int_equal(count(blk_worker_take_done(&w)), 1);
}

static void *open_gate_later(void *arg)
{
	(void)arg;
	usleep(100000);
	gate_set(false);
	return NULL;
}

/* Drain waits for the job under way and the queued ones behind it. */
static void test_drain_waits_for_everything(void **state)
{
	pthread_t t;

	(void)state;
	gate_set(true);
	for (int i = 0; i < 3; i++)
		blk_worker_submit(&w, &jobs[i].job);
	gate_wait_inside();
	assert_int_equal(pthread_create(&t, NULL, open_gate_later, NULL), 0);
	blk_worker_drain(&w);
	pthread_join(t, NULL);
	assert_int_equal(nran, 3);
	assert_int_equal(count(blk_worker_take_done(&w)), 3);
	blk_worker_drain(&w); /* nothing out: returns at once */
}

/* Cancel gives back the jobs not started, after the one under way finished. */
static void test_cancel_takes_back_queued(void **state)
{
	struct blk_job *back;
	pthread_t t;

	(void)state;
	gate_set(true);
	for (int i = 0; i < 4; i++)
		blk_worker_submit(&w, &jobs[i].job);
	gate_wait_inside();
	assert_int_equal(pthread_create(&t, NULL, open_gate_later, NULL), 0);
	back = blk_worker_cancel(&w);
	pthread_join(t, NULL);
	assert_int_equal(nran, 1);
	assert_int_equal(count(back), 3);
	assert_ptr_equal(back, &jobs[1].job);
	assert_int_equal(count(blk_worker_take_done(&w)), 1);
	/* The worker goes on with new jobs. */
	blk_worker_submit(&w, &jobs[1].job);
	blk_worker_drain(&w);
	assert_int_equal(nran, 2);
}

struct sleeper {
	struct blk_job job;
	uint32_t ms;
};

static void sleep_run(struct blk_job *job)
{
	blk_worker_sleep(&w, ((struct sleeper *)job)->ms);
	job_run(&jobs[0].job);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_sleep_runs_its_time(void **state)
{
	struct sleeper s = { .job.run = sleep_run, .ms = 150 };
	uint64_t t0 = now_ms();

	(void)state;
	blk_worker_submit(&w, &s.job);
	blk_worker_submit(&w, &jobs[1].job); /* a submit does not end the sleep */
	blk_worker_drain(&w);
	assert_true(now_ms() - t0 >= 150);
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 1);
}

/* Stop cuts a sleep short, lets the job finish, and drops the queued ones. */
static void test_stop_with_jobs_left(void **state)
{
	struct sleeper s = { .job.run = sleep_run, .ms = 60000 };
	uint64_t t0;

	(void)state;
	blk_worker_submit(&w, &s.job);
	for (int i = 1; i < 4; i++)
		blk_worker_submit(&w, &jobs[i].job);
	usleep(20000);
	t0 = now_ms();
	blk_worker_stop(&w);
	assert_true(now_ms() - t0 < 5000);
	assert_int_equal(nran, 1); /* the sleeper's job, nothing queued */
	blk_worker_stop(&w);       /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_jobs_run_in_order_on_the_worker),
		T(test_done_fd_wakes),
		T(test_drain_waits_for_everything),
		T(test_cancel_takes_back_queued),
		T(test_sleep_runs_its_time),
		T(test_stop_with_jobs_left),
#undef T
	};

	return cmocka_run_group_tests_name("blk_worker", tests, NULL, NULL);
}
