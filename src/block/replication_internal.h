/*
 * Inside block/replication: the struct both modes share, the stage rules in
 * replication.c, each mode's I/O in replication_primary.c and
 * replication_secondary.c. All but repl_alloc are called with r->lock held.
 */
#ifndef LOCKSTEP_BLOCK_REPLICATION_INTERNAL_H
#define LOCKSTEP_BLOCK_REPLICATION_INTERNAL_H

#include <limits.h>
#include <pthread.h>

#include "block/replication.h"

#define REPL_MSG_LEN 160

struct replication {
	struct blk_backend be; /* first: the ops get r back from it */
	enum repl_mode mode;
	/* Serialises the guest's I/O, the primary's writes and the operations.
	 * It is held across the disk and overlay I/O: simple, and the only cost
	 * is that those wait for each other, which a disk does anyway. */
	pthread_mutex_t lock;
	enum repl_stage stage;
	/* Guards started, err and err_msg, and is never held across I/O: the
	 * error can be read (the COLO engine, QMP) while a forward waits on a
	 * dead secondary under `lock`. Taken after `lock`, never before it. */
	pthread_mutex_t err_lock;
	bool started;               /* repl_start has succeeded once (the stage left NONE) */
	int err;                    /* the first error recorded since start, or 0 */
	char err_msg[REPL_MSG_LEN];
	char why[REPL_MSG_LEN];     /* the last failure (repl_last_failure) */
	/* Primary: where writes are forwarded. Secondary: the secondary disk. */
	struct blk_backend *child;
	/* Secondary only: what the replication link's server exports (repl_secondary_export). */
	struct blk_backend export_be;
	/* Secondary only (closed once DONE). */
	struct overlay *active, *hidden;
	void *bounce;                /* REPL_COPY_CHUNK bytes for copies */
	struct iovec slice[IOV_MAX]; /* a piece of a request's iovecs */
};

#define REPL_COPY_CHUNK (1u << 20)

static inline struct replication *repl_of(struct blk_backend *be)
{
	return (struct replication *)be;
}

/* A new replication in stage NONE owning child; NULL without memory. */
struct replication *repl_alloc(enum repl_mode mode, const struct blk_backend_ops *ops,
			       struct blk_backend *child);
/* Sets why; returns err. */
int repl_fail(struct replication *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Records err for repl_get_error if it is the first since start, sets why;
 * returns err. */
int repl_record(struct replication *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Secondary, from the stage rules: start (NONE), checkpoint (RUNNING), stop
 * (RUNNING, or FAILOVER_FAILED with failover); each sets the stage it ends in. */
int repl_secondary_start(struct replication *r);
int repl_secondary_checkpoint(struct replication *r);
int repl_secondary_stop(struct replication *r, bool failover);

#endif
