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

/* A mirror owning both (also when it fails: -ENOMEM, -EINVAL if their sizes differ). */
int blk_mirror_create(struct blk_backend *local, struct blk_backend *replica,
		      struct blk_backend **out);
/* Replication starts (attach: writes go to both from the next one on) or has
 * ended (detach: the local image only). The replica stays open until the
 * mirror is closed (its owner may still ask it why replication ended). A
 * mirror starts detached. Any thread; a write under way finishes as it began. */
void blk_mirror_attach_replica(struct blk_backend *mirror);
void blk_mirror_detach_replica(struct blk_backend *mirror);

#endif
