/*
 * Listening sockets for the NBD server: "unix:PATH" (what nbdinfo and
 * nbdcopy reach as nbd+unix:///NAME?socket=PATH) or "tcp:HOST:PORT".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "block/nbd_server.h"
#include "util/netaddr.h"

static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix socket path '%s' is empty or too long", path);
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

int nbd_server_listen(const char *addr, char *err, size_t errlen)
{
	struct netaddr na;
	int ret;

	if (strncmp(addr, "unix:", 5) == 0)
		return listen_unix(addr + 5, err, errlen);
	ret = netaddr_parse_tcp(addr, &na, err, errlen);
	if (ret < 0)
		return ret;
	ret = netaddr_listen(&na);
	if (ret < 0)
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(-ret));
	return ret;
}
