/*
 * Host test of the guest's network stack (guest/net): valid frames must get
 * exactly the right reply, malformed ones (truncated at every length, bad
 * checksums, bad IHL, bad lengths, fragments, wrong addresses) must get none
 * and be counted, and random mutations must never crash it.
 * Every frame is passed in a heap buffer of exactly its length, so building
 * with -fsanitize=address catches any read past its end.
 *
 * Build and run (from the repository root):
 *   gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined \
 *       -Iguest/net guest/tests/net_host_test.c guest/net/[a-z]*.c -o build/tests/net_host_test
 *   build/tests/net_host_test      # prints "N passed, 0 failed", exit 0
 */
#include <stdio.h>
#include <stdlib.h>

#include "arp.h"
#include "byteorder.h"
#include "csum.h"
#include "eth.h"
#include "ipv4.h"
#include "netif.h"
#include "udp.h"

#define OUR_IP 0x0a00020f  /* 10.0.2.15 */
#define PEER_IP 0x0a000201 /* 10.0.2.1 */
#define MAX_FRAME 4096

static const uint8_t our_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t peer_mac[6] = { 0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc };
static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static int passed, failed;

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (cond) {                                                                \
			passed++;                                                          \
		} else {                                                                   \
			failed++;                                                          \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);                         \
			printf(__VA_ARGS__);                                               \
			printf("\n");                                                      \
		}                                                                          \
	} while (0)

/* ---- the interface under test and what it sent ---- */

static struct net_if nif;
static uint8_t sent[MAX_FRAME];
static size_t sent_len;
static int sent_count;
static int output_result;

static int capture_output(void *ctx, const uint8_t *frame, size_t len)
{
	(void)ctx;
	if (len <= sizeof(sent)) {
		memcpy(sent, frame, len);
		sent_len = len;
	}
	sent_count++;
	return output_result;
}

static void reset_nif(void)
{
	net_if_init(&nif, our_mac, OUR_IP, 24, capture_output, NULL);
	sent_count = 0;
	sent_len = 0;
	output_result = 0;
}

/* Feeds a copy of exactly len bytes; returns the number of frames sent. */
static int feed(const uint8_t *frame, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int before = sent_count;

	memcpy(copy, frame, len);
	net_input(&nif, copy, len);
	free(copy);
	return sent_count - before;
}

/* ---- frame builders ---- */

static size_t put_eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, peer_mac, 6);
	put_be16(f + 12, type);
	return ETH_HLEN;
}

static size_t build_arp(uint8_t *f, uint16_t op, uint32_t target_ip)
{
	uint8_t *a = f + put_eth(f, bcast_mac, ETH_P_ARP);

	put_be16(a, 1);
	put_be16(a + 2, ETH_P_IPV4);
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, op);
	memcpy(a + 8, peer_mac, 6);
	put_be32(a + 14, PEER_IP);
	memset(a + 18, 0, 6);
	put_be32(a + 24, target_ip);
	return ETH_HLEN + ARP_LEN;
}

struct ip_opts {
	uint32_t src, dst;
	int ihl_words;      /* 5 + option words */
	uint16_t frag;      /* flags + fragment offset field */
};

static const struct ip_opts plain_ip = { PEER_IP, OUR_IP, 5, 0 };

/* IPv4 header + payload (already at f + ETH_HLEN + ihl); returns the frame length. */
static size_t finish_ip(uint8_t *f, const struct ip_opts *o, uint8_t proto, size_t payload_len)
{
	uint8_t *h = f + put_eth(f, our_mac, ETH_P_IPV4);
	size_t ihl = (size_t)o->ihl_words * 4;

	memset(h, 0, ihl);
	h[0] = (uint8_t)(0x40 | o->ihl_words);
	put_be16(h + 2, (uint16_t)(ihl + payload_len));
	put_be16(h + 4, 0x1234);
	put_be16(h + 6, o->frag);
	h[8] = 64;
	h[9] = proto;
	put_be32(h + 12, o->src);
	put_be32(h + 16, o->dst);
	if (ihl > 20)
		memset(h + 20, 1, ihl - 20); /* NOP options */
	put_be16(h + 10, csum_fold(csum_add(0, h, ihl)));
	return ETH_HLEN + ihl + payload_len;
}

