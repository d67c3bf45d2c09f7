/*
 * Guest RAM: one memfd, mapped once in the VMM, registered with KVM as one or two
 * slots (below the 32-bit MMIO hole, and above 4 GiB for the rest).
 *
 * Every VMM access to guest RAM goes through gmem_*: the whole [gpa, gpa+len)
 * range is checked against one slot before a host pointer is handed out, and
 * every VMM write marks the VMM-side dirty bitmap (KVM's dirty log only sees
 * writes made by the vCPU).
 */
#ifndef LOCKSTEP_VM_MEMORY_H
#define LOCKSTEP_VM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define GMEM_PAGE_SIZE 4096ULL
#define GMEM_HOLE_START 0xc0000000ULL /* 32-bit MMIO hole: virtio-mmio, IOAPIC, LAPIC */
#define GMEM_HIGH_START 0x100000000ULL
#define GMEM_MAX_SLOTS 2

struct gmem_slot {
	uint64_t gpa;    /* guest-physical start */
	uint64_t size;   /* bytes, multiple of the page size */
	uint8_t *hva;    /* host mapping of this slot */
	uint64_t offset; /* offset of this slot inside the memfd */
};

struct gmem {
	int memfd;
	uint8_t *base; /* whole memfd mapping */
	uint64_t size; /* total RAM bytes */
	int nslots;
	struct gmem_slot slots[GMEM_MAX_SLOTS];
	uint64_t *vmm_dirty; /* one bit per page of the memfd, set by VMM writes */
};

/* Creates the memfd and mapping and splits it into slots. size: bytes, page multiple. */
int gmem_init(struct gmem *m, uint64_t size);
void gmem_destroy(struct gmem *m);

/* Host pointer for [gpa, gpa+len) if the whole range is RAM in one slot, else NULL. */
void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);
/* Same, for a range the VMM is about to write: marks its pages dirty. */
void *gmem_ptr_for_write(struct gmem *m, uint64_t gpa, uint64_t len);

int gmem_read(const struct gmem *m, uint64_t gpa, void *dst, uint64_t len);
int gmem_write(struct gmem *m, uint64_t gpa, const void *src, uint64_t len);

/* Marks the pages of [gpa, gpa+len) dirty in the VMM bitmap (no range check needed). */
void gmem_mark_dirty(struct gmem *m, uint64_t gpa, uint64_t len);
/* Page index of gpa inside the memfd (for dirty bitmaps), or -1 if not RAM. */
int64_t gmem_page_index(const struct gmem *m, uint64_t gpa);
uint64_t gmem_page_count(const struct gmem *m);
/* Host address of page `page` of the memfd (for whole-RAM walks), or NULL past the end. */
void *gmem_page_hva(const struct gmem *m, uint64_t page);
/*
 * Pages never written are holes in the memfd and read as zero, without
 * memory behind them; whole-RAM walks skip them instead of reading (which
 * would allocate them). First data page at or after `page` / first hole page
 * at or after `page`; the page count when there is none.
 */
uint64_t gmem_next_data(const struct gmem *m, uint64_t page);
uint64_t gmem_next_hole(const struct gmem *m, uint64_t page);
/* Makes pages [page, page+count) zero by freeing them (they become holes). */
int gmem_discard(struct gmem *m, uint64_t page, uint64_t count);
/* Allocates memory behind pages [page, page+count) now, so that writing them
 * later cannot fail (-ENOSPC/-ENOMEM here instead of SIGBUS there). */
int gmem_reserve(struct gmem *m, uint64_t page, uint64_t count);

#endif
