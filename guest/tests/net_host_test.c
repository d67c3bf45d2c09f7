/*
 * Host test of the guest's network stack: lwIP with the guest's own
 * configuration (guest/lwip_port), its glue (guest/netstack) and its services
 * (guest/services), compiled for the host with AddressSanitizer and UBSan and
 * fed frames through the same entry point the guest uses.
 *
 * Valid traffic must get exactly the right answers: ARP, ICMP and ICMPv6
 * echo, UDP echo over IPv4 and IPv6, TCP over both (handshake with the MSS
 * option, in-order delivery of out-of-order segments, retransmission after a
 * loss, the peer's window respected, FIN and RST), 50 concurrent
 * connections, the KV server (replies held until the log is on disk, replay,
 * a failing disk), HTTP bodies checked against an independent CRC-32.
 * Hostile traffic must get nothing and break nothing: every truncation of
 * every valid frame, bad checksums, bad length fields, IPv4 and IPv6
 * fragments that overlap, neighbour discovery options of length zero,
 * random mutations, and a SYN flood, which must leave established
 * connections alone and new ones possible. At the end no buffer or
 * connection may be left over. Prints "N passed, 0 failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "host_wire.h"
#include "kv_store.h"
#include "lwip/memp.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip_hooks.h"
#include "services.h"
#include "stack.h"
#include "syn_guard.h"

static int passed, failed;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (cond) {                                           \
			passed++;                                     \
		} else {                                              \
			failed++;                                     \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
			printf(__VA_ARGS__);                          \
			printf("\n");                                 \
		}                                                     \
	} while (0)

static struct net_link test_link = { { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, wire_send, NULL };
static struct blockdev disk;
static uint16_t next_port = 30000;

static uint16_t fresh_port(void) { return next_port++; }

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
}

/* ---- an independent check of the HTTP bodies: bitwise CRC-32 and the pattern formula ---- */

static uint32_t crc32_bitwise(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
	}
	return ~crc;
}

static bool is_pattern(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)((i / 8) >> (8 * (i % 8))))
			return false;
	return true;
}

/* ---- looking at what the stack sent to nobody in particular ---- */

/* The first captured frame of IP protocol proto (and ICMP type, or -1), parsed. */
static bool find_other(uint8_t proto, int type, struct pkt *p)
{
	for (int i = 0; i < other_count(); i++) {
		if (parse_pkt(other_frame(i), p) && p->proto == proto && p->l4_len > 0 &&
		    (type < 0 || p->l4[0] == type))
			return true;
	}
	return false;
}

static int feed_and_count(const uint8_t *f, size_t len)
{
	wire_clear();
	other_clear();
	wire_feed(f, len);
	return wire_sent();
}

/* ---- valid traffic ---- */

static void test_arp(void)
{
	uint8_t f[WIRE_FRAME_MAX];
	const uint8_t other_ip[4] = { 10, 0, 2, 99 };
	const struct frame *r;

	CHECK(feed_and_count(f, build_arp(f, 1, NULL, guest_ip4)) == 1, "ARP request: one reply");
	r = wire_frame(0);
	CHECK(r->len >= 42 && get16(r->data + 12) == 0x0806 && get16(r->data + 20) == 2 &&
		      memcmp(r->data + 22, guest_mac, 6) == 0 && memcmp(r->data + 28, guest_ip4, 4) == 0,
	      "ARP reply names the guest's MAC and IP");
	CHECK(feed_and_count(f, build_arp(f, 1, NULL, other_ip)) == 0, "ARP for another address: no reply");
	wire_clear();
}

static void test_icmp_echo(bool v6)
{
	uint8_t f[WIRE_FRAME_MAX], data[56];
	struct pkt p;

	fill_random(data, sizeof(data));
	if (v6) { /* the guest learns our address from our solicitation */
		wire_feed(f, build_ns(f));
		pump();
	}
	other_clear();
	wire_feed(f, build_icmp_echo(f, v6, 0x1234, 7, data, sizeof(data)));
	pump();
	CHECK(find_other(v6 ? 58 : 1, v6 ? 129 : 0, &p), "%s echo reply", v6 ? "ICMPv6" : "ICMP");
	CHECK(p.csum_ok && p.l4_len == 8 + sizeof(data) && get16(p.l4 + 4) == 0x1234 && get16(p.l4 + 6) == 7 &&
		      memcmp(p.l4 + 8, data, sizeof(data)) == 0,
	      "%s echo reply carries the request's id, sequence and data", v6 ? "ICMPv6" : "ICMP");
}

