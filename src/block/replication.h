/*
 * COLO block replication: the secondary's disk follows the primary's, while
 * the secondary's guest sees its own disk as of the last checkpoint plus its
 * own writes (docs/block-replication.md).
 *
 * Primary: a write forwarder over a child backend (the link to the
 * secondary). It never serves reads; while running, a write the child
 * fails is recorded (repl_get_error) but reported as done, so a failing
 * replica never fails the guest's I/O.
 *
 * Secondary: the secondary disk, where the primary's writes land
 * (repl_secondary_primary_write), and two overlays on top of it (block/
 * overlay.h): `hidden` keeps the pre-image of every sector the primary
 * overwrote since the last checkpoint, `active` the guest's own writes. The
 * guest's backend reads active, else hidden, else the disk; it writes active.
 * A checkpoint empties both; a failover commits them into the disk.
 *
 * Stages: NONE (not started), RUNNING, FAILOVER (the commit under way; it
 * holds the lock, so no caller sees it), FAILOVER_FAILED (the commit failed:
 * the guest runs on the overlays), DONE.
 *
 *  stage            primary r/w      secondary guest read  secondary guest write
 *  NONE             fail / fail      fail                  fail
 *  RUNNING          fail / forward   active>hidden>disk    active
 *  FAILOVER_FAILED  -                active>hidden>disk    active where an overlay holds
 *                                                          the sector, else the disk
 *  DONE             fail / fail      disk                  disk
 *
 * Thread safety: every call may come from any thread (the guest's I/O
 * worker, the replication link's server, the COLO engine); a replication
 * serialises them with its own mutex, never the VM's io_lock.
 */
#ifndef LOCKSTEP_BLOCK_REPLICATION_H
#define LOCKSTEP_BLOCK_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/backend.h"
#include "block/overlay.h"

enum repl_mode { REPL_MODE_PRIMARY, REPL_MODE_SECONDARY };

enum repl_stage {
	REPL_STAGE_NONE,
	REPL_STAGE_RUNNING,
	REPL_STAGE_FAILOVER,
	REPL_STAGE_FAILOVER_FAILED,
	REPL_STAGE_DONE,
};

struct replication;

/* Both take ownership of what they are given, also when they fail. */
int repl_primary_create(struct blk_backend *child, struct replication **out);
/* active and hidden may be NULL here: repl_start then refuses to start. */
int repl_secondary_create(struct blk_backend *disk, struct overlay *active,
			  struct overlay *hidden, struct replication **out);

/* The backend the guest's device uses (the forwarder on a primary). It
 * belongs to the replication: closing it is repl_free. */
struct blk_backend *repl_backend(struct replication *r);
/* Stops a running replication without failover, frees it and everything it
 * owns (in FAILOVER_FAILED, what the overlays still hold is lost). NULL is
 * fine. */
void repl_free(struct replication *r);

/*
 * The operations the COLO engine drives; 0 or -errno, and on failure
 * repl_last_failure says why.
 * - start: NONE -> RUNNING for the configured mode (-EINVAL for the other
 *   mode or another stage). Ignored (0) after a failover (FAILOVER, DONE): a
 *   promoted secondary may later act as a primary. The secondary checks that
 *   both overlays are there and the three lengths equal (-EINVAL), empties the
 *   overlays; either side clears the recorded error.
 * - do_checkpoint: the secondary empties both overlays (a failure is also
 *   recorded: the checkpoint must be aborted). Ignored after a failover.
 * - stop(failover): RUNNING -> DONE. A secondary without failover drops the
 *   overlays (its guest is discarded); with failover it commits them into the
 *   disk, synchronously, and ends in DONE or, if the commit failed, in
 *   FAILOVER_FAILED with the error recorded (stop(true) there tries again).
 *   Ignored after a failover.
 */
int repl_start(struct replication *r, enum repl_mode mode);
int repl_do_checkpoint(struct replication *r);
int repl_stop(struct replication *r, bool failover);

/* The replication's health: -ENOTCONN "not running" in NONE, else the first
 * error recorded since start (-errno and its message), else 0 (buf ""). */
int repl_get_error(struct replication *r, char *buf, size_t len);
/* Why the last call that returned an error failed ("" if none did). */
void repl_last_failure(struct replication *r, char *buf, size_t len);
enum repl_stage repl_stage(struct replication *r);
const char *repl_stage_name(enum repl_stage s);

/*
 * Secondary: a write from the primary (what the replication link's server
 * calls), whole sectors. RUNNING: each sector's current content is first
 * saved in hidden unless an overlay already holds that sector (copy before
 * write), then the write goes to the disk. NONE: straight to the disk (the
 * initial synchronisation before start). After RUNNING: -EIO, the primary is
 * gone. A failure is returned and recorded.
 */
int repl_secondary_primary_write(struct replication *r, struct iovec *iov, int iovcnt,
				 uint64_t offset);

/*
 * Secondary: the backend the replication link's server exports to the
 * primary: writes are repl_secondary_primary_write, reads and flushes go to
 * the secondary disk itself (what a tool such as nbdcopy should see). It
 * belongs to the replication; closing it does nothing. Export it with a
 * minimum block size of 512 (whole sectors only).
 */
struct blk_backend *repl_secondary_export(struct replication *r);

#endif
