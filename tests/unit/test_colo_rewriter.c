/*
 * The COLO rewriter: offsets learned for passive and active opens, ACK/SACK
 * and SEQ translation with valid checksums, teardown, checkpoint, failover,
 * IPv6/VLAN; and an end-to-end exchange client <-> primary/secondary through
 * rewriter and comparator that must complete without any checkpoint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "compare_harness.h"
#include "colo/net/rewriter.h"
#include "net/packet.h"
#include "net_frames.h"

#define P_ISN 1000u
#define S_ISN 5000u
#define C_ISN 200u

static uint8_t fb[NF_MAX_FRAME];
static size_t fb_len;
static uint8_t data[65536];

static int setup(void **state)
{
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + i / 256);
	*state = colo_rewriter_create();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	colo_rewriter_destroy(*state);
	return 0;
}

static struct pkt_info parsed(void)
{
	struct pkt_info in;

	assert_int_equal(pkt_parse(fb, fb_len, &in), 0);
	return in;
}

/* A segment from the peer (b) through the rewriter's inbound path. */
static struct pkt_info inbound(struct colo_rewriter *r, const struct nf_flow *fl, uint32_t seq,
			       uint32_t ack, uint8_t flags, const uint8_t *opts, size_t optlen)
{
	struct pkt_info in;

	fb_len = nf_tcp_opts(fb, fl, false, seq, ack, flags, opts, optlen, NULL, 0);
	colo_rewriter_inbound(r, fb, fb_len);
	in = parsed();
	assert_true(pkt_tcp_checksum_ok(fb, &in));
	return in;
}

/* A segment from the secondary guest (a) through the outbound path. */
static struct pkt_info outbound(struct colo_rewriter *r, const struct nf_flow *fl, uint32_t seq,
				uint32_t ack, uint8_t flags, uint32_t len)
{
	struct pkt_info in;

	fb_len = nf_tcp(fb, fl, true, seq, ack, flags, data, len);
	colo_rewriter_outbound(r, fb, fb_len);
	in = parsed();
	assert_true(pkt_tcp_checksum_ok(fb, &in));
	return in;
}

static struct colo_rewriter_stats rw_stats(struct colo_rewriter *r)
{
	struct colo_rewriter_stats s;

	colo_rewriter_get_stats(r, &s);
	return s;
}

/* Client SYN, secondary SYN-ACK, client ACK: offset S_ISN - P_ISN learned. */
static void passive_open(struct colo_rewriter *r, const struct nf_flow *fl)
{
	struct pkt_info in;

	in = inbound(r, fl, C_ISN, 0, TCP_SYN, NULL, 0);
	assert_int_equal(in.ack, 0);
	in = outbound(r, fl, S_ISN, C_ISN + 1, TCP_SYN | TCP_ACK, 0);
	assert_int_equal(in.seq, S_ISN); /* offset not known yet: unchanged */
	in = inbound(r, fl, C_ISN + 1, P_ISN + 1, TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, S_ISN + 1);
}

