/*
 * The COLO comparator: TCP byte-stream comparison (segmentation, FIN, ACK,
 * retransmissions, out of order), datagrams, non-IP, limits, stale frames,
 * checkpoints, statistics, and the pcap diagnosis file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "compare_harness.h"
#include "colo/net/compare.h"
#include "net/pcap.h"
#include "net_frames.h"

#define ISN 1000u      /* the primary's ISN; data byte i is at ISN + 1 + i */
#define SISN 5000u     /* the secondary's ISN (its SYN-ACK is not rewritten) */
#define PEER_ACK 201u  /* the peer's ISN + 1 */

static uint8_t fb[NF_MAX_FRAME];
static uint8_t data[65536];
static const uint8_t mss_opt[4] = { 2, 4, 0x05, 0xb4 };

static int setup(void **state)
{
	static struct harness h;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	h_init(&h, 3000, 64, 64);
	*state = &h;
	return 0;
}

static int teardown(void **state)
{
	h_fini(*state);
	return 0;
}

/* ---- TCP helpers: `from_p` picks the guest; off is the data offset ---- */

static void syn_ack(struct harness *h, const struct nf_flow *fl, bool primary, const uint8_t *opt)
{
	size_t n = nf_tcp_opts(fb, fl, true, primary ? ISN : SISN, PEER_ACK, TCP_SYN | TCP_ACK, opt, 4,
			       NULL, 0);

	if (primary)
		h_p(h, fb, n);
	else
		h_s(h, fb, n);
}

static void handshake(struct harness *h, const struct nf_flow *fl)
{
	syn_ack(h, fl, true, mss_opt);
	syn_ack(h, fl, false, mss_opt);
}

static void seg(struct harness *h, const struct nf_flow *fl, bool primary, uint32_t off, uint32_t len,
		uint32_t ack, uint8_t flags)
{
	size_t n = nf_tcp(fb, fl, true, ISN + 1 + off, ack, (uint8_t)(flags | TCP_ACK), data + off, len);

	if (primary)
		h_p(h, fb, n);
	else
		h_s(h, fb, n);
}

static void pseg(struct harness *h, const struct nf_flow *fl, uint32_t off, uint32_t len)
{
	seg(h, fl, true, off, len, PEER_ACK, TCP_PSH);
}

static void sseg(struct harness *h, const struct nf_flow *fl, uint32_t off, uint32_t len)
{
	seg(h, fl, false, off, len, PEER_ACK, TCP_PSH);
}

/* Released frames from index `from` are TCP data covering [0, total) in order. */
static void assert_released_stream(struct harness *h, int from, uint32_t total)
{
	uint32_t next = ISN + 1;

	for (int i = from; i < h->n_out; i++) {
		struct pkt_info in = h_out_info(h, i);

		assert_int_equal(in.l4, PKT_L4_TCP);
		if (in.payload_len == 0)
			continue;
		assert_int_equal(in.seq, next);
		assert_memory_equal(h->out[i] + in.payload_off, data + (next - ISN - 1), in.payload_len);
		next += in.payload_len;
	}
	assert_int_equal(next, ISN + 1 + total);
}

/* ---- TCP ---- */

static void test_identical_streams(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	syn_ack(h, &fl, true, mss_opt);
	assert_int_equal(h->n_out, 0); /* waits for the secondary's SYN-ACK */
	syn_ack(h, &fl, false, mss_opt);
	assert_int_equal(h->n_out, 1);
	pseg(h, &fl, 0, 100);
	assert_int_equal(h->n_out, 1);
	sseg(h, &fl, 0, 100);
	assert_int_equal(h->n_out, 2);
	/* secondary first: the primary goes out at once */
	sseg(h, &fl, 100, 50);
	pseg(h, &fl, 100, 50);
	assert_int_equal(h->n_out, 3);
	assert_released_stream(h, 1, 150);
	assert_int_equal(h->n_ckpt, 0);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_TCP].matched, 3);
}

static void run_split(struct harness *h, const struct nf_flow *fl, bool primary_first,
		      bool primary_big)
{
	int base = h->n_out;

	handshake(h, fl);
	for (int side = 0; side < 2; side++) {
		bool primary = (side == 0) == primary_first;
		bool big = primary == primary_big;

		if (big) {
			seg(h, fl, primary, 0, 3000, PEER_ACK, TCP_PSH);
		} else {
			for (uint32_t i = 0; i < 3; i++)
				seg(h, fl, primary, i * 1000, 1000, PEER_ACK, TCP_PSH);
		}
	}
	assert_int_equal(h->n_ckpt, 0);
	assert_int_equal(h->n_out - base, primary_big ? 2 : 4);
	assert_released_stream(h, base + 1, 3000);
	assert_int_equal(h_stats(h).primary_held_frames, 0);
}

