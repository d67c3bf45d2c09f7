/*
 * libFuzzer target for the COLO comparator: the input is a script of
 * operations on one comparator with small limits (so queue and table limits,
 * eviction and stale detection are reached): structured TCP segments on four
 * flows (IPv4, IPv6, VLAN), mostly consistent between the two sides so that
 * streams really match, UDP datagrams, raw (hostile) frames, clock ticks,
 * checkpoints and a failover flush.
 *
 * Besides the sanitizers it checks the comparator's central promise: every
 * primary frame comes out exactly once (by comparison, by a checkpoint, or
 * at the flush), never twice and never lost, and after a checkpoint nothing
 * is held. A released frame is always one the primary sent.
 *
 *   make fuzz && build/fuzz/fuzz_colo_compare -max_len=4096 fuzz/corpus/colo_compare
 *
 * Built with -DFUZZ_CORPUS_MAIN (no -fsanitize=fuzzer) it writes the seed corpus:
 *   cc -std=gnu11 -D_GNU_SOURCE -Isrc -DFUZZ_CORPUS_MAIN fuzz/fuzz_colo_compare.c \
 *      src/net/packet.c src/net/packet_tcp.c src/net/flow_table.c src/colo/net/stream.c \
 *      src/colo/net/compare.c src/colo/net/compare_tcp.c src/colo/net/compare_dgram.c -lxxhash -o /tmp/gen && /tmp/gen fuzz/corpus/colo_compare
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "colo/net/compare.h"
#include "net/packet.h"
#include "../tests/unit/net_frames.h"

#define MAX_LOG 4096

enum op {
	OP_PRIMARY_TCP,
	OP_SECONDARY_TCP,
	OP_BOTH_TCP,
	OP_PRIMARY_RAW,
	OP_SECONDARY_RAW,
	OP_UDP,
	OP_TICK,
	OP_CHECKPOINT,
	OP_FLUSH,
	OP_COUNT
};

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

static uint16_t rd16(struct reader *r)
{
	return (uint16_t)(rd8(r) | rd8(r) << 8);
}

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

/* Hashes of every primary frame sent and not yet released (a multiset). */
static uint64_t pending[MAX_LOG];
static int n_pending;
static int n_primary, n_out;
static uint8_t stream[8192];
static uint8_t frame[NF_MAX_FRAME];

static void out_cb(void *opaque, const uint8_t *f, size_t len)
{
	uint64_t h = XXH3_64bits(f, len);

	(void)opaque;
	n_out++;
	for (int i = 0; i < n_pending; i++) {
		if (pending[i] == h) {
			pending[i] = pending[--n_pending];
			return;
		}
	}
	check(0); /* released something the primary never sent (or twice) */
}

static void ckpt_cb(void *opaque, enum colo_checkpoint_reason reason)
{
	(void)opaque;
	check(reason < COLO_CKPT_REASON_COUNT);
}

static void mismatch_cb(void *opaque, const uint8_t *p, size_t pl, const uint8_t *s, size_t sl)
{
	(void)opaque;
	check(p || s);
	if (p)
		check(pl >= PKT_ETH_HLEN);
	if (s)
		check(sl >= PKT_ETH_HLEN);
}

static void send_primary(struct colo_compare *c, const uint8_t *f, size_t len, uint64_t now)
{
	if (n_pending >= MAX_LOG)
		return;
	pending[n_pending++] = XXH3_64bits(f, len);
	n_primary++;
	colo_compare_primary(c, f, len, now);
}

static struct nf_flow flow_of(uint8_t sel)
{
	struct nf_flow f = (sel & 1) ? nf_flow6() : nf_flow4();

	if (sel & 2) {
		f.vlans = 1;
		f.vlan_id = 9;
	}
	return f;
}

/* A TCP segment on one of four flows: sequence numbers near 1000 so that
 * segments of both sides overlap; payload from the shared stream bytes, with
 * an occasional difference. */
static size_t build_tcp(struct reader *r)
{
	struct nf_flow fl = flow_of(rd8(r));
	uint32_t off = rd16(r) % 6000, len = rd16(r) % 1600;
	uint32_t ack = 200 + rd8(r);
	uint8_t flags = rd8(r);
	uint8_t corrupt = rd8(r);
	static const uint8_t mss[4] = { 2, 4, 5, 0xb4 };
	size_t n;

	if (off + len > sizeof(stream))
		len = (uint32_t)sizeof(stream) - off;
	if (flags & TCP_SYN)
		n = nf_tcp_opts(frame, &fl, true, 1000 + off, ack, flags, mss, 4, stream + off, len);
	else
		n = nf_tcp(frame, &fl, true, 1001 + off, ack, flags, stream + off, len);
	if (corrupt == 0xff && n > 0)
		frame[n - 1] ^= 1;
	if (corrupt == 0xfe && fl.family == 4)
		frame[14 + 4 * fl.vlans + 6] |= 0x20; /* a fragment, same flow key (ports aside) */
	return n;
}

static size_t build_udp(struct reader *r)
{
	struct nf_flow fl = flow_of(rd8(r));
	uint32_t len = rd8(r) % 64;
	uint8_t corrupt = rd8(r);
	size_t n = nf_udp(frame, &fl, true, stream + len, len);

	if (corrupt == 0xff)
		frame[n - 1] ^= 1;
	return n;
}

