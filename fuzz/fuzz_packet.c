/*
 * libFuzzer target for the frame parser and the TCP helpers: the input is one
 * Ethernet frame. Besides the sanitizers it checks what pkt_parse promises:
 * every offset it returns lies inside the frame (and inside the IP datagram),
 * flow keys reverse consistently, and on a TCP frame the in-place helpers
 * (checksum fixup, incremental SEQ/ACK updates, SACK shifting) keep the
 * checksum right and touch nothing outside the TCP header.
 *
 *   make fuzz && build/fuzz/fuzz_packet -max_len=2048 fuzz/corpus/packet
 *
 * Built with -DFUZZ_CORPUS_MAIN (no -fsanitize=fuzzer) it writes the seed
 * corpus instead:
 *   cc -std=gnu11 -D_GNU_SOURCE -Isrc -DFUZZ_CORPUS_MAIN fuzz/fuzz_packet.c \
 *      src/net/packet.c src/net/packet_tcp.c -lxxhash -o /tmp/gen && /tmp/gen fuzz/corpus/packet
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/packet.h"
#include "../tests/unit/net_frames.h"

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

static void check_offsets(const struct pkt_info *in, size_t len)
{
	check(len >= PKT_ETH_HLEN && in->frame_len == len);
	check(in->vlan_depth <= 2);
	if (in->l3 == PKT_L3_NONE) {
		check(in->l4 == PKT_L4_NONE);
		return;
	}
	check(in->l3_off < in->l3_end && in->l3_end <= len);
	check(in->l4_off <= in->l3_end && in->l4_off + in->l4_len == in->l3_end);
	check(in->payload_off >= in->l4_off && in->payload_off + in->payload_len <= in->l3_end);
	if (in->l4 == PKT_L4_TCP) {
		check(in->tcp_hdr_len >= 20 && in->l4_off + in->tcp_hdr_len <= in->l3_end);
		check(in->tcp_opt_off + in->tcp_opt_len == in->l4_off + in->tcp_hdr_len);
	}
	if (in->fragment)
		check(in->l4 == PKT_L4_NONE);
}

static void check_keys(const struct pkt_info *in)
{
	struct flow_key k, r, rr;

	pkt_flow_key(in, false, &k);
	pkt_flow_key(in, true, &r);
	check(k.family == (uint8_t)in->l3);
	/* reversing twice is the identity */
	rr = r;
	memcpy(rr.src, r.dst, 16);
	memcpy(rr.dst, r.src, 16);
	rr.sport = r.dport;
	rr.dport = r.sport;
	check(flow_key_equal(&k, &rr));
	check(flow_key_hash(&k, 1) == flow_key_hash(&rr, 1));
}

/* The helpers only write seq, ack, checksum and the options area. */
static void check_untouched(const uint8_t *a, const uint8_t *b, const struct pkt_info *in)
{
	for (uint32_t i = 0; i < in->frame_len; i++) {
		uint32_t t = i - in->l4_off;
		bool allowed = i >= in->l4_off && ((t >= 4 && t < 12) || t == 16 || t == 17 ||
						    (i >= in->tcp_opt_off && i < in->tcp_opt_off + in->tcp_opt_len));

		if (!allowed)
			check(a[i] == b[i]);
	}
}

static void exercise_tcp(const uint8_t *data, size_t len, const struct pkt_info *in)
{
	uint8_t *f = malloc(len);
	uint32_t off, olen;

	memcpy(f, data, len);
	pkt_tcp_mss(f, in);
	if (pkt_tcp_find_option(f, in, TCP_OPT_SACK, &off, &olen) == 0)
		check(off >= in->tcp_opt_off && off + olen <= in->tcp_opt_off + in->tcp_opt_len);
	check(pkt_tcp_checksum_fixup(f, in) == 0);
	check(pkt_tcp_checksum_ok(f, in));
	pkt_tcp_set_seq(f, in, in->seq + 0x01020304u);
	pkt_tcp_set_ack(f, in, in->ack - 77u);
	pkt_tcp_sack_shift(f, in, 0x80000001u);
	check(pkt_tcp_checksum_ok(f, in));
	check_untouched(data, f, in);
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	/* An exact-size copy, so that a read past the end is caught. */
	uint8_t *f = malloc(len ? len : 1);
	struct pkt_info in;

	memcpy(f, data, len);
	if (pkt_parse(f, len, &in) == 0) {
		check_offsets(&in, len);
		check_keys(&in);
		if (in.l4 == PKT_L4_TCP)
			exercise_tcp(f, len, &in);
	}
	free(f);
	return 0;
}

#ifdef FUZZ_CORPUS_MAIN
#include "corpus_writer.h"

int main(int argc, char **argv)
{
	static uint8_t f[NF_MAX_FRAME];
	static const uint8_t opts[] = { 2, 4, 5, 0xb4, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9 };
	struct nf_flow v4 = nf_flow4(), v6 = nf_flow6(), q = nf_flow4();

	if (argc != 2)
		return 2;
	q.vlans = 2;
	q.vlan_id = 100;
	corpus_write(argv[1], "tcp4", f, nf_tcp(f, &v4, true, 1, 2, TCP_ACK | TCP_PSH, "hello", 5));
	corpus_write(argv[1], "tcp6-sack", f, nf_tcp_opts(f, &v6, false, 1, 2, TCP_ACK, opts, sizeof(opts), "x", 1));
	corpus_write(argv[1], "tcp4-qinq", f, nf_tcp(f, &q, true, 1, 2, TCP_SYN, NULL, 0));
	corpus_write(argv[1], "udp6", f, nf_udp(f, &v6, true, "dns", 3));
	corpus_write(argv[1], "icmp4", f, nf_icmp_echo(f, &v4, true, false, 1, 2, "ping", 4));
	corpus_write(argv[1], "icmp6", f, nf_icmp_echo(f, &v6, true, true, 1, 2, "ping", 4));
	corpus_write(argv[1], "arp", f, nf_arp(f, &v4, 1));
	return 0;
}
#endif
