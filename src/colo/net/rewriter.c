/*
 * COLO TCP sequence rewriter (see colo_rewriter.h). A connection is keyed in
 * the guest's outbound orientation (inbound frames use the reversed key) and
 * remembered from its SYN until its teardown: both FINs acknowledged, or a
 * RST. Teardown positions are kept in the primary's sequence space, the one
 * the peer acknowledges, so a checkpoint cannot invalidate them.
 */
#include "colo/net/rewriter.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "net/flow_table.h"
#include "net/packet.h"

#define CONN_OF(e) ((struct rw_conn *)((char *)(e) - offsetof(struct rw_conn, fe)))

enum rw_opener {
	RW_PASSIVE, /* the peer sent the SYN */
	RW_ACTIVE,  /* the guest sent the SYN */
};

struct rw_conn {
	struct flow_entry fe;
	uint8_t opener;
	bool s_isn_known, offset_known;
	uint32_t s_isn;   /* the secondary guest's ISN */
	uint32_t offset;  /* secondary ISN - primary ISN */
	bool guest_fin, peer_fin, guest_fin_acked, peer_fin_acked;
	uint32_t guest_fin_seq; /* primary space */
	uint32_t peer_fin_seq;
};

struct colo_rewriter {
	struct flow_table table;
	bool failover;
	struct colo_rewriter_stats stats;
};