static uint8_t *l4(uint8_t *f, const struct ip_opts *o) { return f + ETH_HLEN + (size_t)o->ihl_words * 4; }

static size_t build_icmp_echo(uint8_t *f, const struct ip_opts *o, uint16_t id, uint16_t seq, size_t data_len)
{
	uint8_t *m = l4(f, o);

	m[0] = 8;
	m[1] = 0;
	put_be16(m + 2, 0);
	put_be16(m + 4, id);
	put_be16(m + 6, seq);
	for (size_t i = 0; i < data_len; i++)
		m[8 + i] = (uint8_t)(i * 7 + 3);
	put_be16(m + 2, csum_fold(csum_add(0, m, 8 + data_len)));
	return finish_ip(f, o, IP_PROTO_ICMP, 8 + data_len);
}

static size_t build_udp(uint8_t *f, const struct ip_opts *o, uint16_t sport, uint16_t dport, const char *data,
			bool with_csum)
{
	uint8_t *u = l4(f, o);
	size_t dlen = strlen(data);
	uint16_t ulen = (uint16_t)(UDP_HLEN + dlen);

	put_be16(u, sport);
	put_be16(u + 2, dport);
	put_be16(u + 4, ulen);
	put_be16(u + 6, 0);
	memcpy(u + 8, data, dlen);
	if (with_csum) {
		uint16_t c = csum_fold(csum_add(csum_pseudo(o->src, o->dst, IP_PROTO_UDP, ulen), u, ulen));

		put_be16(u + 6, c ? c : 0xffff);
	}
	return finish_ip(f, o, IP_PROTO_UDP, ulen);
}

/* ---- reply checkers ---- */

static bool reply_eth_ok(uint16_t type)
{
	return sent_len >= ETH_MIN_FRAME && memcmp(sent, peer_mac, 6) == 0 && memcmp(sent + 6, our_mac, 6) == 0 &&
	       get_be16(sent + 12) == type;
}

/* The reply's IP header is sound and addressed to the peer; returns its payload length. */
static long reply_ip_payload(uint8_t proto)
{
	const uint8_t *h = sent + ETH_HLEN;
	size_t total;

	if (!reply_eth_ok(ETH_P_IPV4) || h[0] != 0x45 || csum_fold(csum_add(0, h, 20)) != 0 || h[9] != proto ||
	    get_be32(h + 12) != OUR_IP || get_be32(h + 16) != PEER_IP)
		return -1;
	total = get_be16(h + 2);
	if (total < 20 || ETH_HLEN + total > sent_len)
		return -1;
	return (long)(total - 20);
}

static const uint8_t *reply_l4(void) { return sent + ETH_HLEN + 20; }

/* ---- tests: valid frames ---- */

static void test_arp(void)
{
	uint8_t f[MAX_FRAME];
	size_t len = build_arp(f, 1, OUR_IP);
	const uint8_t *a = sent + ETH_HLEN;

	reset_nif();
	CHECK(feed(f, len) == 1, "ARP request for us: one reply");
	CHECK(reply_eth_ok(ETH_P_ARP), "ARP reply Ethernet header");
	CHECK(get_be16(a + 6) == 2 && memcmp(a + 8, our_mac, 6) == 0 && get_be32(a + 14) == OUR_IP &&
		      memcmp(a + 18, peer_mac, 6) == 0 && get_be32(a + 24) == PEER_IP,
	      "ARP reply fields");
	CHECK(nif.stats.arp_replies == 1, "ARP reply counted");

	len = build_arp(f, 1, OUR_IP + 1);
	CHECK(feed(f, len) == 0 && nif.stats.drops[DROP_ARP_IGNORED] == 1, "ARP request for another IP ignored");
	len = build_arp(f, 2, OUR_IP);
	CHECK(feed(f, len) == 0, "ARP reply not answered");
	len = build_arp(f, 1, OUR_IP);
	f[ETH_HLEN + 4] = 8;
	CHECK(feed(f, len) == 0 && nif.stats.drops[DROP_ARP_FORMAT] == 1, "ARP with hlen 8 dropped");
	len = build_arp(f, 1, OUR_IP);
	f[ETH_HLEN + 8] |= 1; /* multicast sender hardware address */
	CHECK(feed(f, len) == 0, "ARP from a multicast sender dropped");
}

