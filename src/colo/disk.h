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

#include "block/backend.h"
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
 */
int colo_disk_create(struct colo *c, enum colo_mode role, int index, struct blk_backend *image,
		     const char *overlay_dir, struct blk_backend **guest, struct colo_disk **out);
/* Any thread: the job as it is now. */
void colo_disk_get_job(struct colo_disk *d, struct colo_disk_job *out);
const char *colo_disk_job_status_name(enum colo_disk_job_status s);
/* Ends replication (a secondary's server stops) and frees it. NULL is fine. */
void colo_disk_free(struct colo_disk *d);

#endif
