/*
 * TCP connections of the services, over lwIP's raw API. The layer owns the
 * lwIP callbacks; a service only turns input into output:
 *   - received bytes are appended to c->in; the service's process() consumes
 *     requests from it and appends replies to c->out;
 *   - c->out moves into lwIP's send buffer as room frees up (sent callback);
 *   - flow control: while more than ops->out_high bytes wait in c->out, the
 *     service is not asked for more and the receive window is not reopened,
 *     so a client that does not read its replies is slowed down, not buffered;
 *   - a FIN from the peer closes our side once every reply has been queued.
 */
#ifndef GUEST_SERVICES_CONN_H
#define GUEST_SERVICES_CONN_H

#include "buf.h"
#include "lwip/tcp.h"

struct conn;

struct conn_ops {
	const char *name;
	/* Optional: sets up c->state for a new connection; 0 or -1 (refused). */
	int (*open)(struct conn *c);
	/* Consumes what it can of c->in, appends to c->out; 0, or -1 to reset. */
	int (*process)(struct conn *c);
	/* Optional: frees c->state. */
	void (*release)(struct conn *c);
	size_t out_high;
	size_t in_max; /* a request larger than this resets the connection */
};

struct conn {
	struct tcp_pcb *pcb; /* NULL once lwIP has freed it */
	const struct conn_ops *ops;
	struct buf in, out;
	uint32_t unacked;  /* received bytes whose window space is not reopened yet */
	bool peer_closed;  /* the peer sent FIN */
	bool close_wanted; /* the service wants to close once c->out is sent */
	bool out_held;     /* the service holds c->out back (see kv: durable replies) */
	void *state;       /* the service's */
	struct conn *prev, *next;
};

/* Listens on port (IPv4 and IPv6); 0 or -1. */
int conn_listen(uint16_t port, const struct conn_ops *ops);
/* Moves output, asks the service for more, reopens the window, closes when
 * done. Call after anything that changes what the connection can do.
 * Returns 0, or -1 when the connection was reset (c is freed). */
int conn_run(struct conn *c);
/* Resets the connection now (RST); c is freed. */
void conn_abort(struct conn *c);
/* Calls fn for every live connection (fn may run or reset it). */
void conn_foreach(void (*fn)(struct conn *c, void *arg), void *arg);
/* Live connections (for the console). */
int conn_count(void);

#endif
