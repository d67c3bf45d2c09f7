/*
 * PVH direct boot: load an ELF that carries XEN_ELFNOTE_PHYS32_ENTRY, write
 * hvm_start_info, the memory map, the command line and the initrd (module 0),
 * and point the vCPU at the entry.
 *
 * Guest-physical layout (low memory):
 *   0x6000   hvm_start_info, 0x6040 module list
 *   0x7000   memory map
 *   0x9fc00  MP table (reserved up to 0xa0000)
 *   0x20000  command line (PVH_CMDLINE_MAX bytes)
 *   0x100000 and up: the kernel's PT_LOAD segments
 *   top of low RAM: the initrd, page aligned
 */
#ifndef LOCKSTEP_VM_PVH_H
#define LOCKSTEP_VM_PVH_H

#include <stddef.h>
#include <stdint.h>

#include "pvh_abi.h"

struct gmem;
struct vm;

#define PVH_START_INFO_GPA 0x6000ULL
#define PVH_MODLIST_GPA 0x6040ULL
#define PVH_MEMMAP_GPA 0x7000ULL
#define PVH_MEMMAP_MAX 8
#define PVH_CMDLINE_GPA 0x20000ULL
#define PVH_CMDLINE_MAX 4096
#define PVH_MPTABLE_GPA 0x9fc00ULL
#define PVH_LOW_RAM_END 0xa0000ULL
#define PVH_HIGH_RAM_START 0x100000ULL

struct pvh_kernel {
	uint32_t entry;    /* PHYS32_ENTRY */
	uint64_t load_end; /* highest byte loaded + 1 */
};

/* Fills entries from the RAM slots; returns the count or -ENOSPC. */
int pvh_build_memmap(const struct gmem *mem, struct hvm_memmap_table_entry *e, int max);

/*
 * Validates an ELF image and finds its PVH entry. -ENOEXEC with *why set when
 * it is not a 64-bit x86 ELF, has no PVH note, or has segments that do not fit.
 */
int pvh_parse_elf(const uint8_t *image, size_t len, uint64_t ram_low_end, uint32_t *entry,
		  const char **why);
/* Copies the PT_LOAD segments into guest RAM (image already validated). */
int pvh_load_elf(struct gmem *mem, const uint8_t *image, size_t len, struct pvh_kernel *k);

/*
 * Whole boot from a PVH ELF image (path: for messages; boot_kernel maps it), optional
 * initrd file, command line (the VMM's device entries are appended). Logs one
 * clear line and returns -errno on error.
 */
int pvh_boot(struct vm *vm, const char *path, const uint8_t *image, size_t len, const char *initrd_path,
	     const char *cmdline);

#endif
