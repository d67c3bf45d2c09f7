/*
 * RESP, the Redis protocol (RESP2): requests are arrays of bulk strings
 * ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or inline lines ("PING\r\n", which
 * redis-benchmark's PING_INLINE sends); replies are simple strings, errors,
 * integers, bulk strings and arrays.
 */
#ifndef GUEST_SERVICES_RESP_H
#define GUEST_SERVICES_RESP_H

#include "buf.h"

#define RESP_MAX_ARGS 1024
#define RESP_MAX_BULK (64u * 1024 * 1024)
#define RESP_MAX_INLINE (64 * 1024)

struct resp_cmd {
	int argc;
	const char *argv[RESP_MAX_ARGS]; /* point into the parsed bytes */
	size_t argl[RESP_MAX_ARGS];
};

/* Parses the request at the start of data[0..len). Returns the bytes it
 * takes (> 0; cmd->argc may be 0 for an empty line), 0 when more bytes are
 * needed, or -1 when the bytes are not RESP (*err says why). */
long resp_parse(const char *data, size_t len, struct resp_cmd *cmd, const char **err);

/* Replies, appended to out; each returns 0 or -1 (out of memory). */
int resp_simple(struct buf *out, const char *s);      /* +s */
int resp_error(struct buf *out, const char *s);       /* -s */
int resp_int(struct buf *out, int64_t v);             /* :v */
int resp_bulk(struct buf *out, const void *p, size_t len);
int resp_bulk_str(struct buf *out, const char *s);
int resp_null(struct buf *out);                       /* $-1 */
int resp_array(struct buf *out, size_t n);            /* *n, then n replies */

#endif
