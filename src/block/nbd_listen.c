/*
 * Listening sockets for the NBD server: "unix:PATH" (what nbdinfo and
 * nbdcopy reach as nbd+unix:///NAME?socket=PATH) or "tcp:HOST:PORT".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "block/nbd_server.h"
#include "util/netaddr.h"

int nbd_server_listen(const char *addr, char *err, size_t errlen)
{
	struct netaddr na;
	int ret;

	ret = netaddr_parse(addr, &na, err, errlen);
	if (ret < 0)
		return ret;
	ret = netaddr_listen(&na);
	if (ret < 0)
		snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(-ret));
	return ret;
}
