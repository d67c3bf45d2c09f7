#include "block/file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int blk_file_open(struct blk_file *f, const char *path, int readonly)
{
	struct stat st;
	off_t end;
	int err;

	f->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	f->readonly = readonly;
	f->size = 0;
	if (f->fd < 0)
		return -errno;
	if (fstat(f->fd, &st) < 0) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto fail;
	}
	/* lseek works for block devices too, where st_size is 0. */
	end = lseek(f->fd, 0, SEEK_END);
	if (end < 0) {
		err = -errno;
		goto fail;
	}
	f->size = (uint64_t)end;
	return 0;
fail:
	blk_file_close(f);
	return err;
}

void blk_file_close(struct blk_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

uint64_t blk_file_size(const struct blk_file *f) { return f->size; }

/* Drops n transferred bytes from the front of iov[*first..cnt). */
static void iov_advance(struct iovec *iov, int cnt, int *first, size_t n)
{
	while (*first < cnt && n >= iov[*first].iov_len) {
		n -= iov[*first].iov_len;
		(*first)++;
	}
	if (*first < cnt && n) {
		iov[*first].iov_base = (char *)iov[*first].iov_base + n;
		iov[*first].iov_len -= n;
	}
}

static int blk_file_xfer(struct blk_file *f, struct iovec *iov, int cnt, uint64_t off, int write)
{
	int first = 0;

	while (first < cnt) {
		ssize_t n;

		if (iov[first].iov_len == 0) {
			first++;
			continue;
		}
		n = write ? pwritev(f->fd, iov + first, cnt - first, (off_t)off)
			  : preadv(f->fd, iov + first, cnt - first, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) /* end of file (or a write that makes no progress) */
			return -EIO;
		off += (uint64_t)n;
		iov_advance(iov, cnt, &first, (size_t)n);
	}
	return 0;
}

int blk_file_preadv(struct blk_file *f, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return blk_file_xfer(f, iov, iovcnt, offset, 0);
}

int blk_file_pwritev(struct blk_file *f, struct iovec *iov, int iovcnt, uint64_t offset)
{
	if (f->readonly)
		return -EROFS;
	return blk_file_xfer(f, iov, iovcnt, offset, 1);
}

int blk_file_flush(struct blk_file *f)
{
	if (f->readonly)
		return 0;
	return fdatasync(f->fd) < 0 ? -errno : 0;
}