static void test_split_primary_big_first(void **state)
{
	struct nf_flow fl = nf_flow4();

	run_split(*state, &fl, true, true);
}

static void test_split_primary_big_second(void **state)
{
	struct nf_flow fl = nf_flow4();

	run_split(*state, &fl, false, true);
}

static void test_split_secondary_big_first(void **state)
{
	struct nf_flow fl = nf_flow4();

	run_split(*state, &fl, false, false);
}

static void test_split_secondary_big_second(void **state)
{
	struct nf_flow fl = nf_flow4();

	run_split(*state, &fl, true, false);
}

/* 1000-byte primary segments against 700-byte secondary ones, interleaved. */
static void test_split_interleaved(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	uint32_t p = 0, s = 0;

	handshake(h, &fl);
	while (p < 7000 || s < 7000) {
		if (p < 7000) {
			pseg(h, &fl, p, 1000);
			p += 1000;
		}
		if (s < 7000) {
			sseg(h, &fl, s, 700);
			s += 700;
		}
	}
	assert_int_equal(h->n_ckpt, 0);
	assert_int_equal(h->n_out, 8);
	assert_released_stream(h, 1, 7000);
}

static void test_ipv6_tcp(void **state)
{
	struct nf_flow fl = nf_flow6();

	run_split(*state, &fl, true, true);
	assert_int_equal(h_stats(*state).connections, 1);
}

static void test_vlan_tcp(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4(), other;

	fl.vlans = 1;
	fl.vlan_id = 42;
	run_split(h, &fl, false, false);
	/* The same addresses on another VLAN are another connection. */
	other = fl;
	other.vlan_id = 43;
	pseg(h, &other, 5000, 10);
	sseg(h, &fl, 5000, 10);
	assert_int_equal(h_stats(h).primary_held_frames, 1);
	assert_int_equal(h_stats(h).connections, 2);
}

static void test_single_byte_differs(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	handshake(h, &fl);
	for (uint32_t i = 0; i < 3; i++)
		pseg(h, &fl, i * 1000, 1000);
	data[500] ^= 1;
	n = nf_tcp(fb, &fl, true, ISN + 1, PEER_ACK, TCP_ACK | TCP_PSH, data, 3000);
	data[500] ^= 1;
	h_s(h, fb, n);
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h->last_reason, COLO_CKPT_MISMATCH);
	assert_int_equal(h->n_mismatch, 1);
	assert_true(h->mismatch_had_primary && h->mismatch_had_secondary);
	assert_int_equal(h->n_out, 1); /* the SYN-ACK only */
	/* more traffic while the checkpoint is pending: held, no new request */
	pseg(h, &fl, 3000, 100);
	sseg(h, &fl, 3000, 100);
	assert_int_equal(h->n_out, 1);
	assert_int_equal(h->n_ckpt, 1);

	colo_compare_checkpoint(h->c);
	assert_int_equal(h->n_out, 5);
	assert_released_stream(h, 1, 3100);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_TCP].released_uncompared, 4);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_TCP].mismatched, 1);
	assert_int_equal(h_stats(h).secondary_held_bytes, 0);

	/* Both guests continue from the same position: compared again, no checkpoint. */
	sseg(h, &fl, 3100, 200);
	pseg(h, &fl, 3100, 200);
	assert_int_equal(h->n_out, 6);
	assert_released_stream(h, 1, 3300);
	assert_int_equal(h->n_ckpt, 1);
}

static void fin_seg(struct harness *h, const struct nf_flow *fl, bool primary, uint32_t off,
		    uint32_t len)
{
	seg(h, fl, primary, off, len, PEER_ACK, TCP_FIN);
}

static void test_fin_different_segments(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	/* primary: data + FIN in one segment; secondary: data, then a bare FIN */
	fin_seg(h, &fl, true, 0, 100);
	sseg(h, &fl, 0, 100);
	assert_int_equal(h->n_out, 1);
	fin_seg(h, &fl, false, 100, 0);
	assert_int_equal(h->n_out, 2);
	assert_true(h_out_info(h, 1).tcp_flags & TCP_FIN);

	/* the peer's FIN arrives; both guests acknowledge it */
	seg(h, &fl, true, 101, 0, PEER_ACK + 1, 0);
	seg(h, &fl, false, 101, 0, PEER_ACK + 1, 0);
	assert_int_equal(h->n_out, 3);
	assert_int_equal(h->n_ckpt, 0);

	/* closed on both sides and holding nothing: forgotten after the linger */
	assert_int_equal(h_stats(h).connections, 1);
	h->now += COLO_COMPARE_CLOSED_LINGER_MS - 1;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h_stats(h).connections, 1);
	h->now += 1;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h_stats(h).connections, 0);
}

