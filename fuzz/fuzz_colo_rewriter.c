/*
 * libFuzzer target for the COLO rewriter: the input is a script of frames in
 * both directions on a few flows (structured TCP segments with handshake,
 * FIN, RST and SACK options; raw hostile frames) plus checkpoints and a
 * failover, against a rewriter with a tiny table (eviction is reached).
 *
 * Besides the sanitizers it checks that the rewriter only ever changes a TCP
 * frame's sequence number (outbound), acknowledgment number and SACK blocks
 * (inbound) and the checksum; that a checksum that was right stays right;
 * that anything else (non-TCP, unparseable) passes byte for byte; and that a
 * checkpoint forgets every connection.
 *
 *   make fuzz && build/fuzz/fuzz_colo_rewriter -max_len=4096 fuzz/corpus/colo_rewriter
 *
 * Built with -DFUZZ_CORPUS_MAIN (no -fsanitize=fuzzer) it writes the seed corpus:
 *   cc -std=gnu11 -D_GNU_SOURCE -Isrc -DFUZZ_CORPUS_MAIN fuzz/fuzz_colo_rewriter.c \
 *      src/net/packet.c src/net/packet_tcp.c src/net/flow_table.c src/colo/net/rewriter.c \
 *      -lxxhash -o /tmp/gen && /tmp/gen fuzz/corpus/colo_rewriter
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colo/net/rewriter.h"
#include "net/packet.h"
#include "../tests/unit/net_frames.h"

enum op { OP_INBOUND, OP_OUTBOUND, OP_RAW_IN, OP_RAW_OUT, OP_CHECKPOINT, OP_FAILOVER, OP_COUNT };

struct reader {
	const uint8_t *p;
	size_t left;
};

static uint8_t rd8(struct reader *r)
{
	if (!r->left)
		return 0;
	r->left--;
	return *r->p++;
}

static uint32_t rd32(struct reader *r)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | rd8(r);
	return v;
}

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

static uint8_t frame[NF_MAX_FRAME], before[NF_MAX_FRAME];

/* Sequence numbers from a small set around each side's ISN, so handshakes
 * and teardowns really happen; options: none, MSS, or NOP + SACK (odd offset). */
static size_t build_tcp(struct reader *r, bool outbound)
{
	static const uint32_t bases[4] = { 1000, 5000, 200, 0xfffffff0u };
	struct nf_flow fl = (rd8(r) & 1) ? nf_flow6() : nf_flow4();
	uint8_t sel = rd8(r), flags = rd8(r), optsel = rd8(r);
	uint32_t seq = bases[sel & 3] + (sel >> 2), ack = bases[(sel >> 4) & 3] + rd8(r);
	uint8_t opts[20] = { 1, 5, 18 };
	size_t optlen = 0;

	fl.pb = (uint16_t)(40000 + (sel & 0x40 ? 1 : 0));
	if (sel & 0x80) {
		fl.vlans = 1;
		fl.vlan_id = 3;
	}
	if (optsel % 3 == 1) {
		opts[0] = 2;
		opts[1] = 4;
		optlen = 4;
	} else if (optsel % 3 == 2) {
		nf_put32(opts + 3, rd32(r));
		nf_put32(opts + 7, rd32(r));
		nf_put32(opts + 11, rd32(r));
		nf_put32(opts + 15, rd32(r));
		optlen = 19;
	}
	return nf_tcp_opts(frame, &fl, outbound, seq, ack, flags, opts, optlen, "payload", optsel % 8);
}

static size_t read_raw(struct reader *r)
{
	size_t n = rd8(r) % 160;

	for (size_t i = 0; i < n; i++)
		frame[i] = rd8(r);
	return n;
}

/* Which bytes the rewriter may change in this frame. */
static bool may_change(const struct pkt_info *in, uint32_t i, bool outbound)
{
	uint32_t t = i - in->l4_off;

	if (in->l4 != PKT_L4_TCP || i < in->l4_off)
		return false;
	if (t == 16 || t == 17)
		return true;
	if (outbound)
		return t >= 4 && t < 8;
	return (t >= 8 && t < 12) || (i >= in->tcp_opt_off && i < in->tcp_opt_off + in->tcp_opt_len);
}

