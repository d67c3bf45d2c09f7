#include "block/mirror.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct blk_mirror {
	struct blk_backend be; /* first */
	struct blk_backend *local, *replica;
	bool attached; /* atomic: writes go to the replica too */
};

static struct blk_mirror *to_mirror(struct blk_backend *be) { return (struct blk_mirror *)be; }

static bool replicating(struct blk_mirror *m) { return __atomic_load_n(&m->attached, __ATOMIC_ACQUIRE); }

static int mirror_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return blk_backend_preadv(to_mirror(be)->local, iov, iovcnt, offset);
}

/* Backends may consume the iovecs they are given: each gets its own copy. */
static int mirror_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct blk_mirror *m = to_mirror(be);
	struct iovec copy[iovcnt > 0 ? iovcnt : 1];
	int ret;

	for (int i = 0; i < iovcnt; i++)
		copy[i] = iov[i];
	ret = blk_backend_pwritev(m->local, iov, iovcnt, offset);
	if (ret == 0 && replicating(m))
		blk_backend_pwritev(m->replica, copy, iovcnt, offset); /* errors: the forwarder's */
	return ret;
}

static int mirror_flush(struct blk_backend *be)
{
	struct blk_mirror *m = to_mirror(be);
	int ret = blk_backend_flush(m->local);

	if (ret == 0 && replicating(m))
		blk_backend_flush(m->replica);
	return ret;
}

static uint64_t mirror_size(struct blk_backend *be) { return blk_backend_size(to_mirror(be)->local); }

static void mirror_close(struct blk_backend *be)
{
	struct blk_mirror *m = to_mirror(be);

	blk_backend_close(m->replica);
	blk_backend_close(m->local);
	free(m);
}

static const struct blk_backend_ops mirror_ops = {
	.kind = "mirror",
	.preadv = mirror_preadv,
	.pwritev = mirror_pwritev,
	.flush = mirror_flush,
	.size = mirror_size,
	.close = mirror_close,
};

int blk_mirror_create(struct blk_backend *local, struct blk_backend *replica,
		      struct blk_backend **out)
{
	struct blk_mirror *m = NULL;
	int ret = -EINVAL;

	if (local && replica && blk_backend_size(local) == blk_backend_size(replica)) {
		m = calloc(1, sizeof(*m));
		ret = m ? 0 : -ENOMEM;
	}
	if (ret < 0) {
		blk_backend_close(replica);
		blk_backend_close(local);
		return ret;
	}
	m->be.ops = &mirror_ops;
	m->be.readonly = local->readonly;
	m->local = local;
	m->replica = replica;
	*out = &m->be;
	return 0;
}

void blk_mirror_attach_replica(struct blk_backend *mirror)
{
	__atomic_store_n(&to_mirror(mirror)->attached, true, __ATOMIC_RELEASE);
}

void blk_mirror_detach_replica(struct blk_backend *mirror)
{
	__atomic_store_n(&to_mirror(mirror)->attached, false, __ATOMIC_RELEASE);
}