static size_t read_raw(struct reader *r)
{
	size_t n = rd8(r) % 128;

	for (size_t i = 0; i < n; i++)
		frame[i] = rd8(r);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct colo_compare_ops ops = { out_cb, ckpt_cb, mismatch_cb };
	struct colo_compare_config cfg = { 100, 8, 4, 1000 };
	struct reader r = { data, len };
	struct colo_compare_stats st;
	struct colo_compare *c;
	uint64_t now = 1;
	size_t n;

	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)(i * 31 + (i >> 7));
	n_pending = n_primary = n_out = 0;
	c = colo_compare_create(&cfg, &ops, NULL);
	check(c != NULL);
	while (r.left) {
		switch (rd8(&r) % OP_COUNT) {
		case OP_PRIMARY_TCP:
			n = build_tcp(&r);
			send_primary(c, frame, n, now);
			break;
		case OP_SECONDARY_TCP:
			n = build_tcp(&r);
			colo_compare_secondary(c, frame, n, now);
			break;
		case OP_BOTH_TCP:
			n = build_tcp(&r);
			colo_compare_secondary(c, frame, n, now);
			send_primary(c, frame, n, now);
			break;
		case OP_PRIMARY_RAW:
			n = read_raw(&r);
			send_primary(c, frame, n, now);
			break;
		case OP_SECONDARY_RAW:
			n = read_raw(&r);
			colo_compare_secondary(c, frame, n, now);
			break;
		case OP_UDP: {
			bool primary = rd8(&r) & 1;

			n = build_udp(&r);
			if (primary)
				send_primary(c, frame, n, now);
			else
				colo_compare_secondary(c, frame, n, now);
			break;
		}
		case OP_TICK:
			now += rd16(&r);
			colo_compare_tick(c, now);
			break;
		case OP_CHECKPOINT:
			colo_compare_checkpoint(c);
			colo_compare_get_stats(c, &st);
			check(st.primary_held_frames == 0 && st.primary_held_bytes == 0);
			check(st.secondary_held_frames == 0 && st.secondary_held_bytes == 0);
			check(n_pending == 0);
			break;
		case OP_FLUSH:
			if (rd8(&r) == 0x5a)
				colo_compare_flush(c);
			break;
		}
		colo_compare_get_stats(c, &st);
		check(st.primary_held_frames == (uint64_t)n_pending);
		check(st.connections <= cfg.max_connections);
	}
	colo_compare_checkpoint(c);
	check(n_pending == 0 && n_out == n_primary);
	colo_compare_destroy(c);
	return 0;
}

#ifdef FUZZ_CORPUS_MAIN
#include "corpus_writer.h"

static void put_tcp(enum op op, uint8_t flow, uint16_t off, uint16_t len, uint8_t flags)
{
	seed_put(op);
	seed_put(flow);
	seed_put((uint8_t)off);
	seed_put((uint8_t)(off >> 8));
	seed_put((uint8_t)len);
	seed_put((uint8_t)(len >> 8));
	seed_put(1);
	seed_put(flags);
	seed_put(0);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	/* handshake, 3000 bytes as 1x3000 / 3x1000, FIN */
	put_tcp(OP_PRIMARY_TCP, 0, 0, 0, TCP_SYN | TCP_ACK);
	put_tcp(OP_SECONDARY_TCP, 0, 0, 0, TCP_SYN | TCP_ACK);
	put_tcp(OP_PRIMARY_TCP, 0, 0, 3000, TCP_ACK);
	for (uint16_t i = 0; i < 3; i++)
		put_tcp(OP_SECONDARY_TCP, 0, (uint16_t)(i * 1000), 1000, TCP_ACK);
	put_tcp(OP_BOTH_TCP, 0, 3000, 0, TCP_ACK | TCP_FIN);
	seed_save(argv[1], "split");
	/* IPv6 VLAN, secondary ahead, then a checkpoint and more */
	put_tcp(OP_SECONDARY_TCP, 3, 0, 500, TCP_ACK);
	put_tcp(OP_PRIMARY_TCP, 3, 0, 200, TCP_ACK);
	put_tcp(OP_PRIMARY_TCP, 3, 200, 400, TCP_ACK);
	seed_put(OP_TICK);
	seed_put(200);
	seed_put(0);
	seed_put(OP_CHECKPOINT);
	put_tcp(OP_BOTH_TCP, 3, 600, 100, TCP_ACK);
	seed_save(argv[1], "ahead-checkpoint");
	/* UDP pairs and a raw ARP-like frame */
	seed_put(OP_UDP); seed_put(1); seed_put(1); seed_put(10); seed_put(0);
	seed_put(OP_UDP); seed_put(0); seed_put(1); seed_put(10); seed_put(0);
	seed_put(OP_PRIMARY_RAW); seed_put(20);
	for (int i = 0; i < 20; i++)
		seed_put((uint8_t)(i == 12 ? 0x08 : i == 13 ? 0x06 : i));
	seed_save(argv[1], "udp-raw");
	return 0;
}
#endif
