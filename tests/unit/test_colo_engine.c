/*
 * The COLO engine's failover state machine, without a VM or a peer: requests
 * during COLO, deferral during an apply, refusal once the COLO thread has left
 * its loop, and the secondary that lost its primary and waits for a decision
 * (taken over only on x-colo-lost-heartbeat; abandoned, never taken over, when
 * the process ends).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "colo/colo_internal.h"
#include "vm/vm.h"

static struct vm vm; /* no KVM: the engine only reads vm->loop (NULL: events dropped) */
static struct colo colo;
static int hook_runs;

static void count_hook(void *opaque)
{
	(void)opaque;
	hook_runs++;
}

static int setup(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	colo_init(&colo, &vm);
	hook_runs = 0;
	colo_add_participant(&colo, &(struct colo_participant){ .name = "counter", .failover = count_hook });
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	colo_destroy(&colo);
	return 0;
}

/* As colo_start leaves it, without a thread or a socket. */
static void pretend_running(enum colo_mode mode)
{
	colo.mode = mode;
	colo.running = true;
	colo.failover = COLO_FAILOVER_NONE;
}

static void query(enum colo_mode *mode, enum colo_exit_reason *reason, int *failover, bool *waiting)
{
	enum colo_mode last;

	colo_query(&colo, mode, &last, reason, failover, waiting);
}

static void test_lost_heartbeat_outside_colo_is_refused(void **state)
{
	(void)state;
	assert_int_equal(colo_lost_heartbeat(&colo), -ENOTCONN);
}

static void test_request_then_already(void **state)
{
	enum colo_mode mode;
	enum colo_exit_reason reason;
	int failover;
	bool waiting;

	(void)state;
	pretend_running(COLO_MODE_SECONDARY);
	assert_int_equal(colo_lost_heartbeat(&colo), 0);
	query(&mode, &reason, &failover, &waiting);
	assert_int_equal(failover, COLO_FAILOVER_REQUIRE);
	assert_int_equal(reason, COLO_EXIT_PROCESSING);
	assert_int_equal(colo_lost_heartbeat(&colo), -EALREADY);
	colo_leave_loop(&colo);
	assert_int_equal(colo.failover, COLO_FAILOVER_ACTIVE);
	colo_finish(&colo, true);
	query(&mode, &reason, &failover, &waiting);
	assert_int_equal(mode, COLO_MODE_NONE);
	assert_int_equal(reason, COLO_EXIT_REQUEST);
	assert_int_equal(failover, COLO_FAILOVER_COMPLETED);
	assert_false(waiting);
	assert_int_equal(hook_runs, 1);
}

static void test_request_during_apply_is_deferred(void **state)
{
	(void)state;
	pretend_running(COLO_MODE_SECONDARY);
	colo.applying = true;
	assert_int_equal(colo_lost_heartbeat(&colo), 0);
	assert_int_equal(colo.failover, COLO_FAILOVER_RELAUNCH);
	colo.applying = false;
	colo_leave_loop(&colo);
	assert_int_equal(colo.failover, COLO_FAILOVER_ACTIVE);
}

static void test_request_after_leaving_is_refused(void **state)
{
	(void)state;
	pretend_running(COLO_MODE_PRIMARY);
	colo_leave_loop(&colo);
	assert_int_equal(colo_lost_heartbeat(&colo), -ENOTCONN);
	colo_finish(&colo, true);
	assert_int_equal(colo.reason, COLO_EXIT_ERROR); /* not "request": nobody asked in time */
}

static void *await_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)colo_await_takeover(&colo);
}

static bool wait_until_waiting(void)
{
	for (int i = 0; i < 2000; i++) {
		enum colo_mode mode;
		enum colo_exit_reason reason;
		int failover;
		bool waiting;

		query(&mode, &reason, &failover, &waiting);
		if (waiting)
			return true;
		usleep(1000);
	}
	return false;
}

/* A secondary that left COLO on an error, its COLO thread (t) waiting for the decision. */
static void start_waiting_secondary(pthread_t *t)
{
	pretend_running(COLO_MODE_SECONDARY);
	colo_leave_loop(&colo); /* the primary vanished: nobody asked for a failover */
	assert_int_equal(pthread_create(t, NULL, await_thread, NULL), 0);
	assert_true(wait_until_waiting());
}

