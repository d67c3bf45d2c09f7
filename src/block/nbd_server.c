/*
 * The NBD server's entry points and its byte I/O: whole messages over the
 * connection's ops (short transfers and EINTR retried), the socket ops, stop.
 */
#include "block/nbd_server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "block/nbd_session.h"

int nbd_fail(struct nbd_session *s, int ret, const char *fmt, ...)
{
	va_list ap;

	if (s->err && s->errlen) {
		va_start(ap, fmt);
		vsnprintf(s->err, s->errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

int nbd_recv(struct nbd_session *s, void *buf, size_t len, const char *what)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = s->ops->read(s->opaque, (uint8_t *)buf + done, len - done);

		if (n == -EINTR)
			continue;
		if (n == 0)
			return nbd_fail(s, -ECONNRESET, "client closed the connection %s %s",
					done ? "in the middle of" : "before", what);
		if (n < 0)
			return nbd_fail(s, (int)n, "reading %s: %s", what, strerror((int)-n));
		done += (size_t)n;
	}
	return 0;
}

int nbd_send(struct nbd_session *s, const void *buf, size_t len, const char *what)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = s->ops->write(s->opaque, (const uint8_t *)buf + done, len - done);

		if (n == -EINTR)
			continue;
		if (n <= 0) {
			int ret = n < 0 ? (int)n : -EIO;

			return nbd_fail(s, ret == -EPIPE ? -ECONNRESET : ret, "sending %s: %s", what,
					strerror(-ret));
		}
		done += (size_t)n;
	}
	return 0;
}

int nbd_discard(struct nbd_session *s, uint64_t len, const char *what)
{
	uint8_t scratch[4096];

	while (len) {
		size_t chunk = len < sizeof(scratch) ? (size_t)len : sizeof(scratch);
		int ret = nbd_recv(s, scratch, chunk, what);

		if (ret < 0)
			return ret;
		len -= chunk;
	}
	return 0;
}

int nbd_buf_reserve(struct nbd_session *s, size_t len)
{
	size_t cap = s->buf_cap ? s->buf_cap : 64 * 1024;
	uint8_t *buf;

	if (len <= s->buf_cap)
		return 0;
	while (cap < len)
		cap *= 2;
	buf = realloc(s->buf, cap);
	if (!buf)
		return -ENOMEM;
	s->buf = buf;
	s->buf_cap = cap;
	return 0;
}

uint32_t nbd_error_from_errno(int neg_errno)
{
	switch (-neg_errno) {
	case EPERM:
	case EROFS:
	case EACCES:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default: /* EIO and anything the protocol has no value for */
		return NBD_EIO;
	}
}

uint16_t nbd_export_flags(const struct nbd_session *s)
{
	uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;

	if (s->exp->be->readonly)
		flags |= NBD_FLAG_READ_ONLY;
	return flags;
}

/* Each export's minimum block size must be a power of two up to 4096. */
static int check_exports(const struct nbd_export *exps, int nexps, char *err, size_t errlen)
{
	if (nexps < 1) {
		if (err && errlen)
			snprintf(err, errlen, "no export to serve");
		return -EINVAL;
	}
	for (int i = 0; i < nexps; i++) {
		uint32_t min_block = nbd_export_min_block(&exps[i]);

		if ((min_block & (min_block - 1)) || min_block > 4096) {
			if (err && errlen)
				snprintf(err, errlen,
					 "export %s: minimum block size %u is not a power of two up to 4096",
					 exps[i].name, min_block);
			return -EINVAL;
		}
	}
	return 0;
}

int nbd_server_serve_exports(const struct nbd_io_ops *ops, void *opaque, const struct nbd_export *exps,
			     int nexps, char *err, size_t errlen)
{
	struct nbd_session *s;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if ((ret = check_exports(exps, nexps, err, errlen)) < 0)
		return ret;
	s = calloc(1, sizeof(*s)); /* big: the option buffer */
	if (!s) {
		if (err && errlen)
			snprintf(err, errlen, "no memory for an NBD session");
		return -ENOMEM;
	}
	*s = (struct nbd_session){ .ops = ops, .opaque = opaque, .exps = exps, .nexps = nexps,
				   .exp = &exps[0], .err = err, .errlen = errlen };
	s->size = blk_backend_size(exps[0].be);
	ret = nbd_handshake(s);
	if (ret > 0)
		ret = nbd_transmit(s);
	free(s->buf);
	free(s);
	return ret;
}

int nbd_server_serve(const struct nbd_io_ops *ops, void *opaque, const struct nbd_export *exp,
		     char *err, size_t errlen)
{
	return nbd_server_serve_exports(ops, opaque, exp, 1, err, errlen);
}

/* Socket ops: send() without SIGPIPE where fd is a socket, write() otherwise. */
static ssize_t fd_read(void *opaque, void *buf, size_t len)
{
	ssize_t n = read(*(int *)opaque, buf, len);

	return n < 0 ? -errno : n;
}

static ssize_t fd_write(void *opaque, const void *buf, size_t len)
{
	int fd = *(int *)opaque;
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	if (n < 0 && errno == ENOTSOCK)
		n = write(fd, buf, len);
	return n < 0 ? -errno : n;
}

static const struct nbd_io_ops nbd_fd_ops = { .read = fd_read, .write = fd_write };

int nbd_server_serve_fd_exports(int fd, const struct nbd_export *exps, int nexps, char *err,
				size_t errlen)
{
	int ret = nbd_server_serve_exports(&nbd_fd_ops, &fd, exps, nexps, err, errlen);

	/* The protocol has the server close the connection after NBD_CMD_DISC
	 * (the client waits for that); the fd itself stays the caller's. */
	shutdown(fd, SHUT_RDWR);
	return ret;
}

int nbd_server_serve_fd(int fd, const struct nbd_export *exp, char *err, size_t errlen)
{
	return nbd_server_serve_fd_exports(fd, exp, 1, err, errlen);
}

void nbd_server_stop(int fd) { shutdown(fd, SHUT_RDWR); }
