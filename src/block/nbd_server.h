/*
 * An NBD server for one connection: fixed newstyle handshake, then simple
 * replies to READ / WRITE (FUA) / FLUSH / DISC against the struct blk_backend
 * of the export the client chose. It is the secondary's end of the disk replication link
 * and must also answer standard clients (nbdinfo, nbdcopy, qemu-img); what it
 * implements and refuses is listed in docs/nbd.md.
 *
 * A connection is served by one blocking call on the caller's thread; the
 * caller stops it from any other thread with nbd_server_stop(fd), after which
 * the call returns as soon as the request in hand (if any) is done.
 */
#ifndef LOCKSTEP_BLOCK_NBD_SERVER_H
#define LOCKSTEP_BLOCK_NBD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "block/backend.h"

/* Advertised in NBD_INFO_BLOCK_SIZE and enforced: a longer request gets EINVAL. */
#define NBD_SERVER_MIN_BLOCK       1u
#define NBD_SERVER_PREFERRED_BLOCK 4096u
#define NBD_SERVER_MAX_BLOCK       (32u << 20)
/* Option data longer than this is refused and ends the session (NBD_OPT_GO
 * with the longest name the protocol allows and a few dozen info requests fit). */
#define NBD_SERVER_MAX_OPTION      8192u

struct nbd_export {
	const char *name;       /* what the client asks for; "" (the default export) also matches */
	struct blk_backend *be; /* not owned; read-only exports follow be->readonly */
	/* Every request's offset and length a multiple of this (a power of two up
	 * to 4096), advertised and enforced (EINVAL); 0 means 1. The replication
	 * export needs 512: it works in whole sectors. */
	uint32_t min_block;
};

/* The export's minimum block size (min_block, or 1). */
static inline uint32_t nbd_export_min_block(const struct nbd_export *exp)
{
	return exp->min_block ? exp->min_block : NBD_SERVER_MIN_BLOCK;
}

/* Where a connection's bytes come from and go to: a socket for
 * nbd_server_serve_fd, a byte buffer for the fuzz target. */
struct nbd_io_ops {
	/* Up to len bytes: the count (> 0), 0 at end of stream, or -errno (-EINTR is retried). */
	ssize_t (*read)(void *opaque, void *buf, size_t len);
	/* Up to len bytes: the count (> 0) or -errno (-EINTR is retried). */
	ssize_t (*write)(void *opaque, const void *buf, size_t len);
};

/*
 * Serves one connection until it ends. 0 when the client ended it (NBD_CMD_DISC
 * or NBD_OPT_ABORT); otherwise -errno with err (if not NULL) saying why:
 * -ECONNRESET the peer went away (or nbd_server_stop), -EPROTO a protocol
 * violation (bad magic, unknown client flags), -EMSGSIZE an oversized option,
 * -ENOENT NBD_OPT_EXPORT_NAME named no export, -ENOMEM, or a socket error.
 * Backend errors are answered to the client and do not end the session.
 */
int nbd_server_serve(const struct nbd_io_ops *ops, void *opaque, const struct nbd_export *exp,
		     char *err, size_t errlen);

/* The same with nexps (>= 1) exports to choose from: a client asking for the
 * default export ("") gets the first; NBD_OPT_LIST lists them all. */
int nbd_server_serve_exports(const struct nbd_io_ops *ops, void *opaque, const struct nbd_export *exps,
			     int nexps, char *err, size_t errlen);

/* The same over a connected socket the caller owns and closes; the
 * connection is shut down (the peer sees end of stream) when this returns. */
int nbd_server_serve_fd(int fd, const struct nbd_export *exp, char *err, size_t errlen);
int nbd_server_serve_fd_exports(int fd, const struct nbd_export *exps, int nexps, char *err,
				size_t errlen);

/* Ends a nbd_server_serve_fd on fd from another thread (shutdown(2): the
 * serving thread's reads see end of stream). The caller still closes fd. */
void nbd_server_stop(int fd);

/* A listening socket for "unix:PATH" or "tcp:HOST:PORT", or -errno with err (not NULL)
 * naming the problem (-EINVAL a malformed address, -EADDRINUSE a PATH that exists). */
int nbd_server_listen(const char *addr, char *err, size_t errlen);

/* The NBD error value (NBD_EIO, ...) for a backend's -errno. */
uint32_t nbd_error_from_errno(int neg_errno);

#endif
