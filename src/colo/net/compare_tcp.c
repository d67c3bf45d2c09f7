/*
 * TCP comparison as byte streams. Per connection the comparator knows the
 * verified position (the stream's base): every primary byte before it was
 * also sent by the secondary, identically. The secondary's bytes beyond it
 * wait in the stream buffer (in the primary's sequence space: the rewriter
 * already shifted them). A held primary segment is released when
 *   (a) the secondary's stream covers its bytes with the same bytes, however
 *       the secondary cut them into segments, FIN and RST being positions in
 *       the stream, and
 *   (b) the secondary has acknowledged at least as much of the peer's data as
 *       the segment acknowledges, so no peer ever sees an ACK for data the
 *       secondary does not have.
 * Pure ACKs need only (b) and may overtake held data; data, SYN and RST keep
 * their order. Sequence numbers are compared wrap-safe throughout.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "colo/net/compare_internal.h"

enum verdict { VERDICT_WAIT, VERDICT_READY, VERDICT_MISMATCH };

/* ---- segments ---- */

static uint8_t seg_kind(const struct pkt_info *info)
{
	if (info->tcp_flags & TCP_SYN)
		return SEG_SYN;
	if (info->tcp_flags & TCP_RST)
		return SEG_RST;
	if (info->payload_len || (info->tcp_flags & TCP_FIN))
		return SEG_DATA;
	return SEG_PURE_ACK;
}

static struct tcp_seg seg_from(const struct pkt_info *info)
{
	struct tcp_seg seg = {
		.seq = info->seq,
		.ack = info->ack,
		.payload_off = info->payload_off,
		.len = info->payload_len,
		.flags = info->tcp_flags,
		.kind = seg_kind(info),
	};
	return seg;
}

static struct syn_sig syn_sig_of(const uint8_t *frame, const struct pkt_info *info)
{
	struct syn_sig sig = {
		.flags = info->tcp_flags,
		.mss = pkt_tcp_mss(frame, info),
		.len = info->payload_len,
		.hash = XXH3_64bits(frame + info->payload_off, info->payload_len),
	};
	return sig;
}

static bool syn_sig_equal(const struct syn_sig *a, const struct syn_sig *b)
{
	return a->flags == b->flags && a->mss == b->mss && a->len == b->len && a->hash == b->hash;
}

/* The secondary's state belongs to the same incarnation of the connection
 * (the same SYN exchange) as the primary's. */
static bool same_generation(const struct tcp_conn_state *t)
{
	return t->s_gen == t->p_gen;
}

/* Condition (b). */
static bool ack_covered(const struct tcp_conn_state *t, const struct tcp_seg *seg)
{
	if (!(seg->flags & TCP_ACK))
		return true;
	return same_generation(t) && t->s_ack_seen && seq_le(seg->ack, t->s_ack_max);
}

static bool fin_verified_at(const struct tcp_conn_state *t, uint32_t pos)
{
	return t->fin_verified && t->p_fin_seq == pos;
}

/* ---- secondary stream, with the held-bytes statistics kept in step ---- */

struct stream_mark {
	uint32_t frames;
	uint64_t bytes;
};

static struct stream_mark stream_mark(const struct colo_stream *s)
{
	return (struct stream_mark){ colo_stream_frames(s), colo_stream_bytes(s) };
}

static void stream_account(struct colo_compare *c, const struct colo_stream *s, struct stream_mark m)
{
	note_secondary_held(c, (int64_t)colo_stream_frames(s) - m.frames,
			    (int64_t)colo_stream_bytes(s) - (int64_t)m.bytes);
}

static void stream_consume(struct colo_compare *c, struct colo_stream *s, uint32_t n)
{
	struct stream_mark m = stream_mark(s);

	colo_stream_consume(s, n);
	stream_account(c, s, m);
}

/* The secondary's stream contradicted itself (overlapping bytes differ), or
 * a hole had to be left: nothing more can match before the checkpoint. */
static void stream_failed(struct colo_compare *c, struct colo_conn *conn, enum colo_stream_result r,
			  const uint8_t *frame, uint32_t len)
{
	if (r == COLO_STREAM_DIFF) {
		report_mismatch(c, conn, NULL, 0, frame, len);
		return;
	}
	c->stats.cls[COLO_CLASS_TCP].secondary_dropped++;
	conn->diverged = true;
	request_checkpoint(c, COLO_CKPT_QUEUE_FULL);
}