static void check_icmp_reply(const uint8_t *req, const struct ip_opts *o, size_t data_len, const char *what)
{
	long plen = reply_ip_payload(IP_PROTO_ICMP);
	const uint8_t *m = reply_l4(), *q = l4((uint8_t *)req, o);

	CHECK(plen == (long)(8 + data_len), "%s: reply length %ld", what, plen);
	if (plen != (long)(8 + data_len))
		return;
	CHECK(m[0] == 0 && m[1] == 0, "%s: echo reply type", what);
	CHECK(csum_fold(csum_add(0, m, (size_t)plen)) == 0, "%s: ICMP checksum", what);
	CHECK(memcmp(m + 4, q + 4, 4 + data_len) == 0, "%s: id, seq and data copied", what);
}

static void test_icmp(void)
{
	static const size_t sizes[] = { 0, 1, 7, 56, 57, 1000, 1472 };
	uint8_t f[MAX_FRAME];
	struct ip_opts with_opts = plain_ip;

	reset_nif();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = build_icmp_echo(f, &plain_ip, 0x4242, (uint16_t)i, sizes[i]);
		char what[64];

		snprintf(what, sizeof(what), "echo with %zu data bytes", sizes[i]);
		CHECK(feed(f, len) == 1, "%s: one reply", what);
		check_icmp_reply(f, &plain_ip, sizes[i], what);
	}
	CHECK(nif.stats.icmp_replies == sizeof(sizes) / sizeof(sizes[0]), "echo replies counted");

	with_opts.ihl_words = 7; /* 8 bytes of options, skipped */
	size_t len = build_icmp_echo(f, &with_opts, 1, 2, 32);
	CHECK(feed(f, len) == 1, "echo with IP options answered");
	check_icmp_reply(f, &with_opts, 32, "echo with options");

	/* Ethernet padding after the datagram is not part of it. */
	len = build_icmp_echo(f, &plain_ip, 3, 4, 4);
	memset(f + len, 0xee, 20);
	CHECK(feed(f, len + 20) == 1, "padded echo answered");
	check_icmp_reply(f, &plain_ip, 4, "padded echo");

	len = build_icmp_echo(f, &plain_ip, 5, 6, 8);
	memcpy(f, bcast_mac, 6); /* broadcast MAC but our IP: still ours */
	CHECK(feed(f, len) == 1, "echo to broadcast MAC and our IP answered");
}

static void check_udp_reply(const char *data, uint16_t peer_port, const char *what)
{
	long plen = reply_ip_payload(IP_PROTO_UDP);
	const uint8_t *u = reply_l4();
	size_t dlen = strlen(data);

	CHECK(plen == (long)(UDP_HLEN + dlen), "%s: reply length %ld", what, plen);
	if (plen != (long)(UDP_HLEN + dlen))
		return;
	CHECK(get_be16(u) == UDP_PORT_ECHO && get_be16(u + 2) == peer_port, "%s: ports swapped", what);
	CHECK(get_be16(u + 4) == UDP_HLEN + dlen, "%s: UDP length", what);
	CHECK(get_be16(u + 6) != 0 &&
		      csum_fold(csum_add(csum_pseudo(OUR_IP, PEER_IP, IP_PROTO_UDP, (uint16_t)plen), u,
					 (size_t)plen)) == 0,
	      "%s: UDP checksum", what);
	CHECK(memcmp(u + 8, data, dlen) == 0, "%s: payload echoed", what);
}

