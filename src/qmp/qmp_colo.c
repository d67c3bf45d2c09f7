/* QMP for COLO: capabilities, failover, status, statistics, on-demand checkpoints. */
#include "qmp/qmp_colo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo/net/proxy.h"
#include "qmp/qmp.h"
#include "colo/colo.h"
#include "state/migrate.h"

static void on_colo_exit(void *opaque, enum colo_mode mode, enum colo_exit_reason reason, bool waiting)
{
	json_t *data = json_pack("{s:s, s:s}", "mode", colo_mode_name(mode), "reason",
				 colo_exit_reason_name(reason));

	if (waiting) /* a secondary, stopped until x-colo-lost-heartbeat decides */
		json_object_set_new(data, "x-waiting-for-decision", json_true());
	qmp_emit_event(opaque, "COLO_EXIT", data);
}

static int set_one_capability(struct migration *m, json_t *cap, struct qmp_error *err)
{
	const char *name = json_string_value(json_object_get(cap, "capability"));
	json_t *state = json_object_get(cap, "state");

	if (!json_is_object(cap) || !name || !json_is_boolean(state)) {
		qmp_error_set(err, QMP_ERR_GENERIC,
			      "Invalid parameter type for 'capabilities', expected: "
			      "[{\"capability\": str, \"state\": bool}]");
		return -1;
	}
	if (strcmp(name, "x-colo") != 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Capability '%s' is not supported", name);
		return -1;
	}
	m->colo_capability = json_is_true(state);
	return 0;
}

static json_t *cmd_migrate_set_capabilities(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "capabilities", QMP_ARG_ARRAY, true },
		{ NULL, 0, false },
	};
	struct migration *m = opaque;
	enum migrate_status st;
	struct migrate_stats stats;
	char error[8];
	size_t i;
	json_t *cap;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	migration_query(m, &st, &stats, error, sizeof(error));
	if (st == MIGRATE_SETUP || st == MIGRATE_ACTIVE || st == MIGRATE_COLO) {
		qmp_error_set(err, QMP_ERR_GENERIC, "There's a migration process in progress");
		return NULL;
	}
	json_array_foreach(json_object_get(args, "capabilities"), i, cap)
		if (set_one_capability(m, cap, err) < 0)
			return NULL;
	return NULL;
}

static json_t *cmd_query_migrate_capabilities(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	return json_pack("[{s:s, s:b}]", "capability", "x-colo", "state", m->colo_capability);
}

static json_t *cmd_lost_heartbeat(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;
	int ret;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	ret = colo_lost_heartbeat(m->colo);
	if (ret == -ESTALE) {
		char why[256];

		colo_get_error(m->colo, why, sizeof(why));
		qmp_error_set(err, QMP_ERR_GENERIC, "this secondary cannot take over: %s", why);
	} else if (ret == -ENOTCONN)
		qmp_error_set(err, QMP_ERR_GENERIC, "VM is not in COLO mode");
	else if (ret == -EALREADY)
		qmp_error_set(err, QMP_ERR_GENERIC, "COLO failover is already activated");
	return NULL;
}

