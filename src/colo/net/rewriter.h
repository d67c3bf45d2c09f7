/*
 * COLO TCP sequence rewriter (secondary side). The two guests pick different
 * initial sequence numbers, but the peers on the network only ever see the
 * primary's. Per connection the rewriter learns
 *     offset = secondary ISN - primary ISN
 * and translates:
 *   inbound  (network -> secondary guest): ACK number += offset, and the SACK
 *            blocks too (they acknowledge the guest's data, like the ACK);
 *   outbound (secondary guest -> comparator): SEQ number -= offset.
 * Checksums are updated incrementally. Offsets are learned for connections
 * opened from outside (client SYN, the guest's SYN-ACK gives its ISN, the
 * client's handshake ACK acknowledges the primary's ISN + 1) and for
 * connections the guest opens (the guest's SYN gives its ISN, the server's
 * SYN-ACK acknowledges the primary's ISN + 1; that SYN-ACK is itself
 * translated). IPv4 and IPv6, with or without VLAN tags; other traffic passes
 * unchanged. Pure logic: no I/O, no threads; calls serialised by the caller.
 */
#ifndef LOCKSTEP_COLO_NET_REWRITER_H
#define LOCKSTEP_COLO_NET_REWRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COLO_REWRITER_DEFAULT_CONNECTIONS 16384

struct colo_rewriter_stats {
	uint64_t inbound_frames, outbound_frames;
	uint64_t inbound_rewritten, outbound_rewritten; /* frames whose numbers changed */
	uint64_t sack_blocks_rewritten;
	uint64_t unparseable;        /* frames passed unchanged because they do not parse */
	uint64_t offsets_learned_passive, offsets_learned_active;
	uint64_t closed_fin, closed_rst; /* connections forgotten after their teardown */
	uint64_t evicted;            /* forgotten because the table was full (least recently used) */
	uint64_t connections, connections_max;
	bool failover;
};

struct colo_rewriter;

/* NULL on allocation failure. */
struct colo_rewriter *colo_rewriter_create(void);
/* With a connection table of max_connections entries (>= 1). */
struct colo_rewriter *colo_rewriter_create_limit(uint32_t max_connections);
void colo_rewriter_destroy(struct colo_rewriter *r);

/* Network -> secondary guest (the mirrored client traffic); rewritten in place. */
void colo_rewriter_inbound(struct colo_rewriter *r, uint8_t *frame, size_t len);
/* Secondary guest -> comparator (or, after failover, -> network); in place. */
void colo_rewriter_outbound(struct colo_rewriter *r, uint8_t *frame, size_t len);
/* The secondary has loaded a checkpoint: both guests share every sequence
 * space now, so all offsets are 0 and every connection is forgotten. */
void colo_rewriter_checkpoint(struct colo_rewriter *r);
/* The secondary took over: connections with a non-zero offset (or still
 * learning it) keep being translated until they close; new ones are not
 * tracked. */
void colo_rewriter_failover(struct colo_rewriter *r);
void colo_rewriter_get_stats(const struct colo_rewriter *r, struct colo_rewriter_stats *s);

#endif