static void test_passive_open(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow4();
	uint8_t sack[12] = { 1, 1, 5, 10 };
	struct pkt_info in;

	passive_open(r, &fl);
	/* inbound: only the ACK number moves */
	in = inbound(r, &fl, C_ISN + 1, P_ISN + 101, TCP_ACK | TCP_PSH, NULL, 0);
	assert_int_equal(in.seq, C_ISN + 1);
	assert_int_equal(in.ack, S_ISN + 101);
	/* outbound: only the SEQ number moves */
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 1, TCP_ACK | TCP_PSH, 100);
	assert_int_equal(in.seq, P_ISN + 1);
	assert_int_equal(in.ack, C_ISN + 1);
	assert_memory_equal(fb + in.payload_off, data, 100);
	/* SACK blocks acknowledge the guest's data: shifted like the ACK, inbound */
	nf_put32(sack + 4, P_ISN + 301);
	nf_put32(sack + 8, P_ISN + 401);
	in = inbound(r, &fl, C_ISN + 1, P_ISN + 101, TCP_ACK, sack, sizeof(sack));
	assert_int_equal(in.ack, S_ISN + 101);
	assert_int_equal(nf_get32(fb + in.tcp_opt_off + 4), S_ISN + 301);
	assert_int_equal(nf_get32(fb + in.tcp_opt_off + 8), S_ISN + 401);
	/* ...and left alone outbound, where they are in the peer's space */
	fb_len = nf_tcp_opts(fb, &fl, true, S_ISN + 101, C_ISN + 1, TCP_ACK, sack, sizeof(sack), NULL, 0);
	colo_rewriter_outbound(r, fb, fb_len);
	in = parsed();
	assert_int_equal(in.seq, P_ISN + 101);
	assert_int_equal(nf_get32(fb + in.tcp_opt_off + 4), P_ISN + 301);
	assert_true(pkt_tcp_checksum_ok(fb, &in));

	assert_int_equal(rw_stats(r).offsets_learned_passive, 1);
	assert_int_equal(rw_stats(r).sack_blocks_rewritten, 1);
	assert_int_equal(rw_stats(r).connections, 1);
}

static void test_syn_retransmission_keeps_learning(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;

	inbound(r, &fl, C_ISN, 0, TCP_SYN, NULL, 0);
	outbound(r, &fl, S_ISN, C_ISN + 1, TCP_SYN | TCP_ACK, 0);
	inbound(r, &fl, C_ISN, 0, TCP_SYN, NULL, 0); /* repeated SYN */
	outbound(r, &fl, S_ISN, C_ISN + 1, TCP_SYN | TCP_ACK, 0);
	in = inbound(r, &fl, C_ISN + 1, P_ISN + 1, TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, S_ISN + 1);
	/* a retransmitted SYN-ACK after the offset is known is translated */
	in = outbound(r, &fl, S_ISN, C_ISN + 1, TCP_SYN | TCP_ACK, 0);
	assert_int_equal(in.seq, P_ISN);
}

static void test_active_open(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;

	fl.pa = 45000; /* the guest's ephemeral port */
	fl.pb = 80;
	in = outbound(r, &fl, S_ISN, 0, TCP_SYN, 0);
	assert_int_equal(in.seq, S_ISN);
	outbound(r, &fl, S_ISN, 0, TCP_SYN, 0); /* retransmitted */
	/* the server acknowledges the primary's SYN */
	in = inbound(r, &fl, C_ISN, P_ISN + 1, TCP_SYN | TCP_ACK, NULL, 0);
	assert_int_equal(in.seq, C_ISN);
	assert_int_equal(in.ack, S_ISN + 1);
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 1, TCP_ACK, 0);
	assert_int_equal(in.seq, P_ISN + 1);
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 1, TCP_ACK | TCP_PSH, 10);
	assert_int_equal(in.seq, P_ISN + 1);
	in = inbound(r, &fl, C_ISN + 1, P_ISN + 11, TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, S_ISN + 11);
	assert_int_equal(rw_stats(r).offsets_learned_active, 1);
}

static void test_offset_wraps(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow6();
	struct pkt_info in;

	inbound(r, &fl, C_ISN, 0, TCP_SYN, NULL, 0);
	outbound(r, &fl, 0x10, C_ISN + 1, TCP_SYN | TCP_ACK, 0);
	in = inbound(r, &fl, C_ISN + 1, 0xfffffff1u, TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, 0x11);
	in = outbound(r, &fl, 0x11 + 100, C_ISN + 1, TCP_ACK, 5);
	assert_int_equal(in.seq, 0xfffffff0u + 101);
}

static void test_checkpoint_resets(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;

	passive_open(r, &fl);
	colo_rewriter_checkpoint(r);
	assert_int_equal(rw_stats(r).connections, 0);
	in = inbound(r, &fl, C_ISN + 1, P_ISN + 50, TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, P_ISN + 50);
	in = outbound(r, &fl, P_ISN + 50, C_ISN + 1, TCP_ACK, 5);
	assert_int_equal(in.seq, P_ISN + 50);
	/* a connection opened after the checkpoint learns its own offset */
	fl.pb++;
	passive_open(r, &fl);
}

