/*
 * An overlay: sectors written on top of a disk without touching it, as the
 * COLO secondary's active and hidden overlays (block/replication.c) need.
 *
 * Format: a sparse file as long as the disk, each sector at its own offset,
 * plus an allocation map in memory, one bit per 512-byte sector ("present":
 * the overlay holds this sector, else whatever is below it shows through).
 * - Sector granularity, because guests and the replication link write whole
 *   sectors: a write is always whole map units, so it never has to read the
 *   layer below to fill the rest of a larger block (no read-modify-write).
 *   The map costs 256 KiB per GiB of disk.
 * - The map lives only in memory: an overlay only means something while this
 *   process runs (it holds the secondary's changes since the last
 *   checkpoint), and a secondary that restarts has lost its VM and must be
 *   resynchronised from the primary anyway, so nothing needs to survive.
 * - Emptying (every checkpoint) clears the map and punches the file's holes,
 *   so the file only takes space for what was written since.
 *
 * Offsets and lengths are bytes and must be multiples of OVERLAY_SECTOR
 * (-EINVAL otherwise); a range past the end is -EIO. Not thread-safe: the
 * owner serialises the calls.
 */
#ifndef LOCKSTEP_BLOCK_OVERLAY_H
#define LOCKSTEP_BLOCK_OVERLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define OVERLAY_SECTOR 512u

struct overlay;

/* A new, empty overlay of `size` bytes in an unnamed file in directory
 * `dir` (gone when closed, or when the process dies). */
int overlay_create(const char *dir, uint64_t size, struct overlay **out);
/* An existing file at `path` as an empty overlay as long as the file (its
 * old content is punched out; the file stays when closed). */
int overlay_open(const char *path, struct overlay **out);
void overlay_close(struct overlay *o); /* NULL is fine */

uint64_t overlay_size(const struct overlay *o);

/* The file's bytes, present or not (a sector never written reads as zero). */
int overlay_preadv(struct overlay *o, struct iovec *iov, int iovcnt, uint64_t offset);
/* Writes and marks the sectors present (only once the write succeeded).
 * iov may be consumed. */
int overlay_pwritev(struct overlay *o, struct iovec *iov, int iovcnt, uint64_t offset);

/* The run at `offset`: how many bytes from there (at most `len`, at least one
 * sector) are all present or all absent, and which (*present). Walking a range
 * run by run tells which sectors of [a, b) the overlay holds. The arguments
 * must be aligned and in range (it asserts). */
uint64_t overlay_run(const struct overlay *o, uint64_t offset, uint64_t len, bool *present);

/* Nothing present any more, and the file's space given back. The map is
 * cleared even if giving the space back fails (-errno then). */
int overlay_make_empty(struct overlay *o);

#endif