/* Moves the verified position to base (merging out-of-order bytes that fit).
 * soft: base is a guess, see tcp_conn_state.base_soft. */
static void stream_sync(struct colo_compare *c, struct colo_conn *conn, uint32_t base, bool soft)
{
	struct tcp_conn_state *t = &conn->tcp;
	struct stream_mark m = stream_mark(&t->stream);
	enum colo_stream_result r = colo_stream_sync(&t->stream, base);

	stream_account(c, &t->stream, m);
	t->base_soft = soft;
	/* A secondary FIN before the new position belongs to the past. */
	if (t->s_fin_seen && seq_lt(t->s_fin_seq, base) && !fin_verified_at(t, t->s_fin_seq))
		t->s_fin_seen = false;
	if (r != COLO_STREAM_OK)
		stream_failed(c, conn, r, NULL, 0);
}

static enum colo_stream_result stream_add(struct colo_compare *c, struct colo_conn *conn,
					  const struct tcp_seg *seg, const uint8_t *frame)
{
	struct colo_stream *s = &conn->tcp.stream;
	struct stream_mark m = stream_mark(s);
	enum colo_stream_result r;

	r = colo_stream_add(s, seg->seq, frame + seg->payload_off, seg->len, c->cfg.max_queue_size);
	stream_account(c, s, m);
	return r;
}

/* ---- mismatches ---- */

static void mismatch_primary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			     uint32_t len)
{
	report_mismatch(c, conn, frame, len, NULL, 0);
}

/* The secondary's version of a primary segment: the primary's frame with the
 * secondary's bytes for [payload + off, + n), so the pair diffs cleanly. */
static void mismatch_bytes(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			   uint32_t len, uint32_t payload_off, uint32_t off, uint32_t n)
{
	uint8_t *twin = malloc(len);

	if (twin) {
		memcpy(twin, frame, len);
		memcpy(twin + payload_off + off, colo_stream_data(&conn->tcp.stream), n);
	}
	report_mismatch(c, conn, frame, len, twin, twin ? len : 0);
	free(twin);
}

static void mismatch_secondary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			       uint32_t len)
{
	report_mismatch(c, conn, NULL, 0, frame, len);
}

/* ---- evaluation of one primary segment ---- */

static enum verdict eval_syn(struct colo_compare *c, struct colo_conn *conn,
			     const struct tcp_seg *seg, const uint8_t *frame, uint32_t len)
{
	struct tcp_conn_state *t = &conn->tcp;

	if (!t->s_syn_seen || !same_generation(t))
		return VERDICT_WAIT;
	if (!syn_sig_equal(&t->p_syn, &t->s_syn)) {
		mismatch_primary(c, conn, frame, len);
		return VERDICT_MISMATCH;
	}
	return ack_covered(t, seg) ? VERDICT_READY : VERDICT_WAIT;
}

/* Compares the segment's bytes beyond the verified position with the
 * secondary's stream and moves the position over what matches. */
static enum verdict verify_payload(struct colo_compare *c, struct colo_conn *conn,
				   const struct tcp_seg *seg, const uint8_t *frame, uint32_t len)
{
	struct tcp_conn_state *t = &conn->tcp;
	struct colo_stream *s = &t->stream;
	uint32_t end = seg->seq + seg->len, off, need, n;

	if (seg->len == 0 || seq_le(end, s->base))
		return VERDICT_READY;
	if (seq_gt(seg->seq, s->base))
		return VERDICT_WAIT; /* earlier bytes not verified yet */
	if (t->s_fin_seen && same_generation(t) && seq_gt(end, t->s_fin_seq)) {
		mismatch_primary(c, conn, frame, len); /* data where the secondary's stream ended */
		return VERDICT_MISMATCH;
	}
	off = s->base - seg->seq;
	need = end - s->base;
	n = need < s->len ? need : s->len;
	if (n && memcmp(frame + seg->payload_off + off, colo_stream_data(s), n) != 0) {
		mismatch_bytes(c, conn, frame, len, seg->payload_off, off, n);
		return VERDICT_MISMATCH;
	}
	stream_consume(c, s, n);
	if (n)
		t->base_soft = false;
	return n == need ? VERDICT_READY : VERDICT_WAIT;
}

