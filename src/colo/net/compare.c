/*
 * COLO comparator: the connection table, held-frame queues, checkpoint
 * requests, checkpoint/failover release, ageing and statistics. The
 * comparison rules themselves live in colo_compare_tcp.c (byte streams) and
 * colo_compare_dgram.c (datagrams and whole frames).
 */
#include "colo/net/compare.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "colo/net/compare_internal.h"

/* Held frames up to this size come from a free list instead of malloc. */
#define POOL_FRAME_BYTES 2048
#define POOL_MAX_FREE 1024
/* Connection records kept for reuse: a datagram flow lives for one
 * request/answer pair, and should not cost a malloc each time. */
#define MAX_SPARE_CONNS 64
/* How far into the LRU list to look for a connection that can be evicted. */
#define EVICT_SCAN 64

#define CONN_OF(e) ((struct colo_conn *)((char *)(e) - offsetof(struct colo_conn, fe)))

/* ---- held frames ---- */

struct held_frame *frame_alloc(struct colo_compare *c, const uint8_t *frame, size_t len)
{
	struct held_frame *f;
	bool pooled = len <= POOL_FRAME_BYTES;

	if (pooled && c->pool.free) {
		f = c->pool.free;
		c->pool.free = f->next;
		c->pool.count--;
	} else {
		f = malloc(sizeof(*f) + (pooled ? POOL_FRAME_BYTES : len));
		if (!f)
			return NULL;
	}
	memset(f, 0, sizeof(*f));
	f->pooled = pooled;
	f->len = (uint32_t)len;
	memcpy(f->data, frame, len);
	return f;
}

void frame_free(struct colo_compare *c, struct held_frame *f)
{
	if (f->pooled && c->pool.count < POOL_MAX_FREE) {
		f->next = c->pool.free;
		c->pool.free = f;
		c->pool.count++;
		return;
	}
	free(f);
}

static void pool_destroy(struct frame_pool *p)
{
	while (p->free) {
		struct held_frame *f = p->free;

		p->free = f->next;
		free(f);
	}
	p->count = 0;
}

void queue_append(struct frame_queue *q, struct held_frame *f)
{
	f->next = NULL;
	f->prev = q->tail;
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->count++;
}

void queue_remove(struct frame_queue *q, struct held_frame *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		q->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		q->tail = f->prev;
	f->prev = f->next = NULL;
	q->count--;
}

static void all_append(struct colo_compare *c, struct held_frame *f)
{
	f->all_next = NULL;
	f->all_prev = c->all_tail;
	if (c->all_tail)
		c->all_tail->all_next = f;
	else
		c->all_head = f;
	c->all_tail = f;
}

static void all_remove(struct colo_compare *c, struct held_frame *f)
{
	if (f->all_prev)
		f->all_prev->all_next = f->all_next;
	else
		c->all_head = f->all_next;
	if (f->all_next)
		f->all_next->all_prev = f->all_prev;
	else
		c->all_tail = f->all_prev;
}

static void note_primary_held(struct colo_compare *c, int64_t frames, int64_t bytes)
{
	struct colo_compare_stats *s = &c->stats;

	s->primary_held_frames += (uint64_t)frames;
	s->primary_held_bytes += (uint64_t)bytes;
	if (s->primary_held_frames > s->primary_held_frames_max)
		s->primary_held_frames_max = s->primary_held_frames;
	if (s->primary_held_bytes > s->primary_held_bytes_max)
		s->primary_held_bytes_max = s->primary_held_bytes;
}

void note_secondary_held(struct colo_compare *c, int64_t frames, int64_t bytes)
{
	struct colo_compare_stats *s = &c->stats;

	s->secondary_held_frames += (uint64_t)frames;
	s->secondary_held_bytes += (uint64_t)bytes;
	if (s->secondary_held_frames > s->secondary_held_frames_max)
		s->secondary_held_frames_max = s->secondary_held_frames;
	if (s->secondary_held_bytes > s->secondary_held_bytes_max)
		s->secondary_held_bytes_max = s->secondary_held_bytes;
}

struct held_frame *hold_primary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
				size_t len, uint8_t cls)
{
	struct held_frame *f = frame_alloc(c, frame, len);

	if (!f) {
		/* Out of memory: dropping is the safe choice (TCP retransmits,
		 * datagrams may be lost anyway); releasing it uncompared is not. */
		request_checkpoint(c, COLO_CKPT_QUEUE_FULL);
		return NULL;
	}
	f->conn = conn;
	f->cls = cls;
	f->arrival_ms = c->now_ms;
	all_append(c, f);
	note_primary_held(c, 1, (int64_t)len);
	if (conn) {
		queue_append(&conn->primary, f);
		if (conn->primary.count >= c->cfg.max_queue_size)
			request_checkpoint(c, COLO_CKPT_QUEUE_FULL);
	}
	return f;
}

