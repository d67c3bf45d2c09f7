/*
 * Frame parsing, flow keys and TCP checksum/option helpers: frames built by
 * tests/unit/net_frames.h, every truncation of each, and malformed headers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net/packet.h"
#include "net_frames.h"

static uint8_t frame[NF_MAX_FRAME];

static const char payload[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/* The frame's TCP checksum, recomputed by the reference implementation. */
static uint16_t ref_tcp_csum(uint8_t *f, const struct pkt_info *in)
{
	uint8_t *t = f + in->l4_off;
	uint8_t saved[2] = { t[16], t[17] };
	uint16_t c;

	t[16] = t[17] = 0;
	c = nf_l4_csum(in->l3 == PKT_L3_IPV4 ? 4 : 6, in->src, in->dst, 6, t, in->l4_len);
	t[16] = saved[0];
	t[17] = saved[1];
	return c;
}

static uint16_t frame_tcp_csum(const uint8_t *f, const struct pkt_info *in)
{
	return (uint16_t)(f[in->l4_off + 16] << 8 | f[in->l4_off + 17]);
}

static void test_ipv4_tcp(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_tcp(frame, &fl, true, 1000, 2000, TCP_ACK | TCP_PSH, payload, strlen(payload));
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l3, PKT_L3_IPV4);
	assert_int_equal(in.l4, PKT_L4_TCP);
	assert_int_equal(in.vlan_depth, 0);
	assert_int_equal(in.l3_off, 14);
	assert_int_equal(in.l4_off, 34);
	assert_int_equal(in.proto, 6);
	assert_int_equal(in.sport, 80);
	assert_int_equal(in.dport, 40000);
	assert_int_equal(in.seq, 1000);
	assert_int_equal(in.ack, 2000);
	assert_int_equal(in.tcp_flags, TCP_ACK | TCP_PSH);
	assert_int_equal(in.window, 65535);
	assert_int_equal(in.tcp_hdr_len, 20);
	assert_int_equal(in.payload_off, 54);
	assert_int_equal(in.payload_len, strlen(payload));
	assert_int_equal(in.l3_end, n);
	assert_false(in.fragment);
	assert_memory_equal(in.src, fl.a, 4);
	assert_memory_equal(in.dst, fl.b, 4);
	assert_true(pkt_tcp_checksum_ok(frame, &in));
}

static void test_ipv6_tcp(void **state)
{
	struct nf_flow fl = nf_flow6();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_tcp(frame, &fl, false, 7, 9, TCP_SYN, NULL, 0);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l3, PKT_L3_IPV6);
	assert_int_equal(in.l4, PKT_L4_TCP);
	assert_int_equal(in.l4_off, 54);
	assert_int_equal(in.sport, 50000);
	assert_int_equal(in.dport, 443);
	assert_int_equal(in.tcp_flags, TCP_SYN);
	assert_int_equal(in.payload_len, 0);
	assert_memory_equal(in.src, fl.b, 16);
	assert_true(pkt_tcp_checksum_ok(frame, &in));
}

static void test_vlan_tags(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;
	size_t n;

	(void)state;
	fl.vlans = 1;
	fl.vlan_id = 100;
	n = nf_tcp(frame, &fl, true, 1, 2, TCP_ACK, "x", 1);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.vlan_depth, 1);
	assert_int_equal(in.vlan_id, 100);
	assert_int_equal(in.l3_off, 18);
	assert_int_equal(in.l4, PKT_L4_TCP);
	assert_int_equal(in.payload_len, 1);

	fl.vlans = 2; /* 802.1ad outer 100, 802.1Q inner 101 */
	n = nf_tcp(frame, &fl, true, 1, 2, TCP_ACK, "x", 1);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.vlan_depth, 2);
	assert_int_equal(in.vlan_id, 100);
	assert_int_equal(in.l3_off, 22);
	assert_int_equal(in.l4, PKT_L4_TCP);

	/* A third tag: not parsed further, the frame counts as non-IP. */
	memmove(frame + 16, frame + 12, n - 12);
	nf_put16(frame + 12, 0x8100);
	nf_put16(frame + 14, 7);
	assert_int_equal(pkt_parse(frame, n + 4, &in), 0);
	assert_int_equal(in.l3, PKT_L3_NONE);
	assert_int_equal(in.ethertype, 0x8100);
}