static void test_secondary_waits_for_the_decision(void **state)
{
	enum colo_mode mode, last;
	enum colo_exit_reason reason;
	int failover;
	bool waiting;
	pthread_t t;
	void *took_over;

	(void)state;
	start_waiting_secondary(&t);
	colo_query(&colo, &mode, &last, &reason, &failover, &waiting);
	assert_int_equal(mode, COLO_MODE_NONE);
	assert_int_equal(last, COLO_MODE_SECONDARY);
	assert_int_equal(reason, COLO_EXIT_ERROR);
	assert_int_equal(failover, COLO_FAILOVER_NONE);
	usleep(20000);
	assert_int_equal(hook_runs, 0); /* no takeover without a decision */
	assert_int_equal(colo_lost_heartbeat(&colo), 0); /* the decision */
	assert_int_equal(pthread_join(t, &took_over), 0);
	assert_true((intptr_t)took_over);
	colo_finish(&colo, true);
	colo_query(&colo, &mode, &last, &reason, &failover, &waiting);
	assert_false(waiting);
	assert_int_equal(reason, COLO_EXIT_ERROR); /* why it began stays the reason */
	assert_int_equal(failover, COLO_FAILOVER_COMPLETED);
	assert_int_equal(hook_runs, 1);
	assert_int_equal(colo_lost_heartbeat(&colo), -ENOTCONN);
}

static void test_decision_before_the_wait_counts(void **state)
{
	pthread_t t;
	void *took_over;

	(void)state;
	pretend_running(COLO_MODE_SECONDARY);
	colo_leave_loop(&colo); /* left on an error, not yet stopped and waiting */
	assert_int_equal(colo_lost_heartbeat(&colo), 0);
	assert_int_equal(colo_lost_heartbeat(&colo), -EALREADY);
	assert_int_equal(pthread_create(&t, NULL, await_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &took_over), 0);
	assert_true((intptr_t)took_over);
	colo_finish(&colo, true);
	assert_int_equal(colo.failover, COLO_FAILOVER_COMPLETED);
	assert_int_equal(colo_lost_heartbeat(&colo), -ENOTCONN);
}

static void test_primary_leaving_takes_no_decision(void **state)
{
	(void)state;
	pretend_running(COLO_MODE_PRIMARY);
	colo_leave_loop(&colo);
	assert_int_equal(colo_lost_heartbeat(&colo), -ENOTCONN);
}

static void test_waiting_secondary_abandoned_never_takes_over(void **state)
{
	pthread_t t;
	void *took_over;

	(void)state;
	start_waiting_secondary(&t);
	pthread_mutex_lock(&colo.lock); /* what colo_destroy does when the process ends */
	colo.abandon = true;
	pthread_cond_broadcast(&colo.decision);
	pthread_mutex_unlock(&colo.lock);
	assert_int_equal(pthread_join(t, &took_over), 0);
	assert_false((intptr_t)took_over);
	colo_finish(&colo, false);
	assert_int_equal(hook_runs, 0);
	assert_int_equal(colo.failover, COLO_FAILOVER_NONE);
}

/* Participants: each step in registration order; the first error ends the step. */
static char trace[64];

static int trace_prepare(void *opaque)
{
	const char *name = opaque;

	strncat(trace, name, sizeof(trace) - strlen(trace) - 1);
	return name[0] == 'b' ? -ENOSPC : 0;
}

static uint64_t mark_42(void *opaque)
{
	(void)opaque;
	return 42;
}

static void test_participants_run_in_order_and_stop_at_an_error(void **state)
{
	(void)state;
	trace[0] = '\0';
	assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){
		.name = "a", .opaque = "a", .prepare = trace_prepare, .mark = mark_42 }), 0);
	assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){
		.name = "disk", .opaque = "b", .prepare = trace_prepare }), 0);
	assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){
		.name = "c", .opaque = "c", .prepare = trace_prepare }), 0);
	assert_int_equal(colo_run_participants(&colo, COLO_STEP_PREPARE, 0), -ENOSPC);
	assert_string_equal(trace, "ab");
	assert_string_equal(colo.error, "disk cannot take part in the checkpoint: No space left on device");
	assert_int_equal(colo_run_participants(&colo, COLO_STEP_COMMITTED, 0), 0); /* no hooks */
	assert_int_equal(colo_participant_mark(&colo), 42);
	/* One mark only (it travels in vmstate-send), and a bounded table. */
	assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){ .name = "m", .mark = mark_42 }),
			 -EBUSY);
	for (int i = 4; i < COLO_MAX_PARTICIPANTS; i++) /* "counter" (setup), a, disk, c, then these */
		assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){ .name = "d" }), 0);
	assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){ .name = "d" }), -ENOSPC);
}