struct colo_rewriter *colo_rewriter_create_limit(uint32_t max_connections)
{
	struct colo_rewriter *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (flow_table_init(&r->table, max_connections ? max_connections : 1) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

struct colo_rewriter *colo_rewriter_create(void)
{
	return colo_rewriter_create_limit(COLO_REWRITER_DEFAULT_CONNECTIONS);
}

static void conn_forget(struct colo_rewriter *r, struct rw_conn *c)
{
	flow_table_remove(&r->table, &c->fe);
	r->stats.connections--;
	free(c);
}

static void forget_all(struct colo_rewriter *r)
{
	struct flow_entry *e;

	while ((e = flow_table_oldest(&r->table)))
		conn_forget(r, CONN_OF(e));
}

void colo_rewriter_destroy(struct colo_rewriter *r)
{
	if (!r)
		return;
	forget_all(r);
	flow_table_destroy(&r->table);
	free(r);
}

static struct rw_conn *conn_find(struct colo_rewriter *r, const struct flow_key *key, uint32_t hash)
{
	struct flow_entry *e = flow_table_find(&r->table, key, hash);

	if (!e)
		return NULL;
	flow_table_touch(&r->table, e);
	return CONN_OF(e);
}

/* A fresh record for a connection that is being opened (a SYN), replacing
 * any record of an earlier connection on the same ports. */
static struct rw_conn *conn_open(struct colo_rewriter *r, const struct flow_key *key, uint32_t hash,
				 uint8_t opener)
{
	struct rw_conn *c = conn_find(r, key, hash);

	if (c) {
		struct flow_entry fe = c->fe;

		memset(c, 0, sizeof(*c));
		c->fe = fe;
	} else {
		if (flow_table_full(&r->table)) {
			conn_forget(r, CONN_OF(flow_table_oldest(&r->table)));
			r->stats.evicted++;
		}
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		c->fe.key = *key;
		c->fe.hash = hash;
		flow_table_insert(&r->table, &c->fe);
		if (++r->stats.connections > r->stats.connections_max)
			r->stats.connections_max = r->stats.connections;
	}
	c->opener = opener;
	return c;
}

/* The peer acknowledges primary ISN + 1: that fixes the offset. Without the
 * secondary's ISN (a checkpoint made the guests identical in between) it is 0. */
static void learn_offset(struct colo_rewriter *r, struct rw_conn *c, uint32_t ack)
{
	c->offset = c->s_isn_known ? c->s_isn - (ack - 1) : 0;
	c->offset_known = true;
	if (c->opener == RW_PASSIVE)
		r->stats.offsets_learned_passive++;
	else
		r->stats.offsets_learned_active++;
}

static bool conn_closed(const struct rw_conn *c)
{
	return c->guest_fin_acked && c->peer_fin_acked;
}

/* After the frame went through: forget the connection if it just ended. */
static void after_frame(struct colo_rewriter *r, struct rw_conn *c, uint8_t flags)
{
	if (flags & TCP_RST) {
		r->stats.closed_rst++;
		conn_forget(r, c);
	} else if (conn_closed(c)) {
		r->stats.closed_fin++;
		conn_forget(r, c);
	}
}

/* ---- inbound: network -> secondary guest ---- */

static void inbound_learn(struct colo_rewriter *r, struct rw_conn *c, const struct pkt_info *in)
{
	uint8_t f = in->tcp_flags;

	if (c->offset_known || !(f & TCP_ACK))
		return;
	if (c->opener == RW_ACTIVE && (f & TCP_SYN))
		learn_offset(r, c, in->ack); /* the server's SYN-ACK */
	else if (c->opener == RW_PASSIVE && !(f & TCP_SYN))
		learn_offset(r, c, in->ack); /* the client's handshake ACK */
}

static void inbound_teardown(struct rw_conn *c, const struct pkt_info *in)
{
	if (in->tcp_flags & TCP_FIN) {
		c->peer_fin = true;
		c->peer_fin_seq = in->seq + in->payload_len + ((in->tcp_flags & TCP_SYN) ? 1 : 0);
	}
	if ((in->tcp_flags & TCP_ACK) && c->guest_fin && seq_gt(in->ack, c->guest_fin_seq))
		c->guest_fin_acked = true;
}

static void inbound_translate(struct colo_rewriter *r, struct rw_conn *c, uint8_t *frame,
			      const struct pkt_info *in)
{
	if (!c->offset_known || c->offset == 0 || !(in->tcp_flags & TCP_ACK))
		return;
	pkt_tcp_set_ack(frame, in, in->ack + c->offset);
	r->stats.sack_blocks_rewritten += (uint64_t)pkt_tcp_sack_shift(frame, in, c->offset);
	r->stats.inbound_rewritten++;
}

static bool parse_tcp(struct colo_rewriter *r, const uint8_t *frame, size_t len, struct pkt_info *in)
{
	if (pkt_parse(frame, len, in) < 0) {
		r->stats.unparseable++;
		return false;
	}
	return in->l4 == PKT_L4_TCP;
}

void colo_rewriter_inbound(struct colo_rewriter *r, uint8_t *frame, size_t len)
{
	struct pkt_info in;
	struct flow_key key;
	uint32_t hash;
	struct rw_conn *c;

	r->stats.inbound_frames++;
	if (!parse_tcp(r, frame, len, &in))
		return;
	pkt_flow_key(&in, true, &key);
	hash = flow_table_hash(&r->table, &key);
	if ((in.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN) {
		/* The peer opens. A repeated SYN (or one crossing the guest's own)
		 * keeps what was learned so far; after failover new connections
		 * are not tracked. */
		c = conn_find(r, &key, hash);
		if (r->failover) {
			if (c && c->offset_known)
				conn_forget(r, c); /* a new connection on old ports */
		} else if (!c || c->offset_known) {
			conn_open(r, &key, hash, RW_PASSIVE);
		}
		return;
	}
	c = conn_find(r, &key, hash);
	if (!c)
		return;
	inbound_learn(r, c, &in);
	inbound_teardown(c, &in);
	inbound_translate(r, c, frame, &in);
	after_frame(r, c, in.tcp_flags);
}

/* ---- outbound: secondary guest -> comparator ---- */

static void outbound_teardown(struct rw_conn *c, const struct pkt_info *out, uint32_t primary_seq)
{
	if (out->tcp_flags & TCP_FIN) {
		c->guest_fin = true;
		c->guest_fin_seq = primary_seq + out->payload_len + ((out->tcp_flags & TCP_SYN) ? 1 : 0);
	}
	if ((out->tcp_flags & TCP_ACK) && c->peer_fin && seq_gt(out->ack, c->peer_fin_seq))
		c->peer_fin_acked = true;
}

/* The guest's own SYN or SYN-ACK: remember its ISN (a SYN is not translated
 * before the offset is known; the comparator ignores a SYN's number). Returns
 * the connection to translate, if any. */
static struct rw_conn *outbound_syn(struct colo_rewriter *r, struct rw_conn *c,
				    const struct flow_key *key, uint32_t hash,
				    const struct pkt_info *out)
{
	if (!(out->tcp_flags & TCP_ACK)) {
		/* The guest opens; after failover new connections are not tracked. */
		if (r->failover) {
			if (c)
				conn_forget(r, c);
			return NULL;
		}
		bool retransmitted = c && c->opener == RW_ACTIVE && !c->offset_known &&
				     c->s_isn_known && c->s_isn == out->seq;
		if (!retransmitted)
			c = conn_open(r, key, hash, RW_ACTIVE);
	}
	if (c && !c->offset_known) {
		c->s_isn = out->seq;
		c->s_isn_known = true;
	}
	return c;
}

void colo_rewriter_outbound(struct colo_rewriter *r, uint8_t *frame, size_t len)
{
	struct pkt_info out;
	struct flow_key key;
	uint32_t hash, seq;
	struct rw_conn *c;

	r->stats.outbound_frames++;
	if (!parse_tcp(r, frame, len, &out))
		return;
	pkt_flow_key(&out, false, &key);
	hash = flow_table_hash(&r->table, &key);
	c = conn_find(r, &key, hash);
	if (out.tcp_flags & TCP_SYN)
		c = outbound_syn(r, c, &key, hash, &out);
	if (!c)
		return;
	seq = out.seq;
	if (c->offset_known && c->offset != 0) {
		seq -= c->offset;
		pkt_tcp_set_seq(frame, &out, seq);
		r->stats.outbound_rewritten++;
	}
	outbound_teardown(c, &out, seq);
	after_frame(r, c, out.tcp_flags);
}

/* ---- events ---- */

void colo_rewriter_checkpoint(struct colo_rewriter *r)
{
	forget_all(r);
}

void colo_rewriter_failover(struct colo_rewriter *r)
{
	struct flow_entry *e = flow_table_oldest(&r->table);

	r->failover = true;
	r->stats.failover = true;
	while (e) {
		struct rw_conn *c = CONN_OF(e);

		e = flow_table_newer(&r->table, e);
		if (c->offset_known && c->offset == 0)
			conn_forget(r, c);
	}
}

void colo_rewriter_get_stats(const struct colo_rewriter *r, struct colo_rewriter_stats *s)
{
	*s = r->stats;
}