static void pass(struct colo_rewriter *rw, size_t n, bool outbound)
{
	struct pkt_info in;
	bool parsed, csum_ok = false;

	memcpy(before, frame, n);
	parsed = pkt_parse(before, n, &in) == 0;
	if (parsed && in.l4 == PKT_L4_TCP)
		csum_ok = pkt_tcp_checksum_ok(before, &in);
	if (outbound)
		colo_rewriter_outbound(rw, frame, n);
	else
		colo_rewriter_inbound(rw, frame, n);
	for (uint32_t i = 0; i < n; i++)
		if (!parsed || !may_change(&in, i, outbound))
			check(frame[i] == before[i]);
	if (csum_ok)
		check(pkt_tcp_checksum_ok(frame, &in));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct colo_rewriter *rw = colo_rewriter_create_limit(3);
	struct reader r = { data, len };
	struct colo_rewriter_stats st;

	check(rw != NULL);
	while (r.left) {
		switch (rd8(&r) % OP_COUNT) {
		case OP_INBOUND:
			pass(rw, build_tcp(&r, false), false);
			break;
		case OP_OUTBOUND:
			pass(rw, build_tcp(&r, true), true);
			break;
		case OP_RAW_IN:
			pass(rw, read_raw(&r), false);
			break;
		case OP_RAW_OUT:
			pass(rw, read_raw(&r), true);
			break;
		case OP_CHECKPOINT:
			colo_rewriter_checkpoint(rw);
			colo_rewriter_get_stats(rw, &st);
			check(st.connections == 0);
			break;
		case OP_FAILOVER:
			if (rd8(&r) == 0x5a)
				colo_rewriter_failover(rw);
			break;
		}
		colo_rewriter_get_stats(rw, &st);
		check(st.connections <= 3);
	}
	colo_rewriter_destroy(rw);
	return 0;
}

#ifdef FUZZ_CORPUS_MAIN
#include "corpus_writer.h"

/* sel: seq base index (bits 0-1) + small offset (bits 2-3), ack base (bits 4-5) */
static void put_tcp(enum op op, uint8_t family, uint8_t sel, uint8_t flags, uint8_t ackadd,
		    uint8_t optsel)
{
	seed_put(op);
	seed_put(family);
	seed_put(sel);
	seed_put(flags);
	seed_put(optsel);
	seed_put(ackadd);
	if (optsel % 3 == 2)
		for (int i = 0; i < 16; i++)
			seed_put((uint8_t)(i < 4 ? 0 : i < 8 ? 0 : 0x10));
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	/* passive: client SYN (seq 200), secondary SYN-ACK (5000, ack 201),
	 * client ACK (ack 1001), data both ways, SACK, FINs */
	put_tcp(OP_INBOUND, 0, 2, TCP_SYN, 0, 0);
	put_tcp(OP_OUTBOUND, 0, 1 | 2 << 4, TCP_SYN | TCP_ACK, 1, 1);
	put_tcp(OP_INBOUND, 0, 2 | 1 << 2, TCP_ACK, 1, 0);
	put_tcp(OP_OUTBOUND, 0, 1 | 1 << 2 | 2 << 4, TCP_ACK | TCP_PSH, 1, 5);
	put_tcp(OP_INBOUND, 0, 2 | 1 << 2, TCP_ACK, 6, 2);
	put_tcp(OP_OUTBOUND, 0, 1 | 1 << 2 | 2 << 4, TCP_FIN | TCP_ACK, 1, 0);
	put_tcp(OP_INBOUND, 0, 2 | 1 << 2, TCP_FIN | TCP_ACK, 7, 0);
	seed_save(argv[1], "passive");
	/* active, IPv6: guest SYN (5000), server SYN-ACK acking 1001 */
	put_tcp(OP_OUTBOUND, 1, 1, TCP_SYN, 0, 1);
	put_tcp(OP_INBOUND, 1, 2, TCP_SYN | TCP_ACK, 1, 1);
	put_tcp(OP_OUTBOUND, 1, 1 | 1 << 2 | 2 << 4, TCP_ACK, 1, 0);
	seed_put(OP_CHECKPOINT);
	put_tcp(OP_OUTBOUND, 1, 0 | 1 << 2 | 2 << 4, TCP_RST, 1, 0);
	seed_save(argv[1], "active");
	return 0;
}
#endif
