/*
 * The secondary's side: the guest's view composed of three layers, active >
 * hidden > secondary disk, resolved run by run (a run: sectors that come
 * from the same layer); the primary's writes with copy before write; the
 * checkpoint; the failover commit.
 *
 * The commit is synchronous: stop(failover) returns once active and hidden
 * are in the disk. That is safe because it holds r->lock throughout: no
 * guest I/O or primary write can see or change a half-merged disk, and the
 * overlays stay intact until the whole commit succeeded, so a failed one
 * can be retried. The cost: the takeover, and the guest's disk I/O (its
 * worker thread waits on the lock, its vCPUs do not), wait for copying what
 * the secondary wrote and the primary overwrote since the last checkpoint,
 * which is bounded by one checkpoint interval's writes.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "block/replication_internal.h"

enum layer { LAYER_ACTIVE, LAYER_HIDDEN, LAYER_DISK };

static const char *const layer_names[] = { "active overlay", "hidden overlay", "secondary disk" };

/* The run at offset (at most len bytes) and the topmost layer holding it. */
static uint64_t layer_run(struct replication *r, uint64_t offset, uint64_t len, enum layer *l)
{
	bool present;
	uint64_t n = overlay_run(r->active, offset, len, &present);

	if (present) {
		*l = LAYER_ACTIVE;
		return n;
	}
	n = overlay_run(r->hidden, offset, n, &present);
	*l = present ? LAYER_HIDDEN : LAYER_DISK;
	return n;
}

static int layer_io(struct replication *r, enum layer l, bool write, struct iovec *iov, int cnt,
		    uint64_t offset)
{
	struct overlay *o = l == LAYER_ACTIVE ? r->active : r->hidden;

	if (l == LAYER_DISK)
		return write ? blk_backend_pwritev(r->child, iov, cnt, offset)
			     : blk_backend_preadv(r->child, iov, cnt, offset);
	return write ? overlay_pwritev(o, iov, cnt, offset) : overlay_preadv(o, iov, cnt, offset);
}

/* [offset, offset + len) from one layer to another, through the bounce buffer. */
static int copy(struct replication *r, enum layer from, enum layer to, uint64_t offset,
		uint64_t len)
{
	while (len) {
		size_t n = len < REPL_COPY_CHUNK ? (size_t)len : REPL_COPY_CHUNK;
		struct iovec iov = { .iov_base = r->bounce, .iov_len = n };
		int ret = layer_io(r, from, false, &iov, 1, offset);

		iov = (struct iovec){ .iov_base = r->bounce, .iov_len = n };
		if (ret == 0)
			ret = layer_io(r, to, true, &iov, 1, offset);
		if (ret < 0)
			return repl_record(r, ret, "copying byte %llu from the %s to the %s",
					   (unsigned long long)offset, layer_names[from],
					   layer_names[to]);
		offset += n;
		len -= n;
	}
	return 0;
}

/* r->slice = bytes [skip, skip + len) of iov (which holds them); its count. */
static int slice(struct replication *r, const struct iovec *iov, int cnt, uint64_t skip,
		 uint64_t len)
{
	int n = 0;

	for (int i = 0; i < cnt && len; i++) {
		size_t take;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - skip < len ? iov[i].iov_len - skip : len;
		r->slice[n++] = (struct iovec){ (char *)iov[i].iov_base + skip, take };
		skip = 0;
		len -= take;
	}
	return n;
}

/* Each run of [offset, offset + len) read from its topmost layer, or written
 * where the stage FAILOVER_FAILED puts it: into active if an overlay holds
 * the sector (the disk would be hidden by it), else straight into the disk. */