static void test_udp_icmp_arp(void **state)
{
	struct nf_flow fl = nf_flow4(), fl6 = nf_flow6();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_udp(frame, &fl, true, "dns!", 4);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l4, PKT_L4_UDP);
	assert_int_equal(in.payload_len, 4);
	assert_int_equal(in.payload_off, 42);

	n = nf_udp(frame, &fl6, false, "six", 3);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l4, PKT_L4_UDP);
	assert_int_equal(in.payload_len, 3);

	n = nf_icmp_echo(frame, &fl, true, true, 0x1234, 1, "ping", 4);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l4, PKT_L4_ICMP);
	assert_true(in.icmp_echo);
	assert_int_equal(in.icmp_type, 0);
	assert_int_equal(in.icmp_id, 0x1234);

	n = nf_icmp_echo(frame, &fl6, true, false, 0x4321, 1, "ping", 4);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l4, PKT_L4_ICMPV6);
	assert_int_equal(in.icmp_type, 128);
	assert_int_equal(in.icmp_id, 0x4321);

	n = nf_arp(frame, &fl, 1);
	assert_int_equal(n, 60);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l3, PKT_L3_NONE);
	assert_int_equal(in.l4, PKT_L4_NONE);
	assert_int_equal(in.ethertype, PKT_ETH_ARP);
}

static void test_ethernet_padding(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_tcp(frame, &fl, true, 5, 6, TCP_ACK, NULL, 0);
	assert_int_equal(n, 54);
	memset(frame + n, 0xee, 6); /* padded to the 60-byte minimum */
	assert_int_equal(pkt_parse(frame, 60, &in), 0);
	assert_int_equal(in.l3_end, 54);
	assert_int_equal(in.payload_len, 0);
	assert_true(pkt_tcp_checksum_ok(frame, &in));
}

/* Every prefix of a valid frame: rejected, or parsed with every offset inside
 * the prefix. Each prefix lives in its own allocation so that valgrind and
 * ASan see a read past it. */
static void check_truncations(const uint8_t *f, size_t n)
{
	for (size_t len = 0; len < n; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		struct pkt_info in;

		memcpy(copy, f, len);
		if (pkt_parse(copy, len, &in) == 0) {
			assert_true(in.l3 == PKT_L3_NONE || in.l3_end <= len);
			assert_true(in.l4_off + in.l4_len <= len || in.l3 == PKT_L3_NONE);
			assert_true(in.payload_off + in.payload_len <= len || in.l3 == PKT_L3_NONE);
			assert_true(len >= PKT_ETH_HLEN);
		}
		free(copy);
	}
}

static void test_truncations(void **state)
{
	struct nf_flow fl = nf_flow4(), fl6 = nf_flow6();
	static const uint8_t opts[] = { 2, 4, 5, 0xb4, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2 };
	size_t n;

	(void)state;
	fl.vlans = 2;
	fl6.vlans = 1;
	n = nf_tcp_opts(frame, &fl, true, 1, 2, TCP_ACK, opts, sizeof(opts), payload, 10);
	check_truncations(frame, n);
	n = nf_tcp(frame, &fl6, true, 1, 2, TCP_ACK, payload, 10);
	check_truncations(frame, n);
	n = nf_udp(frame, &fl, false, payload, 7);
	check_truncations(frame, n);
	n = nf_udp(frame, &fl6, false, payload, 7);
	check_truncations(frame, n);
	n = nf_icmp_echo(frame, &fl, true, false, 1, 2, payload, 5);
	check_truncations(frame, n);
	n = nf_icmp_echo(frame, &fl6, true, false, 1, 2, payload, 5);
	check_truncations(frame, n);
	n = nf_arp(frame, &fl, 2);
	check_truncations(frame, n);
}

/* A truncated IP datagram inside a full-size frame is rejected, not read past. */
static void test_truncated_counts_as_malformed(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_tcp(frame, &fl, true, 1, 2, TCP_ACK, payload, 10);
	assert_int_equal(pkt_parse(frame, 13, &in), -EINVAL);
	assert_int_equal(pkt_parse(frame, 14 + 19, &in), -EINVAL);   /* IP header cut */
	assert_int_equal(pkt_parse(frame, 14 + 20 + 19, &in), -EINVAL); /* total length > frame */
	assert_int_equal(pkt_parse(frame, n, &in), 0);
}

