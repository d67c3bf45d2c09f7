/*
 * Comparator internals shared by colo_compare.c (table, queues, checkpoints,
 * statistics), colo_compare_tcp.c (byte-stream comparison) and
 * colo_compare_dgram.c (datagram and whole-frame comparison).
 */
#ifndef LOCKSTEP_COLO_NET_COMPARE_INTERNAL_H
#define LOCKSTEP_COLO_NET_COMPARE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "colo/net/compare.h"
#include "colo/net/stream.h"
#include "net/flow_table.h"
#include "net/packet.h"

enum tcp_seg_kind {
	SEG_SYN,      /* SYN or SYN-ACK */
	SEG_RST,
	SEG_DATA,     /* payload and/or FIN */
	SEG_PURE_ACK, /* nothing but an acknowledgment (or a window update) */
};

/* What the TCP comparison needs of a segment, taken once at arrival. */
struct tcp_seg {
	uint32_t seq, ack;
	uint32_t payload_off, len;
	uint8_t flags;
	uint8_t kind;
	bool retrans; /* entirely inside the verified range when it arrived */
	bool blocks;  /* later data must not overtake it while it is held */
};

/* A SYN's comparable signature: flags, MSS, and the payload (Fast Open). */
struct syn_sig {
	uint8_t flags;
	uint16_t mss;
	uint32_t len;
	uint64_t hash;
};

/* A held frame: a primary frame waiting for release, or (non-TCP) a
 * secondary frame waiting for its primary twin. */
struct held_frame {
	struct held_frame *prev, *next;         /* in its connection's queue */
	struct held_frame *all_prev, *all_next; /* primary: every held frame, arrival order */
	struct colo_conn *conn;                 /* NULL: cannot be compared */
	uint64_t arrival_ms;
	uint32_t len;
	uint8_t cls;
	bool pooled;
	bool stale_counted;
	union {
		struct tcp_seg tcp;
		struct {
			uint32_t off, len; /* the compared bytes */
			uint32_t frag;     /* fragment offset << 1 | MF */
		} dgram;
	};
	uint8_t data[];
};

struct frame_queue {
	struct held_frame *head, *tail;
	uint32_t count;
};

struct tcp_conn_state {
	uint32_t blocking_held;   /* held primary frames with tcp.blocks */
	/* incarnations (SYN exchanges with a new ISN) each side has started: the
	 * secondary's state only counts for the primary's incarnation */
	uint32_t p_gen, s_gen;
	/* what the primary has sent (the position a checkpoint restarts from) */
	bool p_seen, p_ack_seen, p_syn_seen, p_fin_seen, p_rst_seen;
	uint32_t p_nxt, p_ack_max, p_isn, p_fin_seq;
	struct syn_sig p_syn;
	/* what the secondary has sent */
	bool s_syn_seen, s_ack_seen, s_fin_seen, s_rst_seen;
	uint32_t s_isn, s_ack_max, s_fin_seq;
	struct syn_sig s_syn;
	/* verified by comparison */
	bool fin_verified, rst_verified;
	/* The position was guessed (first segment seen mid-stream, or where the
	 * primary had got to at a checkpoint), not proven by verified bytes: a
	 * keepalive (one below the real position) may have set it. */
	bool base_soft;
	struct colo_stream stream; /* the secondary's bytes from the verified position on */
};

struct colo_conn {
	struct flow_entry fe;
	uint8_t cls;
	bool diverged;       /* a difference was found: hold everything until the checkpoint */
	uint64_t last_ms;
	struct frame_queue primary;
	struct frame_queue secondary; /* non-TCP only */
	struct tcp_conn_state tcp;
};

struct frame_pool {
	struct held_frame *free;
	uint32_t count;
};

struct colo_compare {
	struct colo_compare_config cfg;
	struct colo_compare_ops ops;
	void *opaque;
	struct flow_table table;
	struct held_frame *all_head, *all_tail; /* held primary frames, arrival order */
	struct frame_pool pool;
	struct colo_conn *spare_conns; /* freed records kept for reuse (linked by fe.chain) */
	uint32_t n_spare_conns;
	bool ckpt_requested;
	uint64_t ckpt_requested_ms;
	bool failed_over;
	uint64_t now_ms;
	struct colo_compare_stats stats;
};

/* colo_compare.c */
struct held_frame *frame_alloc(struct colo_compare *c, const uint8_t *frame, size_t len);
void frame_free(struct colo_compare *c, struct held_frame *f);
void queue_append(struct frame_queue *q, struct held_frame *f);
void queue_remove(struct frame_queue *q, struct held_frame *f);
/* Holds a primary frame: copies it into its connection's queue (and the
 * arrival list); NULL if memory ran out (the frame is then released). */
struct held_frame *hold_primary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
				size_t len, uint8_t cls);
/* Sends a held primary frame out and frees it. */
void release_held(struct colo_compare *c, struct held_frame *f);
void output_frame(struct colo_compare *c, const uint8_t *frame, size_t len);
void request_checkpoint(struct colo_compare *c, enum colo_checkpoint_reason reason);
void report_mismatch(struct colo_compare *c, struct colo_conn *conn, const uint8_t *p, size_t plen,
		     const uint8_t *s, size_t slen);
void note_secondary_held(struct colo_compare *c, int64_t frames, int64_t bytes);
bool conn_holds_nothing(const struct colo_conn *conn);

/* colo_compare_tcp.c */
void compare_tcp_primary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			 const struct pkt_info *info);
void compare_tcp_secondary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			   const struct pkt_info *info);
/* After a checkpoint: restart the comparison from the primary's position. */
void compare_tcp_restart(struct colo_compare *c, struct colo_conn *conn);
bool compare_tcp_closed(const struct colo_conn *conn);

/* colo_compare_dgram.c */
void compare_dgram_primary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			   size_t len, const struct pkt_info *info);
void compare_dgram_secondary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			     size_t len, const struct pkt_info *info);

#endif
