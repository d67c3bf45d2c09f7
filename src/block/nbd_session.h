/*
 * One NBD connection's state, shared by the server's parts (nbd_server.c:
 * I/O and entry points; nbd_handshake.c: option haggling; nbd_transmit.c:
 * requests). Not for use outside src/block/nbd_*.c.
 */
#ifndef LOCKSTEP_BLOCK_NBD_SESSION_H
#define LOCKSTEP_BLOCK_NBD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/nbd_proto.h"
#include "block/nbd_server.h"

struct nbd_session {
	const struct nbd_io_ops *ops;
	void *opaque;
	const struct nbd_export *exps; /* what the server offers (nexps >= 1) */
	int nexps;
	const struct nbd_export *exp;  /* the one the client chose (first: exps[0]) */
	uint64_t size;  /* exp's, read when it is chosen */
	bool no_zeroes; /* the client set NBD_FLAG_C_NO_ZEROES */
	/* Reply header room, then a request's payload; grown on demand up to
	 * NBD_SIMPLE_REPLY_LEN + NBD_SERVER_MAX_BLOCK. */
	uint8_t *buf;
	size_t buf_cap;
	uint8_t opt[NBD_SERVER_MAX_OPTION]; /* one option's data */
	char *err;
	size_t errlen;
};

/* Sets the session's error message; returns ret (a -errno) for tail calls. */
int nbd_fail(struct nbd_session *s, int ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Exactly len bytes: 0, -ECONNRESET if the stream ends first, or -errno.
 * what names the message for the error text. */
int nbd_recv(struct nbd_session *s, void *buf, size_t len, const char *what);
int nbd_send(struct nbd_session *s, const void *buf, size_t len, const char *what);
/* Reads and drops len bytes (a payload the server will not use). */
int nbd_discard(struct nbd_session *s, uint64_t len, const char *what);

/* s->buf with room for at least len bytes; -ENOMEM leaves it as it was. */
int nbd_buf_reserve(struct nbd_session *s, size_t len);

/* Option haggling up to the transmission phase: 1 to go on to transmission,
 * 0 when the client aborted, -errno as nbd_server_serve. */
int nbd_handshake(struct nbd_session *s);
/* Requests until NBD_CMD_DISC (0) or an error (-errno). */
int nbd_transmit(struct nbd_session *s);

/* The transmission flags for the export. */
uint16_t nbd_export_flags(const struct nbd_session *s);

#endif
