/*
 * Raw image file backend: the guest's disk is the file's bytes, offset for
 * offset. Transfers are synchronous and complete (a short read or write is
 * retried until done or failed), so callers never see partial results.
 */
#ifndef LOCKSTEP_BLOCK_FILE_H
#define LOCKSTEP_BLOCK_FILE_H

#include <stdbool.h>

#include "block/backend.h"

/* Opens a regular file or block device, read-only or read-write, as a
 * backend the caller owns (blk_backend_close). -errno on failure: -ENOENT
 * missing, -EACCES not readable/writable, -EISDIR a directory, -EINVAL
 * anything else that is not a file or block device. */
int blk_file_open(const char *path, bool readonly, struct blk_backend **out);

/* The same whole transfers on any file descriptor (the overlays use them):
 * 0, or -errno (-EIO at end of file). iov may be consumed. */
int blk_fd_preadv(int fd, struct iovec *iov, int iovcnt, uint64_t offset);
int blk_fd_pwritev(int fd, struct iovec *iov, int iovcnt, uint64_t offset);

#endif