static void test_udp(void)
{
	uint8_t f[MAX_FRAME];
	size_t len;

	reset_nif();
	len = build_udp(f, &plain_ip, 40000, 7, "hello\n", true);
	CHECK(feed(f, len) == 1, "UDP echo with checksum answered");
	check_udp_reply("hello\n", 40000, "UDP echo");
	len = build_udp(f, &plain_ip, 40001, 7, "odd", false);
	CHECK(feed(f, len) == 1, "UDP echo without checksum answered");
	check_udp_reply("odd", 40001, "UDP echo, no checksum");
	len = build_udp(f, &plain_ip, 40002, 7, "", true);
	CHECK(feed(f, len) == 1, "empty UDP echo answered");
	check_udp_reply("", 40002, "empty UDP echo");
	CHECK(nif.stats.udp_replies == 3, "UDP replies counted");

	len = build_udp(f, &plain_ip, 40000, 9, "discard", true);
	CHECK(feed(f, len) == 0 && nif.stats.drops[DROP_UDP_PORT] == 1, "UDP to port 9 not answered");
	len = build_udp(f, &plain_ip, 7, 7, "loop", true);
	CHECK(feed(f, len) == 0, "UDP echo from port 7 not answered (no ping-pong)");
	len = build_udp(f, &plain_ip, 0, 7, "zero", true);
	CHECK(feed(f, len) == 0, "UDP echo from port 0 not answered");

	/* UDP length shorter than the IP payload: the tail is ignored. */
	len = build_udp(f, &plain_ip, 40003, 7, "abcdef", false);
	put_be16(l4(f, &plain_ip) + 4, UDP_HLEN + 3);
	CHECK(feed(f, len) == 1, "short UDP length answered");
	check_udp_reply("abc", 40003, "short UDP length");
}

/* ---- tests: malformed frames ---- */

/* Feeds the frame after `mutate` and expects no reply and one more drop of `why`. */
static void expect_drop(const uint8_t *good, size_t len, enum net_drop why, const char *what)
{
	uint64_t before = nif.stats.drops[why];

	CHECK(feed(good, len) == 0, "%s: no reply", what);
	CHECK(nif.stats.drops[why] == before + 1, "%s: counted as %s", what, net_drop_name(why));
}

static void fix_ip_csum(uint8_t *f)
{
	uint8_t *h = f + ETH_HLEN;

	put_be16(h + 10, 0);
	put_be16(h + 10, csum_fold(csum_add(0, h, (size_t)(h[0] & 0xf) * 4)));
}

static void test_bad_ip(void)
{
	uint8_t f[MAX_FRAME];
	size_t len;
	struct ip_opts o = plain_ip;

	reset_nif();
	len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
	f[ETH_HLEN + 10] ^= 0x55;
	expect_drop(f, len, DROP_IP_CSUM, "bad IP checksum");

	for (int ihl = 0; ihl < 5; ihl++) {
		len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
		f[ETH_HLEN] = (uint8_t)(0x40 | ihl);
		fix_ip_csum(f);
		expect_drop(f, len, DROP_IP_IHL, "IHL < 5");
	}
	len = build_icmp_echo(f, &plain_ip, 1, 1, 0); /* 28-byte datagram */
	f[ETH_HLEN] = 0x4f;                           /* 60-byte header */
	expect_drop(f, len, DROP_IP_IHL, "IHL past the frame");

	len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
	f[ETH_HLEN] = 0x65;
	expect_drop(f, len, DROP_IP_VERSION, "IP version 6");

	len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
	put_be16(f + ETH_HLEN + 2, (uint16_t)(len - ETH_HLEN + 1));
	fix_ip_csum(f);
	expect_drop(f, len, DROP_IP_LEN, "total length > frame");
	put_be16(f + ETH_HLEN + 2, 19);
	fix_ip_csum(f);
	expect_drop(f, len, DROP_IP_LEN, "total length < header");

	o.frag = 0x2000; /* more fragments */
	len = build_icmp_echo(f, &o, 1, 1, 16);
	expect_drop(f, len, DROP_IP_FRAG, "first fragment");
	o.frag = 0x0010; /* offset 128 */
	len = build_icmp_echo(f, &o, 1, 1, 16);
	expect_drop(f, len, DROP_IP_FRAG, "later fragment");
	o.frag = 0x4000; /* DF alone is fine */
	len = build_icmp_echo(f, &o, 1, 1, 16);
	CHECK(feed(f, len) == 1, "DF set: answered");

	o = plain_ip;
	o.dst = OUR_IP + 1;
	len = build_icmp_echo(f, &o, 1, 1, 16);
	expect_drop(f, len, DROP_IP_NOT_OURS, "IP for someone else");
	o.dst = 0xffffffff;
	len = build_icmp_echo(f, &o, 1, 1, 16);
	expect_drop(f, len, DROP_IP_NOT_OURS, "IP broadcast");

	static const uint32_t bad_sources[] = { 0, 0x7f000001, 0xe0000001, 0xffffffff, 0x0a0002ff, OUR_IP };
	for (size_t i = 0; i < sizeof(bad_sources) / sizeof(bad_sources[0]); i++) {
		o = plain_ip;
		o.src = bad_sources[i];
		len = build_icmp_echo(f, &o, 1, 1, 16);
		expect_drop(f, len, DROP_IP_SRC, "unanswerable source");
	}

	len = finish_ip(f, &plain_ip, 6 /* TCP */, 20);
	expect_drop(f, len, DROP_IP_PROTO, "TCP");
}