static void test_bad_ipv4(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;
	uint8_t *ip = frame + 14;
	size_t n;

	(void)state;
	n = nf_tcp(frame, &fl, true, 1, 2, TCP_ACK, payload, 10);
	ip[0] = 0x44; /* IHL 4 */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	ip[0] = 0x4f; /* IHL 15: 60 bytes, more than the total length */
	assert_int_equal(pkt_parse(frame, 14 + 40, &in), -EINVAL);
	ip[0] = 0x65; /* version 6 in an IPv4 ethertype */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	ip[0] = 0x45;
	nf_put16(ip + 2, 19); /* total < header */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	nf_put16(ip + 2, (uint16_t)(n - 14 + 1)); /* total > frame */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	nf_put16(ip + 2, 20 + 19); /* leaves 19 bytes for TCP */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	nf_put16(ip + 2, (uint16_t)(n - 14));
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(pkt_parse(frame, PKT_MAX_FRAME + 1, &in), -EINVAL);
}

static void test_bad_tcp_udp(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_tcp(frame, &fl, true, 1, 2, TCP_ACK, payload, 10);
	frame[34 + 12] = 4 << 4; /* data offset 4 */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	frame[34 + 12] = 9 << 4; /* 36 bytes: beyond the 30-byte segment */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	frame[34 + 12] = 7 << 4; /* 28 bytes: fits, 2 bytes of payload */
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.payload_len, 2);

	n = nf_udp(frame, &fl, true, "abcd", 4);
	nf_put16(frame + 34 + 4, 7);
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	nf_put16(frame + 34 + 4, 13);
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	nf_put16(frame + 34 + 4, 12);
	assert_int_equal(pkt_parse(frame, n, &in), 0);

	n = nf_icmp_echo(frame, &fl, true, false, 1, 1, NULL, 0);
	nf_put16(frame + 16, 20 + 7); /* ICMP shorter than its 8-byte header */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
}

static void test_bad_ipv6(void **state)
{
	struct nf_flow fl = nf_flow6();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_udp(frame, &fl, true, "abcd", 4);
	nf_put16(frame + 14 + 4, 0); /* jumbogram */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	nf_put16(frame + 14 + 4, 13); /* beyond the frame */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
	nf_put16(frame + 14 + 4, 12);
	frame[14] = 0x40; /* version 4 in an IPv6 ethertype */
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);
}

/* IPv6 header + extension headers + an 8-byte UDP datagram, built by hand. */
static size_t ipv6_with_exts(const uint8_t *exts, size_t elen, uint8_t first)
{
	struct nf_flow fl = nf_flow6();
	size_t off = nf_eth(frame, &fl, true, 0x86dd);
	uint8_t *ip = frame + off;

	memset(ip, 0, 40);
	ip[0] = 0x60;
	nf_put16(ip + 4, (uint16_t)(elen + 8));
	ip[6] = first;
	ip[7] = 64;
	memcpy(ip + 8, fl.a, 16);
	memcpy(ip + 24, fl.b, 16);
	memcpy(ip + 40, exts, elen);
	memset(ip + 40 + elen, 0, 8);
	nf_put16(ip + 40 + elen, 53);
	nf_put16(ip + 40 + elen + 2, 53);
	nf_put16(ip + 40 + elen + 4, 8);
	return off + 40 + elen + 8;
}

