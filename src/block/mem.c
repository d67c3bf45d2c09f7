#include "block/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct blk_mem {
	struct blk_backend be; /* first: the ops get it back from be */
	uint64_t size;
	uint8_t *data;
};

static struct blk_mem *to_mem(struct blk_backend *be) { return (struct blk_mem *)be; }

/* Copies between the disk at offset and iov, in the direction write says;
 * -EIO if the transfer runs past the end (as a file would). */
static int mem_xfer(struct blk_mem *m, struct iovec *iov, int cnt, uint64_t offset, bool write)
{
	for (int i = 0; i < cnt; i++) {
		size_t len = iov[i].iov_len;

		if (offset > m->size || len > m->size - offset)
			return -EIO;
		if (write)
			memcpy(m->data + offset, iov[i].iov_base, len);
		else
			memcpy(iov[i].iov_base, m->data + offset, len);
		offset += len;
	}
	return 0;
}

static int mem_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return mem_xfer(to_mem(be), iov, iovcnt, offset, false);
}

static int mem_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return mem_xfer(to_mem(be), iov, iovcnt, offset, true);
}

static int mem_flush(struct blk_backend *be)
{
	(void)be; /* nothing is more durable than it already is */
	return 0;
}

static uint64_t mem_size(struct blk_backend *be) { return to_mem(be)->size; }

static void mem_close(struct blk_backend *be)
{
	struct blk_mem *m = to_mem(be);

	free(m->data);
	free(m);
}

static const struct blk_backend_ops blk_mem_ops = {
	.kind = "mem",
	.preadv = mem_preadv,
	.pwritev = mem_pwritev,
	.flush = mem_flush,
	.size = mem_size,
	.close = mem_close,
};

int blk_mem_create(uint64_t size, bool readonly, struct blk_backend **out)
{
	struct blk_mem *m = calloc(1, sizeof(*m));

	if (!m || size > SIZE_MAX)
		goto nomem;
	m->data = calloc(1, size ? (size_t)size : 1);
	if (!m->data)
		goto nomem;
	m->be = (struct blk_backend){ .ops = &blk_mem_ops, .readonly = readonly };
	m->size = size;
	*out = &m->be;
	return 0;
nomem:
	free(m);
	return -ENOMEM;
}

uint8_t *blk_mem_data(struct blk_backend *be) { return to_mem(be)->data; }
