/*
 * The primary's side: a write forwarder to the secondary. The guest's reads
 * are served by its local disk, never here. While running, a forwarding
 * error is recorded (the COLO engine sees it through repl_get_error and
 * abandons the secondary) but not returned: the guest's write succeeded on
 * the local disk, and a failing replica must not fail the guest.
 */
#include <stdio.h>

#include "block/replication_internal.h"

static int primary_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	(void)be, (void)iov, (void)iovcnt, (void)offset;
	return -EIO;
}

static int primary_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct replication *r = repl_of(be);
	int ret = -EIO;

	pthread_mutex_lock(&r->lock);
	if (r->stage == REPL_STAGE_RUNNING) {
		ret = blk_backend_pwritev(r->child, iov, iovcnt, offset);
		if (ret < 0)
			repl_record(r, ret, "forwarding a write at byte %llu to the secondary",
				    (unsigned long long)offset);
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int primary_flush(struct blk_backend *be)
{
	struct replication *r = repl_of(be);
	int ret = -EIO;

	pthread_mutex_lock(&r->lock);
	if (r->stage == REPL_STAGE_RUNNING) {
		ret = blk_backend_flush(r->child);
		if (ret < 0)
			repl_record(r, ret, "flushing the secondary");
		ret = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static uint64_t primary_size(struct blk_backend *be) { return blk_backend_size(repl_of(be)->child); }

static void primary_close(struct blk_backend *be) { repl_free(repl_of(be)); }

static const struct blk_backend_ops primary_ops = {
	.kind = "replication-primary",
	.preadv = primary_preadv,
	.pwritev = primary_pwritev,
	.flush = primary_flush,
	.size = primary_size,
	.close = primary_close,
};

int repl_primary_create(struct blk_backend *child, struct replication **out)
{
	struct replication *r;

	if (!child)
		return -EINVAL;
	r = repl_alloc(REPL_MODE_PRIMARY, &primary_ops, child);
	if (!r) {
		blk_backend_close(child);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}