static void test_ipv6_extensions(void **state)
{
	/* hop-by-hop (8) -> destination options (16) -> routing (8) -> UDP */
	uint8_t chain[32] = { 60, 0, 1, 4, 0, 0, 0, 0,
			      43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			      17, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t frag[8] = { 17, 0, 0, 0, 0, 0, 0, 1 };
	uint8_t unknown[8] = { 17, 0, 0, 0, 0, 0, 0, 0 };
	struct pkt_info in;
	size_t n;

	(void)state;
	n = ipv6_with_exts(chain, sizeof(chain), 0);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l4, PKT_L4_UDP);
	assert_int_equal(in.proto, 17);
	assert_int_equal(in.l4_off, 14 + 40 + 32);
	assert_false(in.fragment);
	check_truncations(frame, n);

	/* A truncated extension header (length says 16, 12 left) */
	n = ipv6_with_exts(chain, 12, 0);
	assert_int_equal(pkt_parse(frame, n, &in), -EINVAL);

	/* Atomic fragment (offset 0, M 0): a whole datagram, parsed on */
	n = ipv6_with_exts(frag, 8, 44);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_false(in.fragment);
	assert_int_equal(in.l4, PKT_L4_UDP);

	/* A real fragment: flagged, transport not parsed */
	frag[3] = 1; /* M */
	n = ipv6_with_exts(frag, 8, 44);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_true(in.fragment);
	assert_true(in.more_fragments);
	assert_int_equal(in.l4, PKT_L4_NONE);
	assert_int_equal(in.proto, 17);
	frag[3] = 0;
	nf_put16(frag + 2, 185 << 3); /* offset 185, last */
	n = ipv6_with_exts(frag, 8, 44);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_true(in.fragment);
	assert_int_equal(in.frag_offset, 185);

	/* Unknown header (AH, 51): the walk stops there */
	n = ipv6_with_exts(unknown, 8, 51);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(in.l4, PKT_L4_OTHER);
	assert_int_equal(in.proto, 51);
	assert_int_equal(in.l4_off, 14 + 40);
}

static void test_ipv4_fragments(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;
	size_t n;

	(void)state;
	n = nf_udp(frame, &fl, true, payload, 20);
	nf_put16(frame + 14 + 6, 0x2000); /* MF, offset 0 */
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_true(in.fragment);
	assert_true(in.more_fragments);
	assert_int_equal(in.l4, PKT_L4_NONE);
	assert_int_equal(in.l4_off, 34);
	nf_put16(frame + 14 + 6, 0x0003); /* offset 3, last */
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_true(in.fragment);
	assert_int_equal(in.frag_offset, 3);
	nf_put16(frame + 14 + 6, 0x4000); /* DF only: not a fragment */
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_false(in.fragment);
	assert_int_equal(in.l4, PKT_L4_UDP);
}

static void test_flow_keys(void **state)
{
	struct nf_flow fl = nf_flow4();
	struct pkt_info a, b;
	struct flow_key ka, kb, kr;
	static uint8_t f2[200];
	size_t n;

	(void)state;
	n = nf_tcp(frame, &fl, true, 1, 2, TCP_ACK, NULL, 0);
	assert_int_equal(pkt_parse(frame, n, &a), 0);
	n = nf_tcp(f2, &fl, false, 1, 2, TCP_ACK, NULL, 0);
	assert_int_equal(pkt_parse(f2, n, &b), 0);
	pkt_flow_key(&a, false, &ka);
	pkt_flow_key(&b, true, &kr);
	pkt_flow_key(&b, false, &kb);
	assert_true(flow_key_equal(&ka, &kr));
	assert_false(flow_key_equal(&ka, &kb));
	assert_int_equal(flow_key_hash(&ka, 7), flow_key_hash(&kr, 7));
	assert_int_equal(ka.sport, 80);
	assert_int_equal(ka.family, 4);

	fl.vlans = 1;
	fl.vlan_id = 5;
	n = nf_tcp(f2, &fl, true, 1, 2, TCP_ACK, NULL, 0);
	assert_int_equal(pkt_parse(f2, n, &b), 0);
	pkt_flow_key(&b, false, &kb);
	assert_false(flow_key_equal(&ka, &kb));
	assert_int_equal(kb.vlan, 5);

	/* ICMP echo: the identifier on both ports, request and reply share a key */
	fl.vlans = 0;
	n = nf_icmp_echo(frame, &fl, true, true, 99, 1, NULL, 0);
	assert_int_equal(pkt_parse(frame, n, &a), 0);
	n = nf_icmp_echo(f2, &fl, false, false, 99, 1, NULL, 0);
	assert_int_equal(pkt_parse(f2, n, &b), 0);
	pkt_flow_key(&a, false, &ka);
	pkt_flow_key(&b, true, &kr);
	assert_true(flow_key_equal(&ka, &kr));
	assert_int_equal(ka.sport, 99);

	/* ARP: keyed by ethertype and MAC addresses */
	n = nf_arp(frame, &fl, 1);
	assert_int_equal(pkt_parse(frame, n, &a), 0);
	pkt_flow_key(&a, false, &ka);
	assert_int_equal(ka.family, 0);
	assert_int_equal(ka.ethertype, PKT_ETH_ARP);
	assert_memory_equal(ka.src, frame + 6, 6);
}