static void test_fin_secondary_first(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow6();

	handshake(h, &fl);
	fin_seg(h, &fl, false, 0, 300);   /* secondary: everything at once */
	pseg(h, &fl, 0, 200);             /* primary: data, data, FIN */
	assert_int_equal(h->n_out, 2);
	pseg(h, &fl, 200, 100);
	assert_int_equal(h->n_out, 3);
	fin_seg(h, &fl, true, 300, 0);
	assert_int_equal(h->n_out, 4);
	assert_int_equal(h->n_ckpt, 0);
	/* a retransmitted FIN from either side changes nothing */
	fin_seg(h, &fl, true, 300, 0);
	fin_seg(h, &fl, false, 300, 0);
	assert_int_equal(h->n_out, 5);
	assert_int_equal(h->n_ckpt, 0);
}

static void test_fin_at_different_position(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	fin_seg(h, &fl, false, 0, 100); /* secondary stops after 100 bytes */
	pseg(h, &fl, 0, 150);           /* the primary has more */
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h->last_reason, COLO_CKPT_MISMATCH);
	assert_int_equal(h->n_out, 1);
}

static void test_pure_ack_waits_for_secondary_ack(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	seg(h, &fl, true, 0, 0, PEER_ACK + 500, 0); /* acks 500 bytes of the peer's */
	assert_int_equal(h->n_out, 1);
	seg(h, &fl, false, 0, 0, PEER_ACK + 400, 0);
	assert_int_equal(h->n_out, 1);
	seg(h, &fl, false, 0, 0, PEER_ACK + 500, 0);
	assert_int_equal(h->n_out, 2);
	/* the secondary is ahead: later primary ACKs up to its level go at once */
	seg(h, &fl, false, 0, 0, PEER_ACK + 900, 0);
	seg(h, &fl, true, 0, 0, PEER_ACK + 900, 0);
	assert_int_equal(h->n_out, 3);
	assert_int_equal(h->n_ckpt, 0);
}

static void test_pure_ack_not_held_behind_data(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	pseg(h, &fl, 0, 100);                        /* held: no secondary data yet */
	seg(h, &fl, true, 100, 0, PEER_ACK + 50, 0); /* pure ACK */
	seg(h, &fl, false, 0, 0, PEER_ACK + 50, 0);  /* the secondary acks too */
	assert_int_equal(h->n_out, 2);
	assert_int_equal(h_out_info(h, 1).payload_len, 0);
	sseg(h, &fl, 0, 100);
	assert_int_equal(h->n_out, 3);
}

static void test_data_ack_condition(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	/* same bytes, but the primary acks peer data the secondary has not acked */
	seg(h, &fl, true, 0, 100, PEER_ACK + 300, TCP_PSH);
	seg(h, &fl, false, 0, 100, PEER_ACK + 250, TCP_PSH);
	assert_int_equal(h->n_out, 1);
	seg(h, &fl, false, 100, 0, PEER_ACK + 300, 0);
	assert_int_equal(h->n_out, 2);
	assert_int_equal(h->n_ckpt, 0);
	/* a wrapped ACK number is newer, not older */
	assert_int_equal(h_out_info(h, 1).ack, PEER_ACK + 300);
}

static void test_ack_wraps(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	seg(h, &fl, false, 0, 0, 0xfffffff0u, 0);
	seg(h, &fl, false, 0, 0, 0x10u, 0);  /* past the wrap: newer */
	seg(h, &fl, true, 0, 0, 0x8u, 0);
	assert_int_equal(h->n_out, 1);
	seg(h, &fl, true, 0, 0, 0x20u, 0);
	assert_int_equal(h->n_out, 1);
	seg(h, &fl, false, 0, 0, 0x20u, 0);
	assert_int_equal(h->n_out, 2);
}

static void test_primary_retransmission(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	pseg(h, &fl, 0, 1000);
	sseg(h, &fl, 0, 1000);
	assert_int_equal(h->n_out, 2);
	pseg(h, &fl, 0, 1000);   /* verified already: out at once */
	pseg(h, &fl, 500, 500);  /* partial retransmission too */
	assert_int_equal(h->n_out, 4);
	/* held new data does not hold a retransmission back */
	pseg(h, &fl, 1000, 100);
	pseg(h, &fl, 0, 1000);
	assert_int_equal(h->n_out, 5);
	assert_int_equal(h->n_ckpt, 0);
}

