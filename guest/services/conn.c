#include "conn.h"

#define POLL_TICKS 4 /* slow-timer ticks (200 ms each) between poll callbacks */
#define WRITE_MAX 0xffff /* tcp_write takes a u16_t length */

static struct conn *live;
static int live_count;

static void conn_link(struct conn *c)
{
	c->next = live;
	if (live)
		live->prev = c;
	live = c;
	live_count++;
}

static void conn_unlink(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	live_count--;
}

static void conn_free(struct conn *c)
{
	if (c->ops->release)
		c->ops->release(c);
	buf_free(&c->in);
	buf_free(&c->out);
	conn_unlink(c);
	free(c);
}

static void detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
}

static int conn_reset(struct conn *c)
{
	if (c->pcb) {
		detach(c->pcb);
		tcp_abort(c->pcb);
	}
	conn_free(c);
	return -1;
}

/* Moves c->out into lwIP's send buffer as far as it has room; 0 or -1. */
static int flush_out(struct conn *c)
{
	bool wrote = false;

	while (buf_used(&c->out) && !c->out_held) {
		size_t n = buf_used(&c->out), room = tcp_sndbuf(c->pcb);
		u8_t flags = TCP_WRITE_FLAG_COPY;
		err_t err;

		if (n > room)
			n = room;
		if (n > WRITE_MAX)
			n = WRITE_MAX;
		if (n == 0)
			break;
		if (n < buf_used(&c->out))
			flags |= TCP_WRITE_FLAG_MORE;
		err = tcp_write(c->pcb, buf_head(&c->out), (u16_t)n, flags);
		if (err == ERR_MEM) /* segment queue full: the sent callback comes back */
			break;
		if (err != ERR_OK)
			return -1;
		buf_consume(&c->out, n);
		wrote = true;
	}
	if (wrote && tcp_output(c->pcb) != ERR_OK)
		return 0; /* retried by the next callback */
	return 0;
}

/* Lets the peer send as much again as we have taken in. */
static void reopen_window(struct conn *c)
{
	while (c->unacked) {
		u16_t n = c->unacked > WRITE_MAX ? WRITE_MAX : (u16_t)c->unacked;

		tcp_recved(c->pcb, n);
		c->unacked -= n;
	}
}

/* Held output (c->out_held) does not stop processing: a pipeline of writes
 * then waits for one commit, not one each. */
static bool output_backed_up(const struct conn *c) { return buf_used(&c->out) >= c->ops->out_high; }

/* Asks the service to process until it stops making progress or output backs up. */
static int process_input(struct conn *c)
{
	while (!output_backed_up(c)) {
		size_t in_before = buf_used(&c->in), out_before = buf_used(&c->out);

		if (c->ops->process(c) < 0)
			return -1;
		if (flush_out(c) < 0)
			return -1;
		if (buf_used(&c->in) == in_before && buf_used(&c->out) == out_before)
			break;
	}
	return buf_used(&c->in) > c->ops->in_max ? -1 : 0;
}

/* Our FIN goes after every queued reply; lwIP finishes the close on its own. */
static int try_close(struct conn *c)
{
	reopen_window(c); /* data left unacknowledged would make lwIP send a RST */
	detach(c->pcb);
	if (tcp_close(c->pcb) != ERR_OK) { /* no memory for the FIN: retry from poll */
		tcp_arg(c->pcb, c);
		return 0;
	}
	c->pcb = NULL;
	conn_free(c);
	return 1;
}

static void reattach(struct conn *c);

int conn_run(struct conn *c)
{
	if (flush_out(c) < 0 || process_input(c) < 0)
		return conn_reset(c);
	if (!output_backed_up(c))
		reopen_window(c);
	if ((c->peer_closed || c->close_wanted) && !buf_used(&c->out) && !c->out_held) {
		if (try_close(c))
			return 0;
		reattach(c);
	}
	tcp_output(c->pcb);
	return 0;
}

/* ---- lwIP callbacks ---- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct conn *c = arg;

	(void)pcb;
	if (!c) { /* closing: nobody wants the data */
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (!p || err != ERR_OK) {
		c->peer_closed = true;
		if (p)
			pbuf_free(p);
		return conn_run(c) < 0 ? ERR_ABRT : ERR_OK;
	}
	for (struct pbuf *q = p; q; q = q->next) {
		if (buf_append(&c->in, q->payload, q->len) < 0) {
			pbuf_free(p);
			conn_reset(c);
			return ERR_ABRT;
		}
	}
	c->unacked += p->tot_len;
	pbuf_free(p);
	return conn_run(c) < 0 ? ERR_ABRT : ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)pcb;
	(void)len;
	return conn_run(arg) < 0 ? ERR_ABRT : ERR_OK;
}

/* Every POLL_TICKS: output that found no memory, or a close that could not
 * queue its FIN, is tried again. */
static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	(void)pcb;
	return conn_run(arg) < 0 ? ERR_ABRT : ERR_OK;
}

/* lwIP freed the pcb (reset by the peer, or retransmissions gave up). */
static void on_err(void *arg, err_t err)
{
	struct conn *c = arg;

	(void)err;
	if (c) {
		c->pcb = NULL;
		conn_free(c);
	}
}

static void reattach(struct conn *c)
{
	tcp_arg(c->pcb, c);
	tcp_recv(c->pcb, on_recv);
	tcp_sent(c->pcb, on_sent);
	tcp_err(c->pcb, on_err);
	tcp_poll(c->pcb, on_poll, POLL_TICKS);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	const struct conn_ops *ops = arg;
	struct conn *c;

	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ERR_MEM; /* lwIP aborts the connection */
	c->pcb = pcb;
	c->ops = ops;
	conn_link(c);
	if (ops->open && ops->open(c) < 0) {
		c->pcb = NULL;
		conn_free(c);
		return ERR_MEM;
	}
	tcp_nagle_disable(pcb); /* request/response: replies go out at once */
	reattach(c);
	return ERR_OK;
}

int conn_listen(uint16_t port, const struct conn_ops *ops)
{
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_ANY), *lpcb;

	if (!pcb)
		return -1;
	if (tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
		tcp_close(pcb);
		return -1;
	}
	lpcb = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
	if (!lpcb) {
		tcp_close(pcb);
		return -1;
	}
	tcp_arg(lpcb, (void *)ops);
	tcp_accept(lpcb, on_accept);
	return 0;
}

void conn_foreach(void (*fn)(struct conn *c, void *arg), void *arg)
{
	struct conn *c = live, *next;

	for (; c; c = next) {
		next = c->next;
		fn(c, arg);
	}
}

void conn_abort(struct conn *c) { conn_reset(c); }

int conn_count(void) { return live_count; }
