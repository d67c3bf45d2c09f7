/* Serving one virtio-blk request against the backend, on the I/O worker. */
#include "dev/virtio_blk_req.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

_Static_assert(sizeof(struct virtio_blk_req_hdr) == VIRTIO_BLK_HDR_BYTES, "blk header");

int virtio_blk_req_parse(struct virtio_blk_req *r)
{
	const struct virtq_chain *c = &r->chain;

	if (c->readable_len < sizeof(r->hdr) || c->writable_len < 1 ||
	    virtq_chain_read(c, 0, &r->hdr, sizeof(r->hdr)))
		return -EINVAL;
	return 0;
}

/* [sector, sector + len) inside the disk, whole sectors, and not absurdly long.
 * capacity never changes, so the worker may read it. */
static bool blk_range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
	return len % VIRTIO_BLK_SECTOR_SIZE == 0 && len <= VIRTIO_BLK_MAX_XFER &&
	       sector <= b->capacity && len / VIRTIO_BLK_SECTOR_SIZE <= b->capacity - sector;
}

static uint8_t host_error(struct virtio_blk_req *r, const char *op, int err)
{
	r->host_err = err;
	r->op = op;
	return VIRTIO_BLK_S_IOERR;
}

/* IN: the data is the writable part before the status byte. */
static uint8_t req_read(struct virtio_blk_req *r)
{
	struct virtio_blk *b = r->blk;
	uint64_t len = r->chain.writable_len - 1;
	int n, ret;

	if (!blk_range_ok(b, r->hdr.sector, len))
		return VIRTIO_BLK_S_IOERR;
	n = virtq_chain_iov(&r->chain, true, 0, len, b->iov, VIRTQ_MAX_SEGS);
	ret = n < 0 ? n : blk_backend_preadv(b->backend, b->iov, n,
					     r->hdr.sector * VIRTIO_BLK_SECTOR_SIZE);
	virtq_chain_written(&r->chain, 0, len);
	if (ret < 0)
		return host_error(r, "read", ret);
	r->written = (uint32_t)len;
	r->bytes = len;
	return VIRTIO_BLK_S_OK;
}

/* OUT: the data is the readable part after the header. */
static uint8_t req_write(struct virtio_blk_req *r)
{
	struct virtio_blk *b = r->blk;
	uint64_t len = r->chain.readable_len - VIRTIO_BLK_HDR_BYTES;
	int n, ret;

	if (b->backend->readonly || !blk_range_ok(b, r->hdr.sector, len))
		return VIRTIO_BLK_S_IOERR;
	n = virtq_chain_iov(&r->chain, false, VIRTIO_BLK_HDR_BYTES, len, b->iov, VIRTQ_MAX_SEGS);
	ret = n < 0 ? n : blk_backend_pwritev(b->backend, b->iov, n,
					      r->hdr.sector * VIRTIO_BLK_SECTOR_SIZE);
	if (ret < 0)
		return host_error(r, "write", ret);
	r->bytes = len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t req_flush(struct virtio_blk_req *r)
{
	int ret = blk_backend_flush(r->blk->backend);

	return ret < 0 ? host_error(r, "flush", ret) : VIRTIO_BLK_S_OK;
}

/* The serial, NUL-padded to 20 bytes, cut to the room the driver gave. */
static uint8_t req_get_id(struct virtio_blk_req *r)
{
	uint64_t room = r->chain.writable_len - 1;
	char id[VIRTIO_BLK_ID_BYTES] = { 0 };

	memcpy(id, r->blk->serial, strnlen(r->blk->serial, sizeof(id)));
	r->written = room < sizeof(id) ? (uint32_t)room : sizeof(id);
	virtq_chain_write(&r->chain, 0, id, r->written);
	return VIRTIO_BLK_S_OK;
}

void virtio_blk_req_run(struct blk_job *job)
{
	struct virtio_blk_req *r = (struct virtio_blk_req *)job;
	uint32_t delay = virtio_blk_test_delay(r->blk);

	if (delay)
		blk_worker_sleep(&r->blk->worker, delay);
	r->written = 0;
	r->bytes = 0;
	r->host_err = 0;
	r->op = NULL;
	switch (r->hdr.type) {
	case VIRTIO_BLK_T_IN: r->status = req_read(r); break;
	case VIRTIO_BLK_T_OUT: r->status = req_write(r); break;
	case VIRTIO_BLK_T_FLUSH: r->status = req_flush(r); break;
	case VIRTIO_BLK_T_GET_ID: r->status = req_get_id(r); break;
	default: r->status = VIRTIO_BLK_S_UNSUPP; break;
	}
}

static void count_error(struct virtio_blk *b, const struct virtio_blk_req *r)
{
	/* Log the first one only: a failing disk would otherwise flood the log. */
	if (b->stats.io_errors++ == 0 && r->host_err)
		log_warn("%s: %s failed: %s", b->mmio.name, r->op, strerror(-r->host_err));
}

static void count_success(struct virtio_blk *b, const struct virtio_blk_req *r)
{
	switch (r->hdr.type) {
	case VIRTIO_BLK_T_IN:
		b->stats.reads++;
		b->stats.read_bytes += r->bytes;
		break;
	case VIRTIO_BLK_T_OUT:
		b->stats.writes++;
		b->stats.write_bytes += r->bytes;
		break;
	case VIRTIO_BLK_T_FLUSH: b->stats.flushes++; break;
	case VIRTIO_BLK_T_GET_ID: b->stats.get_ids++; break;
	}
}

int virtio_blk_req_finish(struct virtio_blk_req *r)
{
	struct virtio_blk *b = r->blk;

	if (r->status == VIRTIO_BLK_S_IOERR)
		count_error(b, r);
	else if (r->status == VIRTIO_BLK_S_UNSUPP)
		b->stats.unsupported++;
	else
		count_success(b, r);
	return virtq_chain_write(&r->chain, r->chain.writable_len - 1, &r->status, 1);
}
