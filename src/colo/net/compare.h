/*
 * COLO comparator (primary side): holds each frame the primary guest sends
 * until the secondary guest has sent the same thing, then releases it; asks
 * for a checkpoint when the two differ or a frame waits too long.
 *
 * TCP is compared as a byte stream per connection (segmentation may differ
 * between the guests); UDP, ICMP/ICMPv6 and other IP protocols datagram by
 * datagram, FIFO per flow, from the transport header on; non-IP frames whole.
 * IPv4 and IPv6, with or without VLAN tags. The rules are in
 * docs/colo-network.md.
 *
 * Pure logic: no I/O, no threads, no clock (time comes in as now_ms). Calls
 * must be serialised by the caller, and the callbacks must not call back into
 * the comparator.
 */
#ifndef LOCKSTEP_COLO_NET_COMPARE_H
#define LOCKSTEP_COLO_NET_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#define COLO_COMPARE_DEFAULT_TIMEOUT_MS 3000
#define COLO_COMPARE_DEFAULT_QUEUE 1024
#define COLO_COMPARE_DEFAULT_CONNECTIONS 16384
#define COLO_COMPARE_DEFAULT_IDLE_MS 120000
/* A connection both guests have closed is forgotten after this long without
 * traffic (so the last ACKs and retransmitted FINs still find it). */
#define COLO_COMPARE_CLOSED_LINGER_MS 1000

/* Zero fields take the defaults above. */
struct colo_compare_config {
	uint32_t compare_timeout_ms; /* a primary frame held longer requests a checkpoint */
	uint32_t max_queue_size;     /* frames held per connection and side */
	uint32_t max_connections;    /* connection table size */
	uint32_t idle_timeout_ms;    /* a connection holding nothing is forgotten after this */
};

enum colo_checkpoint_reason {
	COLO_CKPT_MISMATCH,
	COLO_CKPT_STALE,
	COLO_CKPT_QUEUE_FULL,
	COLO_CKPT_TABLE_FULL,
	COLO_CKPT_UNPARSEABLE, /* a primary frame that cannot be compared */
	COLO_CKPT_REASON_COUNT
};

enum colo_class {
	COLO_CLASS_TCP,
	COLO_CLASS_UDP,
	COLO_CLASS_ICMP,  /* ICMP and ICMPv6 */
	COLO_CLASS_OTHER, /* other IP protocols, IP fragments */
	COLO_CLASS_NONIP,
	COLO_CLASS_COUNT
};

struct colo_compare_ops {
	/* A released primary frame; the buffer is only valid during the call. */
	void (*output)(void *opaque, const uint8_t *frame, size_t len);
	/* A checkpoint is needed; answered by colo_compare_checkpoint(). */
	void (*checkpoint)(void *opaque, enum colo_checkpoint_reason reason);
	/* Optional: a mismatching pair, for the diagnosis file. One of the two
	 * may be NULL (no counterpart, e.g. a secondary FIN where the primary
	 * sent data). For TCP the secondary frame is the primary's frame with
	 * the secondary's bytes for the same range (its segmentation differs).
	 * A difference between two of the secondary's own out-of-order segments
	 * has no frame to show and is only counted. */
	void (*mismatch)(void *opaque, const uint8_t *primary, size_t plen,
			 const uint8_t *secondary, size_t slen);
};

struct colo_compare_class_stats {
	uint64_t primary_frames;    /* received from the primary */
	uint64_t secondary_frames;  /* received from the secondary */
	uint64_t matched;           /* primary frames released by comparison */
	uint64_t mismatched;        /* differences found */
	uint64_t stale;             /* primary frames found older than compare_timeout */
	uint64_t released_uncompared; /* primary frames released by a checkpoint or flush */
	uint64_t secondary_dropped; /* secondary frames not kept (queue or table full, diverged) */
};

struct colo_compare_stats {
	struct colo_compare_class_stats cls[COLO_CLASS_COUNT];
	uint64_t unparseable_primary, unparseable_secondary;
	uint64_t checkpoints_requested[COLO_CKPT_REASON_COUNT];
	uint64_t checkpoints_done;
	uint64_t primary_held_frames, primary_held_bytes;
	uint64_t primary_held_frames_max, primary_held_bytes_max;
	uint64_t secondary_held_frames, secondary_held_bytes;
	uint64_t secondary_held_frames_max, secondary_held_bytes_max;
	uint64_t connections, connections_max, connections_evicted;
};

struct colo_compare;

/* NULL on allocation failure or if ops->output / ops->checkpoint is missing. */
struct colo_compare *colo_compare_create(const struct colo_compare_config *cfg,
					 const struct colo_compare_ops *ops, void *opaque);
/* Frees everything; held frames are dropped, not released. */
void colo_compare_destroy(struct colo_compare *c);

/* A frame the primary guest sent (copied if it has to be held). */
void colo_compare_primary(struct colo_compare *c, const uint8_t *frame, size_t len, uint64_t now_ms);
/* A frame the secondary guest sent, after the rewriter. */
void colo_compare_secondary(struct colo_compare *c, const uint8_t *frame, size_t len,
			    uint64_t now_ms);
/* Periodic: stale-frame detection and forgetting of closed/idle connections. */
void colo_compare_tick(struct colo_compare *c, uint64_t now_ms);
/*
 * The secondary has loaded a checkpoint: every held primary frame is released
 * (in arrival order), all secondary data is dropped, and every TCP stream
 * restarts from the primary's position. Call it only once the secondary's
 * frames sent before it loaded the checkpoint have all been passed in (or
 * thrown away), as they belong to the state before.
 */
void colo_compare_checkpoint(struct colo_compare *c);
/* Failover (no secondary any more): releases everything held; from then on
 * primary frames are released at once and secondary frames dropped. */
void colo_compare_flush(struct colo_compare *c);
void colo_compare_get_stats(const struct colo_compare *c, struct colo_compare_stats *s);

const char *colo_class_name(enum colo_class cls);
const char *colo_checkpoint_reason_name(enum colo_checkpoint_reason reason);

#endif
