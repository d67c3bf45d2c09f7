/* QMP for the replication steps; see qmp_replication.h. Event-loop thread. */
#include "qmp/qmp_replication.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "colo/colo.h"
#include "colo/disk.h"
#include "qmp/qmp.h"

enum repl_step { STEP_START_PRIMARY, STEP_START_SECONDARY, STEP_STOP, STEP_STOP_FAILOVER, STEP_CHECKPOINT };

static int run_step(struct colo_disk *d, enum repl_step step)
{
	switch (step) {
	case STEP_START_PRIMARY: return colo_disk_repl_start(d, COLO_MODE_PRIMARY);
	case STEP_START_SECONDARY: return colo_disk_repl_start(d, COLO_MODE_SECONDARY);
	case STEP_STOP: return colo_disk_repl_stop(d, false);
	case STEP_STOP_FAILOVER: return colo_disk_repl_stop(d, true);
	case STEP_CHECKPOINT: return colo_disk_repl_checkpoint(d);
	}
	return -EINVAL;
}

/* The step on every replicated disk; the first failure names the disk and stops. */
static void run_on_all(struct qmp_replication *r, enum repl_step step, struct qmp_error *err)
{
	enum colo_mode mode, last;
	enum colo_exit_reason reason;
	bool waiting, any = false;
	int failover;

	colo_query(r->colo, &mode, &last, &reason, &failover, &waiting);
	if (mode != COLO_MODE_NONE) {
		qmp_error_set(err, QMP_ERR_GENERIC, "COLO drives the replication while it runs");
		return;
	}
	for (int i = 0; i < r->ndisks; i++) {
		struct colo_disk *d = r->disks[i];
		char why[200] = "";
		int ret;

		if (!d)
			continue;
		any = true;
		if ((ret = run_step(d, step)) == 0)
			continue;
		if (ret == -EINVAL && (step == STEP_START_PRIMARY || step == STEP_START_SECONDARY))
			snprintf(why, sizeof(why), "not a %s's disk", step == STEP_START_PRIMARY ? "primary" : "secondary");
		else
			colo_disk_repl_failure(d, why, sizeof(why));
		qmp_error_set(err, QMP_ERR_GENERIC, "%s: %s", colo_disk_name(d), why[0] ? why : strerror(-ret));
		return;
	}
	if (!any)
		qmp_error_set(err, QMP_ERR_GENERIC, "no replicated disk (--disk PATH,replication=primary|secondary)");
}

static json_t *cmd_xen_set_replication(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "enable", QMP_ARG_BOOL, true }, { "primary", QMP_ARG_BOOL, true },
		{ "failover", QMP_ARG_BOOL, false }, { NULL, 0, false },
	};
	bool enable, primary, failover;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	enable = json_is_true(json_object_get(args, "enable"));
	primary = json_is_true(json_object_get(args, "primary"));
	failover = json_is_true(json_object_get(args, "failover"));
	if (enable && json_object_get(args, "failover")) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'failover' is only for enable=false");
		return NULL;
	}
	if (enable)
		run_on_all(opaque, primary ? STEP_START_PRIMARY : STEP_START_SECONDARY, err);
	else
		run_on_all(opaque, failover ? STEP_STOP_FAILOVER : STEP_STOP, err);
	return NULL;
}

static json_t *cmd_xen_colo_do_checkpoint(json_t *args, struct qmp_error *err, void *opaque)
{
	if (qmp_args_check(args, err, NULL) == 0)
		run_on_all(opaque, STEP_CHECKPOINT, err);
	return NULL;
}

/* {"error": false}, or {"error": true, "desc": "disk0: ..."} for the first disk in error. */
static json_t *cmd_query_xen_replication_status(json_t *args, struct qmp_error *err, void *opaque)
{
	struct qmp_replication *r = opaque;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	for (int i = 0; i < r->ndisks; i++) {
		char why[200] = "", desc[240];

		if (!r->disks[i] || colo_disk_repl_error(r->disks[i], why, sizeof(why)) == 0)
			continue;
		snprintf(desc, sizeof(desc), "%s: %s", colo_disk_name(r->disks[i]), why);
		return json_pack("{s:b, s:s}", "error", 1, "desc", desc);
	}
	return json_pack("{s:b}", "error", 0);
}

int qmp_replication_bind(struct qmp_server *s, struct qmp_replication *r)
{
	static const struct qmp_command_def cmds[] = {
		{ "xen-set-replication", cmd_xen_set_replication },
		{ "xen-colo-do-checkpoint", cmd_xen_colo_do_checkpoint },
		{ "query-xen-replication-status", cmd_query_xen_replication_status },
	};

	return qmp_register_all(s, cmds, QMP_NCOMMANDS(cmds), r);
}
