#include "block/mirror.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct blk_mirror {
	struct blk_backend be; /* first */
	struct blk_backend *local;
	/* Held across each write and flush: a detach waits for the one under
	 * way, so the replica's owner may free it as soon as detach returns. One
	 * I/O worker per disk makes the writes one at a time anyway. */
	pthread_mutex_t lock;
	struct blk_backend *replica; /* borrowed, NULL when detached */
};

static struct blk_mirror *to_mirror(struct blk_backend *be) { return (struct blk_mirror *)be; }

static int mirror_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return blk_backend_preadv(to_mirror(be)->local, iov, iovcnt, offset);
}

/* Backends may consume the iovecs they are given: the replica gets its own copy. */
static int mirror_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct blk_mirror *m = to_mirror(be);
	struct iovec copy[iovcnt > 0 ? iovcnt : 1];
	int ret;

	for (int i = 0; i < iovcnt; i++)
		copy[i] = iov[i];
	pthread_mutex_lock(&m->lock);
	ret = blk_backend_pwritev(m->local, iov, iovcnt, offset);
	if (ret == 0 && m->replica)
		blk_backend_pwritev(m->replica, copy, iovcnt, offset); /* errors: the forwarder's */
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mirror_flush(struct blk_backend *be)
{
	struct blk_mirror *m = to_mirror(be);
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = blk_backend_flush(m->local);
	if (ret == 0 && m->replica)
		blk_backend_flush(m->replica);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static uint64_t mirror_size(struct blk_backend *be) { return blk_backend_size(to_mirror(be)->local); }

static void mirror_close(struct blk_backend *be)
{
	struct blk_mirror *m = to_mirror(be);

	blk_backend_close(m->local);
	pthread_mutex_destroy(&m->lock);
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

int blk_mirror_create(struct blk_backend *local, struct blk_backend **out)
{
	struct blk_mirror *m = local ? calloc(1, sizeof(*m)) : NULL;

	if (!m) {
		blk_backend_close(local);
		return local ? -ENOMEM : -EINVAL;
	}
	m->be.ops = &mirror_ops;
	m->be.readonly = local->readonly;
	m->local = local;
	pthread_mutex_init(&m->lock, NULL);
	*out = &m->be;
	return 0;
}

int blk_mirror_attach_replica(struct blk_backend *mirror, struct blk_backend *replica)
{
	struct blk_mirror *m = to_mirror(mirror);
	int ret = 0;

	if (blk_backend_size(replica) != blk_backend_size(m->local))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->replica)
		ret = -EBUSY;
	else
		m->replica = replica;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void blk_mirror_detach_replica(struct blk_backend *mirror)
{
	struct blk_mirror *m = to_mirror(mirror);

	pthread_mutex_lock(&m->lock);
	m->replica = NULL;
	pthread_mutex_unlock(&m->lock);
}
