#include "vm/dirty.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/vm.h"

uint64_t dirty_bitmap_words(const struct vm *vm) { return (gmem_page_count(&vm->mem) + 63) / 64; }

uint64_t dirty_count(const uint64_t *bitmap, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bitmap[i]);
	return n;
}

/* KVM's log for one slot (get-and-clear), OR-ed into bitmap at the slot's page offset. */
static int dirty_harvest_slot(struct vm *vm, int slot, uint64_t *bitmap, uint64_t *added)
{
	const struct gmem_slot *s = &vm->mem.slots[slot];
	uint64_t pages = s->size / GMEM_PAGE_SIZE, first = s->offset / GMEM_PAGE_SIZE;
	uint64_t *log = calloc((pages + 63) / 64, sizeof(uint64_t));
	struct kvm_dirty_log req = { .slot = (uint32_t)slot, .dirty_bitmap = log };

	if (!log)
		return -ENOMEM;
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &req) < 0) {
		int err = -errno;

		free(log);
		return err;
	}
	/* Slots start on a 64-page boundary of the memfd (gmem_init), so words line up. */
	for (uint64_t w = 0; w < (pages + 63) / 64; w++) {
		uint64_t *dst = &bitmap[first / 64 + w];

		*added += (uint64_t)__builtin_popcountll(log[w] & ~*dst);
		*dst |= log[w];
	}
	free(log);
	return 0;
}

int64_t dirty_harvest(struct vm *vm, uint64_t *bitmap)
{
	uint64_t words = dirty_bitmap_words(vm), added = 0;

	for (int i = 0; i < vm->mem.nslots; i++) {
		int ret = dirty_harvest_slot(vm, i, bitmap, &added);

		if (ret < 0)
			return ret;
	}
	/* The VMM's own writes; an atomic exchange so a concurrent device write is
	 * either in this period or the next, never lost. */
	for (uint64_t w = 0; w < words; w++) {
		uint64_t v = __atomic_exchange_n(&vm->mem.vmm_dirty[w], 0, __ATOMIC_ACQ_REL);

		added += (uint64_t)__builtin_popcountll(v & ~bitmap[w]);
		bitmap[w] |= v;
	}
	return (int64_t)added;
}
