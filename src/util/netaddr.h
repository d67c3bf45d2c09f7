/* "tcp:HOST:PORT" addresses (HOST may be a name, an IPv4 or a [bracketed] IPv6 address),
 * and "unix:PATH" where a socket file serves too (the NBD server). */
#ifndef LOCKSTEP_UTIL_NETADDR_H
#define LOCKSTEP_UTIL_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

struct netaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* -EINVAL with err naming the problem if uri is not tcp:HOST:PORT or HOST does not resolve. */
int netaddr_parse_tcp(const char *uri, struct netaddr *out, char *err, size_t errlen);
/* tcp:HOST:PORT as netaddr_parse_tcp, or unix:PATH (-EINVAL: an empty or too long PATH). */
int netaddr_parse(const char *uri, struct netaddr *out, char *err, size_t errlen);
/* A listening socket (SO_REUSEADDR) or a connected one; -errno. */
int netaddr_listen(const struct netaddr *a);
int netaddr_connect(const struct netaddr *a);
/* The same, giving up after timeout_ms (-ETIMEDOUT): a dead host cannot hold
 * the caller for TCP's minutes. The socket has no timeouts afterwards. */
int netaddr_connect_timeout(const struct netaddr *a, unsigned timeout_ms);

#endif