/* A primary FIN at `pos` (all bytes before it verified): released when the
 * secondary's FIN is at the same position. */
static enum verdict verify_fin(struct colo_compare *c, struct colo_conn *conn, uint32_t pos,
			       const uint8_t *frame, uint32_t len)
{
	struct tcp_conn_state *t = &conn->tcp;
	struct colo_stream *s = &t->stream;

	if (fin_verified_at(t, pos) || seq_lt(pos, s->base))
		return VERDICT_READY; /* retransmitted, or inside verified data (nothing to compare) */
	if (t->s_fin_seen && same_generation(t)) {
		if (t->s_fin_seq != pos) {
			mismatch_primary(c, conn, frame, len);
			return VERDICT_MISMATCH;
		}
		t->fin_verified = true;
		stream_sync(c, conn, pos + 1, false);
		return VERDICT_READY;
	}
	if (s->len > 0) {
		mismatch_primary(c, conn, frame, len); /* the secondary sent data where the primary stops */
		return VERDICT_MISMATCH;
	}
	return VERDICT_WAIT;
}

static enum verdict eval_data(struct colo_compare *c, struct colo_conn *conn,
			      const struct tcp_seg *seg, const uint8_t *frame, uint32_t len, bool blocked)
{
	struct tcp_conn_state *t = &conn->tcp;
	enum verdict v;

	if (seg->retrans)
		return ack_covered(t, seg) ? VERDICT_READY : VERDICT_WAIT;
	/* The primary's stream goes on beyond a guessed position with nothing in
	 * between from either guest: the guess was low (a keepalive set it). */
	if (t->base_soft && !blocked && t->stream.len == 0 && seq_gt(seg->seq, t->stream.base))
		stream_sync(c, conn, seg->seq, true);
	v = verify_payload(c, conn, seg, frame, len);
	if (v != VERDICT_READY)
		return v;
	if (seg->flags & TCP_FIN) {
		v = verify_fin(c, conn, seg->seq + seg->len, frame, len);
		if (v != VERDICT_READY)
			return v;
	}
	return !blocked && ack_covered(t, seg) ? VERDICT_READY : VERDICT_WAIT;
}

/* blocked: an earlier held segment of this connection must go out first. */
static enum verdict evaluate(struct colo_compare *c, struct colo_conn *conn,
			     const struct tcp_seg *seg, const uint8_t *frame, uint32_t len, bool blocked)
{
	struct tcp_conn_state *t = &conn->tcp;

	switch (seg->kind) {
	case SEG_SYN:
		return eval_syn(c, conn, seg, frame, len);
	case SEG_RST:
		return !blocked && t->s_rst_seen && same_generation(t) ? VERDICT_READY : VERDICT_WAIT;
	case SEG_PURE_ACK:
		return ack_covered(t, seg) ? VERDICT_READY : VERDICT_WAIT;
	default:
		return eval_data(c, conn, seg, frame, len, blocked);
	}
}

static void note_released(struct tcp_conn_state *t, const struct tcp_seg *seg)
{
	if (seg->kind == SEG_RST)
		t->rst_verified = true;
}

static void release_tcp(struct colo_compare *c, struct colo_conn *conn, struct held_frame *f)
{
	if (f->tcp.blocks)
		conn->tcp.blocking_held--;
	note_released(&conn->tcp, &f->tcp);
	release_held(c, f);
}

/* Releases every held segment that has become releasable. */
static void process_held(struct colo_compare *c, struct colo_conn *conn)
{
	bool blocked = false;
	struct held_frame *f, *next;

	for (f = conn->primary.head; f && !conn->diverged; f = next) {
		enum verdict v;

		next = f->next;
		v = evaluate(c, conn, &f->tcp, f->data, f->len, blocked);
		if (v == VERDICT_READY)
			release_tcp(c, conn, f);
		else if (f->tcp.blocks)
			blocked = true;
	}
}

/* ---- primary side ---- */

