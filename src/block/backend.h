/*
 * A block backend: where a virtual disk's bytes live, behind one ops table.
 * The raw image file (block/file.c) is the first; the replication primary and
 * secondary and an NBD client plug in the same way, and a device does not
 * know which one it has.
 *
 * Calls are synchronous and may block for as long as the backend needs (a
 * disk, a network round trip): a device makes them on its I/O worker thread,
 * never on a vCPU or under vm->io_lock, and one call at a time. A backend
 * must not need io_lock or the event loop to make progress: a VM pause holds
 * the one and may run on the other while it waits for the I/O in flight.
 * Transfers are whole: a backend retries short transfers itself and returns
 * 0 or -errno, never a partial count.
 */
#ifndef LOCKSTEP_BLOCK_BACKEND_H
#define LOCKSTEP_BLOCK_BACKEND_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_backend;

struct blk_backend_ops {
	const char *kind; /* "file", ... : for messages */
	/* [offset, offset + iov bytes): iov may be consumed (advanced) in the
	 * process. -EIO past the end. pwritev is never called on a read-only
	 * backend (blk_backend_pwritev answers -EROFS itself). */
	int (*preadv)(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset);
	int (*pwritev)(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset);
	/* Every write completed so far is durable once this returns 0. */
	int (*flush)(struct blk_backend *be);
	/* Bytes, fixed for the backend's life. */
	uint64_t (*size)(struct blk_backend *be);
	/* Releases everything and frees be. */
	void (*close)(struct blk_backend *be);
};

/* Embedded first in each backend's own struct. */
struct blk_backend {
	const struct blk_backend_ops *ops;
	bool readonly; /* writes fail with -EROFS; the device offers VIRTIO_BLK_F_RO */
};

static inline int blk_backend_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt,
				     uint64_t offset)
{
	return be->ops->preadv(be, iov, iovcnt, offset);
}

static inline int blk_backend_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt,
				      uint64_t offset)
{
	return be->readonly ? -EROFS : be->ops->pwritev(be, iov, iovcnt, offset);
}

static inline int blk_backend_flush(struct blk_backend *be) { return be->ops->flush(be); }

static inline uint64_t blk_backend_size(struct blk_backend *be) { return be->ops->size(be); }

/* Bytes an iovec array describes. */
static inline uint64_t blk_iov_bytes(const struct iovec *iov, int iovcnt)
{
	uint64_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* NULL is fine: nothing to close. */
static inline void blk_backend_close(struct blk_backend *be)
{
	if (be)
		be->ops->close(be);
}

#endif