static void test_udp_echo(bool v6)
{
	static const size_t sizes[] = { 0, 1, 100, 1000 };
	uint8_t f[WIRE_FRAME_MAX], data[1472];
	size_t max = v6 ? 1452 : 1472;
	struct pkt p;

	for (size_t i = 0; i <= sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = i < sizeof(sizes) / sizeof(sizes[0]) ? sizes[i] : max;

		fill_random(data, n);
		other_clear();
		wire_feed(f, build_udp(f, v6, 5555, 7, data, n));
		pump();
		CHECK(find_other(17, -1, &p) && p.csum_ok && p.l4_len == 8 + n && get16(p.l4 + 2) == 5555 &&
			      memcmp(p.l4 + 8, data, n) == 0,
		      "UDP%s echo of %zu bytes", v6 ? "v6" : "", n);
	}
	other_clear();
	wire_feed(f, build_udp(f, v6, 5555, 9, data, 10));
	pump();
	CHECK(!find_other(17, -1, &p), "UDP%s to a closed port: no echo", v6 ? "v6" : "");
	CHECK(find_other(v6 ? 58 : 1, v6 ? 1 : 3, &p), "UDP%s to a closed port: port unreachable", v6 ? "v6" : "");
}

static void test_tcp_echo(bool v6, size_t bytes)
{
	struct peer_conn c;
	uint8_t *data = malloc(bytes);
	int before = conn_count();

	fill_random(data, bytes);
	CHECK(peer_connect(&c, v6, fresh_port(), 7), "TCP%s handshake with echo", v6 ? "v6" : "");
	CHECK(c.guest_mss == (v6 ? 1440 : 1460), "SYN-ACK carries the MSS option (%u)", c.guest_mss);
	CHECK(peer_send(&c, data, bytes), "TCP%s: %zu bytes sent", v6 ? "v6" : "", bytes);
	for (int i = 0; i < 100 && c.rx_len < bytes; i++)
		advance_ms(10);
	CHECK(c.rx_len == bytes && memcmp(c.rx, data, bytes) == 0, "TCP%s echo of %zu bytes byte-exact (got %zu)",
	      v6 ? "v6" : "", bytes, c.rx_len);
	peer_close(&c);
	advance_ms(50);
	CHECK(c.got_fin && !c.got_rst, "TCP%s: the guest closes after our FIN", v6 ? "v6" : "");
	CHECK(conn_count() == before, "the connection is released");
	peer_forget(&c);
	free(data);
}

static void test_out_of_order(void)
{
	struct peer_conn c;
	uint8_t a[1000], b[1000];
	uint32_t start;

	fill_random(a, sizeof(a));
	fill_random(b, sizeof(b));
	peer_connect(&c, false, fresh_port(), 7);
	start = c.snd_nxt;
	peer_segment(&c, start + sizeof(a), TCP_ACK | TCP_PSH, b, sizeof(b)); /* b before a */
	pump();
	CHECK(c.rx_len == 0, "out-of-order segment: nothing delivered yet");
	CHECK(c.dup_acks_seen >= 1, "out-of-order segment: a duplicate ACK asks for the gap");
	peer_segment(&c, start, TCP_ACK | TCP_PSH, a, sizeof(a));
	c.snd_nxt = start + sizeof(a) + sizeof(b);
	pump();
	advance_ms(20);
	CHECK(c.rx_len == 2000 && memcmp(c.rx, a, 1000) == 0 && memcmp(c.rx + 1000, b, 1000) == 0,
	      "the gap filled: both segments delivered in order (%zu bytes)", c.rx_len);
	peer_close(&c);
	advance_ms(20);
	peer_forget(&c);
}

static void test_retransmit(void)
{
	struct peer_conn c;
	uint8_t data[100];
	uint32_t t0 = fake_now_ms;

	fill_random(data, sizeof(data));
	peer_connect(&c, false, fresh_port(), 7);
	c.drop_next_data = true; /* the guest's echo is lost on the wire */
	peer_send(&c, data, sizeof(data));
	CHECK(c.rx_len == 0, "the echo was lost");
	while (c.rx_len == 0 && fake_now_ms - t0 < 10000)
		advance_ms(10);
	CHECK(c.rx_len == sizeof(data) && memcmp(c.rx, data, sizeof(data)) == 0,
	      "retransmitted after %u ms", fake_now_ms - t0);
	peer_close(&c);
	advance_ms(20);
	peer_forget(&c);
}

