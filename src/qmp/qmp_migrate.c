/* QMP migration commands, named and shaped like QEMU's where the meaning is the same. */
#include "qmp/qmp_migrate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "qmp/qmp.h"
#include "colo/colo.h"
#include "state/migrate.h"

/* opaque: the server (the migration's listener); commands get the migration itself. */
static void on_migration_status(void *opaque, enum migrate_status st)
{
	qmp_emit_event(opaque, "MIGRATION", json_pack("{s:s}", "status", migrate_status_name(st)));
}

static json_t *cmd_migrate(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "uri", QMP_ARG_STRING, true },
		{ "detach", QMP_ARG_BOOL, false }, /* accepted for QEMU clients; always detached */
		{ NULL, 0, false },
	};
	struct migration *m = opaque;
	char msg[256];

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	if (migration_start(m, json_string_value(json_object_get(args, "uri")), msg,
			    sizeof(msg)) < 0)
		qmp_error_set(err, QMP_ERR_GENERIC, "%s", msg);
	return NULL;
}

static json_t *cmd_migrate_cancel(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	if (migration_cancel(m) == -EBUSY)
		qmp_error_set(err, QMP_ERR_GENERIC,
			      "the migration is committed (the destination may already run the guest)");
	return NULL;
}

static json_t *ram_info(const struct migrate_stats *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "total", (json_int_t)s->ram_total,
			 "transferred", (json_int_t)s->transferred, "remaining",
			 (json_int_t)s->remaining, "normal", (json_int_t)s->normal_pages,
			 "duplicate", (json_int_t)s->zero_pages, "dirty-pages-rate",
			 (json_int_t)s->dirty_pages_rate, "dirty-sync-count", (json_int_t)s->rounds,
			 "mbps", s->mbps);
}

static json_t *cmd_query_migrate(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;
	struct migrate_stats s;
	enum migrate_status st;
	char error[256], hash[17];
	json_t *r;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	migration_query(m, &st, &s, error, sizeof(error));
	if (st == MIGRATE_NONE)
		return json_object();
	r = json_pack("{s:s, s:I, s:I, s:o}", "status", migrate_status_name(st), "total-time",
		      (json_int_t)s.total_time_ms, "setup-time", (json_int_t)s.setup_time_ms, "ram",
		      ram_info(&s));
	if (st == MIGRATE_COMPLETED && !m->incoming)
		json_object_set_new(r, "downtime", json_integer((json_int_t)s.downtime_ms));
	if (error[0])
		json_object_set_new(r, "error-desc", json_string(error));
	if (s.ram_hash_valid) {
		snprintf(hash, sizeof(hash), "%016" PRIx64, s.ram_hash);
		json_object_set_new(r, "x-ram-hash", json_string(hash));
	}
	return r;
}

static json_t *params_json(const struct migration *m, const struct migrate_params *p)
{
	return json_pack("{s:I, s:I, s:b, s:b, s:I}", "downtime-limit", (json_int_t)p->downtime_limit_ms,
			 "max-bandwidth", (json_int_t)p->max_bandwidth, "x-check-ram", p->check_ram,
			 "x-check-disk", p->check_disk,
			 "x-checkpoint-delay", (json_int_t)(m->colo ? colo_get_delay(m->colo) : 0));
}

static int get_nonneg(json_t *args, const char *key, uint64_t max, uint64_t *out,
		      struct qmp_error *err)
{
	json_t *v = json_object_get(args, key);
	json_int_t n;

	if (!v)
		return 0;
	n = json_integer_value(v);
	if (n < 0 || (uint64_t)n > max) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' expects a value between 0 and %" PRIu64,
			      key, max);
		return -1;
	}
	*out = (uint64_t)n;
	return 0;
}

static json_t *cmd_migrate_set_parameters(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "downtime-limit", QMP_ARG_INT, false },
		{ "max-bandwidth", QMP_ARG_INT, false },
		{ "x-check-ram", QMP_ARG_BOOL, false },
		{ "x-check-disk", QMP_ARG_BOOL, false },
		{ "x-checkpoint-delay", QMP_ARG_INT, false },
		{ NULL, 0, false },
	};
	struct migration *m = opaque;
	struct migrate_params p;
	uint64_t delay = 0;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	if (json_object_get(args, "x-checkpoint-delay")) {
		if (get_nonneg(args, "x-checkpoint-delay", UINT32_MAX, &delay, err) < 0)
			return NULL;
		if (m->colo)
			colo_set_delay(m->colo, (uint32_t)delay);
	}
	migration_get_params(m, &p);
	if (get_nonneg(args, "downtime-limit", 2000000, &p.downtime_limit_ms, err) < 0 ||
	    get_nonneg(args, "max-bandwidth", INT64_MAX, &p.max_bandwidth, err) < 0)
		return NULL;
	if (json_object_get(args, "x-check-ram"))
		p.check_ram = json_is_true(json_object_get(args, "x-check-ram"));
	if (json_object_get(args, "x-check-disk"))
		p.check_disk = json_is_true(json_object_get(args, "x-check-disk"));
	migration_set_params(m, &p);
	if (m->colo) { /* a running COLO pair follows the check settings from the next checkpoint */
		colo_set_check_ram(m->colo, p.check_ram);
		colo_set_check_disk(m->colo, p.check_disk);
	}
	return NULL;
}

static json_t *cmd_query_migrate_parameters(json_t *args, struct qmp_error *err, void *opaque)
{
	struct migration *m = opaque;
	struct migrate_params p;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	migration_get_params(m, &p);
	return params_json(m, &p);
}

int qmp_migrate_bind(struct qmp_server *s, struct migration *m)
{
	static const struct qmp_command_def cmds[] = {
		{ "migrate", cmd_migrate },
		{ "migrate_cancel", cmd_migrate_cancel },
		{ "query-migrate", cmd_query_migrate },
		{ "migrate-set-parameters", cmd_migrate_set_parameters },
		{ "query-migrate-parameters", cmd_query_migrate_parameters },
	};

	m->on_status = on_migration_status;
	m->opaque = s;
	return qmp_register_all(s, cmds, QMP_NCOMMANDS(cmds), m);
}