static void check_fixup(const struct nf_flow *fl, size_t plen)
{
	struct pkt_info in;
	size_t n = nf_tcp(frame, fl, true, 0x12345678, 0x9abcdef0, TCP_ACK, payload, plen);

	assert_int_equal(pkt_parse(frame, n, &in), 0);
	nf_put32(frame + in.l4_off + 4, 0xdeadbeef); /* rewrite seq, checksum now stale */
	assert_false(pkt_tcp_checksum_ok(frame, &in));
	assert_int_equal(pkt_tcp_checksum_fixup(frame, &in), 0);
	assert_int_equal(frame_tcp_csum(frame, &in), ref_tcp_csum(frame, &in));
	assert_true(pkt_tcp_checksum_ok(frame, &in));
}

static void test_checksum_fixup(void **state)
{
	struct nf_flow fl4 = nf_flow4(), fl6 = nf_flow6();
	struct pkt_info in;
	size_t n;

	(void)state;
	check_fixup(&fl4, 10);
	check_fixup(&fl4, 11); /* odd length */
	check_fixup(&fl6, 10);
	check_fixup(&fl6, 11);
	n = nf_udp(frame, &fl4, true, "x", 1);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(pkt_tcp_checksum_fixup(frame, &in), -EINVAL);
}

/* Incremental updates agree with a full recomputation for many values. */
static void test_incremental_seq_ack(void **state)
{
	struct nf_flow fl4 = nf_flow4(), fl6 = nf_flow6();
	uint32_t x = 12345;

	(void)state;
	for (int i = 0; i < 2000; i++) {
		const struct nf_flow *fl = i % 2 ? &fl6 : &fl4;
		struct pkt_info in;
		size_t n;

		x = x * 1103515245u + 12345u;
		n = nf_tcp(frame, fl, true, x, ~x, TCP_ACK, payload, (size_t)(i % 13));
		assert_int_equal(pkt_parse(frame, n, &in), 0);
		pkt_tcp_set_seq(frame, &in, x * 7u);
		pkt_tcp_set_ack(frame, &in, x ^ 0xffff0000u);
		assert_int_equal(nf_get32(frame + in.l4_off + 4), x * 7u);
		assert_int_equal(nf_get32(frame + in.l4_off + 8), x ^ 0xffff0000u);
		assert_true(pkt_tcp_checksum_ok(frame, &in));
		assert_int_equal(frame_tcp_csum(frame, &in), ref_tcp_csum(frame, &in));
	}
}

static void test_options_sack_mss(void **state)
{
	struct nf_flow fl = nf_flow6();
	/* MSS 1460, NOP, NOP, SACK with two blocks */
	uint8_t opts[24] = { 2, 4, 0x05, 0xb4, 1, 1, 5, 18 };
	struct pkt_info in;
	uint32_t off, len;
	size_t n;

	(void)state;
	nf_put32(opts + 8, 1000);
	nf_put32(opts + 12, 2000);
	nf_put32(opts + 16, 0xfffffff0u);
	nf_put32(opts + 20, 0x10);
	n = nf_tcp_opts(frame, &fl, false, 1, 2, TCP_ACK, opts, sizeof(opts), NULL, 0);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(pkt_tcp_mss(frame, &in), 1460);
	assert_int_equal(pkt_tcp_find_option(frame, &in, TCP_OPT_SACK, &off, &len), 0);
	assert_int_equal(len, 18);
	assert_int_equal(pkt_tcp_sack_shift(frame, &in, 4000), 2);
	assert_int_equal(nf_get32(frame + off + 2), 5000);
	assert_int_equal(nf_get32(frame + off + 6), 6000);
	assert_int_equal(nf_get32(frame + off + 10), 4000 - 16); /* wraps */
	assert_int_equal(nf_get32(frame + off + 14), 4016);
	assert_true(pkt_tcp_checksum_ok(frame, &in));
	assert_int_equal(pkt_tcp_sack_shift(frame, &in, 0), 0);

	/* A malformed option (length 1) ends the walk: nothing found after it */
	opts[4] = 8;
	opts[5] = 1;
	n = nf_tcp_opts(frame, &fl, false, 1, 2, TCP_ACK, opts, sizeof(opts), NULL, 0);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(pkt_tcp_sack_shift(frame, &in, 4000), 0);
	assert_int_equal(pkt_tcp_find_option(frame, &in, TCP_OPT_SACK, &off, &len), -ENOENT);
	assert_int_equal(pkt_tcp_mss(frame, &in), 1460);

	/* An option running past the header */
	uint8_t bad[4] = { 2, 8, 0, 0 };

	n = nf_tcp_opts(frame, &fl, false, 1, 2, TCP_ACK, bad, sizeof(bad), NULL, 0);
	assert_int_equal(pkt_parse(frame, n, &in), 0);
	assert_int_equal(pkt_tcp_mss(frame, &in), 0);
}