static json_t *cmd_query_colo_status(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;
	enum colo_mode mode, last;
	enum colo_exit_reason reason;
	char error[256];
	int failover, stalled;
	bool waiting;
	json_t *r;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	colo_query(m->colo, &mode, &last, &reason, &failover, &waiting);
	colo_get_error(m->colo, error, sizeof(error));
	r = json_pack("{s:s, s:s, s:s, s:s}", "mode", colo_mode_name(mode), "last-mode",
		      colo_mode_name(last), "reason", colo_exit_reason_name(reason),
		      "x-failover-state", colo_failover_name(failover));
	if (error[0] && reason == COLO_EXIT_ERROR)
		json_object_set_new(r, "x-error", json_string(error));
	if (waiting) /* stopped: x-colo-lost-heartbeat (lockstep failover) decides the takeover */
		json_object_set_new(r, "x-waiting-for-decision", json_true());
	stalled = __atomic_load_n(&colo_test_hooks(m->colo)->stalled_in, __ATOMIC_ACQUIRE);
	if (stalled != COLO_TEST_PHASE_NONE) /* x-colo-test stall-in */
		json_object_set_new(r, "x-test-stalled-in", json_string(colo_test_phase_names[stalled]));
	return r;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* p99 over the pauses still in the history ring. */
static uint64_t pause_p99(const struct colo_stats *s)
{
	uint64_t n = s->checkpoints < COLO_PAUSE_HISTORY ? s->checkpoints : COLO_PAUSE_HISTORY;
	uint64_t sorted[COLO_PAUSE_HISTORY];

	if (!n)
		return 0;
	memcpy(sorted, s->pauses, n * sizeof(uint64_t));
	qsort(sorted, n, sizeof(uint64_t), cmp_u64);
	return sorted[(n * 99 + 99) / 100 - 1];
}

static json_t *cmd_query_colo_stats(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;
	struct colo_stats *s = malloc(sizeof(*s));
	char hash[17];
	json_t *r;

	if (!s || qmp_args_check(args, err, NULL) < 0) {
		free(s);
		return NULL;
	}
	colo_get_stats(m->colo, s);
	snprintf(hash, sizeof(hash), "%016" PRIx64, s->last_ram_hash);
	r = json_pack("{s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, "
		      "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:s, s:I}",
		      "checkpoints", (json_int_t)s->checkpoints, "reasons",
		      "periodic", (json_int_t)s->by_reason[COLO_REASON_PERIODIC],
		      "request", (json_int_t)s->by_reason[COLO_REASON_REQUEST],
		      "comparator", (json_int_t)s->by_reason[COLO_REASON_COMPARATOR],
		      "pages", (json_int_t)s->pages, "precopy-pages", (json_int_t)s->precopy_pages,
		      "bytes", (json_int_t)s->bytes,
		      "pause-us", "last", (json_int_t)s->pause_last_us,
		      "mean", (json_int_t)(s->checkpoints ? s->pause_total_us / s->checkpoints : 0),
		      "p99", (json_int_t)pause_p99(s), "max", (json_int_t)s->pause_max_us,
		      "last-phases-us", "precopy", (json_int_t)s->phase_precopy_us,
		      "request", (json_int_t)s->phase_request_us,
		      "stop", (json_int_t)s->phase_stop_us, "ram", (json_int_t)s->phase_ram_us,
		      "device", (json_int_t)s->phase_device_us,
		      "received", (json_int_t)s->phase_received_us,
		      "apply", (json_int_t)s->phase_apply_us,
		      "ram-checks", (json_int_t)s->ram_checks, "x-last-ram-hash", hash,
		      "disk-checks", (json_int_t)s->disk_checks);
	free(s);
	return r;
}

static json_t *cmd_colo_checkpoint(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;
	enum colo_mode mode, last;
	enum colo_exit_reason reason;
	int failover;
	bool waiting;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	colo_query(m->colo, &mode, &last, &reason, &failover, &waiting);
	if (mode != COLO_MODE_PRIMARY)
		qmp_error_set(err, QMP_ERR_GENERIC, "checkpoints are taken by a COLO primary (this VM: %s)",
			      colo_mode_name(mode));
	else
		colo_request_checkpoint(m->colo, COLO_REASON_REQUEST);
	return NULL;
}

/* Test hooks: make the next apply slow, or damage the next checkpoint. */
/* A test hook's delay argument, 0..60000 ms, if present. */
static int test_delay_arg(json_t *args, const char *name, uint32_t *out, struct qmp_error *err)
{
	json_t *v = json_object_get(args, name);

	if (!v)
		return 0;
	if (json_integer_value(v) < 0 || json_integer_value(v) > 60000) {
		qmp_error_set(err, QMP_ERR_GENERIC, "%s must be 0..60000", name);
		return -1;
	}
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

/* fail-step: a participant's next prepare, committed or applied step fails. */
static json_t *test_fail_step_arg(json_t *args, struct colo_test_hooks *t, struct qmp_error *err)
{
	const char *step = json_string_value(json_object_get(args, "fail-step"));

	if (!step)
		return NULL;
	for (int i = COLO_STEP_PREPARE; i <= COLO_STEP_APPLIED; i++) {
		if (!strcmp(colo_step_names[i], step)) {
			__atomic_store_n(&t->fail_step, i + 1, __ATOMIC_RELEASE);
			return NULL;
		}
	}
	qmp_error_set(err, QMP_ERR_GENERIC, "fail-step: no step '%s' (prepare, committed, applied)", step);
	return NULL;
}

static json_t *cmd_colo_test(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "apply-delay-ms", QMP_ARG_INT, false },
		{ "cache-fill-delay-ms", QMP_ARG_INT, false },
		{ "corrupt-next-checkpoint", QMP_ARG_BOOL, false },
		{ "refuse-next-checkpoint", QMP_ARG_BOOL, false },
		{ "stall-in", QMP_ARG_STRING, false },
		{ "fail-step", QMP_ARG_STRING, false },
		{ NULL, 0, false },
	};
	struct migration *m = opaque;
	struct colo_test_hooks *t = colo_test_hooks(m->colo);

	if (qmp_args_check(args, err, spec) < 0 ||
	    test_delay_arg(args, "apply-delay-ms", &t->apply_delay_ms, err) < 0 ||
	    test_delay_arg(args, "cache-fill-delay-ms", &t->cache_fill_delay_ms, err) < 0)
		return NULL;
	if (json_is_true(json_object_get(args, "corrupt-next-checkpoint")))
		__atomic_store_n(&t->corrupt_next, true, __ATOMIC_RELEASE);
	if (json_is_true(json_object_get(args, "refuse-next-checkpoint")))
		__atomic_store_n(&t->refuse_next, true, __ATOMIC_RELEASE);
	if (json_object_get(args, "stall-in")) {
		const char *phase = json_string_value(json_object_get(args, "stall-in"));
		int i = COLO_TEST_PHASE_COUNT;

		while (--i > COLO_TEST_PHASE_NONE && strcmp(colo_test_phase_names[i], phase))
			;
		if (i == COLO_TEST_PHASE_NONE) {
			qmp_error_set(err, QMP_ERR_GENERIC, "stall-in: no phase '%s' (precopy, request, "
				      "ram, device, received)", phase);
			return NULL;
		}
		__atomic_store_n(&t->stall_phase, i, __ATOMIC_RELEASE);
	}
	return test_fail_step_arg(args, t, err);
}