static void test_secondary_retransmission(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	handshake(h, &fl);
	sseg(h, &fl, 0, 1000);
	sseg(h, &fl, 0, 1000);   /* duplicate in the buffered range: same bytes, fine */
	pseg(h, &fl, 0, 500);
	sseg(h, &fl, 0, 500);    /* duplicate of verified bytes: ignored */
	pseg(h, &fl, 500, 500);
	assert_int_equal(h->n_out, 3);
	assert_int_equal(h->n_ckpt, 0);
	/* a duplicate of buffered bytes that differs is a mismatch */
	sseg(h, &fl, 1000, 100);
	data[1050] ^= 0xff;
	n = nf_tcp(fb, &fl, true, ISN + 1 + 1000, PEER_ACK, TCP_ACK, data + 1000, 100);
	data[1050] ^= 0xff;
	h_s(h, fb, n);
	assert_int_equal(h->n_ckpt, 1);
	assert_true(h->mismatch_had_secondary);
	assert_false(h->mismatch_had_primary);
}

static void test_secondary_out_of_order(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	pseg(h, &fl, 0, 3000);
	sseg(h, &fl, 2000, 1000);
	sseg(h, &fl, 1000, 1000);
	assert_int_equal(h->n_out, 1);
	assert_int_equal(h_stats(h).secondary_held_frames, 2);
	sseg(h, &fl, 0, 1000);
	assert_int_equal(h->n_out, 2);
	assert_released_stream(h, 1, 3000);
	assert_int_equal(h_stats(h).secondary_held_frames, 0);
	assert_int_equal(h_stats(h).secondary_held_bytes, 0);
}

/* The secondary runs far ahead: its buffer grows and wraps, then drains. */
static void test_secondary_far_ahead(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow6();

	handshake(h, &fl);
	for (uint32_t i = 0; i < 40; i++)
		sseg(h, &fl, i * 1000, 1000);
	assert_int_equal(h_stats(h).secondary_held_frames, 40);
	assert_int_equal(h_stats(h).secondary_held_bytes, 40000);
	for (uint32_t i = 0; i < 20; i++)
		pseg(h, &fl, i * 1448, 1448);
	for (uint32_t i = 40; i < 50; i++)
		sseg(h, &fl, i * 1000, 1000);
	pseg(h, &fl, 20 * 1448, 50000 - 20 * 1448);
	assert_int_equal(h->n_out, 22);
	assert_released_stream(h, 1, 50000);
	assert_int_equal(h_stats(h).secondary_held_frames, 0);
	assert_int_equal(h->n_ckpt, 0);
}

static void test_syn_compare(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4(), fl2 = nf_flow4();
	static const uint8_t other_mss[4] = { 2, 4, 0x05, 0xa0 };

	syn_ack(h, &fl, false, mss_opt); /* secondary first */
	syn_ack(h, &fl, true, mss_opt);
	assert_int_equal(h->n_out, 1);
	syn_ack(h, &fl, true, mss_opt);  /* retransmitted */
	assert_int_equal(h->n_out, 2);

	fl2.pb = 40001;
	syn_ack(h, &fl2, true, mss_opt);
	syn_ack(h, &fl2, false, other_mss);
	assert_int_equal(h->n_out, 2);
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h->last_reason, COLO_CKPT_MISMATCH);
}

/* The secondary repeats its SYN-ACK once the rewriter knows the offset: it
 * then carries the primary's ISN, and is the same connection still. */
static void test_secondary_syn_retransmitted_translated(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	handshake(h, &fl);
	n = nf_tcp_opts(fb, &fl, true, ISN, PEER_ACK, TCP_SYN | TCP_ACK, mss_opt, 4, NULL, 0);
	h_s(h, fb, n);
	pseg(h, &fl, 0, 10);
	sseg(h, &fl, 0, 10);
	assert_int_equal(h->n_out, 2);
	assert_int_equal(h->n_ckpt, 0);
}

/* The port pair is used again with new ISNs, in either order. */
static void test_port_reuse(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	handshake(h, &fl);
	fin_seg(h, &fl, true, 0, 10);
	fin_seg(h, &fl, false, 0, 10);
	assert_int_equal(h->n_out, 2);
	/* new connection: secondary first this time, then the primary */
	n = nf_tcp_opts(fb, &fl, true, SISN + 7777, PEER_ACK + 99, TCP_SYN | TCP_ACK, mss_opt, 4, NULL, 0);
	h_s(h, fb, n);
	n = nf_tcp_opts(fb, &fl, true, ISN + 50000, PEER_ACK + 99, TCP_SYN | TCP_ACK, mss_opt, 4, NULL, 0);
	h_p(h, fb, n);
	assert_int_equal(h->n_out, 3);
	n = nf_tcp(fb, &fl, true, ISN + 50001, PEER_ACK + 99, TCP_ACK, data, 20);
	h_p(h, fb, n);
	h_s(h, fb, n);
	assert_int_equal(h->n_out, 4);
	/* and again, primary first: its SYN-ACK waits for the secondary's new one */
	n = nf_tcp_opts(fb, &fl, true, ISN + 90000, PEER_ACK + 500, TCP_SYN | TCP_ACK, mss_opt, 4, NULL, 0);
	h_p(h, fb, n);
	assert_int_equal(h->n_out, 4);
	n = nf_tcp_opts(fb, &fl, true, SISN + 123, PEER_ACK + 500, TCP_SYN | TCP_ACK, mss_opt, 4, NULL, 0);
	h_s(h, fb, n);
	assert_int_equal(h->n_out, 5);
	assert_int_equal(h->n_ckpt, 0);
}

