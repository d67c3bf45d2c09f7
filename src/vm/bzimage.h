/*
 * Linux's x86 boot protocol for a bzImage (Documentation/arch/x86/boot.rst),
 * entered the 32-bit way, as kvmtool and Firecracker do: the setup code is not
 * run; the protected-mode kernel is loaded at 1 MiB, a zero page (boot_params)
 * carries the setup header, the memory map (e820), the command line and the
 * initrd, and the vCPU starts at the kernel in flat 32-bit mode with %esi
 * pointing at the zero page. This is how Debian's own vmlinuz boots.
 *
 * Guest-physical layout (low memory): 0x10000 the zero page, 0x20000 the
 * command line, 0x9fc00 the MP table, 0x100000 the kernel, the initrd at the
 * top of low RAM (below the kernel's initrd_addr_max).
 */
#ifndef LOCKSTEP_VM_BZIMAGE_H
#define LOCKSTEP_VM_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define BZ_BOOT_PARAMS_GPA 0x10000ULL
#define BZ_CMDLINE_GPA 0x20000ULL
#define BZ_KERNEL_GPA 0x100000ULL
#define BZ_ZERO_PAGE_SIZE 4096
#define BZ_E820_MAX 128
#define BZ_MIN_VERSION 0x020a /* 2.10: init_size and a relocatable kernel's fields */

/* What the setup header says (the file already checked). */
struct bzimage_info {
	uint16_t version;
	uint32_t pm_offset;       /* the protected-mode kernel's offset in the file */
	uint32_t pm_size;
	uint32_t hdr_end;         /* the setup header is bytes 0x1f1 .. hdr_end */
	uint32_t initrd_addr_max; /* highest address an initrd byte may have */
	uint32_t cmdline_size;    /* longest command line, without its NUL */
	uint32_t init_size;       /* bytes the kernel needs from its load address */
};

/* One e820 entry as the zero page holds it (20 bytes, packed). */
struct bz_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Where the loader put what the zero page points at. */
struct bz_layout {
	uint32_t cmdline_gpa;
	uint32_t initrd_gpa, initrd_size; /* 0, 0: none */
	int ne820;
	const struct bz_e820_entry *e820;
};

/* The file starts like a bzImage: a setup header with "HdrS". */
bool bzimage_detect(const uint8_t *image, size_t len);
/* -ENOEXEC with *why naming the problem: truncated, bad boot flag, a boot
 * protocol older than 2.10, not a bzImage (LOADED_HIGH clear). */
int bzimage_parse(const uint8_t *image, size_t len, struct bzimage_info *bi, const char **why);
/* The zero page for this kernel and layout (bp: BZ_ZERO_PAGE_SIZE bytes). */
void bzimage_fill_boot_params(uint8_t *bp, const uint8_t *image, const struct bzimage_info *bi,
			      const struct bz_layout *l);
/* Whole boot (path: for messages). Logs one clear line, returns -errno. */
int bzimage_boot(struct vm *vm, const char *path, const uint8_t *image, size_t len, const char *initrd_path,
		 const char *cmdline);

#endif