void output_frame(struct colo_compare *c, const uint8_t *frame, size_t len)
{
	c->ops.output(c->opaque, frame, len);
}

static void release_frame(struct colo_compare *c, struct held_frame *f, bool matched)
{
	if (f->conn)
		queue_remove(&f->conn->primary, f);
	all_remove(c, f);
	note_primary_held(c, -1, -(int64_t)f->len);
	if (f->cls < COLO_CLASS_COUNT) {
		if (matched)
			c->stats.cls[f->cls].matched++;
		else
			c->stats.cls[f->cls].released_uncompared++;
	}
	output_frame(c, f->data, f->len);
	frame_free(c, f);
}

void release_held(struct colo_compare *c, struct held_frame *f)
{
	release_frame(c, f, true);
}

/* ---- checkpoint requests and mismatches ---- */

void request_checkpoint(struct colo_compare *c, enum colo_checkpoint_reason reason)
{
	/* One request per stall: repeat only if it has gone unanswered for a
	 * whole compare_timeout (the caller may have lost or refused it). */
	if (c->ckpt_requested && c->now_ms >= c->ckpt_requested_ms &&
	    c->now_ms - c->ckpt_requested_ms < c->cfg.compare_timeout_ms)
		return;
	if (c->ckpt_requested && c->now_ms < c->ckpt_requested_ms)
		return;
	c->ckpt_requested = true;
	c->ckpt_requested_ms = c->now_ms;
	c->stats.checkpoints_requested[reason]++;
	c->ops.checkpoint(c->opaque, reason);
}

void report_mismatch(struct colo_compare *c, struct colo_conn *conn, const uint8_t *p, size_t plen,
		     const uint8_t *s, size_t slen)
{
	c->stats.cls[conn->cls].mismatched++;
	conn->diverged = true;
	if (c->ops.mismatch && (p || s))
		c->ops.mismatch(c->opaque, p, plen, s, slen);
	request_checkpoint(c, COLO_CKPT_MISMATCH);
}

/* ---- connections ---- */

static uint8_t classify(const struct pkt_info *info)
{
	switch (info->l4) {
	case PKT_L4_TCP:
		return COLO_CLASS_TCP;
	case PKT_L4_UDP:
		return COLO_CLASS_UDP;
	case PKT_L4_ICMP:
	case PKT_L4_ICMPV6:
		return COLO_CLASS_ICMP;
	default:
		return info->l3 == PKT_L3_NONE ? COLO_CLASS_NONIP : COLO_CLASS_OTHER;
	}
}

bool conn_holds_nothing(const struct colo_conn *conn)
{
	return conn->primary.count == 0 && conn->secondary.count == 0 &&
	       colo_stream_empty(&conn->tcp.stream);
}

static void drop_secondary_queue(struct colo_compare *c, struct colo_conn *conn)
{
	while (conn->secondary.head) {
		struct held_frame *f = conn->secondary.head;

		queue_remove(&conn->secondary, f);
		note_secondary_held(c, -1, -(int64_t)f->len);
		frame_free(c, f);
	}
}

/* Only for a connection that holds no primary frame. */
static void conn_remove(struct colo_compare *c, struct colo_conn *conn)
{
	struct colo_stream *s = &conn->tcp.stream;

	drop_secondary_queue(c, conn);
	note_secondary_held(c, -(int64_t)colo_stream_frames(s), -(int64_t)colo_stream_bytes(s));
	colo_stream_free(s);
	flow_table_remove(&c->table, &conn->fe);
	c->stats.connections--;
	if (c->n_spare_conns < MAX_SPARE_CONNS) {
		conn->fe.chain = c->spare_conns ? &c->spare_conns->fe : NULL;
		c->spare_conns = conn;
		c->n_spare_conns++;
		return;
	}
	free(conn);
}

static struct colo_conn *conn_alloc(struct colo_compare *c)
{
	struct colo_conn *conn = c->spare_conns;

	if (!conn)
		return calloc(1, sizeof(*conn));
	c->spare_conns = conn->fe.chain ? CONN_OF(conn->fe.chain) : NULL;
	c->n_spare_conns--;
	memset(conn, 0, sizeof(*conn));
	return conn;
}

static void free_spare_conns(struct colo_compare *c)
{
	while (c->spare_conns) {
		struct colo_conn *conn = c->spare_conns;

		c->spare_conns = conn->fe.chain ? CONN_OF(conn->fe.chain) : NULL;
		free(conn);
	}
	c->n_spare_conns = 0;
}

static bool evict_one(struct colo_compare *c)
{
	struct flow_entry *e = flow_table_oldest(&c->table);

	for (int i = 0; e && i < EVICT_SCAN; i++, e = flow_table_newer(&c->table, e)) {
		struct colo_conn *conn = CONN_OF(e);

		if (conn_holds_nothing(conn)) {
			conn_remove(c, conn);
			c->stats.connections_evicted++;
			return true;
		}
	}
	return false;
}

