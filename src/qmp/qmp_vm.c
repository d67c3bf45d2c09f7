/* VM commands and events for QMP; see qmp_vm.h. Runs on the event-loop thread. */
#include "qmp/qmp_vm.h"

#include <stdbool.h>
#include <string.h>

#include "qmp/qmp.h"
#include "vm/vm.h"

static json_t *cmd_query_status(json_t *args, struct qmp_error *err, void *opaque)
{
	struct vm *vm = opaque;
	enum vm_run_state st;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	st = vm_get_state(vm);
	/* vm_state_name spells QMP's run states: "prelaunch", "running", "paused", "shutdown" */
	return json_pack("{s:s, s:b, s:b}", "status", vm_state_name(st),
			 "running", st == VM_STATE_RUNNING, "singlestep", false);
}

/* vm_pause on a stopped VM returns 0; it emits STOP only if only a COLO checkpoint held it
 * (the stop then outlives the checkpoint). */
static json_t *cmd_stop(json_t *args, struct qmp_error *err, void *opaque)
{
	int r;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	r = vm_pause(opaque);
	if (r < 0)
		qmp_error_set(err, QMP_ERR_GENERIC, "Cannot stop the VM (state %s): %s",
			      vm_state_name(vm_get_state(opaque)), strerror(-r));
	return NULL;
}

static json_t *cmd_cont(json_t *args, struct qmp_error *err, void *opaque)
{
	int r;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	r = vm_resume(opaque);
	if (r < 0)
		qmp_error_set(err, QMP_ERR_GENERIC, "Cannot resume the VM (state %s): %s",
			      vm_state_name(vm_get_state(opaque)), strerror(-r));
	return NULL;
}

/*
 * The reply {} is queued as soon as this returns; the shutdown itself happens
 * when the event loop sees the request, and qmp_server_destroy delivers what
 * is still pending, so the client gets its reply and then SHUTDOWN.
 */
static json_t *cmd_quit(json_t *args, struct qmp_error *err, void *opaque)
{
	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	vm_request_shutdown(opaque, 0, "host-qmp-quit");
	return NULL;
}

static void on_vm_event(void *opaque, enum vm_event ev, const char *reason)
{
	struct qmp_server *s = opaque;

	switch (ev) {
	case VM_EVENT_STOP:
		qmp_emit_event(s, "STOP", NULL);
		break;
	case VM_EVENT_RESUME:
		qmp_emit_event(s, "RESUME", NULL);
		break;
	case VM_EVENT_SHUTDOWN:
		if (!reason)
			reason = "guest-shutdown";
		qmp_emit_event(s, "SHUTDOWN",
			       json_pack("{s:b, s:s}", "guest", strcmp(reason, "host-qmp-quit") != 0,
					 "reason", reason));
		break;
	}
}

int qmp_vm_bind(struct qmp_server *s, struct vm *vm)
{
	static const struct qmp_command_def cmds[] = {
		{ "query-status", cmd_query_status },
		{ "stop", cmd_stop },
		{ "cont", cmd_cont },
		{ "quit", cmd_quit },
	};
	int ret = qmp_register_all(s, cmds, QMP_NCOMMANDS(cmds), vm);

	if (ret < 0)
		return ret;
	vm_set_event_listener(vm, on_vm_event, s);
	return 0;
}

void qmp_vm_unbind(struct vm *vm)
{
	vm_set_event_listener(vm, NULL, NULL);
}
