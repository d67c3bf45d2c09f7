/*
 * The guest's own client: it opens a TCP connection to a configured address
 * (connect=HOST:PORT, e.g. 10.0.2.1:9000 or [fd00::1]:9000) and sends
 * `bytes` bytes of the pattern stream (pattern.h), then closes. Connection
 * attempts are retried every second until one succeeds. Console lines:
 *   stream: connected to HOST:PORT
 *   stream: done bytes=N        (every byte acknowledged by the peer; FIN sent)
 *   stream: failed (...)        (reset or timed out after connecting)
 * Whatever the peer sends back is read and dropped.
 */
#include "services.h"

#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "net_config.h"
#include "pattern.h"

#define RETRY_MS 1000
#define CHUNK (16 * 1024)

static struct {
	ip_addr_t addr;
	uint16_t port;
	uint64_t total, queued, acked;
	struct tcp_pcb *pcb;
	bool connected, finished;
} st;

static void connect_later(void *arg);

static void describe(char *buf, size_t size)
{
	char a[IPADDR_STRLEN_MAX];

	addr_to_text(&st.addr, a, sizeof(a));
	snprintf(buf, size, IP_IS_V6(&st.addr) ? "[%s]:%u" : "%s:%u", a, st.port);
}

/* Queues pattern bytes as far as the send buffer has room. */
static err_t fill(struct tcp_pcb *pcb)
{
	static uint8_t chunk[CHUNK];

	while (st.queued < st.total) {
		uint64_t left = st.total - st.queued;
		size_t n = tcp_sndbuf(pcb);
		err_t err;

		if (n > CHUNK)
			n = CHUNK;
		if (n > left)
			n = (size_t)left;
		if (n == 0)
			break;
		pattern_fill(chunk, st.queued, n);
		err = tcp_write(pcb, chunk, (u16_t)n, TCP_WRITE_FLAG_COPY | (n < left ? TCP_WRITE_FLAG_MORE : 0));
		if (err == ERR_MEM)
			break;
		if (err != ERR_OK)
			return err;
		st.queued += n;
	}
	return tcp_output(pcb);
}

static void finish(struct tcp_pcb *pcb)
{
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL); /* lwIP's default drops what still arrives */
	if (tcp_close(pcb) != ERR_OK)
		tcp_abort(pcb);
	st.pcb = NULL;
	st.finished = true;
	printf("stream: done bytes=%lu\n", (unsigned long)st.acked);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)arg;
	st.acked += len;
	if (st.acked >= st.total) {
		finish(pcb);
		return ERR_OK;
	}
	fill(pcb); /* an output that failed is retried by lwIP's timers */
	return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)err;
	if (!p) /* the peer closed its side; ours closes when everything is acknowledged */
		return ERR_OK;
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	(void)arg;
	st.pcb = NULL;
	if (st.connected) {
		printf("stream: failed (error %d after %lu bytes acknowledged)\n", err, (unsigned long)st.acked);
		st.finished = true;
		return;
	}
	sys_timeout(RETRY_MS, connect_later, NULL); /* refused or unreachable: try again */
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	char where[IPADDR_STRLEN_MAX + 10];

	(void)arg;
	if (err != ERR_OK)
		return err;
	st.connected = true;
	describe(where, sizeof(where));
	printf("stream: connected to %s\n", where);
	if (st.total == 0) {
		finish(pcb);
		return ERR_OK;
	}
	fill(pcb);
	return ERR_OK;
}

static void connect_now(void)
{
	st.pcb = tcp_new_ip_type(IP_GET_TYPE(&st.addr));
	if (!st.pcb) {
		sys_timeout(RETRY_MS, connect_later, NULL);
		return;
	}
	tcp_nagle_disable(st.pcb);
	tcp_sent(st.pcb, on_sent);
	tcp_recv(st.pcb, on_recv);
	tcp_err(st.pcb, on_err);
	if (tcp_connect(st.pcb, &st.addr, st.port, on_connected) != ERR_OK) {
		tcp_err(st.pcb, NULL); /* the retry is scheduled here, not by on_err */
		tcp_abort(st.pcb);
		st.pcb = NULL;
		sys_timeout(RETRY_MS, connect_later, NULL);
	}
}

static void connect_later(void *arg)
{
	(void)arg;
	connect_now();
}

int stream_start(const ip_addr_t *addr, uint16_t port, uint64_t bytes)
{
	st.addr = *addr;
	st.port = port;
	st.total = bytes;
	connect_now();
	return 0;
}
