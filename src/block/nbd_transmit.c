/*
 * The NBD server's transmission phase: one request at a time, each checked
 * (flags, range, size, read-only) before the backend sees it, answered with a
 * simple reply. A bad request gets an error reply and the session goes on; only
 * a broken stream (bad magic, the peer gone) ends it. A write's payload is
 * always read off the stream, even when the write is refused (too long, out of
 * range, read-only), so the next request header is where the client put it.
 */
#include <errno.h>
#include <string.h>

#include "block/nbd_session.h"

/* NBD_CMD_FLAG_FUA is valid on every command once NBD_FLAG_SEND_FUA is
 * advertised; nothing else is (no structured replies, no zero writes). */
#define VALID_CMD_FLAGS NBD_CMD_FLAG_FUA

static void put_reply_header(uint8_t *r, uint64_t cookie, uint32_t error)
{
	nbd_put32(r, NBD_MAGIC_SIMPLE_REPLY);
	nbd_put32(r + 4, error);
	nbd_put64(r + 8, cookie);
}

static int send_status(struct nbd_session *s, const struct nbd_request *req, uint32_t error)
{
	uint8_t r[NBD_SIMPLE_REPLY_LEN];

	put_reply_header(r, req->cookie, error);
	return nbd_send(s, r, sizeof(r), "a reply");
}

/* Success with the data already at s->buf + NBD_SIMPLE_REPLY_LEN: one send,
 * so a TCP link carries header and data together. */
static int send_data(struct nbd_session *s, const struct nbd_request *req)
{
	put_reply_header(s->buf, req->cookie, 0);
	return nbd_send(s, s->buf, NBD_SIMPLE_REPLY_LEN + (size_t)req->length, "read data");
}

static bool in_range(const struct nbd_session *s, const struct nbd_request *req)
{
	return req->offset <= s->size && req->length <= s->size - req->offset;
}

/* Offset and length whole blocks of the export's minimum size. */
static bool aligned(const struct nbd_session *s, const struct nbd_request *req)
{
	uint32_t mask = nbd_export_min_block(s->exp) - 1;

	return !(req->offset & mask) && !(req->length & mask);
}

/* s->buf holds the reply header and req's data after it; false if it cannot grow. */
static bool reserve_payload(struct nbd_session *s, const struct nbd_request *req)
{
	return nbd_buf_reserve(s, NBD_SIMPLE_REPLY_LEN + (size_t)req->length) == 0;
}

static int cmd_read(struct nbd_session *s, const struct nbd_request *req)
{
	struct iovec iov;
	int ret;

	if ((req->flags & ~VALID_CMD_FLAGS) || req->length > NBD_SERVER_MAX_BLOCK || !aligned(s, req) ||
	    !in_range(s, req))
		return send_status(s, req, NBD_EINVAL);
	if (!reserve_payload(s, req))
		return send_status(s, req, NBD_ENOMEM);
	if (req->length) {
		iov = (struct iovec){ s->buf + NBD_SIMPLE_REPLY_LEN, req->length };
		ret = blk_backend_preadv(s->exp->be, &iov, 1, req->offset);
		if (ret < 0)
			return send_status(s, req, nbd_error_from_errno(ret));
	}
	return send_data(s, req);
}

/* 0 if the write may go to the backend, else the NBD error it gets. The
 * protocol asks for ENOSPC (not EINVAL) for a write past the end. */
static uint32_t write_refusal(const struct nbd_session *s, const struct nbd_request *req)
{
	if (req->length > NBD_SERVER_MAX_BLOCK || (req->flags & ~VALID_CMD_FLAGS) || !aligned(s, req))
		return NBD_EINVAL;
	if (s->exp->be->readonly)
		return NBD_EPERM;
	if (!in_range(s, req))
		return NBD_ENOSPC;
	return 0;
}

/* A refused write's payload is read and dropped (in small pieces, never
 * buffered), so the connection stays usable. */
static int cmd_write(struct nbd_session *s, const struct nbd_request *req)
{
	struct iovec iov;
	uint32_t error = write_refusal(s, req);
	int ret;

	if (!error && !reserve_payload(s, req))
		error = NBD_ENOMEM;
	if (error) {
		ret = nbd_discard(s, req->length, "a refused write's payload");
		return ret < 0 ? ret : send_status(s, req, error);
	}
	ret = nbd_recv(s, s->buf + NBD_SIMPLE_REPLY_LEN, req->length, "a write's payload");
	if (ret < 0)
		return ret;
	iov = (struct iovec){ s->buf + NBD_SIMPLE_REPLY_LEN, req->length };
	ret = req->length ? blk_backend_pwritev(s->exp->be, &iov, 1, req->offset) : 0;
	if (ret == 0 && (req->flags & NBD_CMD_FLAG_FUA))
		ret = blk_backend_flush(s->exp->be);
	return send_status(s, req, ret < 0 ? nbd_error_from_errno(ret) : 0);
}

static int cmd_flush(struct nbd_session *s, const struct nbd_request *req)
{
	int ret;

	if ((req->flags & ~VALID_CMD_FLAGS) || req->offset || req->length)
		return send_status(s, req, NBD_EINVAL);
	ret = blk_backend_flush(s->exp->be);
	return send_status(s, req, ret < 0 ? nbd_error_from_errno(ret) : 0);
}

/* One request header: 0 and *req, or -errno (the stream cannot go on). */
static int recv_request(struct nbd_session *s, struct nbd_request *req)
{
	uint8_t h[NBD_REQUEST_LEN];
	uint32_t magic;
	int ret = nbd_recv(s, h, sizeof(h), "a request");

	if (ret < 0)
		return ret;
	magic = nbd_get32(h);
	if (magic != NBD_MAGIC_REQUEST)
		return nbd_fail(s, -EPROTO, "bad request magic 0x%08x", magic);
	*req = (struct nbd_request){
		.flags = nbd_get16(h + 4),
		.type = nbd_get16(h + 6),
		.cookie = nbd_get64(h + 8),
		.offset = nbd_get64(h + 16),
		.length = nbd_get32(h + 24),
	};
	return 0;
}

int nbd_transmit(struct nbd_session *s)
{
	for (;;) {
		struct nbd_request req = { 0 };
		int ret = recv_request(s, &req);

		if (ret < 0)
			return ret;
		switch (req.type) {
		case NBD_CMD_READ:
			ret = cmd_read(s, &req);
			break;
		case NBD_CMD_WRITE:
			ret = cmd_write(s, &req);
			break;
		case NBD_CMD_FLUSH:
			ret = cmd_flush(s, &req);
			break;
		case NBD_CMD_DISC:
			return 0;
		default: /* TRIM, WRITE_ZEROES, BLOCK_STATUS...: not advertised */
			ret = send_status(s, &req, NBD_EINVAL);
			break;
		}
		if (ret < 0)
			return ret;
	}
}
