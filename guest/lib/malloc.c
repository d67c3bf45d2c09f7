/*
 * malloc for the guest's network stack and services: power-of-two size
 * classes, each with a free list. Small blocks are carved from 256 KiB slabs,
 * big ones (over 64 KiB) get their own pages; freed blocks go back to their
 * class's list and are reused, never returned to the page allocator (which
 * cannot take pages back). Wastes up to half of each block; in exchange every
 * call is O(1), which matters on the packet path.
 *
 * Each block is preceded by a 16-byte header holding its class, so blocks are
 * 16-byte aligned and free() needs no size.
 */
#include "guest.h"

#define MIN_SHIFT 5   /* 32-byte blocks, header included */
#define SLAB_SHIFT 16 /* classes up to 64 KiB come from slabs */
#define MAX_SHIFT 40
#define SLAB_BYTES (256 * 1024)
#define HEADER_BYTES 16
#define PAGE_BYTES 4096
/* Pages left to other users of page_alloc (drivers set up later, if any). */
#define RESERVE_BYTES (1024 * 1024)

struct block_header {
	uint64_t shift; /* the block is 1 << shift bytes, header included */
	uint64_t pad;
};

struct free_block {
	struct block_header hdr;
	struct free_block *next;
};

static struct free_block *free_lists[MAX_SHIFT + 1];
static uint8_t *slab_next, *slab_end;
static uint64_t page_brk; /* end of the last pages we took: where the next ones start */

static unsigned size_shift(size_t bytes)
{
	unsigned shift = MIN_SHIFT;

	while (shift < MAX_SHIFT && ((size_t)1 << shift) < bytes)
		shift++;
	return shift;
}

/* Pages from page_alloc, or NULL when that would leave less than the reserve
 * (page_alloc itself panics when it runs out). */
static void *pages_get(size_t bytes)
{
	size_t npages = (bytes + PAGE_BYTES - 1) / PAGE_BYTES;
	uint8_t *p;

	if (!page_brk) /* learn where the page allocator stands (costs one page) */
		page_brk = (uint64_t)page_alloc(1) + PAGE_BYTES;
	if (npages * PAGE_BYTES + RESERVE_BYTES > ram_top() - page_brk)
		return NULL;
	p = page_alloc(npages);
	page_brk = (uint64_t)p + npages * PAGE_BYTES;
	return p;
}

static void *slab_carve(unsigned shift)
{
	size_t bytes = (size_t)1 << shift;
	void *p;

	if ((size_t)(slab_end - slab_next) < bytes) {
		slab_next = pages_get(SLAB_BYTES);
		if (!slab_next) {
			slab_end = NULL;
			return NULL;
		}
		slab_end = slab_next + SLAB_BYTES;
	}
	p = slab_next;
	slab_next += bytes;
	return p;
}

void *malloc(size_t size)
{
	unsigned shift;
	struct block_header *h;

	if (size > ((size_t)1 << MAX_SHIFT) - HEADER_BYTES)
		return NULL;
	shift = size_shift(size + HEADER_BYTES);
	if (free_lists[shift]) {
		struct free_block *f = free_lists[shift];

		free_lists[shift] = f->next;
		h = &f->hdr;
	} else {
		h = shift <= SLAB_SHIFT ? slab_carve(shift) : pages_get((size_t)1 << shift);
		if (!h)
			return NULL;
	}
	h->shift = shift;
	return (uint8_t *)h + HEADER_BYTES;
}

void free(void *p)
{
	struct free_block *f;

	if (!p)
		return;
	f = (struct free_block *)((uint8_t *)p - HEADER_BYTES);
	if (f->hdr.shift < MIN_SHIFT || f->hdr.shift > MAX_SHIFT)
		panic("free: %p is not a malloc block", p);
	f->next = free_lists[f->hdr.shift];
	free_lists[f->hdr.shift] = f;
}

void *calloc(size_t count, size_t size)
{
	void *p;

	if (size && count > ~(size_t)0 / size)
		return NULL;
	p = malloc(count * size);
	if (p)
		memset(p, 0, count * size);
	return p;
}

void *realloc(void *p, size_t size)
{
	struct block_header *h;
	size_t room;
	void *q;

	if (!p)
		return malloc(size);
	h = (struct block_header *)((uint8_t *)p - HEADER_BYTES);
	room = ((size_t)1 << h->shift) - HEADER_BYTES;
	if (size <= room)
		return p;
	q = malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, room);
	free(p);
	return q;
}