static void test_passive_close(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;

	passive_open(r, &fl);
	inbound(r, &fl, C_ISN + 1, P_ISN + 1, TCP_FIN | TCP_ACK, NULL, 0); /* the client closes */
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 2, TCP_ACK, 0);
	assert_int_equal(in.seq, P_ISN + 1);
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 2, TCP_FIN | TCP_ACK, 0);
	assert_int_equal(in.seq, P_ISN + 1);
	assert_int_equal(rw_stats(r).connections, 1);
	in = inbound(r, &fl, C_ISN + 2, P_ISN + 2, TCP_ACK, NULL, 0); /* last ACK */
	assert_int_equal(in.ack, S_ISN + 2);
	assert_int_equal(rw_stats(r).connections, 0);
	assert_int_equal(rw_stats(r).closed_fin, 1);
}

static void test_active_close(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow6();
	struct pkt_info in;

	passive_open(r, &fl);
	outbound(r, &fl, S_ISN + 1, C_ISN + 1, TCP_FIN | TCP_ACK, 20); /* the guest closes */
	inbound(r, &fl, C_ISN + 1, P_ISN + 22, TCP_ACK, NULL, 0);
	in = inbound(r, &fl, C_ISN + 1, P_ISN + 22, TCP_FIN | TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, S_ISN + 22);
	assert_int_equal(rw_stats(r).connections, 1);
	in = outbound(r, &fl, S_ISN + 22, C_ISN + 2, TCP_ACK, 0); /* final ACK, translated */
	assert_int_equal(in.seq, P_ISN + 22);
	assert_int_equal(rw_stats(r).connections, 0);
}

static void test_rst_removes(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow4();
	struct pkt_info in;

	passive_open(r, &fl);
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 1, TCP_RST | TCP_ACK, 0);
	assert_int_equal(in.seq, P_ISN + 1);
	assert_int_equal(rw_stats(r).connections, 0);
	fl.pb++;
	passive_open(r, &fl);
	inbound(r, &fl, C_ISN + 1, 0, TCP_RST, NULL, 0);
	assert_int_equal(rw_stats(r).connections, 0);
	assert_int_equal(rw_stats(r).closed_rst, 2);
}

static void test_failover(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow shifted = nf_flow4(), zero = nf_flow4(), fresh = nf_flow4();
	struct pkt_info in;

	passive_open(r, &shifted);
	zero.pb = 41000;
	inbound(r, &zero, C_ISN, 0, TCP_SYN, NULL, 0);
	outbound(r, &zero, P_ISN, C_ISN + 1, TCP_SYN | TCP_ACK, 0);
	inbound(r, &zero, C_ISN + 1, P_ISN + 1, TCP_ACK, NULL, 0); /* offset 0 */
	assert_int_equal(rw_stats(r).connections, 2);
	colo_rewriter_failover(r);
	assert_true(rw_stats(r).failover);
	assert_int_equal(rw_stats(r).connections, 1);
	/* the live connection keeps its translation */
	in = outbound(r, &shifted, S_ISN + 1, C_ISN + 1, TCP_ACK, 3);
	assert_int_equal(in.seq, P_ISN + 1);
	in = inbound(r, &shifted, C_ISN + 1, P_ISN + 4, TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, S_ISN + 4);
	/* new connections are not tracked */
	fresh.pb = 42000;
	inbound(r, &fresh, C_ISN, 0, TCP_SYN, NULL, 0);
	outbound(r, &fresh, S_ISN, C_ISN + 1, TCP_SYN | TCP_ACK, 0);
	in = inbound(r, &fresh, C_ISN + 1, S_ISN + 1, TCP_ACK, NULL, 0);
	assert_int_equal(in.ack, S_ISN + 1);
	outbound(r, &fresh, 9000, 0, TCP_SYN, 0);
	assert_int_equal(rw_stats(r).connections, 1);
}

