/*
 * PVH boot ABI (the Xen "HVM direct boot" start-of-day structures that Linux,
 * QEMU and Firecracker use). Shared by the VMM and the test guest.
 * The guest is entered in 32-bit protected mode, paging off, EBX = the GPA of
 * struct hvm_start_info.
 */
#ifndef LOCKSTEP_ABI_PVH_H
#define LOCKSTEP_ABI_PVH_H

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
#define HVM_START_VERSION 1

#define HVM_MEMMAP_RAM 1
#define HVM_MEMMAP_RESERVED 2

#ifndef __ASSEMBLER__
#ifdef LOCKSTEP_GUEST
#include "types.h"
#else
#include <stdint.h>
#endif

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
#endif

#endif
