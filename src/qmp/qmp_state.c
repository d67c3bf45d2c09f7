/* QMP commands for VM state: snapshots (and migration, in qmp_migrate.c). */
#include "qmp/qmp_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "qmp/qmp.h"
#include "state/snapshot.h"
#include "state/vmstate.h"
#include "vm/vm.h"

static const struct qmp_arg_spec file_arg[] = {
	{ "file", QMP_ARG_STRING, true },
	{ NULL, 0, false },
};

/*
 * Runs fn with the vCPU parked. A running VM is stopped for the duration and
 * resumed afterwards (what QEMU's savevm/loadvm do); a stopped one stays stopped.
 */
static json_t *with_vm_stopped(struct vm *vm, json_t *args, struct qmp_error *err,
			       int (*fn)(struct vm *, const char *, char *, size_t))
{
	char msg[512];
	int was_running, ret;

	if (qmp_args_check(args, err, file_arg) < 0)
		return NULL;
	was_running = vm_get_state(vm) == VM_STATE_RUNNING;
	if (was_running && (ret = vm_pause(vm)) < 0) {
		qmp_error_set(err, QMP_ERR_GENERIC, "cannot stop the VM: %s", strerror(-ret));
		return NULL;
	}
	if (vm_get_state(vm) != VM_STATE_PAUSED) {
		qmp_error_set(err, QMP_ERR_GENERIC, "the VM is %s", vm_state_name(vm_get_state(vm)));
		return NULL;
	}
	ret = fn(vm, json_string_value(json_object_get(args, "file")), msg, sizeof(msg));
	if (ret < 0)
		qmp_error_set(err, QMP_ERR_GENERIC, "%s", msg);
	if (was_running)
		vm_resume(vm);
	return NULL;
}

static json_t *cmd_snapshot_save(json_t *args, struct qmp_error *err, void *opaque)
{
	return with_vm_stopped(opaque, args, err, snapshot_save);
}

static json_t *cmd_snapshot_load(json_t *args, struct qmp_error *err, void *opaque)
{
	return with_vm_stopped(opaque, args, err, snapshot_load);
}

/* Test and diagnosis: XXH3-64 of all guest RAM, of a stopped VM only (a running
 * guest changes it while it is read). */
static json_t *cmd_query_ram_hash(json_t *args, struct qmp_error *err, void *opaque)
{
	char hash[17];

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	if (vm_get_state(opaque) != VM_STATE_PAUSED) {
		qmp_error_set(err, QMP_ERR_GENERIC, "the VM must be stopped (state %s)",
			      vm_state_name(vm_get_state(opaque)));
		return NULL;
	}
	snprintf(hash, sizeof(hash), "%016" PRIx64, vmstate_ram_hash(opaque));
	return json_pack("{s:s}", "hash", hash);
}

int qmp_state_bind(struct qmp_server *s, struct vm *vm)
{
	static const struct qmp_command_def cmds[] = {
		{ "snapshot-save", cmd_snapshot_save },
		{ "snapshot-load", cmd_snapshot_load },
		{ "x-query-ram-hash", cmd_query_ram_hash },
	};

	return qmp_register_all(s, cmds, QMP_NCOMMANDS(cmds), vm);
}