static void test_bad_l4(void)
{
	uint8_t f[MAX_FRAME];
	size_t len;

	reset_nif();
	len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
	l4(f, &plain_ip)[9] ^= 1;
	expect_drop(f, len, DROP_ICMP_CSUM, "bad ICMP checksum");
	len = build_icmp_echo(f, &plain_ip, 1, 1, 0);
	put_be16(f + ETH_HLEN + 2, 20 + 7); /* datagram holds 7 ICMP bytes */
	fix_ip_csum(f);
	expect_drop(f, len, DROP_ICMP_SHORT, "ICMP shorter than its header");
	len = build_icmp_echo(f, &plain_ip, 1, 1, 4);
	l4(f, &plain_ip)[0] = 13; /* timestamp request */
	put_be16(l4(f, &plain_ip) + 2, 0);
	put_be16(l4(f, &plain_ip) + 2, csum_fold(csum_add(0, l4(f, &plain_ip), 12)));
	expect_drop(f, len, DROP_ICMP_TYPE, "ICMP timestamp request");

	len = build_udp(f, &plain_ip, 40000, 7, "hello", true);
	l4(f, &plain_ip)[9] ^= 1;
	expect_drop(f, len, DROP_UDP_CSUM, "bad UDP checksum");
	len = build_udp(f, &plain_ip, 40000, 7, "hello", true);
	put_be16(l4(f, &plain_ip) + 4, UDP_HLEN + 6);
	expect_drop(f, len, DROP_UDP_LEN, "UDP length > payload");
	put_be16(l4(f, &plain_ip) + 4, 7);
	expect_drop(f, len, DROP_UDP_LEN, "UDP length < 8");
	len = build_udp(f, &plain_ip, 40000, 7, "", false);
	put_be16(f + ETH_HLEN + 2, 20 + 5);
	fix_ip_csum(f);
	expect_drop(f, len, DROP_UDP_SHORT, "UDP shorter than its header");
}

static void test_bad_eth(void)
{
	uint8_t f[MAX_FRAME];
	size_t len;

	reset_nif();
	len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
	f[5] ^= 1;
	expect_drop(f, len, DROP_ETH_NOT_OURS, "another MAC");
	len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
	memcpy(f, (const uint8_t[]){ 0x01, 0x00, 0x5e, 0, 0, 1 }, 6);
	expect_drop(f, len, DROP_ETH_NOT_OURS, "multicast MAC");
	len = build_icmp_echo(f, &plain_ip, 1, 1, 16);
	put_be16(f + 12, 0x86dd);
	expect_drop(f, len, DROP_ETH_TYPE, "IPv6 ethertype");
	put_be16(f + 12, 0x8100);
	expect_drop(f, len, DROP_ETH_TYPE, "VLAN tag");
}

/* Every proper prefix of a valid frame must be dropped without a reply. */
static void truncate_all(const uint8_t *f, size_t len, const char *what)
{
	int replies = 0;
	uint64_t drops_before = net_drops_total(&nif);

	for (size_t n = 0; n < len; n++)
		replies += feed(f, n);
	CHECK(replies == 0, "%s truncated: %d replies", what, replies);
	CHECK(net_drops_total(&nif) - drops_before == len, "%s truncated: every prefix counted", what);
	CHECK(feed(f, len) == 1, "%s whole: answered", what);
}

static void test_truncation(void)
{
	uint8_t f[MAX_FRAME];
	size_t len;

	reset_nif();
	len = build_arp(f, 1, OUR_IP);
	truncate_all(f, len, "ARP");
	len = build_icmp_echo(f, &plain_ip, 9, 9, 56);
	truncate_all(f, len, "ICMP echo");
	len = build_udp(f, &plain_ip, 1234, 7, "truncate me", true);
	truncate_all(f, len, "UDP echo");
	struct ip_opts o = plain_ip;
	o.ihl_words = 15;
	len = build_udp(f, &o, 1234, 7, "max options", true);
	truncate_all(f, len, "UDP with 40 bytes of options");
}