/* The guest never has more unacknowledged data in flight than our window. */
static void test_peer_window(void)
{
	enum { WINDOW = 4000, BYTES = 40000 };
	struct peer_conn c;
	static uint8_t data[BYTES];
	size_t max_seen = 0;

	fill_random(data, sizeof(data));
	peer_connect(&c, false, fresh_port(), 7);
	c.window = WINDOW;
	c.auto_ack = false;
	peer_send(&c, data, sizeof(data));
	for (int i = 0; i < 1000 && c.rx_len < sizeof(data); i++) {
		size_t before = c.rx_len;

		advance_ms(10);
		if (c.rx_len - before > max_seen)
			max_seen = c.rx_len - before;
		peer_segment(&c, c.snd_nxt, TCP_ACK, NULL, 0); /* one ACK per round: the window slides */
		pump();
	}
	CHECK(c.rx_len == sizeof(data) && memcmp(c.rx, data, sizeof(data)) == 0,
	      "echo through a %d-byte window (%zu of %d)", WINDOW, c.rx_len, BYTES);
	CHECK(max_seen <= WINDOW, "never more than the window in flight (%zu)", max_seen);
	c.auto_ack = true;
	peer_close(&c);
	advance_ms(20);
	peer_forget(&c);
}

static void test_rst(void)
{
	struct peer_conn c;
	int before = conn_count();

	peer_connect(&c, false, fresh_port(), 7);
	CHECK(conn_count() == before + 1, "connection accepted");
	peer_segment(&c, c.snd_nxt, TCP_RST, NULL, 0);
	pump();
	CHECK(conn_count() == before, "a RST frees the connection");
	peer_segment(&c, c.snd_nxt, TCP_ACK | TCP_PSH, "late", 4);
	pump();
	CHECK(c.got_rst, "data after the RST is answered with a RST");
	peer_forget(&c);
}

static void test_concurrent(int n)
{
	struct peer_conn *c = calloc((size_t)n, sizeof(*c));
	uint8_t data[3000];
	int ok = 0, connected = 0, before = conn_count();

	for (int i = 0; i < n; i++)
		connected += peer_connect(&c[i], i % 2, fresh_port(), 7);
	CHECK(connected == n && conn_count() == before + n, "%d concurrent connections (%d)", n, connected);
	for (int i = 0; i < n; i++) {
		memset(data, 'a' + i % 26, sizeof(data));
		peer_send(&c[i], data, sizeof(data));
	}
	advance_ms(50);
	for (int i = 0; i < n; i++) {
		memset(data, 'a' + i % 26, sizeof(data));
		ok += c[i].rx_len == sizeof(data) && memcmp(c[i].rx, data, sizeof(data)) == 0;
		peer_close(&c[i]);
	}
	CHECK(ok == n, "%d of %d echoed their own data", ok, n);
	advance_ms(50);
	CHECK(conn_count() == before, "all closed");
	for (int i = 0; i < n; i++)
		peer_forget(&c[i]);
	free(c);
}

static void test_isn(void)
{
	struct peer_conn a, b;
	ip_addr_t l, r;
	uint32_t first;

	peer_connect(&a, false, 40000, 7);
	peer_connect(&b, false, 40001, 7);
	CHECK(a.guest_isn != b.guest_isn, "two connections, two ISNs");
	IP_ADDR4(&l, 10, 0, 2, 15);
	IP_ADDR4(&r, 10, 0, 2, 1);
	first = lockstep_tcp_isn(&l, 80, &r, 5000);
	for (uint64_t t0 = __builtin_ia32_rdtsc(); __builtin_ia32_rdtsc() - t0 < 1000;)
		;
	CHECK(lockstep_tcp_isn(&l, 80, &r, 5000) != first, "the same 4-tuple a microsecond later: a new ISN");
	peer_segment(&a, a.snd_nxt, TCP_RST, NULL, 0);
	peer_segment(&b, b.snd_nxt, TCP_RST, NULL, 0);
	peer_forget(&a);
	peer_forget(&b);
}

/* ---- the KV server ---- */

static void kv_request(struct peer_conn *c, const char *req, const char *want, bool durable)
{
	size_t before = c->rx_len;

	peer_send(c, req, strlen(req));
	pump();
	if (durable) /* the reply waits for the commit */
		CHECK(c->rx_len == before, "no reply to %.20s before the log is on disk", req);
	services_poll();
	pump();
	CHECK(c->rx_len - before == strlen(want) && memcmp(c->rx + before, want, strlen(want)) == 0,
	      "KV %.30s -> %s (got %.*s)", req, want, (int)(c->rx_len - before), (char *)c->rx + before);
}