static void test_ipv6_vlan(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow6();
	struct pkt_info in;

	fl.vlans = 2;
	fl.vlan_id = 10;
	passive_open(r, &fl);
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 1, TCP_ACK, 33);
	assert_int_equal(in.seq, P_ISN + 1);
	assert_int_equal(in.vlan_id, 10);
	/* the same addresses without the tags are another connection */
	fl.vlans = 0;
	in = outbound(r, &fl, S_ISN + 1, C_ISN + 1, TCP_ACK, 33);
	assert_int_equal(in.seq, S_ISN + 1);
}

static void test_other_traffic_untouched(void **state)
{
	struct colo_rewriter *r = *state;
	struct nf_flow fl = nf_flow4();
	uint8_t copy[256];
	size_t n;

	passive_open(r, &fl);
	n = nf_udp(fb, &fl, true, "hello", 5);
	memcpy(copy, fb, n);
	colo_rewriter_outbound(r, fb, n);
	colo_rewriter_inbound(r, fb, n);
	assert_memory_equal(fb, copy, n);
	n = nf_tcp(fb, &fl, true, S_ISN + 1, C_ISN + 1, TCP_ACK, NULL, 0);
	fb[14] = 0x4f; /* IHL beyond the datagram */
	memcpy(copy, fb, n);
	colo_rewriter_outbound(r, fb, n);
	assert_memory_equal(fb, copy, n);
	colo_rewriter_inbound(r, fb, 3);
	assert_int_equal(rw_stats(r).unparseable, 2);
}

static void test_lru_eviction(void **state)
{
	struct colo_rewriter *r = colo_rewriter_create_limit(2);
	struct nf_flow a = nf_flow4(), b = nf_flow4(), c = nf_flow4();
	struct pkt_info in;

	(void)state;
	b.pb = 1;
	c.pb = 2;
	passive_open(r, &a);
	passive_open(r, &b);
	inbound(r, &a, C_ISN + 1, P_ISN + 1, TCP_ACK, NULL, 0); /* a is recent, b is not */
	passive_open(r, &c);
	assert_int_equal(rw_stats(r).evicted, 1);
	assert_int_equal(rw_stats(r).connections, 2);
	in = outbound(r, &a, S_ISN + 1, C_ISN + 1, TCP_ACK, 0);
	assert_int_equal(in.seq, P_ISN + 1);
	in = outbound(r, &b, S_ISN + 1, C_ISN + 1, TCP_ACK, 0);
	assert_int_equal(in.seq, S_ISN + 1); /* forgotten */
	colo_rewriter_destroy(r);
}

/* ---- end to end: client, primary, secondary, rewriter, comparator ---- */

struct e2e {
	struct harness h;
	struct colo_rewriter *r;
	struct nf_flow fl;
	uint32_t c_nxt;  /* client's next sequence number */
};

/* The client sends: the primary gets it as is, the secondary through the
 * rewriter; returns the ACK number the secondary guest saw. */
static uint32_t e2e_client(struct e2e *e, uint32_t ack, uint8_t flags, uint32_t len)
{
	struct pkt_info in;

	fb_len = nf_tcp(fb, &e->fl, false, e->c_nxt, ack, flags, data + 30000, len);
	colo_rewriter_inbound(e->r, fb, fb_len);
	in = parsed();
	assert_true(pkt_tcp_checksum_ok(fb, &in));
	e->c_nxt += len + ((flags & (TCP_SYN | TCP_FIN)) ? 1 : 0);
	return in.ack;
}

static void e2e_primary(struct e2e *e, uint32_t seq, uint32_t ack, uint8_t flags, uint32_t off,
			uint32_t len)
{
	size_t n = nf_tcp(fb, &e->fl, true, seq, ack, flags, data + off, len);

	h_p(&e->h, fb, n);
}

