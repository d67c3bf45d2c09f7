#include "state/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/stream.h"
#include "state/vmstate.h"

static int snapshot_write_all(struct vm *vm, int fd)
{
	struct stream_out out;
	int ret = stream_out_init(&out, fd);

	if (ret < 0)
		return ret;
	if ((ret = vmstate_write_header(&out)) || (ret = vmstate_write_config(&out, vm)) ||
	    (ret = vmstate_write_ram(&out, vm, NULL, NULL)) ||
	    (ret = vmstate_write_machine(&out, vm)) || (ret = vmstate_write_end(&out)))
		goto out;
	if (fsync(fd) < 0)
		ret = -errno;
out:
	stream_out_free(&out);
	return ret;
}

int snapshot_save(struct vm *vm, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "snapshot path too long");
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return ret;
	}
	ret = snapshot_write_all(vm, fd);
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		snprintf(err, errlen, "writing snapshot %s: %s", path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}

static int snapshot_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
	return fd < 0 ? -errno : fd;
}

/* One pass over the open file, from its start, with a loader; returns the loader's verdict. */
static int snapshot_read(struct vmstate_loader *l, int fd, const char *path, char *err, size_t errlen)
{
	struct stream_in in;
	int ret;

	if (lseek(fd, 0, SEEK_SET) < 0) {
		snprintf(err, errlen, "snapshot %s: %s", path, strerror(errno));
		return -errno;
	}
	ret = stream_in_init(&in, fd);
	if (ret == 0)
		ret = vmstate_load_stream(l, &in);
	if (ret == 0) {
		uint8_t extra;

		if (stream_in_read(&in, &extra, 1) == 0) {
			snprintf(l->error, sizeof(l->error), "trailing bytes after END");
			ret = -EINVAL;
		}
	}
	if (ret < 0)
		snprintf(err, errlen, "snapshot %s: %s", path, l->error[0] ? l->error : strerror(-ret));
	stream_in_free(&in);
	return ret;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int snapshot_load(struct vm *vm, const char *path, char *err, size_t errlen)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct stat before, after;
	int fd, ret;

	if (!l)
		return -ENOMEM;
	fd = snapshot_open(path, err, errlen);
	if (fd < 0) {
		free(l);
		return fd;
	}
	/* Pass 1: check everything and collect the machine records; RAM untouched. */
	vmstate_loader_init(l, vm, 0);
	ret = fstat(fd, &before) < 0 ? -errno : snapshot_read(l, fd, path, err, errlen);
	/* The same open file is read again; refuse if it changed in between. */
	if (ret == 0 && (fstat(fd, &after) < 0 || !same_file(&before, &after))) {
		snprintf(err, errlen, "snapshot %s changed while being loaded", path);
		ret = -EAGAIN;
	}
	if (ret == 0) {
		ret = vmstate_apply_machine(l);
		if (ret < 0)
			snprintf(err, errlen, "snapshot %s: %s", path, l->error);
	}
	vmstate_loader_free(l);
	/* Pass 2: RAM (the file was fully checked, so only I/O can fail now). */
	if (ret == 0) {
		vmstate_loader_init(l, vm, 1);
		ret = snapshot_read(l, fd, path, err, errlen);
		vmstate_loader_free(l);
	}
	close(fd);
	free(l);
	return ret;
}

int snapshot_restore_fresh(struct vm *vm, const char *path, char *err, size_t errlen)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	int fd, ret;

	if (!l)
		return -ENOMEM;
	vmstate_loader_init(l, vm, 1);
	l->ram_is_zero = 1;
	fd = snapshot_open(path, err, errlen);
	ret = fd < 0 ? fd : snapshot_read(l, fd, path, err, errlen);
	if (fd >= 0)
		close(fd);
	if (ret == 0) {
		ret = vmstate_apply_machine(l);
		if (ret < 0)
			snprintf(err, errlen, "snapshot %s: %s", path, l->error);
	}
	vmstate_loader_free(l);
	free(l);
	return ret;
}