static void test_kv(void)
{
	struct peer_conn c;
	size_t vlen;
	const uint8_t *v;

	peer_connect(&c, false, fresh_port(), 6379);
	kv_request(&c, "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n", "+OK\r\n", true);
	kv_request(&c, "*2\r\n$3\r\nGET\r\n$1\r\na\r\n", "$5\r\nhello\r\n", false);
	kv_request(&c, "*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", "$-1\r\n", false);
	kv_request(&c, "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", ":1\r\n", true);
	kv_request(&c, "INCR n\r\n", ":2\r\n", true);
	kv_request(&c, "*2\r\n$4\r\nincr\r\n$1\r\na\r\n", "-ERR value is not an integer or out of range\r\n", false);
	kv_request(&c, "PING\r\n", "+PONG\r\n", false);
	kv_request(&c, "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", "$2\r\nhi\r\n", false);
	kv_request(&c, "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n", false);
	kv_request(&c, "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\nx\r\n*2\r\n$3\r\nDEL\r\n$1\r\nb\r\n", "+OK\r\n:1\r\n",
		   true);
	kv_request(&c, "*3\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\nb\r\n", ":1\r\n", false);
	kv_request(&c, "DBSIZE\r\n", ":2\r\n", false);
	kv_request(&c, "NOSUCH x\r\n", "-ERR unknown command 'NOSUCH'\r\n", false);
	/* A restart: the store rebuilt from the log alone. */
	kv_clear();
	CHECK(kv_load(&disk) >= 5, "the log replays");
	v = kv_get("a", 1, &vlen);
	CHECK(v && vlen == 5 && memcmp(v, "hello", 5) == 0, "a=hello after replay");
	v = kv_get("n", 1, &vlen);
	CHECK(v && vlen == 1 && v[0] == '2', "n=2 after replay");
	CHECK(!kv_get("b", 1, &vlen) && kv_count() == 2, "b stays deleted");
	kv_request(&c, "*2\r\n+x\r\n", "-ERR Protocol error: expected '$' and a bulk length\r\n", false);
	advance_ms(20);
	CHECK(c.got_fin, "a protocol error closes the connection");
	peer_close(&c);
	advance_ms(20);
	peer_forget(&c);
}

/* A disk that fails: the write is never acknowledged, the client is reset. */
static void test_kv_disk_failure(void)
{
	struct peer_conn c;
	const char *set = "*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$1\r\n1\r\n";

	peer_connect(&c, false, fresh_port(), 6379);
	memdisk_fail(true);
	peer_send(&c, set, strlen(set));
	services_poll();
	pump();
	CHECK(c.rx_len == 0 && c.got_rst, "failed commit: no +OK, the connection is reset");
	memdisk_fail(false);
	peer_forget(&c);
	kv_clear();
	CHECK(kv_load(&disk) >= 5 && !kv_get("z", 1, &(size_t){ 0 }), "after reopening, z was never written");
}

/* ---- HTTP ---- */

/* Waits for one whole response in c->rx from offset `at`; returns its body length or -1. */
static long http_response(struct peer_conn *c, size_t at, uint32_t *crc_header, const uint8_t **body)
{
	for (int i = 0; i < 500; i++) {
		char *head = (char *)c->rx + at, *end, *cl, *ck;
		size_t len;

		if (c->rx_len > at && (end = memmem(head, c->rx_len - at, "\r\n\r\n", 4)) != NULL) {
			*end = '\0';
			cl = strstr(head, "Content-Length: ");
			ck = strstr(head, "X-Checksum: crc32=");
			len = cl ? strtoul(cl + 16, NULL, 10) : 0;
			*crc_header = ck ? (uint32_t)strtoul(ck + 18, NULL, 16) : 0;
			*end = '\r';
			if (c->rx_len >= (size_t)(end + 4 - (char *)c->rx) + len) {
				*body = (uint8_t *)end + 4;
				return (long)len;
			}
		}
		advance_ms(10);
	}
	return -1;
}