static void test_rst(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	handshake(h, &fl);
	n = nf_tcp(fb, &fl, true, ISN + 1, PEER_ACK, TCP_RST | TCP_ACK, NULL, 0);
	h_p(h, fb, n);
	assert_int_equal(h->n_out, 1);
	h_s(h, fb, n);
	assert_int_equal(h->n_out, 2);
	h->now += COLO_COMPARE_CLOSED_LINGER_MS;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h_stats(h).connections, 0);
}

/* A connection already open when comparison started (no SYN seen). */
static void test_mid_stream(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	sseg(h, &fl, 5000, 500);  /* secondary first: waits out of order */
	pseg(h, &fl, 5000, 200);
	pseg(h, &fl, 5200, 300);
	assert_int_equal(h->n_out, 2);
	pseg(h, &fl, 5500, 10);
	sseg(h, &fl, 5500, 10);
	assert_int_equal(h->n_out, 3);
	assert_int_equal(h->n_ckpt, 0);
}

/* A connection forgotten while idle comes back with a keepalive (one below
 * the real position): the guessed position must not stall the next data. */
static void test_keepalive_after_idle(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	pseg(h, &fl, 0, 100);
	sseg(h, &fl, 0, 100);
	h->now += COLO_COMPARE_DEFAULT_IDLE_MS;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h_stats(h).connections, 0);
	seg(h, &fl, true, 99, 0, PEER_ACK, 0);  /* keepalive: seq = next - 1 */
	seg(h, &fl, false, 99, 0, PEER_ACK, 0);
	assert_int_equal(h->n_out, 3);
	sseg(h, &fl, 100, 50);
	pseg(h, &fl, 100, 50);
	pseg(h, &fl, 150, 50);
	sseg(h, &fl, 150, 50);
	assert_int_equal(h->n_out, 5);
	assert_int_equal(h->n_ckpt, 0);
}

static void test_stale(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	uint64_t t0 = h->now;

	handshake(h, &fl);
	pseg(h, &fl, 0, 100);
	h->now += 1000;
	pseg(h, &fl, 100, 100);
	h->now = t0 + 2999;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h->n_ckpt, 0);
	h->now = t0 + 3000;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h->last_reason, COLO_CKPT_STALE);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_TCP].stale, 1);
	h->now += 1000; /* the second frame is stale now too: same stall */
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h->n_ckpt, 1);
	h->now += 2000; /* unanswered for a whole timeout: asked again */
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h->n_ckpt, 2);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_TCP].stale, 2);
	assert_int_equal(h_stats(h).checkpoints_requested[COLO_CKPT_STALE], 2);
	colo_compare_checkpoint(h->c);
	assert_int_equal(h->n_out, 3);
	colo_compare_tick(h->c, h->now + 10000);
	assert_int_equal(h->n_ckpt, 2);
}

static void test_queue_limit(void **state)
{
	struct harness h;
	struct nf_flow fl = nf_flow4();
	struct colo_compare_stats st;

	(void)state;
	h_init(&h, 3000, 4, 16);
	handshake(&h, &fl);
	for (uint32_t i = 0; i < 3; i++)
		pseg(&h, &fl, i * 10, 10);
	assert_int_equal(h.n_ckpt, 0);
	pseg(&h, &fl, 30, 10);
	assert_int_equal(h.n_ckpt, 1);
	assert_int_equal(h.last_reason, COLO_CKPT_QUEUE_FULL);
	pseg(&h, &fl, 40, 10); /* beyond the limit: still held, never dropped */
	st = h_stats(&h);
	assert_int_equal(st.primary_held_frames, 5);
	assert_int_equal(st.primary_held_frames_max, 5);
	colo_compare_checkpoint(h.c);
	assert_int_equal(h.n_out, 6);
	assert_released_stream(&h, 1, 50);
	/* the secondary side: a fifth out-of-order segment is dropped */
	for (uint32_t i = 0; i < 5; i++)
		sseg(&h, &fl, 100 + i * 20, 10);
	assert_int_equal(h.n_ckpt, 2);
	assert_int_equal(h_stats(&h).cls[COLO_CLASS_TCP].secondary_dropped, 1);
	h_fini(&h);
}

/* ---- datagrams and non-IP ---- */