static void e2e_secondary(struct e2e *e, uint32_t seq, uint32_t ack, uint8_t flags, uint32_t off,
			  uint32_t len)
{
	size_t n = nf_tcp(fb, &e->fl, true, seq, ack, flags, data + off, len);

	colo_rewriter_outbound(e->r, fb, n);
	h_s(&e->h, fb, n);
}

static void run_e2e(struct e2e *e, bool secondary_first)
{
	const uint32_t reply = 5000;
	uint32_t c_ack, s_ack_seen;

	/* handshake */
	e2e_client(e, 0, TCP_SYN, 0);
	c_ack = e->c_nxt;
	if (secondary_first)
		e2e_secondary(e, S_ISN, c_ack, TCP_SYN | TCP_ACK, 0, 0);
	e2e_primary(e, P_ISN, c_ack, TCP_SYN | TCP_ACK, 0, 0);
	if (!secondary_first)
		e2e_secondary(e, S_ISN, c_ack, TCP_SYN | TCP_ACK, 0, 0);
	assert_int_equal(e->h.n_out, 1); /* the client sees the primary's SYN-ACK */
	s_ack_seen = e2e_client(e, P_ISN + 1, TCP_ACK, 0);
	assert_int_equal(s_ack_seen, S_ISN + 1);

	/* request: 100 bytes from the client */
	s_ack_seen = e2e_client(e, P_ISN + 1, TCP_ACK | TCP_PSH, 100);
	assert_int_equal(s_ack_seen, S_ISN + 1);
	c_ack = e->c_nxt;

	/* reply: primary 1448 + 1448 + 2104, secondary 1000 x 5, both ack the request */
	if (!secondary_first) {
		e2e_primary(e, P_ISN + 1, c_ack, TCP_ACK, 0, 0);
		e2e_primary(e, P_ISN + 1, c_ack, TCP_ACK, 0, 1448);
		e2e_primary(e, P_ISN + 1 + 1448, c_ack, TCP_ACK, 1448, 1448);
		e2e_primary(e, P_ISN + 1 + 2896, c_ack, TCP_ACK | TCP_PSH, 2896, reply - 2896);
	}
	e2e_secondary(e, S_ISN + 1, c_ack, TCP_ACK, 0, 0);
	for (uint32_t i = 0; i < 5; i++)
		e2e_secondary(e, S_ISN + 1 + i * 1000, c_ack, TCP_ACK, i * 1000, 1000);
	if (secondary_first) {
		e2e_primary(e, P_ISN + 1, c_ack, TCP_ACK, 0, 0);
		e2e_primary(e, P_ISN + 1, c_ack, TCP_ACK, 0, 1448);
		e2e_primary(e, P_ISN + 1 + 1448, c_ack, TCP_ACK, 1448, 1448);
		e2e_primary(e, P_ISN + 1 + 2896, c_ack, TCP_ACK | TCP_PSH, 2896, reply - 2896);
	}
	assert_int_equal(e->h.n_out, 5);

	/* the client acks the reply (through the rewriter) and closes */
	s_ack_seen = e2e_client(e, P_ISN + 1 + reply, TCP_ACK, 0);
	assert_int_equal(s_ack_seen, S_ISN + 1 + reply);
	s_ack_seen = e2e_client(e, P_ISN + 1 + reply, TCP_FIN | TCP_ACK, 0);
	assert_int_equal(s_ack_seen, S_ISN + 1 + reply);
	c_ack = e->c_nxt;

	/* the guests: the secondary acks the FIN and closes in one segment, the
	 * primary acks first and closes after */
	e2e_secondary(e, S_ISN + 1 + reply, c_ack, TCP_FIN | TCP_ACK, 0, 0);
	e2e_primary(e, P_ISN + 1 + reply, c_ack, TCP_ACK, 0, 0);
	e2e_primary(e, P_ISN + 1 + reply, c_ack, TCP_FIN | TCP_ACK, 0, 0);
	assert_int_equal(e->h.n_out, 7);
	s_ack_seen = e2e_client(e, P_ISN + 2 + reply, TCP_ACK, 0); /* last ACK */
	assert_int_equal(s_ack_seen, S_ISN + 2 + reply);

	/* no checkpoint, nothing held, nothing left behind */
	assert_int_equal(e->h.n_ckpt, 0);
	assert_int_equal(h_stats(&e->h).primary_held_frames, 0);
	assert_int_equal(h_stats(&e->h).secondary_held_frames, 0);
	assert_int_equal(rw_stats(e->r).connections, 0);
	e->h.now += COLO_COMPARE_CLOSED_LINGER_MS;
	colo_compare_tick(e->h.c, e->h.now);
	assert_int_equal(h_stats(&e->h).connections, 0);
	/* what the client received is exactly the primary's reply */
	{
		uint32_t next = P_ISN + 1;

		for (int i = 0; i < e->h.n_out; i++) {
			struct pkt_info in = h_out_info(&e->h, i);

			if (in.payload_len == 0)
				continue;
			assert_int_equal(in.seq, next);
			assert_memory_equal(e->h.out[i] + in.payload_off, data + next - P_ISN - 1,
					    in.payload_len);
			next += in.payload_len;
		}
		assert_int_equal(next, P_ISN + 1 + reply);
	}
}