static void test_http_get(size_t size)
{
	struct peer_conn c;
	char req[128];
	const uint8_t *body;
	uint32_t crc = 0;
	long n;

	peer_connect(&c, false, fresh_port(), 80);
	snprintf(req, sizeof(req), "GET /bytes/%zu HTTP/1.1\r\nHost: guest\r\n\r\n", size);
	peer_send(&c, req, strlen(req));
	n = http_response(&c, 0, &crc, &body);
	CHECK(n == (long)size, "HTTP body of %zu bytes (got %ld)", size, n);
	if (n == (long)size) {
		CHECK(is_pattern(body, size), "the body is the pattern stream");
		CHECK(crc == crc32_bitwise(body, size), "X-Checksum is the body's CRC-32 (%08x)", crc);
	}
	peer_close(&c);
	advance_ms(20);
	peer_forget(&c);
}

static void test_http_keepalive_and_errors(void)
{
	struct peer_conn c;
	const char *two = "GET / HTTP/1.1\r\n\r\nHEAD /bytes/10 HTTP/1.1\r\n\r\n";
	const uint8_t *body;
	uint32_t crc;
	size_t at;

	peer_connect(&c, false, fresh_port(), 80);
	peer_send(&c, two, strlen(two));
	CHECK(http_response(&c, 0, &crc, &body) == 20, "pipelined request 1 answered");
	at = (size_t)(body - c.rx) + 20;
	CHECK(c.rx_len == at + (size_t)(strstr((char *)c.rx + at, "\r\n\r\n") + 4 - ((char *)c.rx + at)),
	      "HEAD: headers only");
	CHECK(strstr((char *)c.rx + at, "Content-Length: 10\r\n") != NULL, "HEAD: the length of the GET body");
	peer_send(&c, "GET /nothing HTTP/1.1\r\n\r\n", 25);
	advance_ms(20);
	CHECK(memmem(c.rx, c.rx_len, "404 Not Found", 13) != NULL && !c.got_fin, "404, connection kept");
	peer_send(&c, "BROKEN\r\n\r\n", 10);
	advance_ms(20);
	CHECK(memmem(c.rx, c.rx_len, "400 Bad Request", 15) != NULL && c.got_fin, "400, then closed");
	peer_close(&c);
	advance_ms(20);
	peer_forget(&c);
}

/* ---- hostile traffic ---- */

/* Valid frames of every kind but TCP (see tcp_template). */
static size_t make_template(int kind, uint8_t *f)
{
	uint8_t data[64];

	memset(data, 'x', sizeof(data));
	switch (kind) {
	case 0: return build_arp(f, 1, NULL, guest_ip4);
	case 1: return build_icmp_echo(f, false, 1, 1, data, sizeof(data));
	case 2: return build_icmp_echo(f, true, 1, 1, data, sizeof(data));
	case 3: return build_udp(f, false, 999, 7, data, sizeof(data));
	case 4: return build_udp(f, true, 999, 7, data, sizeof(data));
	case 5: return build_ns(f);
	default: return 0;
	}
}

#define TEMPLATE_KINDS 6

static void test_truncations(void)
{
	uint8_t f[WIRE_FRAME_MAX];
	int replies = 0, frames = 0;

	for (int kind = 0; kind < TEMPLATE_KINDS; kind++) {
		size_t len = make_template(kind, f);

		for (size_t cut = 0; cut < len; cut++) {
			if (kind == 0 && cut >= 42) /* ARP: the tail past 42 bytes is padding */
				continue;
			replies += feed_and_count(f, cut);
			frames++;
		}
	}
	pump();
	CHECK(replies == 0, "%d truncated frames, %d replies", frames, replies);
}

/* Flips a byte at `at` (a checksum or a length field) and expects silence. */
static void expect_silence(uint8_t *f, size_t len, size_t at, uint8_t xor, const char *what)
{
	uint8_t saved = f[at];
	int n;

	f[at] ^= xor;
	n = feed_and_count(f, len);
	f[at] = saved;
	CHECK(n == 0, "%s: no reply (%d)", what, n);
}