static json_t *class_stats_json(const struct colo_compare_class_stats *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "primary-frames",
			 (json_int_t)c->primary_frames, "secondary-frames", (json_int_t)c->secondary_frames,
			 "matched", (json_int_t)c->matched, "mismatched", (json_int_t)c->mismatched,
			 "stale", (json_int_t)c->stale, "released-uncompared",
			 (json_int_t)c->released_uncompared, "secondary-dropped",
			 (json_int_t)c->secondary_dropped);
}

static json_t *compare_json(const struct colo_compare_stats *s)
{
	json_t *classes = json_object(), *reasons = json_object();

	for (int i = 0; i < COLO_CLASS_COUNT; i++)
		json_object_set_new(classes, colo_class_name(i), class_stats_json(&s->cls[i]));
	for (int i = 0; i < COLO_CKPT_REASON_COUNT; i++)
		json_object_set_new(reasons, colo_checkpoint_reason_name(i),
				    json_integer((json_int_t)s->checkpoints_requested[i]));
	return json_pack("{s:o, s:o, s:I, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}}",
			 "protocols", classes, "checkpoints-requested", reasons, "checkpoints-done",
			 (json_int_t)s->checkpoints_done, "held",
			 "primary-frames", (json_int_t)s->primary_held_frames, "primary-bytes",
			 (json_int_t)s->primary_held_bytes, "secondary-frames",
			 (json_int_t)s->secondary_held_frames, "secondary-bytes",
			 (json_int_t)s->secondary_held_bytes, "held-max", "primary-frames",
			 (json_int_t)s->primary_held_frames_max, "secondary-frames",
			 (json_int_t)s->secondary_held_frames_max, "connections", "now",
			 (json_int_t)s->connections, "max", (json_int_t)s->connections_max);
}