static void test_udp(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	fl.pa = 53;
	n = nf_udp(fb, &fl, true, "answer", 6);
	h_p(h, fb, n);
	assert_int_equal(h->n_out, 0);
	fl.ip_id = 777; /* IP header fields differ: ignored */
	fl.ttl = 3;
	n = nf_udp(fb, &fl, true, "answer", 6);
	h_s(h, fb, n);
	assert_int_equal(h->n_out, 1);
	assert_int_equal(h_stats(h).connections, 0); /* nothing held: flow forgotten */

	/* two in a row, FIFO; secondary first */
	n = nf_udp(fb, &fl, true, "one", 3);
	h_s(h, fb, n);
	n = nf_udp(fb, &fl, true, "two", 3);
	h_s(h, fb, n);
	n = nf_udp(fb, &fl, true, "one", 3);
	h_p(h, fb, n);
	n = nf_udp(fb, &fl, true, "two", 3);
	h_p(h, fb, n);
	assert_int_equal(h->n_out, 3);
	assert_int_equal(h->n_ckpt, 0);

	/* different payload */
	n = nf_udp(fb, &fl, true, "yes", 3);
	h_p(h, fb, n);
	n = nf_udp(fb, &fl, true, "no!", 3);
	h_s(h, fb, n);
	assert_int_equal(h->n_out, 3);
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_UDP].mismatched, 1);
	colo_compare_checkpoint(h->c);
	assert_int_equal(h->n_out, 4);
	assert_memory_equal(h->out[3] + 42, "yes", 3);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_UDP].matched, 3);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_UDP].primary_frames, 4);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_UDP].secondary_frames, 4);
}

static void test_icmp_echo(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl4 = nf_flow4(), fl6 = nf_flow6();
	size_t n;

	n = nf_icmp_echo(fb, &fl4, true, true, 7, 1, "abcdefgh", 8);
	h_p(h, fb, n);
	h_s(h, fb, n);
	n = nf_icmp_echo(fb, &fl6, true, true, 7, 1, "abcdefgh", 8);
	h_s(h, fb, n);
	h_p(h, fb, n);
	assert_int_equal(h->n_out, 2);
	n = nf_icmp_echo(fb, &fl4, true, true, 7, 2, "abcdefgh", 8);
	h_p(h, fb, n);
	n = nf_icmp_echo(fb, &fl4, true, true, 7, 3, "abcdefgh", 8); /* other sequence */
	h_s(h, fb, n);
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_ICMP].matched, 2);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_ICMP].mismatched, 1);
}

static void test_arp(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	n = nf_arp(fb, &fl, 2);
	h_p(h, fb, n);
	h_s(h, fb, n);
	assert_int_equal(h->n_out, 1);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_NONIP].matched, 1);
	h_p(h, fb, n);
	fb[n - 1] ^= 1; /* whole frame compared, padding included */
	h_s(h, fb, n);
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_NONIP].mismatched, 1);
}

static void test_other_ip_protocol(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	uint8_t gre[8] = { 0, 0, 0x08, 0, 1, 2, 3, 4 };
	size_t n;

	n = nf_ip(fb, &fl, true, 47, gre, sizeof(gre), -1);
	h_p(h, fb, n);
	fl.ip_id = 99;
	n = nf_ip(fb, &fl, true, 47, gre, sizeof(gre), -1);
	h_s(h, fb, n);
	assert_int_equal(h->n_out, 1);
	assert_int_equal(h_stats(h).cls[COLO_CLASS_OTHER].matched, 1);
}

/* A TCP segment with ports 0 and a TCP fragment share a flow key: the
 * record keeps one kind of queue whatever arrives on it. */
static void test_key_shared_by_classes(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n;

	fl.pa = fl.pb = 0;
	pseg(h, &fl, 0, 100);
	n = nf_tcp(fb, &fl, true, ISN + 1, PEER_ACK, TCP_ACK, data, 100);
	nf_put16(fb + 14 + 6, 0x2000); /* now a first fragment */
	nf_put16(fb + 14 + 10, 0);
	h_p(h, fb, n);
	h_s(h, fb, n);
	sseg(h, &fl, 0, 100);
	assert_int_equal(h_stats(h).connections, 1);
	colo_compare_checkpoint(h->c);
	assert_int_equal(h->n_out, 2);
}

/* ---- unparseable frames, limits, flush ---- */

static void test_unparseable(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	size_t n = nf_udp(fb, &fl, true, "x", 1);

	fb[14] = 0x41; /* IHL 1 */
	h_p(h, fb, n);
	assert_int_equal(h->n_out, 0);
	assert_int_equal(h->n_ckpt, 1);
	assert_int_equal(h->last_reason, COLO_CKPT_UNPARSEABLE);
	h_s(h, fb, n);
	assert_int_equal(h_stats(h).unparseable_primary, 1);
	assert_int_equal(h_stats(h).unparseable_secondary, 1);
	assert_int_equal(h_stats(h).secondary_held_frames, 0);
	colo_compare_checkpoint(h->c);
	assert_int_equal(h->n_out, 1);
	assert_memory_equal(h->out[0], fb, n);
	h_s(h, fb, 5); /* shorter than Ethernet */
	assert_int_equal(h_stats(h).unparseable_secondary, 2);
}