/* A SYN with a new initial sequence number: a new incarnation of the
 * connection (first SYN, or the port pair reused). */
static void primary_new_incarnation(struct colo_compare *c, struct colo_conn *conn,
				    const struct tcp_seg *seg, const struct syn_sig *sig)
{
	struct tcp_conn_state *t = &conn->tcp;

	t->p_gen++;
	t->p_syn_seen = true;
	t->p_isn = seg->seq;
	t->p_syn = *sig;
	t->p_seen = t->p_ack_seen = t->p_fin_seen = t->p_rst_seen = false;
	t->fin_verified = t->rst_verified = false;
	stream_sync(c, conn, seg->seq + 1 + seg->len, false);
}

static uint32_t seg_end(const struct tcp_seg *seg)
{
	uint32_t end = seg->seq + seg->len;

	if (seg->flags & TCP_SYN)
		end++;
	if (seg->flags & TCP_FIN)
		end++;
	return end;
}

/* Remembers how far the primary got: a checkpoint restarts from there. */
static void note_primary(struct tcp_conn_state *t, const struct tcp_seg *seg)
{
	if (seg->flags & TCP_ACK) {
		t->p_ack_max = t->p_ack_seen ? seq_max(t->p_ack_max, seg->ack) : seg->ack;
		t->p_ack_seen = true;
	}
	if (seg->kind == SEG_RST) {
		t->p_rst_seen = true;
		return;
	}
	t->p_nxt = t->p_seen ? seq_max(t->p_nxt, seg_end(seg)) : seg_end(seg);
	t->p_seen = true;
	if (seg->kind == SEG_DATA && (seg->flags & TCP_FIN)) {
		t->p_fin_seen = true;
		t->p_fin_seq = seg->seq + seg->len;
	}
}

static bool in_verified_range(const struct tcp_conn_state *t, const struct tcp_seg *seg)
{
	uint32_t end = seg->seq + seg->len;

	if (!t->stream.synced || !seq_le(end, t->stream.base))
		return false;
	return !(seg->flags & TCP_FIN) || fin_verified_at(t, end) || seq_lt(end, t->stream.base);
}

static void classify_primary(struct tcp_conn_state *t, struct tcp_seg *seg)
{
	seg->retrans = seg->kind == SEG_DATA && in_verified_range(t, seg);
	seg->blocks = seg->kind == SEG_SYN || seg->kind == SEG_RST ||
		      (seg->kind == SEG_DATA && !seg->retrans);
}

void compare_tcp_primary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			 const struct pkt_info *info)
{
	struct tcp_conn_state *t = &conn->tcp;
	struct tcp_seg seg = seg_from(info);
	struct held_frame *f;

	if (seg.kind == SEG_SYN && !(t->p_syn_seen && t->p_isn == seg.seq)) {
		struct syn_sig sig = syn_sig_of(frame, info);

		primary_new_incarnation(c, conn, &seg, &sig);
	}
	note_primary(t, &seg);
	/* First sight of a connection mid-stream: this segment fixes the position. */
	if (!t->stream.synced && seg.kind != SEG_RST)
		stream_sync(c, conn, seg.seq, true);
	classify_primary(t, &seg);
	if (!conn->diverged) {
		bool blocked = t->blocking_held > 0;
		enum verdict v = evaluate(c, conn, &seg, frame, info->frame_len, blocked);

		if (v == VERDICT_READY) {
			note_released(t, &seg);
			c->stats.cls[COLO_CLASS_TCP].matched++;
			output_frame(c, frame, info->frame_len);
			return;
		}
	}
	f = hold_primary(c, conn, frame, info->frame_len, COLO_CLASS_TCP);
	if (!f)
		return;
	f->tcp = seg;
	if (seg.blocks)
		t->blocking_held++;
}

/* ---- secondary side ---- */

/* The secondary's SYN. A repeated one keeps the incarnation, whether it
 * still carries the secondary's ISN or (once the rewriter knows the offset)
 * the primary's. */
