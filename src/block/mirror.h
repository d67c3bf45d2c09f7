/*
 * The primary's disk under replication: reads come from the local image;
 * while a replica is attached, every write goes to the local image and to the
 * replica (the replication forwarder), and completes when both have it, so an
 * acknowledged write survives the loss of either host (DRBD's protocol C).
 * Flush flushes both. The replica's errors never reach the guest: the
 * forwarder records them for the COLO engine, which ends replication.
 *
 * Today the two writes run one after the other: a write costs the local write
 * plus a round trip to the secondary. Running them side by side is the next
 * step for latency (docs/block-replication.md).
 */
#ifndef LOCKSTEP_BLOCK_MIRROR_H
#define LOCKSTEP_BLOCK_MIRROR_H

#include "block/backend.h"

/* A mirror owning local, with no replica yet (-ENOMEM; local is closed then). */
int blk_mirror_create(struct blk_backend *local, struct blk_backend **out);
/* Writes go to replica too from the next one on. The mirror only borrows it:
 * it must stay open until blk_mirror_detach_replica returns. -EINVAL if the
 * sizes differ, -EBUSY if one is attached. Any thread. */
int blk_mirror_attach_replica(struct blk_backend *mirror, struct blk_backend *replica);
/* Back to the local image only; returns once no write uses the replica. */
void blk_mirror_detach_replica(struct blk_backend *mirror);

#endif