static void test_bad_fields(void)
{
	uint8_t f[WIRE_FRAME_MAX];
	size_t len;
	uint32_t chkerr = lwip_stats.ip.chkerr + lwip_stats.icmp.chkerr + lwip_stats.udp.chkerr;

	len = make_template(1, f);
	expect_silence(f, len, 14 + 10, 0x55, "IPv4 header checksum");
	expect_silence(f, len, 14 + 20 + 2, 0x55, "ICMP checksum");
	expect_silence(f, len, 14 + 2, 0x40, "IPv4 total length beyond the frame");
	expect_silence(f, len, 14 + 3, 0x7f, "IPv4 total length shorter than the message");
	expect_silence(f, len, 14, 0x01, "IPv4 IHL 4");
	expect_silence(f, len, 14, 0x0a, "IPv4 IHL 15");
	expect_silence(f, len, 14, 0x30, "IP version 7");
	len = make_template(3, f);
	expect_silence(f, len, 14 + 20 + 6, 0x55, "UDP checksum");
	expect_silence(f, len, 14 + 20 + 5, 0x7f, "UDP length field");
	len = make_template(4, f);
	expect_silence(f, len, 14 + 40 + 6, 0x55, "UDPv6 checksum");
	expect_silence(f, len, 14 + 5, 0x01, "IPv6 payload length + 1");
	expect_silence(f, len, 14 + 5, 0x40, "IPv6 payload length beyond the frame");
	len = make_template(2, f);
	expect_silence(f, len, 14 + 40 + 2, 0x55, "ICMPv6 checksum");
	CHECK((uint32_t)(lwip_stats.ip.chkerr + lwip_stats.icmp.chkerr + lwip_stats.udp.chkerr) > chkerr,
	      "checksum errors are counted");
}

/* A TCP segment on c with the data offset field or the checksum broken. */
static void test_bad_tcp(struct peer_conn *c)
{
	uint8_t f[WIRE_FRAME_MAX], *t = f + 14 + 20;
	size_t len;

	wire_clear();
	peer_segment(c, c->snd_nxt, TCP_ACK | TCP_PSH, "abc", 3);
	pump();
	c->snd_nxt += 3;
	/* rebuild the same kind of segment by hand, then break it */
	memcpy(f, guest_mac, 6);
	len = build_ip4(f, peer_ip4, guest_ip4, 6, 23);
	put16(t, c->sport);
	put16(t + 2, c->dport);
	put32(t + 4, c->snd_nxt);
	put32(t + 8, c->rcv_nxt);
	t[12] = 5 << 4;
	t[13] = TCP_ACK | TCP_PSH;
	put16(t + 14, 65535);
	put32(t + 16, 0);
	memcpy(t + 20, "xyz", 3);
	put16(t + 16, transport_csum(f, false, 6, t, 23));
	expect_silence(f, len, 14 + 20 + 16, 0x55, "TCP checksum");
	t[12] = 4 << 4;
	put16(t + 16, 0);
	put16(t + 16, transport_csum(f, false, 6, t, 23));
	expect_silence(f, len, 0, 0, "TCP data offset 4");
	t[12] = 15 << 4;
	put16(t + 16, 0);
	put16(t + 16, transport_csum(f, false, 6, t, 23));
	expect_silence(f, len, 0, 0, "TCP data offset past the segment");
}

/* Fragments that overlap, repeat and never complete: reassembly stays bounded. */
static void test_fragments(void)
{
	uint8_t f[WIRE_FRAME_MAX], junk[1024];
	int replies = 0;

	fill_random(junk, sizeof(junk));
	for (int i = 0; i < 3000; i++) {
		size_t payload = 8 * (size_t)(1 + rand() % 100);
		size_t len = build_udp(f, false, 1000, 7, junk, payload - 8);
		uint8_t *ip = f + 14;

		put16(ip + 4, (uint16_t)(rand() % 8)); /* few ids: fragments collide */
		put16(ip + 6, (uint16_t)((rand() % 2 ? 0x2000 : 0) | (rand() % 200)));
		put16(ip + 10, 0);
		put16(ip + 10, inet_csum(ip, 20, 0));
		replies += feed_and_count(f, len);
		if (i % 64 == 0)
			advance_ms(10);
	}
	advance_ms(20000); /* reassembly timeouts */
	CHECK(lwip_stats.memp[MEMP_REASSDATA]->used == 0, "IPv4 reassembly state released");
	for (int i = 0; i < 2000; i++) {
		uint8_t *frag;
		size_t len;

		len = build_udp(f, true, 1000, 7, junk, 64); /* becomes a fragment header + junk */
		frag = f + 14 + 40;
		f[14 + 6] = 44;
		frag[0] = 17;
		frag[1] = 0;
		put16(frag + 2, (uint16_t)((rand() % 300) << 3 | (rand() % 2)));
		put32(frag + 4, (uint32_t)(rand() % 8));
		replies += feed_and_count(f, len);
		if (i % 64 == 0)
			advance_ms(10);
	}
	advance_ms(70000);
	CHECK(lwip_stats.memp[MEMP_IP6_REASSDATA]->used == 0, "IPv6 reassembly state released");
	(void)replies;
}

