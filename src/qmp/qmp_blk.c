/* QMP commands for block devices; see qmp_blk.h. Runs on the event-loop thread. */
#include "qmp/qmp_blk.h"

#include <stdint.h>

#include "colo/disk.h"
#include "dev/virtio_blk.h"
#include "qmp/qmp.h"
#include "vm/vm.h"

/* A test delay longer than this is a typo, not a test. */
#define BLK_TEST_DELAY_MAX_MS 600000

static json_t *blk_test_report(struct vm *vm, struct virtio_blk *b)
{
	struct virtio_blk_stats st;
	uint32_t in_flight;

	vm_io_lock(vm);
	st = b->stats;
	in_flight = b->in_flight;
	vm_io_unlock(vm);
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "device", b->mmio.name,
			 "delay-ms", (json_int_t)virtio_blk_test_delay(b),
			 "in-flight", (json_int_t)in_flight, "reads", (json_int_t)st.reads,
			 "writes", (json_int_t)st.writes, "flushes", (json_int_t)st.flushes,
			 "io-errors", (json_int_t)st.io_errors);
}

/*
 * x-blk-test {"device": NAME, "delay-ms": N}: from now on the device's I/O
 * worker sleeps N ms before each request, as if the backend were slow (0: no
 * delay; without delay-ms the delay stays). Returns the device's delay,
 * requests in flight and counters, so a test can see a request stuck in the
 * worker.
 */
static json_t *cmd_x_blk_test(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "device", QMP_ARG_STRING, true },
		{ "delay-ms", QMP_ARG_INT, false },
		{ NULL, 0, false },
	};
	struct vm *vm = opaque;
	const char *name;
	struct device *dev;
	struct virtio_blk *b;
	json_t *delay;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	name = json_string_value(json_object_get(args, "device"));
	dev = vm_find_device(vm, name);
	if (!dev) {
		qmp_error_set(err, QMP_ERR_DEVICE_NOT_FOUND, "Device '%s' not found", name);
		return NULL;
	}
	b = virtio_blk_of(dev);
	if (!b) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Device '%s' is not a virtio-blk device", name);
		return NULL;
	}
	delay = json_object_get(args, "delay-ms");
	if (delay && (json_integer_value(delay) < 0 || json_integer_value(delay) > BLK_TEST_DELAY_MAX_MS)) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'delay-ms' expects a value between 0 and %d",
			      BLK_TEST_DELAY_MAX_MS);
		return NULL;
	}
	if (delay)
		virtio_blk_set_test_delay(b, (uint32_t)json_integer_value(delay));
	return blk_test_report(vm, b);
}

static json_t *job_json(const struct colo_disk_job *j)
{
	json_t *r = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:b, s:b, s:s, s:s}", "type", "mirror",
			      "device", j->device, "len", (json_int_t)j->len, "offset", (json_int_t)j->offset,
			      "speed", (json_int_t)0, "busy", j->status == COLO_DISK_JOB_RUNNING,
			      "paused", 0, "ready", j->status == COLO_DISK_JOB_READY,
			      "status", colo_disk_job_status_name(j->status), "io-status",
			      j->error[0] ? "failed" : "ok");

	if (r && j->error[0])
		json_object_set_new(r, "error", json_string(j->error));
	return r;
}

/*
 * query-block-jobs: QEMU's shape for a mirror job. On a COLO primary each
 * replicated disk has one: "running" while its initial copy goes on (offset of
 * len bytes copied and verified), "ready" once every write goes to both disks,
 * "concluded" when replication ended (with the error that ended it, if any).
 */
static json_t *cmd_query_block_jobs(json_t *args, struct qmp_error *err, void *opaque)
{
	const struct qmp_blk_disks *jobs = opaque;
	json_t *list;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	list = json_array();
	for (int i = 0; list && i < jobs->ndisks; i++) {
		struct colo_disk_job j;

		if (!jobs->disks[i])
			continue;
		colo_disk_get_job(jobs->disks[i], &j);
		if (j.status != COLO_DISK_JOB_NONE)
			json_array_append_new(list, job_json(&j));
	}
	return list;
}

int qmp_blk_bind(struct qmp_server *s, struct vm *vm, const struct qmp_blk_disks *disks)
{
	int ret = qmp_register(s, "x-blk-test", cmd_x_blk_test, vm);

	return ret < 0 ? ret : qmp_register(s, "query-block-jobs", cmd_query_block_jobs, (void *)disks);
}
