/*
 * A replicated disk of a COLO pair: the checkpoint participant that keeps the
 * secondary's disk following the primary's (docs/block-replication.md).
 *
 * Primary: the guest's disk is a mirror of the local image; when COLO starts
 * the image is copied to the secondary over one NBD connection (the VM is
 * stopped meanwhile), then a second carries every write for as long as COLO
 * runs; a replica that failed ends COLO at the next checkpoint (the primary
 * serves on alone, its guest never saw an error).
 * Secondary: the guest's disk is the replication (active > hidden > disk); an
 * NBD server takes the copy, then the primary's writes; each applied
 * checkpoint empties the overlays; a takeover commits them into the disk.
 */
#ifndef LOCKSTEP_COLO_DISK_H
#define LOCKSTEP_COLO_DISK_H

#include <stdbool.h>

#include "block/backend.h"
#include "block/nbd_server.h"
#include "colo/colo.h"

struct colo_disk;

/* The primary's copy-then-mirror of a disk, as QMP's query-block-jobs shows it. */
enum colo_disk_job_status {
	COLO_DISK_JOB_NONE,      /* not started (or a secondary: the primary runs the job) */
	COLO_DISK_JOB_RUNNING,   /* the initial copy: offset of len bytes copied and verified */
	COLO_DISK_JOB_READY,     /* the secondary's disk is ours; every write goes to both */
	COLO_DISK_JOB_CONCLUDED, /* replication ended; error says why if it failed */
};

struct colo_disk_job {
	char device[16];
	enum colo_disk_job_status status;
	uint64_t len, offset;
	char error[200];
};

/* With migration and the network proxy, within COLO_MAX_PARTICIPANTS. */
#define COLO_MAX_DISKS 6

/*
 * Wraps the disk `image` (taken over, also on failure) for the role and
 * registers it with c. *guest is the backend the guest's device gets (the
 * device owns it; the colo_disk must be freed before the device is).
 * overlay_dir: where the secondary's overlays live (sparse temporary files).
 * by_qmp: the links are set up by QMP (a pair set up by hand: the primary's
 * x-blockdev-change, the secondary's nbd-server-add) and the operator makes
 * the disks equal first; else COLO's start copies the image and connects.
 */
int colo_disk_create(struct colo *c, enum colo_mode role, int index, struct blk_backend *image,
		     const char *overlay_dir, bool by_qmp, struct blk_backend **guest,
		     struct colo_disk **out);
/* "disk<index>": the device's name in QMP and the secondary's export name. */
const char *colo_disk_name(const struct colo_disk *d);
/* Secondary: what its NBD export serves (the primary's writes land under the
 * overlays); NULL on a primary (also a secondary that took over and has been
 * protected again, now a primary). Lives as long as d. */
const struct nbd_export *colo_disk_export(struct colo_disk *d);
/* Primary set up by QMP (or a replication=secondary disk that took over: it
 * becomes a primary): from now on every write also goes to link (an NBD
 * client on the secondary's export, owned from now on; link_fd its socket,
 * for dead-peer detection and shutdown) and completes when both have it.
 * -EINVAL (not such a disk), -EBUSY (one attached): link is closed then. */
int colo_disk_attach_replica(struct colo_disk *d, struct blk_backend *link, int link_fd);
/* Back to the local image only; the link is closed. -ENOENT if none. */
int colo_disk_detach_replica(struct colo_disk *d);
bool colo_disk_has_replica(struct colo_disk *d);

/*
 * The replication steps, for a manager that drives them itself (QMP
 * xen-set-replication, xen-colo-do-checkpoint, query-xen-replication-status)
 * instead of COLO. -EINVAL: the disk is not of that mode. Start: a
 * secondary's overlays emptied and in use; a primary's replica must be
 * attached (-ENOTCONN). Checkpoint: a secondary's overlays emptied. Stop: a
 * secondary's overlays committed (failover) or dropped; a primary's replica
 * detached. Error: 0, or -errno with buf saying why (not running, the first
 * error recorded since the start). A failed step says why in
 * colo_disk_repl_failure.
 */
int colo_disk_repl_start(struct colo_disk *d, enum colo_mode mode);
int colo_disk_repl_checkpoint(struct colo_disk *d);
int colo_disk_repl_stop(struct colo_disk *d, bool failover);
int colo_disk_repl_error(struct colo_disk *d, char *buf, size_t len);
void colo_disk_repl_failure(struct colo_disk *d, char *buf, size_t len);
/* Any thread: the job as it is now. */
void colo_disk_get_job(struct colo_disk *d, struct colo_disk_job *out);
const char *colo_disk_job_status_name(enum colo_disk_job_status s);
/* Ends replication (a secondary's server stops) and frees it. NULL is fine. */
void colo_disk_free(struct colo_disk *d);

#endif
