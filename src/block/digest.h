/*
 * A digest of a whole disk: XXH3-64 of its bytes, read through its backend.
 * For checks (x-check-disk: a COLO secondary's disk against the primary's),
 * not for integrity against an adversary.
 */
#ifndef LOCKSTEP_BLOCK_DIGEST_H
#define LOCKSTEP_BLOCK_DIGEST_H

#include <stdint.h>

#include "block/backend.h"

/* Reads be from start to end, so it competes with other I/O: call it with
 * the guest's I/O quiet. 0 or -errno (a read failed, no memory). */
int blk_backend_digest(struct blk_backend *be, uint64_t *digest);

#endif
