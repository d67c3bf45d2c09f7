/* QMP commands for block devices: query-block-jobs (a replicated disk's copy
 * and mirror on a COLO primary), x-blk-test (a test hook). */
#ifndef LOCKSTEP_QMP_QMP_BLK_H
#define LOCKSTEP_QMP_QMP_BLK_H

struct colo_disk;
struct qmp_server;
struct vm;

/* The replicated disks query-block-jobs reports (NULL entries: disks not replicated). */
struct qmp_blk_disks {
	struct colo_disk *const *disks;
	int ndisks;
};

/* Registers the commands on s; vm and disks (and its array) must outlive the
 * server. 0 or -errno. */
int qmp_blk_bind(struct qmp_server *s, struct vm *vm, const struct qmp_blk_disks *disks);

#endif
