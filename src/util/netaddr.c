#include "util/netaddr.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int split_host_port(const char *rest, char *host, size_t hostlen, const char **port)
{
	const char *colon;
	size_t n;

	if (rest[0] == '[') {
		const char *end = strchr(rest, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - rest - 1);
		rest++;
		colon = end + 1;
	} else {
		colon = strrchr(rest, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - rest);
	}
	if (n >= hostlen)
		return -EINVAL;
	memcpy(host, rest, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

int netaddr_parse_tcp(const char *uri, struct netaddr *out, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *res;
	char host[256];
	const char *port;
	char *end;
	long p;
	int rc;

	if (strncmp(uri, "tcp:", 4) != 0 || split_host_port(uri + 4, host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "'%s' is not tcp:HOST:PORT", uri);
		return -EINVAL;
	}
	p = strtol(port, &end, 10);
	if (!*port || *end || p < 1 || p > 65535) {
		snprintf(err, errlen, "'%s': bad port '%s'", uri, port);
		return -EINVAL;
	}
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "'%s': %s", uri, gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int netaddr_parse(const char *uri, struct netaddr *out, char *err, size_t errlen)
{
	struct sockaddr_un *sa = (struct sockaddr_un *)&out->ss;
	const char *path = uri + 5;

	if (strncmp(uri, "unix:", 5) != 0)
		return netaddr_parse_tcp(uri, out, err, errlen);
	if (!*path || strlen(path) >= sizeof(sa->sun_path)) {
		snprintf(err, errlen, "unix socket path '%s' is empty or too long", path);
		return -EINVAL;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, path);
	out->len = sizeof(*sa);
	return 0;
}

static int netaddr_socket(const struct netaddr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	if (a->ss.ss_family != AF_UNIX) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

int netaddr_listen(const struct netaddr *a)
{
	int fd = netaddr_socket(a);

	if (fd < 0)
		return fd;
	/* A few pending: a COLO secondary's listener takes the migration, the
	 * network link and each disk's connections; an NBD server its clients. */
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 8) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int netaddr_connect(const struct netaddr *a)
{
	int fd = netaddr_socket(a);

	if (fd < 0)
		return fd;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void set_send_timeout(int fd, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int netaddr_connect_timeout(const struct netaddr *a, unsigned timeout_ms)
{
	int fd = netaddr_socket(a);

	if (fd < 0)
		return fd;
	set_send_timeout(fd, timeout_ms); /* SO_SNDTIMEO bounds connect(2) */
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		int err = errno == EINPROGRESS ? -ETIMEDOUT : -errno;

		close(fd);
		return err;
	}
	set_send_timeout(fd, 0);
	return fd;
}
