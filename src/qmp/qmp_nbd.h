/*
 * QMP commands that set up disk replication by hand, under QEMU's names:
 *   secondary: nbd-server-start, nbd-server-add, nbd-server-stop
 *   primary:   blockdev-add (driver nbd), x-blockdev-change, blockdev-del
 * for disks started with --disk PATH,replication=secondary|primary
 * (docs/block-replication.md, "A pair set up by hand").
 */
#ifndef LOCKSTEP_QMP_QMP_NBD_H
#define LOCKSTEP_QMP_QMP_NBD_H

#include "block/nbd_service.h"

struct blk_backend;
struct colo_disk;
struct qmp_server;

#define QMP_NBD_MAX_NODES 8
#define QMP_NBD_NAME_MAX 63

/* A blockdev-add node: an NBD client, until x-blockdev-change hands it to a disk. */
struct qmp_nbd_node {
	char name[QMP_NBD_NAME_MAX + 1]; /* "" : slot free */
	struct blk_backend *be;          /* owned until attached */
	int fd;                          /* its socket */
	struct colo_disk *attached_to;   /* the disk that took it (then be is the disk's) */
};

struct qmp_nbd {
	struct colo_disk *const *disks; /* the VM's, NULL where not replicated */
	int ndisks;
	struct nbd_service *server;      /* nbd-server-start .. nbd-server-stop */
	struct qmp_nbd_node nodes[QMP_NBD_MAX_NODES];
};

/* Registers the commands; n (disks set by the caller) must outlive the server. */
int qmp_nbd_bind(struct qmp_server *s, struct qmp_nbd *n);
/* Stops the NBD server and closes the nodes no disk took. Before the disks go. */
void qmp_nbd_cleanup(struct qmp_nbd *n);

#endif