static void test_fail_step_hook_fails_once(void **state)
{
	(void)state;
	colo.test.fail_step = COLO_STEP_APPLIED + 1;
	assert_int_equal(colo_run_participants(&colo, COLO_STEP_PREPARE, 0), 0);
	assert_int_equal(colo_run_participants(&colo, COLO_STEP_APPLIED, 0), -EIO);
	assert_string_equal(colo.error, "test hook failed to apply the checkpoint: Input/output error");
	assert_int_equal(colo_run_participants(&colo, COLO_STEP_APPLIED, 0), 0);
}

static int digest_of_opaque(void *opaque, uint64_t *digest)
{
	*digest = (uint64_t)(uintptr_t)opaque;
	return 0;
}

static int verify_against_opaque(void *opaque, uint64_t primary_digest)
{
	return primary_digest == (uint64_t)(uintptr_t)opaque ? 0 : -EILSEQ;
}

/* x-check-disk: the primary's digests go into the stream as DIGEST sections;
 * the secondary checks each with the participant of its name. */
static void test_participant_digests(void **state)
{
	struct vmstate_digest d[3] = { { "disk0", 7 }, { "disk1", 9 }, { "disk9", 7 } };
	struct stream_out out;
	struct sbuf b;

	(void)state;
	assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){
		.name = "disk0", .opaque = (void *)7, .digest = digest_of_opaque, .verify = verify_against_opaque }), 0);
	assert_int_equal(colo_add_participant(&colo, &(struct colo_participant){
		.name = "disk1", .opaque = (void *)8, .digest = digest_of_opaque, .verify = verify_against_opaque }), 0);
	sbuf_init(&b);
	assert_int_equal(stream_out_init_capture(&out, &b), 0);
	assert_int_equal(colo_write_participant_digests(&colo, &out), 0);
	assert_int_equal(stream_out_flush(&out), 0);
	assert_int_equal(b.len, 2 * (16 + sizeof(struct vmstate_digest) + 8)); /* header, payload, checksum */
	assert_non_null(memmem(b.data, b.len, "disk1", 5));
	stream_out_free(&out);
	sbuf_free(&b);

	assert_int_equal(colo_verify_participant_digests(&colo, d, 1), 0);
	assert_int_equal(colo.stats.disk_checks, 1);
	assert_int_equal(colo_verify_participant_digests(&colo, d, 2), -EILSEQ);
	assert_string_equal(colo.error, "disk1 differs from the primary's after the checkpoint");
	colo.error[0] = '\0'; /* the first error is kept */
	assert_int_equal(colo_verify_participant_digests(&colo, &d[2], 1), -EPROTO);
	assert_string_equal(colo.error, "the primary checks disk9, which this secondary does not have");
	assert_int_equal(colo.stats.disk_checks, 2);
}

/* guest-ended's value: exit status and reason both ways; others refused. */
static void test_guest_end_encoding(void **state)
{
	uint64_t v;
	int status;

	(void)state;
	assert_int_equal(colo_guest_end_encode(3, "guest-reset", &v), 0);
	assert_string_equal(colo_guest_end_decode(v, &status), "guest-reset");
	assert_int_equal(status, 3);
	assert_int_equal(colo_guest_end_encode(0, "guest-panic", &v), 0);
	assert_string_equal(colo_guest_end_decode(v, &status), "guest-panic");
	assert_int_equal(colo_guest_end_encode(0, "host-qmp-quit", &v), -EINVAL); /* not the guest's end */
	assert_int_equal(colo_guest_end_encode(0, NULL, &v), -EINVAL);
	assert_null(colo_guest_end_decode(3ull << 8, &status));
	assert_null(colo_guest_end_decode(~0ull, &status));
}

static void test_unusable_secondary_refuses_the_takeover(void **state)
{
	(void)state;
	pretend_running(COLO_MODE_SECONDARY);
	strcpy(colo.unusable, "disk failed to apply the checkpoint");
	assert_int_equal(colo_lost_heartbeat(&colo), -ESTALE);
	assert_int_equal(colo.failover, COLO_FAILOVER_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lost_heartbeat_outside_colo_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_then_already, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_during_apply_is_deferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_after_leaving_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_waits_for_the_decision, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decision_before_the_wait_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_leaving_takes_no_decision, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_secondary_abandoned_never_takes_over, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_participants_run_in_order_and_stop_at_an_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fail_step_hook_fails_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_secondary_refuses_the_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_participant_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_end_encoding, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