/* The connection of a parsed frame, created if new; NULL if the table is
 * full of connections that hold frames. */
static struct colo_conn *conn_get(struct colo_compare *c, const struct pkt_info *info, uint8_t cls)
{
	struct flow_key key;
	uint32_t hash;
	struct flow_entry *e;
	struct colo_conn *conn;

	pkt_flow_key(info, false, &key);
	hash = flow_table_hash(&c->table, &key);
	e = flow_table_find(&c->table, &key, hash);
	if (e) {
		flow_table_touch(&c->table, e);
		return CONN_OF(e);
	}
	if (flow_table_full(&c->table) && !evict_one(c))
		return NULL;
	conn = conn_alloc(c);
	if (!conn)
		return NULL;
	conn->fe.key = key;
	conn->fe.hash = hash;
	conn->cls = cls;
	colo_stream_init(&conn->tcp.stream);
	flow_table_insert(&c->table, &conn->fe);
	if (++c->stats.connections > c->stats.connections_max)
		c->stats.connections_max = c->stats.connections;
	return conn;
}

/* Datagram flows carry no state between datagrams: forget them once empty. */
static void conn_forget_if_empty(struct colo_compare *c, struct colo_conn *conn)
{
	if (conn->cls != COLO_CLASS_TCP && conn_holds_nothing(conn))
		conn_remove(c, conn);
}

/* ---- entry points ---- */

