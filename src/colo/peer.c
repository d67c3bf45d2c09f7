#include "colo/peer.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/netaddr.h"

static void set_timeouts(const struct colo_peer *peer, int fd)
{
	struct timeval tv = { .tv_sec = peer->timeout_ms / 1000,
			      .tv_usec = (peer->timeout_ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int send_magic(int fd, const char *magic)
{
	return send(fd, magic, COLO_PEER_MAGIC_LEN, MSG_NOSIGNAL) == COLO_PEER_MAGIC_LEN ? 0 : -EIO;
}

static int expect_magic(int fd, const char *magic)
{
	char got[COLO_PEER_MAGIC_LEN];
	size_t n = 0;

	while (n < sizeof(got)) {
		ssize_t r = recv(fd, got + n, sizeof(got) - n, 0);

		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		n += (size_t)r;
	}
	return memcmp(got, magic, sizeof(got)) == 0 ? 0 : -EPROTO;
}

int colo_peer_connect(const struct colo_peer *peer, const char magic[COLO_PEER_MAGIC_LEN])
{
	struct netaddr addr;
	char err[256];
	int fd, ret = netaddr_parse_tcp(peer->uri, &addr, err, sizeof(err));

	if (ret < 0)
		return ret;
	fd = netaddr_connect(&addr);
	if (fd < 0)
		return fd;
	set_timeouts(peer, fd);
	if ((ret = send_magic(fd, magic)) < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int colo_peer_accept(const struct colo_peer *peer, const char magic[COLO_PEER_MAGIC_LEN])
{
	struct pollfd p = { .fd = peer->listen_fd, .events = POLLIN };
	int fd, ret;

	if (peer->listen_fd < 0)
		return -ENOTCONN;
	if (poll(&p, 1, (int)peer->timeout_ms) <= 0)
		return -ETIMEDOUT;
	fd = accept4(peer->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	set_timeouts(peer, fd);
	if ((ret = expect_magic(fd, magic)) < 0) {
		close(fd);
		return ret;
	}
	return fd;
}
