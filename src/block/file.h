/*
 * Raw image file backend: the guest's disk is the file's bytes, offset for
 * offset. Transfers are synchronous and complete (a short read or write is
 * retried until done or failed), so callers never see partial results.
 */
#ifndef LOCKSTEP_BLOCK_FILE_H
#define LOCKSTEP_BLOCK_FILE_H

#include <stdint.h>
#include <sys/uio.h>

struct blk_file {
	int fd;
	int readonly;
	uint64_t size; /* bytes, at open time */
};

/* Opens a regular file or block device, read-only or read-write.
 * -errno on failure (-ENOENT missing, -EACCES not readable/writable, -EISDIR). */
int blk_file_open(struct blk_file *f, const char *path, int readonly);
void blk_file_close(struct blk_file *f);
uint64_t blk_file_size(const struct blk_file *f);

/* Whole transfers at offset; iov is consumed (advanced) in the process.
 * -EIO if the file ends before the range does, -EROFS when writing a read-only file. */
int blk_file_preadv(struct blk_file *f, struct iovec *iov, int iovcnt, uint64_t offset);
int blk_file_pwritev(struct blk_file *f, struct iovec *iov, int iovcnt, uint64_t offset);
/* Makes completed writes durable (fdatasync). */
int blk_file_flush(struct blk_file *f);

#endif
