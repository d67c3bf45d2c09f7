/*
 * RAM section payload: a sequence of runs, each a u64 descriptor
 *   bits 0..39  first page (index into the RAM memfd, see gmem_page_index)
 *   bits 40..55 page count - 1
 *   bit  63     zero run (no data follows; the pages are all zero)
 * followed, for a data run, by count * 4096 bytes.
 */
#ifndef LOCKSTEP_STATE_VMSTATE_RAM_H
#define LOCKSTEP_STATE_VMSTATE_RAM_H

#include <stdint.h>

#include "vm/memory.h"

#define VMSTATE_RAM_RUN_MAX 65536ULL
#define VMSTATE_RAM_ZERO (1ULL << 63)
#define VMSTATE_RAM_PAGE_BITS 40
#define VMSTATE_RAM_RESERVED_MASK (0x7fULL << 56)

struct vmstate_ram_run {
	uint64_t first;
	uint64_t count;
	int zero;
};

static inline uint64_t vmstate_ram_desc(const struct vmstate_ram_run *r)
{
	return r->first | (r->count - 1) << VMSTATE_RAM_PAGE_BITS | (r->zero ? VMSTATE_RAM_ZERO : 0);
}

static inline struct vmstate_ram_run vmstate_ram_run_from(uint64_t desc)
{
	return (struct vmstate_ram_run){
		.first = desc & ((1ULL << VMSTATE_RAM_PAGE_BITS) - 1),
		.count = ((desc >> VMSTATE_RAM_PAGE_BITS) & 0xffff) + 1,
		.zero = (desc & VMSTATE_RAM_ZERO) != 0,
	};
}

static inline int vmstate_page_is_zero(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;

	for (int i = 0; i < 512; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return 0;
	return 1;
}

#endif