/* A SACK block at an odd offset in the segment (one NOP before the option):
 * its bytes straddle the checksum's 16-bit words. */
static void test_sack_odd_alignment(void **state)
{
	struct nf_flow fl = nf_flow4();
	uint8_t opts[11] = { 1, 5, 10 };
	struct pkt_info in;
	size_t n;

	(void)state;
	for (uint32_t v = 1; v < 100000; v = v * 3 + 7) {
		nf_put32(opts + 3, v);
		nf_put32(opts + 7, v * 5);
		n = nf_tcp_opts(frame, &fl, false, 1, 2, TCP_ACK, opts, sizeof(opts), payload, 3);
		assert_int_equal(pkt_parse(frame, n, &in), 0);
		assert_int_equal(pkt_tcp_sack_shift(frame, &in, 0x01020304u * v), 1);
		assert_int_equal(nf_get32(frame + in.l4_off + 23), v + 0x01020304u * v);
		assert_int_equal(nf_get32(frame + in.l4_off + 27), v * 5 + 0x01020304u * v);
		assert_int_equal(frame_tcp_csum(frame, &in), ref_tcp_csum(frame, &in));
	}
}

/* Random garbage and random mutations of valid frames never crash the parser
 * and never produce offsets outside the frame. */
static void test_random_frames(void **state)
{
	struct nf_flow fl = nf_flow6();
	uint32_t x = 1;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t n = nf_tcp(frame, &fl, i % 2, 1, 2, TCP_ACK, payload, 12);
		struct pkt_info in;

		for (int k = 0; k < 3; k++) {
			x = x * 1664525u + 1013904223u;
			frame[(x >> 8) % n] = (uint8_t)(x >> 24);
		}
		x = x * 1664525u + 1013904223u;
		n = (x >> 4) % (n + 1);
		if (pkt_parse(frame, n, &in) == 0 && in.l3 != PKT_L3_NONE) {
			assert_true(in.l3_end <= n);
			assert_true(in.l4_off + in.l4_len <= n);
			assert_true(in.payload_off + in.payload_len <= n);
			if (in.l4 == PKT_L4_TCP) {
				pkt_tcp_sack_shift(frame, &in, 5);
				pkt_tcp_mss(frame, &in);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_tcp),
		cmocka_unit_test(test_ipv6_tcp),
		cmocka_unit_test(test_vlan_tags),
		cmocka_unit_test(test_udp_icmp_arp),
		cmocka_unit_test(test_ethernet_padding),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_truncated_counts_as_malformed),
		cmocka_unit_test(test_bad_ipv4),
		cmocka_unit_test(test_bad_tcp_udp),
		cmocka_unit_test(test_bad_ipv6),
		cmocka_unit_test(test_ipv6_extensions),
		cmocka_unit_test(test_ipv4_fragments),
		cmocka_unit_test(test_flow_keys),
		cmocka_unit_test(test_checksum_fixup),
		cmocka_unit_test(test_incremental_seq_ack),
		cmocka_unit_test(test_options_sack_mss),
		cmocka_unit_test(test_sack_odd_alignment),
		cmocka_unit_test(test_random_frames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