struct colo_compare *colo_compare_create(const struct colo_compare_config *cfg,
					 const struct colo_compare_ops *ops, void *opaque)
{
	struct colo_compare *c;

	if (!ops || !ops->output || !ops->checkpoint)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (cfg)
		c->cfg = *cfg;
	if (!c->cfg.compare_timeout_ms)
		c->cfg.compare_timeout_ms = COLO_COMPARE_DEFAULT_TIMEOUT_MS;
	if (!c->cfg.max_queue_size)
		c->cfg.max_queue_size = COLO_COMPARE_DEFAULT_QUEUE;
	if (!c->cfg.max_connections)
		c->cfg.max_connections = COLO_COMPARE_DEFAULT_CONNECTIONS;
	if (!c->cfg.idle_timeout_ms)
		c->cfg.idle_timeout_ms = COLO_COMPARE_DEFAULT_IDLE_MS;
	c->ops = *ops;
	c->opaque = opaque;
	if (flow_table_init(&c->table, c->cfg.max_connections) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

static void drop_all_held(struct colo_compare *c)
{
	while (c->all_head) {
		struct held_frame *f = c->all_head;

		if (f->conn)
			queue_remove(&f->conn->primary, f);
		all_remove(c, f);
		frame_free(c, f);
	}
}

static void remove_all_conns(struct colo_compare *c)
{
	struct flow_entry *e;

	while ((e = flow_table_oldest(&c->table)))
		conn_remove(c, CONN_OF(e));
}

void colo_compare_destroy(struct colo_compare *c)
{
	if (!c)
		return;
	drop_all_held(c);
	remove_all_conns(c);
	flow_table_destroy(&c->table);
	free_spare_conns(c);
	pool_destroy(&c->pool);
	free(c);
}

static void hold_uncomparable(struct colo_compare *c, const uint8_t *frame, size_t len, uint8_t cls,
			      enum colo_checkpoint_reason reason)
{
	hold_primary(c, NULL, frame, len, cls);
	request_checkpoint(c, reason);
}

void colo_compare_primary(struct colo_compare *c, const uint8_t *frame, size_t len, uint64_t now_ms)
{
	struct pkt_info info;
	struct colo_conn *conn;
	uint8_t cls;

	c->now_ms = now_ms;
	if (c->failed_over) {
		output_frame(c, frame, len);
		return;
	}
	if (pkt_parse(frame, len, &info) < 0) {
		c->stats.unparseable_primary++;
		hold_uncomparable(c, frame, len, COLO_CLASS_COUNT, COLO_CKPT_UNPARSEABLE);
		return;
	}
	cls = classify(&info);
	c->stats.cls[cls].primary_frames++;
	conn = conn_get(c, &info, cls);
	if (!conn) {
		hold_uncomparable(c, frame, len, cls, COLO_CKPT_TABLE_FULL);
		return;
	}
	conn->last_ms = now_ms;
	/* By the record's class: a TCP segment with ports 0 and a TCP fragment
	 * share a key, and a queue must only ever hold one kind of frame. */
	if (conn->cls == COLO_CLASS_TCP)
		compare_tcp_primary(c, conn, frame, &info);
	else
		compare_dgram_primary(c, conn, frame, len, &info);
	conn_forget_if_empty(c, conn);
}

void colo_compare_secondary(struct colo_compare *c, const uint8_t *frame, size_t len,
			    uint64_t now_ms)
{
	struct pkt_info info;
	struct colo_conn *conn;
	uint8_t cls;

	c->now_ms = now_ms;
	if (c->failed_over)
		return;
	if (pkt_parse(frame, len, &info) < 0) {
		c->stats.unparseable_secondary++;
		return;
	}
	cls = classify(&info);
	c->stats.cls[cls].secondary_frames++;
	conn = conn_get(c, &info, cls);
	if (!conn) {
		c->stats.cls[cls].secondary_dropped++;
		request_checkpoint(c, COLO_CKPT_TABLE_FULL);
		return;
	}
	conn->last_ms = now_ms;
	if (conn->cls == COLO_CLASS_TCP)
		compare_tcp_secondary(c, conn, frame, &info);
	else
		compare_dgram_secondary(c, conn, frame, len, &info);
	conn_forget_if_empty(c, conn);
}

/* Requests a checkpoint when the oldest held frame has waited compare_timeout;
 * counts each frame that waited that long once. */
static void check_stale(struct colo_compare *c, uint64_t now_ms)
{
	uint64_t timeout = c->cfg.compare_timeout_ms;
	struct held_frame *f = c->all_head;

	if (!f || now_ms < f->arrival_ms || now_ms - f->arrival_ms < timeout)
		return;
	if (c->ckpt_requested && now_ms >= c->ckpt_requested_ms && now_ms - c->ckpt_requested_ms < timeout)
		return;
	for (; f && now_ms >= f->arrival_ms && now_ms - f->arrival_ms >= timeout; f = f->all_next) {
		if (f->stale_counted)
			continue;
		f->stale_counted = true;
		if (f->cls < COLO_CLASS_COUNT)
			c->stats.cls[f->cls].stale++;
	}
	request_checkpoint(c, COLO_CKPT_STALE);
}

/* Forgets connections that hold nothing and are closed (after a short linger)
 * or idle. The LRU list is in order of last activity, so the walk stops at
 * the first connection active within the linger time. */
static void sweep_connections(struct colo_compare *c, uint64_t now_ms)
{
	struct flow_entry *e = flow_table_oldest(&c->table);

	while (e) {
		struct colo_conn *conn = CONN_OF(e);
		uint64_t idle = now_ms >= conn->last_ms ? now_ms - conn->last_ms : 0;

		e = flow_table_newer(&c->table, e);
		if (idle < COLO_COMPARE_CLOSED_LINGER_MS)
			break;
		if (!conn_holds_nothing(conn))
			continue;
		if ((conn->cls == COLO_CLASS_TCP && compare_tcp_closed(conn)) ||
		    idle >= c->cfg.idle_timeout_ms)
			conn_remove(c, conn);
	}
}

void colo_compare_tick(struct colo_compare *c, uint64_t now_ms)
{
	c->now_ms = now_ms;
	if (c->failed_over)
		return;
	check_stale(c, now_ms);
	sweep_connections(c, now_ms);
}

static void release_all_uncompared(struct colo_compare *c)
{
	while (c->all_head)
		release_frame(c, c->all_head, false);
}

void colo_compare_checkpoint(struct colo_compare *c)
{
	struct flow_entry *e;

	c->stats.checkpoints_done++;
	c->ckpt_requested = false;
	release_all_uncompared(c);
	e = flow_table_oldest(&c->table);
	while (e) {
		struct colo_conn *conn = CONN_OF(e);

		e = flow_table_newer(&c->table, e);
		drop_secondary_queue(c, conn);
		conn->diverged = false;
		if (conn->cls == COLO_CLASS_TCP)
			compare_tcp_restart(c, conn);
		else
			conn_remove(c, conn);
	}
}

void colo_compare_flush(struct colo_compare *c)
{
	release_all_uncompared(c);
	remove_all_conns(c);
	c->ckpt_requested = false;
	c->failed_over = true;
}

void colo_compare_get_stats(const struct colo_compare *c, struct colo_compare_stats *s)
{
	*s = c->stats;
}

const char *colo_class_name(enum colo_class cls)
{
	static const char *const names[COLO_CLASS_COUNT] = { "tcp", "udp", "icmp", "other", "non-ip" };

	return (unsigned)cls < COLO_CLASS_COUNT ? names[cls] : "?";
}

const char *colo_checkpoint_reason_name(enum colo_checkpoint_reason reason)
{
	static const char *const names[COLO_CKPT_REASON_COUNT] = {
		"mismatch", "stale", "queue-full", "table-full", "unparseable",
	};

	return (unsigned)reason < COLO_CKPT_REASON_COUNT ? names[reason] : "?";
}
