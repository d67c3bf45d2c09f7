/*
 * Discard (RFC 863) on TCP port 9: reads everything and answers nothing.
 * The sink for measuring how fast a client can send to the guest.
 */
#include "services.h"

#include "conn.h"

#define DISCARD_PORT 9

static int discard_process(struct conn *c)
{
	buf_consume(&c->in, buf_used(&c->in));
	return 0;
}

static const struct conn_ops discard_ops = {
	.name = "discard",
	.process = discard_process,
	.out_high = 1,
	.in_max = 1024 * 1024,
};

int discard_start(void) { return conn_listen(DISCARD_PORT, &discard_ops); }