static void test_tx_paths(void)
{
	uint8_t f[MAX_FRAME];
	size_t len;

	reset_nif();
	len = build_icmp_echo(f, &plain_ip, 1, 1, 3000); /* longer than the TX buffer */
	expect_drop(f, len, DROP_TX_SIZE, "echo too big to answer");
	output_result = -1;
	len = build_icmp_echo(f, &plain_ip, 1, 1, 8);
	CHECK(feed(f, len) == 1 && nif.stats.drops[DROP_TX_FAIL] == 1 && nif.stats.icmp_replies == 0,
	      "driver refusal counted");
	output_result = 0;
}

static void test_parse_cidr(void)
{
	uint32_t ip = 0;
	int prefix = 0;

	CHECK(ipv4_parse_cidr("10.0.2.15/24", &ip, &prefix) == 0 && ip == OUR_IP && prefix == 24, "cidr");
	CHECK(ipv4_parse_cidr("192.168.1.2", &ip, &prefix) == 0 && ip == 0xc0a80102 && prefix == 24,
	      "no prefix: /24");
	CHECK(ipv4_parse_cidr("1.2.3.4/32", &ip, &prefix) == 0 && prefix == 32, "/32");
	static const char *const bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/33", "1.2.3.4/",
					   "a.b.c.d", "1..2.3", "1.2.3.4x", "01234.1.1.1", "1.2.3.4/24/1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(ipv4_parse_cidr(bad[i], &ip, &prefix) < 0, "'%s' refused", bad[i]);
}

/* A reply to a mutated frame goes wherever the mutation pointed it, but it
 * must come from us and carry a sound IPv4 header. */
static bool reply_well_formed(void)
{
	const uint8_t *h = sent + ETH_HLEN;

	if (sent_len < ETH_MIN_FRAME || memcmp(sent + 6, our_mac, 6) != 0)
		return false;
	if (get_be16(sent + 12) != ETH_P_IPV4)
		return get_be16(sent + 12) == ETH_P_ARP && get_be32(sent + ETH_HLEN + 14) == OUR_IP;
	return h[0] == 0x45 && csum_fold(csum_add(0, h, 20)) == 0 && get_be32(h + 12) == OUR_IP &&
	       (size_t)ETH_HLEN + get_be16(h + 2) <= sent_len;
}

/* Random byte flips and truncations: no crash, and any reply is well formed. */
static void test_mutations(void)
{
	uint8_t base[MAX_FRAME], f[MAX_FRAME];
	size_t lens[3];
	const uint8_t *bases[3];
	uint8_t b1[MAX_FRAME], b2[MAX_FRAME];
	int bad_replies = 0;
	unsigned seed = 12345;

	lens[0] = build_arp(base, 1, OUR_IP);
	lens[1] = build_icmp_echo(b1, &plain_ip, 7, 7, 40);
	lens[2] = build_udp(b2, &plain_ip, 5555, 7, "mutate this payload", true);
	bases[0] = base, bases[1] = b1, bases[2] = b2;
	reset_nif();
	for (int iter = 0; iter < 200000; iter++) {
		int which = iter % 3, flips;
		size_t len = lens[which];

		memcpy(f, bases[which], len);
		seed = seed * 1103515245 + 12345;
		flips = 1 + (int)(seed >> 16) % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245 + 12345;
			f[(seed >> 8) % len] ^= (uint8_t)(1 + (seed >> 20) % 255);
		}
		seed = seed * 1103515245 + 12345;
		if ((seed >> 16) % 4 == 0)
			len = (seed >> 4) % (len + 1);
		if (feed(f, len) && !reply_well_formed())
			bad_replies++;
	}
	CHECK(bad_replies == 0, "mutated frames: %d malformed replies", bad_replies);
	CHECK(nif.stats.rx_frames == 200000, "mutated frames all seen");
}

int main(void)
{
	test_arp();
	test_icmp();
	test_udp();
	test_bad_ip();
	test_bad_l4();
	test_bad_eth();
	test_truncation();
	test_tx_paths();
	test_parse_cidr();
	test_mutations();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
