#include "block/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct blk_file {
	struct blk_backend be; /* first: the ops get it back from be */
	int fd;
	uint64_t size; /* bytes, at open time */
};

static struct blk_file *to_file(struct blk_backend *be) { return (struct blk_file *)be; }

/* Bytes in the file or block device (lseek works for both; st_size is 0 for
 * a block device). -errno if it is neither. */
static int64_t file_size_of(int fd)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	end = lseek(fd, 0, SEEK_END);
	return end < 0 ? -errno : (int64_t)end;
}

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

static int fd_xfer(int fd, struct iovec *iov, int cnt, uint64_t off, int write)
{
	int first = 0;

	while (first < cnt) {
		ssize_t n;

		if (iov[first].iov_len == 0) {
			first++;
			continue;
		}
		n = write ? pwritev(fd, iov + first, cnt - first, (off_t)off)
			  : preadv(fd, iov + first, cnt - first, (off_t)off);
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

int blk_fd_preadv(int fd, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return fd_xfer(fd, iov, iovcnt, offset, 0);
}

int blk_fd_pwritev(int fd, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return fd_xfer(fd, iov, iovcnt, offset, 1);
}

static int file_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return blk_fd_preadv(to_file(be)->fd, iov, iovcnt, offset);
}

static int file_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return blk_fd_pwritev(to_file(be)->fd, iov, iovcnt, offset);
}

static int file_flush(struct blk_backend *be)
{
	if (be->readonly)
		return 0;
	return fdatasync(to_file(be)->fd) < 0 ? -errno : 0;
}

static uint64_t file_size(struct blk_backend *be) { return to_file(be)->size; }

static void file_close(struct blk_backend *be)
{
	struct blk_file *f = to_file(be);

	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

static const struct blk_backend_ops blk_file_ops = {
	.kind = "file",
	.preadv = file_preadv,
	.pwritev = file_pwritev,
	.flush = file_flush,
	.size = file_size,
	.close = file_close,
};

int blk_file_open(const char *path, bool readonly, struct blk_backend **out)
{
	struct blk_file *f = calloc(1, sizeof(*f));
	int64_t size;

	if (!f)
		return -ENOMEM;
	f->be = (struct blk_backend){ .ops = &blk_file_ops, .readonly = readonly };
	f->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (f->fd < 0) {
		int err = -errno;

		free(f);
		return err;
	}
	size = file_size_of(f->fd);
	if (size < 0) {
		file_close(&f->be);
		return (int)size;
	}
	f->size = (uint64_t)size;
	*out = &f->be;
	return 0;
}