static void test_table_limit(void **state)
{
	struct harness h;
	struct nf_flow fl = nf_flow4();
	size_t n;

	(void)state;
	h_init(&h, 3000, 16, 2);
	for (int i = 0; i < 2; i++) {
		fl.pb = (uint16_t)(1000 + i);
		n = nf_udp(fb, &fl, true, "q", 1);
		h_p(&h, fb, n);
	}
	assert_int_equal(h_stats(&h).connections, 2);
	fl.pb = 1002;
	n = nf_udp(fb, &fl, true, "q", 1);
	h_p(&h, fb, n); /* no room: held uncompared */
	assert_int_equal(h.n_ckpt, 1);
	assert_int_equal(h.last_reason, COLO_CKPT_TABLE_FULL);
	h_s(&h, fb, n);
	assert_int_equal(h_stats(&h).cls[COLO_CLASS_UDP].secondary_dropped, 1);
	assert_int_equal(h_stats(&h).primary_held_frames, 3);
	colo_compare_checkpoint(h.c);
	assert_int_equal(h.n_out, 3);
	assert_int_equal(h_stats(&h).connections, 0);

	/* TCP connections that hold nothing are evicted to make room */
	for (int i = 0; i < 3; i++) {
		fl.pb = (uint16_t)(2000 + i);
		syn_ack(&h, &fl, false, mss_opt);
		syn_ack(&h, &fl, true, mss_opt);
	}
	assert_int_equal(h.n_out, 6);
	assert_int_equal(h.n_ckpt, 1);
	assert_int_equal(h_stats(&h).connections, 2);
	assert_int_equal(h_stats(&h).connections_evicted, 1);
	h_fini(&h);
}

static void test_idle_connections_forgotten(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	assert_int_equal(h_stats(h).connections, 1);
	h->now += COLO_COMPARE_DEFAULT_IDLE_MS - 1;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h_stats(h).connections, 1);
	h->now += 1;
	colo_compare_tick(h->c, h->now);
	assert_int_equal(h_stats(h).connections, 0);
}

static void test_flush(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();

	handshake(h, &fl);
	pseg(h, &fl, 0, 10);
	pseg(h, &fl, 10, 10);
	colo_compare_flush(h->c);
	assert_int_equal(h->n_out, 3);
	pseg(h, &fl, 20, 10); /* failed over: straight out */
	sseg(h, &fl, 20, 10);
	assert_int_equal(h->n_out, 4);
	assert_int_equal(h_stats(h).primary_held_frames, 0);
}

static void test_stats(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	struct colo_compare_stats st;

	handshake(h, &fl);
	pseg(h, &fl, 0, 1000);
	pseg(h, &fl, 1000, 500);
	st = h_stats(h);
	assert_int_equal(st.cls[COLO_CLASS_TCP].primary_frames, 3);
	assert_int_equal(st.cls[COLO_CLASS_TCP].secondary_frames, 1);
	assert_int_equal(st.primary_held_frames, 2);
	assert_int_equal(st.primary_held_bytes, 2 * 54 + 1500);
	assert_int_equal(st.connections, 1);
	sseg(h, &fl, 0, 700);
	st = h_stats(h);
	assert_int_equal(st.secondary_held_frames, 0); /* consumed: the first segment is 70% verified */
	assert_int_equal(st.primary_held_frames, 2);
	sseg(h, &fl, 700, 1000);
	st = h_stats(h);
	assert_int_equal(st.secondary_held_frames, 1);
	assert_int_equal(st.secondary_held_bytes, 200);
	assert_int_equal(st.primary_held_frames, 0);
	assert_int_equal(st.primary_held_frames_max, 2);
	assert_int_equal(st.cls[COLO_CLASS_TCP].matched, 3);
	assert_int_equal(st.checkpoints_done, 0);
	colo_compare_checkpoint(h->c);
	st = h_stats(h);
	assert_int_equal(st.checkpoints_done, 1);
	assert_int_equal(st.secondary_held_bytes, 0);
	assert_int_equal(st.secondary_held_bytes_max, 1000);
	assert_string_equal(colo_class_name(COLO_CLASS_NONIP), "non-ip");
	assert_string_equal(colo_checkpoint_reason_name(COLO_CKPT_TABLE_FULL), "table-full");
}

/* ---- pcap diagnosis file ---- */

struct pcap_ctx {
	struct pcap_writer *w;
	int written;
};

