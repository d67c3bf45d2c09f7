/*
 * Echo (RFC 862) on port 7: TCP echoes the byte stream, UDP each datagram.
 * TCP echo is paced by the client's reading: input waits in the receive
 * window while 64 KiB of echo wait to be sent.
 */
#include "services.h"

#include "conn.h"
#include "lwip/udp.h"

#define ECHO_PORT 7

static int echo_process(struct conn *c)
{
	size_t n = buf_used(&c->in);

	if (n == 0)
		return 0;
	if (buf_used(&c->out) == 0) { /* hand the buffer over instead of copying */
		struct buf t = c->out;

		c->out = c->in;
		c->in = t;
		return 0;
	}
	if (buf_append(&c->out, buf_head(&c->in), n) < 0)
		return -1;
	buf_consume(&c->in, n);
	return 0;
}

static const struct conn_ops echo_ops = {
	.name = "echo",
	.process = echo_process,
	.out_high = 64 * 1024,
	.in_max = 4 * 1024 * 1024,
};

static void udp_echo_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	struct pbuf *reply;

	(void)arg;
	reply = pbuf_alloc(PBUF_TRANSPORT, p->tot_len, PBUF_RAM);
	if (reply) {
		pbuf_copy(reply, p);
		udp_sendto(pcb, reply, addr, port);
		pbuf_free(reply);
	}
	pbuf_free(p);
}

static int udp_echo_start(void)
{
	struct udp_pcb *pcb = udp_new_ip_type(IPADDR_TYPE_ANY);

	if (!pcb)
		return -1;
	if (udp_bind(pcb, IP_ANY_TYPE, ECHO_PORT) != ERR_OK) {
		udp_remove(pcb);
		return -1;
	}
	udp_recv(pcb, udp_echo_recv, NULL);
	return 0;
}

int echo_start(void)
{
	if (udp_echo_start() < 0 || conn_listen(ECHO_PORT, &echo_ops) < 0)
		return -1;
	return 0;
}