static void test_end_to_end(void **state)
{
	for (int v = 0; v < 4; v++) {
		struct e2e e;

		memset(&e, 0, sizeof(e));
		h_init(&e.h, 3000, 64, 64);
		e.r = *state;
		e.fl = v & 2 ? nf_flow6() : nf_flow4();
		e.fl.vlans = v & 2 ? 1 : 0;
		e.fl.vlan_id = 7;
		e.c_nxt = C_ISN;
		run_e2e(&e, v & 1);
		h_fini(&e.h);
	}
}

/* The guest opens the connection (an HTTP client in the guest). */
static void test_end_to_end_active(void **state)
{
	struct e2e e;
	uint32_t s_ack_seen;

	memset(&e, 0, sizeof(e));
	h_init(&e.h, 3000, 64, 64);
	e.r = *state;
	e.fl = nf_flow4();
	e.fl.pa = 45000;
	e.fl.pb = 80;
	e.c_nxt = C_ISN;
	e2e_secondary(&e, S_ISN, 0, TCP_SYN, 0, 0);
	e2e_primary(&e, P_ISN, 0, TCP_SYN, 0, 0);
	assert_int_equal(e.h.n_out, 1);
	s_ack_seen = e2e_client(&e, P_ISN + 1, TCP_SYN | TCP_ACK, 0); /* the server answers */
	assert_int_equal(s_ack_seen, S_ISN + 1);
	e2e_primary(&e, P_ISN + 1, e.c_nxt, TCP_ACK | TCP_PSH, 0, 80);
	e2e_secondary(&e, S_ISN + 1, e.c_nxt, TCP_ACK, 0, 40);
	e2e_secondary(&e, S_ISN + 41, e.c_nxt, TCP_ACK | TCP_PSH, 40, 40);
	assert_int_equal(e.h.n_out, 2);
	s_ack_seen = e2e_client(&e, P_ISN + 81, TCP_ACK | TCP_PSH, 500); /* response */
	assert_int_equal(s_ack_seen, S_ISN + 81);
	e2e_secondary(&e, S_ISN + 81, e.c_nxt, TCP_ACK, 0, 0);
	e2e_primary(&e, P_ISN + 81, e.c_nxt, TCP_ACK, 0, 0);
	assert_int_equal(e.h.n_out, 3);
	assert_int_equal(e.h.n_ckpt, 0);
	h_fini(&e.h);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_passive_open),
		T(test_syn_retransmission_keeps_learning),
		T(test_active_open),
		T(test_offset_wraps),
		T(test_checkpoint_resets),
		T(test_passive_close),
		T(test_active_close),
		T(test_rst_removes),
		T(test_failover),
		T(test_ipv6_vlan),
		T(test_other_traffic_untouched),
		T(test_lru_eviction),
		T(test_end_to_end),
		T(test_end_to_end_active),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