/* Neighbour discovery with an option of length 0 (a classic endless loop) and other junk. */
static void test_nd_options(void)
{
	uint8_t f[WIRE_FRAME_MAX];
	size_t len = build_ns(f);
	uint8_t *m = f + 14 + 40;

	m[25] = 0; /* option length zero */
	put16(m + 2, 0);
	put16(m + 2, transport_csum(f, true, 58, m, 32));
	CHECK(feed_and_count(f, len) == 0, "NS with a zero-length option: ignored");
	m[25] = 200; /* option longer than the message */
	put16(m + 2, 0);
	put16(m + 2, transport_csum(f, true, 58, m, 32));
	CHECK(feed_and_count(f, len) == 0, "NS with an option past the end: ignored");
}

/* Recomputes the IPv4 header and transport checksums of a mutated frame when it still parses. */
static void fix_checksums(uint8_t *f, size_t len)
{
	uint8_t *ip = f + 14;
	size_t ihl, total;

	if (len < 34 || get16(f + 12) != 0x0800)
		return;
	ihl = (size_t)(ip[0] & 15) * 4;
	total = get16(ip + 2);
	if (ihl < 20 || total < ihl || 14 + total > len)
		return;
	put16(ip + 10, 0);
	put16(ip + 10, inet_csum(ip, ihl, 0));
	if (ip[9] == 17 && total - ihl >= 8) {
		put16(ip + ihl + 6, 0);
		put16(ip + ihl + 6, transport_csum(f, false, 17, ip + ihl, total - ihl));
	} else if (ip[9] == 6 && total - ihl >= 20) {
		put16(ip + ihl + 16, 0);
		put16(ip + ihl + 16, transport_csum(f, false, 6, ip + ihl, total - ihl));
	}
}

static size_t tcp_template(uint8_t *f, struct peer_conn *c)
{
	uint8_t *t = f + 14 + 20;
	size_t len = build_ip4(f, peer_ip4, guest_ip4, 6, 30);

	put16(t, c->sport);
	put16(t + 2, c->dport);
	put32(t + 4, c->snd_nxt);
	put32(t + 8, c->rcv_nxt);
	t[12] = 5 << 4;
	t[13] = TCP_ACK | TCP_PSH;
	put16(t + 14, 65535);
	put32(t + 16, 0);
	memcpy(t + 20, "GET / HTTP", 10);
	put16(t + 16, transport_csum(f, false, 6, t, 30));
	return len;
}

static void test_mutations(int rounds)
{
	uint8_t f[WIRE_FRAME_MAX];
	struct peer_conn c;

	peer_connect(&c, false, fresh_port(), 80);
	for (int i = 0; i < rounds; i++) {
		int kind = rand() % (TEMPLATE_KINDS + 1);
		size_t len = kind < TEMPLATE_KINDS ? make_template(kind, f) : tcp_template(f, &c);
		int flips = 1 + rand() % 4;

		for (int k = 0; k < flips; k++)
			f[rand() % len] = (uint8_t)rand();
		if (rand() % 4 == 0) /* a new length: cut short or grown with junk */
			len = (size_t)(rand() % (int)(len + 64));
		if (rand() % 2)
			fix_checksums(f, len);
		wire_clear();
		wire_feed(f, len);
		if (i % 64 == 0) {
			netstack_poll();
			services_poll();
			pump();
		}
	}
	advance_ms(100);
	peer_reset(&c);
	peer_forget(&c);
	CHECK(true, "%d mutated frames survived", rounds);
}

/* SYNs from forged addresses: established connections live on, new ones get
 * in, and the real peer keeps its place in the ARP and neighbour caches. */
