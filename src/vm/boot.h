/*
 * Booting a guest kernel: the file decides the protocol. An ELF with a PVH
 * note boots by PVH (vm/pvh.c, our test guest); a Linux bzImage, such as
 * Debian's vmlinuz, by Linux's 32-bit boot protocol (vm/bzimage.c). The
 * helpers below are what both share.
 */
#ifndef LOCKSTEP_VM_BOOT_H
#define LOCKSTEP_VM_BOOT_H

#include <stddef.h>
#include <stdint.h>

struct gmem;
struct vm;

/* Loads kernel (+ initrd, + command line) and points the vCPU at it. Logs
 * one clear line and returns -errno on error (-ENOEXEC: neither format). */
int boot_kernel(struct vm *vm, const char *kernel_path, const char *initrd_path, const char *cmdline);

/* The end of RAM below 4 GiB's first slot (where initrds go). */
uint64_t boot_low_ram_end(const struct gmem *mem);
/* The file mapped read-only (munmap it); logs and returns -errno. */
int boot_map_file(const char *path, const char *what, uint8_t **data, size_t *len);
/* The initrd, page aligned, as high as it fits below `below` and above `above`. */
int boot_load_initrd(struct vm *vm, const char *path, uint64_t above, uint64_t below, uint64_t *gpa,
		     uint64_t *size);
/* cmdline plus the VMM's device entries, NUL-terminated, at gpa (at most max bytes). */
int boot_write_cmdline(struct vm *vm, const char *cmdline, uint64_t gpa, size_t max);

#endif
