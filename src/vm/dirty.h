/*
 * Dirty-page tracking: KVM's dirty log (writes made by the vCPU) OR-ed with the
 * VMM's own bitmap (writes the VMM made into guest RAM: virtqueue rings,
 * received frames, disk reads). Missing the second half corrupts migrated guests.
 *
 * Bitmaps are indexed by page of the RAM memfd (gmem_page_index), one bit per
 * 4 KiB page, in 64-bit words.
 */
#ifndef LOCKSTEP_VM_DIRTY_H
#define LOCKSTEP_VM_DIRTY_H

#include <stdint.h>

struct vm;

/* Words needed for a bitmap of every RAM page. */
uint64_t dirty_bitmap_words(const struct vm *vm);
/*
 * Moves every page dirtied since the last call into *bitmap (OR) and starts a
 * new tracking period. Returns the number of pages newly set, or -errno.
 * Only one caller may harvest at a time.
 */
int64_t dirty_harvest(struct vm *vm, uint64_t *bitmap);
/* Pages set in a bitmap. */
uint64_t dirty_count(const uint64_t *bitmap, uint64_t words);

#endif
