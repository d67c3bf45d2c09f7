/*
 * Memory backend: a disk whose bytes live in a zeroed heap buffer, gone when
 * the backend is closed. For tests and fuzz targets that need a real
 * struct blk_backend without files, and for scratch disks.
 */
#ifndef LOCKSTEP_BLOCK_MEM_H
#define LOCKSTEP_BLOCK_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "block/backend.h"

/* A size-byte zeroed disk the caller owns (blk_backend_close); -ENOMEM. */
int blk_mem_create(uint64_t size, bool readonly, struct blk_backend **out);

/* The disk's bytes (size of them), for a test to fill or check directly. */
uint8_t *blk_mem_data(struct blk_backend *be);

#endif