static json_t *rewriter_json(const struct colo_rewriter_stats *r)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "inbound-rewritten",
			 (json_int_t)r->inbound_rewritten, "outbound-rewritten",
			 (json_int_t)r->outbound_rewritten, "sack-blocks-rewritten",
			 (json_int_t)r->sack_blocks_rewritten, "offsets-learned-passive",
			 (json_int_t)r->offsets_learned_passive, "offsets-learned-active",
			 (json_int_t)r->offsets_learned_active, "closed",
			 (json_int_t)(r->closed_fin + r->closed_rst), "evicted", (json_int_t)r->evicted,
			 "connections", (json_int_t)r->connections, "failover", r->failover);
}

static json_t *link_json(const struct colo_net_link_stats *l)
{
	json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "state", l->up ? "up" : "down",
			      "sent-frames", (json_int_t)l->writer.frames, "dropped-frames",
			      (json_int_t)l->writer.dropped, "queued-bytes", (json_int_t)l->writer.queued_bytes,
			      "queued-max-bytes", (json_int_t)l->writer.queued_max, "queue-limit-bytes",
			      (json_int_t)l->writer.limit, "mirror-dropped", (json_int_t)l->mirror_dropped);

	if (j)
		json_object_update_missing_new(j, json_pack("{s:I, s:I, s:I}", "early-held",
							    (json_int_t)l->early_held, "early-dropped",
							    (json_int_t)l->early_dropped, "stale-dropped",
							    (json_int_t)l->stale_dropped));

	if (j && l->error[0])
		json_object_set_new(j, "error", json_string(l->error));
	return j;
}

static json_t *cmd_query_colo_compare(json_t *args, struct qmp_error *err, void *opaque)
{
	struct colo_compare_stats *cmp = malloc(sizeof(*cmp));
	struct colo_net_link_stats link;
	struct colo_rewriter_stats rw;
	int has_cmp, has_rw, has_link;
	json_t *r;

	if (!cmp || qmp_args_check(args, err, NULL) < 0) {
		free(cmp);
		return NULL;
	}
	colo_net_get_stats(opaque, cmp, &has_cmp, &rw, &has_rw, &link, &has_link);
	r = json_object();
	if (has_cmp)
		json_object_set_new(r, "compare", compare_json(cmp));
	if (has_rw)
		json_object_set_new(r, "rewriter", rewriter_json(&rw));
	if (has_link)
		json_object_set_new(r, "link", link_json(&link));
	free(cmp);
	return r;
}

int qmp_colo_net_bind(struct qmp_server *s, struct colo_net *n)
{
	return qmp_register(s, "query-colo-compare", cmd_query_colo_compare, n);
}

int qmp_colo_bind(struct qmp_server *s, struct migration *m)
{
	static const struct qmp_command_def cmds[] = {
		{ "migrate-set-capabilities", cmd_migrate_set_capabilities },
		{ "query-migrate-capabilities", cmd_query_migrate_capabilities },
		{ "x-colo-lost-heartbeat", cmd_lost_heartbeat },
		{ "query-colo-status", cmd_query_colo_status },
		{ "query-colo-stats", cmd_query_colo_stats },
		{ "x-colo-checkpoint", cmd_colo_checkpoint },
		{ "x-colo-test", cmd_colo_test },
	};

	colo_set_exit_handler(m->colo, on_colo_exit, s);
	return qmp_register_all(s, cmds, QMP_NCOMMANDS(cmds), m);
}