static void test_syn_flood(int count)
{
	struct peer_conn c, late;
	uint8_t f[WIRE_FRAME_MAX], data[200];
	int max_half_open = 0;
	struct pkt p;

	fill_random(data, sizeof(data));
	peer_connect(&c, false, fresh_port(), 7);
	for (int i = 0; i < count; i++) {
		bool v6 = i % 4 == 0;
		uint8_t src[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, (uint8_t)rand() };
		uint16_t port = (uint16_t)(i % 3 == 0 ? 7 : i % 3 == 1 ? 80 : 6379);

		if (!v6) {
			src[0] = 10, src[1] = 0, src[2] = 2, src[3] = (uint8_t)(100 + rand() % 150);
		}
		wire_feed(f, build_syn_from(f, v6, src, (uint16_t)(1024 + rand() % 60000), port, (uint32_t)rand()));
		if (syn_guard_half_open() > max_half_open)
			max_half_open = syn_guard_half_open();
		if (i % 64 == 63) {
			netstack_poll();
			wire_clear();
		}
	}
	netstack_poll();
	wire_clear();
	CHECK(max_half_open <= 96 + SYN_GUARD_EVERY, "half-open connections bounded (%d)", max_half_open);
	CHECK(lwip_stats.memp[MEMP_TCP_PCB]->err == 0, "no connection was refused for lack of PCBs");
	for (int v6 = 0; v6 < 2; v6++) {
		other_clear();
		CHECK(feed_and_count(f, build_icmp_echo(f, v6, 9, 9, data, 8)) == 1 && parse_pkt(wire_frame(0), &p) &&
			      p.proto == (v6 ? 58 : 1),
		      "the peer is still in the %s cache: the echo reply goes straight out", v6 ? "neighbour" : "ARP");
		wire_clear();
	}
	CHECK(peer_send(&c, data, sizeof(data)), "the established connection survived");
	advance_ms(20);
	CHECK(c.rx_len == sizeof(data) && memcmp(c.rx, data, sizeof(data)) == 0 && !c.got_rst,
	      "and still echoes");
	CHECK(peer_connect(&late, false, fresh_port(), 80), "a new client gets in after the flood");
	peer_close(&c);
	peer_segment(&late, late.snd_nxt, TCP_RST, NULL, 0);
	advance_ms(20);
	peer_forget(&c);
	peer_forget(&late);
}

/* ---- the end: nothing left behind ---- */

static void test_no_leaks(void)
{
	advance_ms(140000); /* TIME-WAIT (2 MSL), SYN-RCVD and FIN-WAIT timeouts */
	CHECK(conn_count() == 0, "no service connection left (%d)", conn_count());
	CHECK(lwip_stats.memp[MEMP_TCP_PCB]->used == 0, "no TCP PCB left (%u)",
	      (unsigned)lwip_stats.memp[MEMP_TCP_PCB]->used);
	CHECK(lwip_stats.memp[MEMP_PBUF_POOL]->used == 0, "no receive buffer left (%u)",
	      (unsigned)lwip_stats.memp[MEMP_PBUF_POOL]->used);
	CHECK(lwip_stats.memp[MEMP_TCP_SEG]->used == 0, "no TCP segment left (%u)",
	      (unsigned)lwip_stats.memp[MEMP_TCP_SEG]->used);
	CHECK(wire_errors == 0, "every frame the guest sent was well-formed (%d problems)", wire_errors);
	CHECK(lwip_stats.link.recv > 50000, "%u frames went in", (unsigned)lwip_stats.link.recv);
}

static void setup(void)
{
	struct net_config nc = { 0 };
	struct services_config sc = { .set = SERVICE_ECHO | SERVICE_KV | SERVICE_HTTP, .kv_disk = &disk };

	srand(1);
	memdisk_init(&disk, 8192);
	memcpy(test_link.mac, guest_mac, 6);
	CHECK(net_config_set_ip4(&nc, "10.0.2.15/24") == 0 && net_config_set_ip6(&nc, "fd00::15/64") == 0,
	      "addresses parse");
	CHECK(net_config_set_ip4(&nc, "10.0.2/99") < 0 && net_config_set_ip6(&nc, "fd00::15/48") < 0,
	      "bad addresses are refused");
	net_config_set_ip4(&nc, "10.0.2.15/24");
	CHECK(netstack_init(&test_link, &nc) == 0, "stack up");
	CHECK(services_start(&sc) == 0, "services up");
}

int main(void)
{
	struct peer_conn held;

	setup();
	test_arp();
	test_icmp_echo(false);
	test_icmp_echo(true);
	test_udp_echo(false);
	test_udp_echo(true);
	test_tcp_echo(false, 200000);
	test_tcp_echo(true, 100000);
	test_out_of_order();
	test_retransmit();
	test_peer_window();
	test_rst();
	test_concurrent(50);
	test_isn();
	test_kv();
	test_kv_disk_failure();
	test_http_get(0);
	test_http_get(1);
	test_http_get(100003);
	test_http_keepalive_and_errors();
	test_truncations();
	test_bad_fields();
	peer_connect(&held, false, fresh_port(), 7);
	test_bad_tcp(&held);
	peer_close(&held);
	advance_ms(20);
	peer_forget(&held);
	test_fragments();
	test_nd_options();
	test_mutations(50000);
	test_syn_flood(3000);
	test_tcp_echo(false, 10000); /* everything still works */
	test_no_leaks();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