static void write_pair(struct harness *h, const uint8_t *p, size_t pl, const uint8_t *s, size_t sl)
{
	struct pcap_ctx *ctx = h->user;

	if (p && pcap_write(ctx->w, p, pl, h->now * 1000) == 0)
		ctx->written++;
	if (s && pcap_write(ctx->w, s, sl, h->now * 1000 + 1) == 0)
		ctx->written++;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_pcap_mismatch_file(void **state)
{
	struct harness *h = *state;
	struct nf_flow fl = nf_flow4();
	char path[] = "/tmp/lockstep-test-XXXXXX";
	struct pcap_ctx ctx = { 0 };
	uint8_t buf[4096];
	int fd = mkstemp(path), err = 0;
	ssize_t got;
	size_t n;

	assert_true(fd >= 0);
	close(fd);
	ctx.w = pcap_open(path, &err);
	assert_non_null(ctx.w);
	h->user = &ctx;
	h->on_mismatch = write_pair;
	handshake(h, &fl);
	pseg(h, &fl, 0, 100);
	data[10] ^= 1;
	n = nf_tcp(fb, &fl, true, ISN + 1, PEER_ACK, TCP_ACK | TCP_PSH, data, 100);
	data[10] ^= 1;
	h_s(h, fb, n);
	assert_int_equal(ctx.written, 2);
	assert_int_equal(pcap_close(ctx.w), 0);

	fd = open(path, O_RDONLY);
	got = read(fd, buf, sizeof(buf));
	close(fd);
	unlink(path);
	assert_int_equal(got, 24 + 2 * (16 + 154));
	assert_int_equal(le32(buf), 0xa1b2c3d4u);
	assert_int_equal(buf[4], 2);
	assert_int_equal(buf[6], 4);
	assert_int_equal(le32(buf + 20), 1);         /* LINKTYPE_ETHERNET */
	assert_int_equal(le32(buf + 24), h->now / 1000); /* seconds */
	assert_int_equal(le32(buf + 32), 154);       /* captured length */
	assert_int_equal(le32(buf + 36), 154);
	/* the pair differs exactly in the changed payload byte */
	for (int i = 0; i < 154; i++)
		assert_true((buf[40 + i] == buf[40 + 170 + i]) == (i != 54 + 10));
}

static void test_pcap_write_errors(void **state)
{
	char path[] = "/tmp/lockstep-test-XXXXXX";
	struct pcap_writer *w;
	int fd = mkstemp(path), full, err = 0;
	uint8_t f[60] = { 0 };
	off_t size;

	(void)state;
	assert_null(pcap_open("/nonexistent/dir/x.pcap", &err));
	assert_int_equal(err, -ENOENT);
	assert_null(pcap_open("/dev/full", &err));
	assert_int_equal(err, -ENOSPC);

	w = pcap_open_fd(fd, &err);
	assert_non_null(w);
	assert_int_equal(pcap_write(w, f, sizeof(f), 1), 0);
	/* the disk fills up: reported, not fatal, the file keeps whole records */
	full = open("/dev/full", O_WRONLY);
	assert_true(full >= 0);
	dup2(full, fd);
	close(full);
	assert_int_equal(pcap_write(w, f, sizeof(f), 2), -ENOSPC);
	assert_int_equal(pcap_close(w), 0);
	fd = open(path, O_RDONLY);
	size = lseek(fd, 0, SEEK_END);
	close(fd);
	unlink(path);
	assert_int_equal(size, 24 + 16 + 60);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_identical_streams),
		T(test_split_primary_big_first),
		T(test_split_primary_big_second),
		T(test_split_secondary_big_first),
		T(test_split_secondary_big_second),
		T(test_split_interleaved),
		T(test_ipv6_tcp),
		T(test_vlan_tcp),
		T(test_single_byte_differs),
		T(test_fin_different_segments),
		T(test_fin_secondary_first),
		T(test_fin_at_different_position),
		T(test_pure_ack_waits_for_secondary_ack),
		T(test_pure_ack_not_held_behind_data),
		T(test_data_ack_condition),
		T(test_ack_wraps),
		T(test_primary_retransmission),
		T(test_secondary_retransmission),
		T(test_secondary_out_of_order),
		T(test_secondary_far_ahead),
		T(test_syn_compare),
		T(test_secondary_syn_retransmitted_translated),
		T(test_port_reuse),
		T(test_rst),
		T(test_mid_stream),
		T(test_keepalive_after_idle),
		T(test_stale),
		T(test_queue_limit),
		T(test_udp),
		T(test_icmp_echo),
		T(test_arp),
		T(test_other_ip_protocol),
		T(test_key_shared_by_classes),
		T(test_unparseable),
		T(test_table_limit),
		T(test_idle_connections_forgotten),
		T(test_flush),
		T(test_stats),
		T(test_pcap_mismatch_file),
		T(test_pcap_write_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
