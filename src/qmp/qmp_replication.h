/*
 * The replication steps as QMP commands, under QEMU's names (there they serve
 * Xen's COLO, whose manager drives them; the meaning is the same):
 *   xen-set-replication {enable, primary, failover?}  start / stop
 *   xen-colo-do-checkpoint                            checkpoint
 *   query-xen-replication-status                      get_error
 * over every replicated disk of the VM. COLO drives the same steps itself
 * while it runs, so they are refused then.
 */
#ifndef LOCKSTEP_QMP_QMP_REPLICATION_H
#define LOCKSTEP_QMP_QMP_REPLICATION_H

struct colo;
struct colo_disk;
struct qmp_server;

struct qmp_replication {
	struct colo_disk *const *disks; /* NULL where not replicated */
	int ndisks;
	struct colo *colo;
};

/* r must outlive the server. 0 or -errno. */
int qmp_replication_bind(struct qmp_server *s, struct qmp_replication *r);

#endif