static void secondary_syn(struct tcp_conn_state *t, const struct tcp_seg *seg,
			  const struct syn_sig *sig)
{
	bool repeated = (t->s_syn_seen && t->s_isn == seg->seq) ||
			(t->s_syn_seen && t->p_syn_seen && t->p_isn == seg->seq);

	if (!repeated) {
		t->s_gen++;
		t->s_isn = seg->seq;
		t->s_ack_seen = t->s_fin_seen = t->s_rst_seen = false;
	}
	t->s_syn_seen = true;
	t->s_syn = *sig;
}

static void note_secondary_ack(struct tcp_conn_state *t, const struct tcp_seg *seg)
{
	if (!(seg->flags & TCP_ACK))
		return;
	t->s_ack_max = t->s_ack_seen ? seq_max(t->s_ack_max, seg->ack) : seg->ack;
	t->s_ack_seen = true;
}

/* The secondary's FIN at pos. False after a mismatch. */
static bool secondary_fin(struct colo_compare *c, struct colo_conn *conn, uint32_t pos,
			  const uint8_t *frame, uint32_t len)
{
	struct tcp_conn_state *t = &conn->tcp;
	const struct colo_stream *s = &t->stream;

	if (t->s_fin_seen && t->s_fin_seq != pos) {
		mismatch_secondary(c, conn, frame, len); /* its stream ends in two places */
		return false;
	}
	if (s->synced && !fin_verified_at(t, pos) &&
	    (seq_lt(pos, s->base) || seq_gt(colo_stream_end(s), pos))) {
		mismatch_secondary(c, conn, frame, len); /* FIN inside data it sent */
		return false;
	}
	t->s_fin_seen = true;
	t->s_fin_seq = pos;
	return true;
}

static bool secondary_data(struct colo_compare *c, struct colo_conn *conn,
			   const struct tcp_seg *seg, const uint8_t *frame, uint32_t len)
{
	struct tcp_conn_state *t = &conn->tcp;
	uint32_t end = seg->seq + seg->len;
	enum colo_stream_result r;

	if ((seg->flags & TCP_FIN) && !secondary_fin(c, conn, end, frame, len))
		return false;
	if (seg->len == 0)
		return true;
	if (t->s_fin_seen && seq_gt(end, t->s_fin_seq)) {
		mismatch_secondary(c, conn, frame, len); /* data after its own FIN */
		return false;
	}
	r = stream_add(c, conn, seg, frame);
	if (r != COLO_STREAM_OK) {
		stream_failed(c, conn, r, frame, len);
		return false;
	}
	return true;
}

void compare_tcp_secondary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			   const struct pkt_info *info)
{
	struct tcp_conn_state *t = &conn->tcp;
	struct tcp_seg seg = seg_from(info);

	if (conn->diverged) {
		c->stats.cls[COLO_CLASS_TCP].secondary_dropped++;
		return;
	}
	if (seg.kind == SEG_SYN) {
		struct syn_sig sig = syn_sig_of(frame, info);

		secondary_syn(t, &seg, &sig);
	}
	note_secondary_ack(t, &seg);
	if (seg.kind == SEG_RST)
		t->s_rst_seen = true;
	else if (seg.kind == SEG_DATA && !secondary_data(c, conn, &seg, frame, info->frame_len))
		return;
	process_held(c, conn);
}

/* ---- checkpoint ---- */

void compare_tcp_restart(struct colo_compare *c, struct colo_conn *conn)
{
	struct tcp_conn_state *t = &conn->tcp;
	struct stream_mark m = stream_mark(&t->stream);

	colo_stream_reset(&t->stream);
	stream_account(c, &t->stream, m);
	t->blocking_held = 0;
	/* Both guests are now the primary: the secondary "has sent" what it did. */
	t->s_gen = t->p_gen;
	t->s_syn_seen = t->p_syn_seen;
	t->s_syn = t->p_syn;
	t->s_isn = t->p_isn;
	t->s_ack_seen = t->p_ack_seen;
	t->s_ack_max = t->p_ack_max;
	t->s_fin_seen = t->fin_verified = t->p_fin_seen;
	t->s_fin_seq = t->p_fin_seq;
	t->s_rst_seen = t->rst_verified = t->p_rst_seen;
	if (t->p_seen)
		stream_sync(c, conn, t->p_nxt, true);
}

bool compare_tcp_closed(const struct colo_conn *conn)
{
	return conn->tcp.fin_verified || conn->tcp.rst_verified;
}