static int resolve_io(struct replication *r, bool write, const struct iovec *iov, int cnt,
		      uint64_t offset, uint64_t len)
{
	for (uint64_t done = 0, n; done < len; done += n) {
		enum layer l;
		int k, ret;

		n = layer_run(r, offset + done, len - done, &l);
		if (write)
			l = l == LAYER_DISK ? LAYER_DISK : LAYER_ACTIVE;
		k = slice(r, iov, cnt, done, n);
		ret = layer_io(r, l, write, r->slice, k, offset + done);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* -EINVAL unless whole sectors and few enough iovecs to slice; -EIO past the end. */
static int check_request(struct replication *r, int cnt, uint64_t offset, uint64_t len)
{
	if (cnt > IOV_MAX || offset % OVERLAY_SECTOR || len % OVERLAY_SECTOR)
		return -EINVAL;
	return offset > blk_backend_size(r->child) || len > blk_backend_size(r->child) - offset
		       ? -EIO
		       : 0;
}

static int guest_io(struct replication *r, bool write, struct iovec *iov, int cnt,
		    uint64_t offset)
{
	uint64_t len = blk_iov_bytes(iov, cnt);
	int ret = check_request(r, cnt, offset, len);

	if (ret < 0)
		return ret;
	switch (r->stage) {
	case REPL_STAGE_RUNNING:
	case REPL_STAGE_FAILOVER:
		if (write)
			return overlay_pwritev(r->active, iov, cnt, offset);
		return resolve_io(r, false, iov, cnt, offset, len);
	case REPL_STAGE_FAILOVER_FAILED:
		return resolve_io(r, write, iov, cnt, offset, len);
	case REPL_STAGE_DONE:
		return layer_io(r, LAYER_DISK, write, iov, cnt, offset);
	default: /* NONE: the guest runs only once replication does */
		return -EIO;
	}
}

static int secondary_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct replication *r = repl_of(be);
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = guest_io(r, false, iov, iovcnt, offset);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int secondary_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt,
			     uint64_t offset)
{
	struct replication *r = repl_of(be);
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = guest_io(r, true, iov, iovcnt, offset);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* While the overlays are in use there is nothing to make durable: they are
 * dropped at the next checkpoint, or lost with the process (the map lives in
 * memory). Once the guest writes the disk, its flushes reach the disk. */
static int secondary_flush(struct blk_backend *be)
{
	struct replication *r = repl_of(be);
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (r->stage == REPL_STAGE_NONE)
		ret = -EIO;
	else if (r->stage == REPL_STAGE_FAILOVER_FAILED || r->stage == REPL_STAGE_DONE)
		ret = blk_backend_flush(r->child);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static uint64_t secondary_size(struct blk_backend *be)
{
	return blk_backend_size(repl_of(be)->child);
}

static void secondary_close(struct blk_backend *be) { repl_free(repl_of(be)); }

static const struct blk_backend_ops secondary_ops = {
	.kind = "replication-secondary",
	.preadv = secondary_preadv,
	.pwritev = secondary_pwritev,
	.flush = secondary_flush,
	.size = secondary_size,
	.close = secondary_close,
};

/* ---- the export: the primary's view over the link -------------------------- */

static struct replication *repl_of_export(struct blk_backend *be)
{
	return (struct replication *)((char *)be - offsetof(struct replication, export_be));
}

static int export_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct replication *r = repl_of_export(be);
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = blk_backend_preadv(r->child, iov, iovcnt, offset);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int export_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return repl_secondary_primary_write(repl_of_export(be), iov, iovcnt, offset);
}

static int export_flush(struct blk_backend *be)
{
	struct replication *r = repl_of_export(be);
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = blk_backend_flush(r->child);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static uint64_t export_size(struct blk_backend *be)
{
	return blk_backend_size(repl_of_export(be)->child);
}

static void export_close(struct blk_backend *be) { (void)be; /* the replication owns it */ }

static const struct blk_backend_ops export_ops = {
	.kind = "replication-export",
	.preadv = export_preadv,
	.pwritev = export_pwritev,
	.flush = export_flush,
	.size = export_size,
	.close = export_close,
};

struct blk_backend *repl_secondary_export(struct replication *r)
{
	return r->mode == REPL_MODE_SECONDARY ? &r->export_be : NULL;
}

int repl_secondary_create(struct blk_backend *disk, struct overlay *active,
			  struct overlay *hidden, struct replication **out)
{
	struct replication *r = disk ? repl_alloc(REPL_MODE_SECONDARY, &secondary_ops, disk) : NULL;

	if (!r) {
		blk_backend_close(disk);
		overlay_close(active);
		overlay_close(hidden);
		return disk ? -ENOMEM : -EINVAL;
	}
	r->active = active;
	r->hidden = hidden;
	r->export_be.ops = &export_ops;
	r->bounce = malloc(REPL_COPY_CHUNK);
	if (!r->bounce) {
		repl_free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

/* Copy before write: the disk's current content of every sector in the
 * range that no overlay holds goes to hidden, so the guest still sees it.
 * A sector an overlay holds already is skipped: hidden has its pre-image
 * from an earlier primary write, or active has the guest's own data, which
 * hides the disk and wins at the commit. */
static int save_pre_images(struct replication *r, uint64_t offset, uint64_t len)
{
	for (uint64_t done = 0, n; done < len; done += n) {
		enum layer l;
		int ret;

		n = layer_run(r, offset + done, len - done, &l);
		if (l == LAYER_DISK && (ret = copy(r, LAYER_DISK, LAYER_HIDDEN, offset + done, n)) < 0)
			return ret;
	}
	return 0;
}

int repl_secondary_primary_write(struct replication *r, struct iovec *iov, int iovcnt,
				 uint64_t offset)
{
	uint64_t len = blk_iov_bytes(iov, iovcnt);
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = check_request(r, iovcnt, offset, len);
	if (ret < 0)
		repl_record(r, ret, "primary write of %llu bytes at byte %llu", (unsigned long long)len,
			  (unsigned long long)offset);
	else if (r->stage == REPL_STAGE_RUNNING)
		ret = save_pre_images(r, offset, len);
	else if (r->stage != REPL_STAGE_NONE)
		ret = repl_fail(r, -EIO, "primary write refused: the replication is %s",
				repl_stage_name(r->stage));
	if (ret == 0 && (ret = blk_backend_pwritev(r->child, iov, iovcnt, offset)) < 0)
		repl_record(r, ret, "primary write at byte %llu to the secondary disk",
			    (unsigned long long)offset);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int repl_secondary_start(struct replication *r)
{
	uint64_t size = blk_backend_size(r->child);
	int ret;

	if (!r->active || !r->hidden)
		return repl_fail(r, -EINVAL, "cannot start: no %s", r->active ? "hidden overlay"
										: "active overlay");
	if (overlay_size(r->active) != size || overlay_size(r->hidden) != size)
		return repl_fail(r, -EINVAL,
				 "cannot start: lengths differ (disk %llu, active %llu, hidden %llu)",
				 (unsigned long long)size, (unsigned long long)overlay_size(r->active),
				 (unsigned long long)overlay_size(r->hidden));
	if (r->child->readonly)
		return repl_fail(r, -EROFS, "cannot start: the secondary disk is read-only");
	if ((ret = overlay_make_empty(r->active)) < 0 || (ret = overlay_make_empty(r->hidden)) < 0)
		return repl_fail(r, ret, "cannot start: emptying the overlays");
	return 0;
}

int repl_secondary_checkpoint(struct replication *r)
{
	int ret = overlay_make_empty(r->active);

	if (ret < 0)
		return repl_record(r, ret, "checkpoint: emptying the active overlay");
	ret = overlay_make_empty(r->hidden);
	return ret < 0 ? repl_record(r, ret, "checkpoint: emptying the hidden overlay") : 0;
}

/* Every sector an overlay holds into the disk (active's where both do). */
static int commit(struct replication *r)
{
	uint64_t size = blk_backend_size(r->child);
	int ret;

	for (uint64_t offset = 0, n; offset < size; offset += n) {
		enum layer l;

		n = layer_run(r, offset, size - offset, &l);
		if (l != LAYER_DISK && (ret = copy(r, l, LAYER_DISK, offset, n)) < 0)
			return ret;
	}
	ret = blk_backend_flush(r->child);
	return ret < 0 ? repl_record(r, ret, "failover: flushing the secondary disk") : 0;
}

/* Without failover the guest is discarded, and so is what it wrote. */
static void drop_overlays(struct replication *r)
{
	overlay_close(r->active);
	overlay_close(r->hidden);
	r->active = r->hidden = NULL;
}

int repl_secondary_stop(struct replication *r, bool failover)
{
	int ret;

	if (!failover) {
		drop_overlays(r);
		r->stage = REPL_STAGE_DONE;
		return 0;
	}
	r->stage = REPL_STAGE_FAILOVER;
	ret = commit(r);
	if (ret < 0) {
		r->stage = REPL_STAGE_FAILOVER_FAILED;
		return ret;
	}
	drop_overlays(r);
	r->stage = REPL_STAGE_DONE;
	return 0;
}
