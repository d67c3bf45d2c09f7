/*
 * NBD client backend: a disk served by an NBD server (the replication link's
 * primary end: the secondary's export). libnbd does the protocol; this file
 * only maps a struct blk_backend onto it. Calls block until the server
 * answers, so they belong on a disk's I/O worker, like every backend call.
 */
#ifndef LOCKSTEP_BLOCK_NBD_CLIENT_H
#define LOCKSTEP_BLOCK_NBD_CLIENT_H

#include <stddef.h>

#include "block/backend.h"

/* Connects to an NBD URI ("nbd://host:port/name", "nbd+unix:///name?socket=PATH").
 * -errno with err saying why (the server's or libnbd's words). */
int blk_nbd_connect_uri(const char *uri, struct blk_backend **out, char *err, size_t errlen);
/* The same over a socket already connected to the server; the backend owns fd. */
int blk_nbd_connect_fd(int fd, const char *export_name, struct blk_backend **out, char *err,
		       size_t errlen);

/*
 * Connects to the server at addr ("tcp:HOST:PORT" or "unix:PATH") and opens
 * export_name, giving up after timeout_ms (connect and handshake) so that a
 * dead host cannot hold the caller for TCP's minutes. *fd: the socket (the
 * backend owns it; for shutdown and socket options only). -errno with err.
 */
int blk_nbd_connect_addr(const char *addr, const char *export_name, unsigned timeout_ms,
			 struct blk_backend **out, int *fd, char *err, size_t errlen);

#endif
