#include "block/overlay.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/file.h"

#define BITS 64u

struct overlay {
	int fd;
	uint64_t size;     /* bytes, a whole number of sectors */
	uint64_t sectors;
	uint64_t *present; /* one bit per sector */
};

static bool aligned(uint64_t v) { return v % OVERLAY_SECTOR == 0; }

/* 0 if [offset, offset + len) is whole sectors inside the overlay. */
static int check_range(const struct overlay *o, uint64_t offset, uint64_t len)
{
	if (!aligned(offset) || !aligned(len))
		return -EINVAL;
	return offset > o->size || len > o->size - offset ? -EIO : 0;
}

static bool bit_get(const struct overlay *o, uint64_t s)
{
	return o->present[s / BITS] >> (s % BITS) & 1;
}

static void bits_set(struct overlay *o, uint64_t s, uint64_t n)
{
	for (; n && s % BITS; s++, n--)
		o->present[s / BITS] |= 1ull << (s % BITS);
	for (; n >= BITS; s += BITS, n -= BITS)
		o->present[s / BITS] = ~0ull;
	for (; n; s++, n--)
		o->present[s / BITS] |= 1ull << (s % BITS);
}

static uint64_t map_words(uint64_t sectors) { return (sectors + BITS - 1) / BITS; }

/* Takes fd (closed on failure). */
static int overlay_new(int fd, uint64_t size, struct overlay **out)
{
	struct overlay *o;

	if (!aligned(size) || size == 0) {
		close(fd);
		return -EINVAL;
	}
	o = calloc(1, sizeof(*o));
	if (o)
		o->present = calloc(map_words(size / OVERLAY_SECTOR), sizeof(uint64_t));
	if (!o || !o->present) {
		free(o);
		close(fd);
		return -ENOMEM;
	}
	o->fd = fd;
	o->size = size;
	o->sectors = size / OVERLAY_SECTOR;
	*out = o;
	return 0;
}

/* An fd on a new file nobody can name: O_TMPFILE, else mkstemp + unlink. */
static int unnamed_file(const char *dir)
{
	char *path;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) /* not "unsupported" */
		return -errno;
	if (asprintf(&path, "%s/lockstep-overlay-XXXXXX", dir) < 0)
		return -ENOMEM;
	fd = mkostemp(path, O_CLOEXEC);
	fd = fd < 0 ? -errno : fd;
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd;
}

int overlay_create(const char *dir, uint64_t size, struct overlay **out)
{
	int fd = unnamed_file(dir);

	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return overlay_new(fd, size, out);
}

int overlay_open(const char *path, struct overlay **out)
{
	struct stat st;
	int ret, fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	ret = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
	if (ret < 0) { /* (a directory already failed to open: EISDIR) */
		close(fd);
		return ret;
	}
	ret = overlay_new(fd, (uint64_t)st.st_size, out);
	if (ret == 0 && (ret = overlay_make_empty(*out)) < 0) /* old content: not ours */
		overlay_close(*out);
	return ret;
}

void overlay_close(struct overlay *o)
{
	if (!o)
		return;
	close(o->fd);
	free(o->present);
	free(o);
}

uint64_t overlay_size(const struct overlay *o) { return o->size; }

int overlay_preadv(struct overlay *o, struct iovec *iov, int iovcnt, uint64_t offset)
{
	int ret = check_range(o, offset, blk_iov_bytes(iov, iovcnt));

	return ret < 0 ? ret : blk_fd_preadv(o->fd, iov, iovcnt, offset);
}

int overlay_pwritev(struct overlay *o, struct iovec *iov, int iovcnt, uint64_t offset)
{
	uint64_t len = blk_iov_bytes(iov, iovcnt);
	int ret = check_range(o, offset, len);

	if (ret == 0)
		ret = blk_fd_pwritev(o->fd, iov, iovcnt, offset);
	if (ret == 0)
		bits_set(o, offset / OVERLAY_SECTOR, len / OVERLAY_SECTOR);
	return ret;
}

uint64_t overlay_run(const struct overlay *o, uint64_t offset, uint64_t len, bool *present)
{
	uint64_t first = offset / OVERLAY_SECTOR, s = first;
	uint64_t end = first + len / OVERLAY_SECTOR;
	uint64_t same; /* a whole word of this value is all one state */

	assert(check_range(o, offset, len) == 0 && len > 0);
	*present = bit_get(o, s);
	same = *present ? ~0ull : 0;
	for (s++; s < end; s++) {
		if (s % BITS == 0)
			while (end - s >= BITS && o->present[s / BITS] == same)
				s += BITS;
		if (s >= end || bit_get(o, s) != *present)
			break;
	}
	return (s - first) * OVERLAY_SECTOR;
}

/* Gives the file's space back: a hole over everything, or, where holes
 * cannot be punched, truncating to nothing and back to full length. */
static int release_space(struct overlay *o)
{
	if (fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)o->size) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	if (ftruncate(o->fd, 0) < 0 || ftruncate(o->fd, (off_t)o->size) < 0)
		return -errno;
	return 0;
}

int overlay_make_empty(struct overlay *o)
{
	memset(o->present, 0, map_words(o->sectors) * sizeof(uint64_t));
	return release_space(o);
}
