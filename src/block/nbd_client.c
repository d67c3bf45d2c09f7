#include "block/nbd_client.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/netaddr.h"

/* libnbd refuses requests over 64 MiB and our server over 32 MiB. */
#define NBD_CLIENT_MAX_REQUEST (32u << 20)

struct nbd_client {
	struct blk_backend be; /* first */
	struct nbd_handle *h;
	uint64_t size;
};

static struct nbd_client *to_client(struct blk_backend *be) { return (struct nbd_client *)be; }

/* libnbd's errno for the call that just failed, never 0. */
static int last_error(void)
{
	int e = nbd_get_errno();

	return e > 0 ? -e : -EIO;
}

static int nbd_transfer(struct nbd_client *c, struct iovec *iov, int iovcnt, uint64_t offset,
			bool write)
{
	for (int i = 0; i < iovcnt; i++) {
		char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			size_t n = left < NBD_CLIENT_MAX_REQUEST ? left : NBD_CLIENT_MAX_REQUEST;
			int ret = write ? nbd_pwrite(c->h, p, n, offset, 0) : nbd_pread(c->h, p, n, offset, 0);

			if (ret < 0)
				return last_error();
			p += n;
			left -= n;
			offset += n;
		}
	}
	return 0;
}

static int client_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return nbd_transfer(to_client(be), iov, iovcnt, offset, false);
}

static int client_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t offset)
{
	return nbd_transfer(to_client(be), iov, iovcnt, offset, true);
}

static int client_flush(struct blk_backend *be)
{
	return nbd_flush(to_client(be)->h, 0) < 0 ? last_error() : 0;
}

static uint64_t client_size(struct blk_backend *be) { return to_client(be)->size; }

/*
 * Whether NBD_CMD_DISC can still be sent. libnbd 1.14's nbd_shutdown reads
 * memory it has freed when writing DISC fails (valgrind: a server that hung
 * up, or our own shutdown(2) of a dead secondary's link before the close), so
 * a link that is down gets no DISC: ready in libnbd's eyes and no hang-up or
 * error on the socket.
 */
static bool link_alive(struct nbd_handle *h)
{
	struct pollfd p = { .fd = nbd_aio_get_fd(h), .events = POLLOUT | POLLRDHUP };

	if (!nbd_aio_is_ready(h) || p.fd < 0 || poll(&p, 1, 0) < 0)
		return false;
	return !(p.revents & (POLLERR | POLLHUP | POLLRDHUP));
}

static void client_close(struct blk_backend *be)
{
	struct nbd_client *c = to_client(be);

	if (c->h) {
		if (link_alive(c->h))
			nbd_shutdown(c->h, 0); /* NBD_CMD_DISC: the server ends the session cleanly */
		nbd_close(c->h);
	}
	free(c);
}

static const struct blk_backend_ops nbd_client_ops = {
	.kind = "nbd",
	.preadv = client_preadv,
	.pwritev = client_pwritev,
	.flush = client_flush,
	.size = client_size,
	.close = client_close,
};

static struct nbd_client *client_new(char *err, size_t errlen)
{
	struct nbd_client *c = calloc(1, sizeof(*c));

	if (c && !(c->h = nbd_create())) {
		free(c);
		c = NULL;
	}
	if (!c)
		snprintf(err, errlen, "out of memory");
	else
		c->be.ops = &nbd_client_ops;
	return c;
}

/* After a connect call (ret): size and read-only from the server, or the error. */
static int client_finish(struct nbd_client *c, int ret, struct blk_backend **out, char *err,
			 size_t errlen)
{
	int64_t size = ret < 0 ? -1 : nbd_get_size(c->h);
	int ro = size < 0 ? -1 : nbd_is_read_only(c->h);

	if (ret < 0 || size < 0 || ro < 0) {
		ret = last_error();
		snprintf(err, errlen, "%s", nbd_get_error() ? nbd_get_error() : "NBD connection failed");
		client_close(&c->be);
		return ret;
	}
	c->size = (uint64_t)size;
	c->be.readonly = ro == 1;
	*out = &c->be;
	return 0;
}

int blk_nbd_connect_uri(const char *uri, struct blk_backend **out, char *err, size_t errlen)
{
	struct nbd_client *c = client_new(err, errlen);

	if (!c)
		return -ENOMEM;
	return client_finish(c, nbd_connect_uri(c->h, uri), out, err, errlen);
}

int blk_nbd_connect_fd(int fd, const char *export_name, struct blk_backend **out, char *err,
		       size_t errlen)
{
	struct nbd_client *c = client_new(err, errlen);
	int ret;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	ret = nbd_set_export_name(c->h, export_name);
	if (ret == 0)
		ret = nbd_connect_socket(c->h, fd); /* the handle owns fd from here, even on failure */
	else
		close(fd);
	return client_finish(c, ret, out, err, errlen);
}

/* SO_RCVTIMEO and SO_SNDTIMEO: the handshake's bound (0: none). */
static void set_io_timeout(int fd, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

int blk_nbd_connect_addr(const char *addr, const char *export_name, unsigned timeout_ms,
			 struct blk_backend **out, int *fd, char *err, size_t errlen)
{
	struct netaddr na;
	int ret;

	if (errlen)
		err[0] = '\0';
	*fd = -1;
	if ((ret = netaddr_parse(addr, &na, err, errlen)) < 0)
		return ret;
	if ((*fd = netaddr_connect_timeout(&na, timeout_ms)) < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", addr, strerror(-*fd));
		return *fd;
	}
	set_io_timeout(*fd, timeout_ms);
	ret = blk_nbd_connect_fd(*fd, export_name, out, err, errlen);
	if (ret < 0)
		*fd = -1; /* closed with the client */
	else
		set_io_timeout(*fd, 0); /* from now on the link's own rules (keepalive) */
	return ret;
}
