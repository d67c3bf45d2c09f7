#include "vm/pvh.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "vm/boot.h"
#include "vm/mptable.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

int pvh_build_memmap(const struct gmem *mem, struct hvm_memmap_table_entry *e, int max)
{
	int n = 0;

#define PVH_ADD(a, s, t)                                                                   \
	do {                                                                               \
		if (n == max)                                                              \
			return -ENOSPC;                                                    \
		e[n++] = (struct hvm_memmap_table_entry){ .addr = (a), .size = (s), .type = (t) }; \
	} while (0)

	PVH_ADD(0, PVH_MPTABLE_GPA, HVM_MEMMAP_RAM);
	PVH_ADD(PVH_MPTABLE_GPA, PVH_LOW_RAM_END - PVH_MPTABLE_GPA, HVM_MEMMAP_RESERVED);
	for (int i = 0; i < mem->nslots; i++) {
		const struct gmem_slot *s = &mem->slots[i];
		uint64_t start = s->gpa < PVH_HIGH_RAM_START ? PVH_HIGH_RAM_START : s->gpa;

		if (s->gpa + s->size > start)
			PVH_ADD(start, s->gpa + s->size - start, HVM_MEMMAP_RAM);
	}
#undef PVH_ADD
	return n;
}

static int pvh_note_entry(const uint8_t *image, size_t len, const Elf64_Phdr *ph,
			  uint32_t *entry)
{
	uint64_t off = ph->p_offset, end;

	if (off > len || ph->p_filesz > len - off)
		return -ENOEXEC;
	end = off + ph->p_filesz;
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, next;

		memcpy(&nh, image + off, sizeof(nh));
		name_off = off + sizeof(nh);
		desc_off = name_off + ((nh.n_namesz + 3ULL) & ~3ULL);
		next = desc_off + ((nh.n_descsz + 3ULL) & ~3ULL);
		if (next > end)
			return -ENOEXEC;
		if (nh.n_namesz == 4 && memcmp(image + name_off, "Xen", 4) == 0 &&
		    nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_descsz >= 4) {
			uint32_t e;

			memcpy(&e, image + desc_off, 4);
			*entry = e;
			return 0;
		}
		off = next;
	}
	return -ENOENT;
}

static const Elf64_Phdr *pvh_phdr(const uint8_t *image, const Elf64_Ehdr *eh, int i)
{
	return (const Elf64_Phdr *)(image + eh->e_phoff + (uint64_t)i * eh->e_phentsize);
}

static int pvh_check_header(const uint8_t *image, size_t len, const char **why)
{
	const Elf64_Ehdr *eh = (const void *)image;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
		*why = "not an ELF file";
		return -ENOEXEC;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		*why = "not a 64-bit x86 ELF";
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phoff > len ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff) {
		*why = "bad ELF program headers";
		return -ENOEXEC;
	}
	return 0;
}

static int pvh_find_entry(const uint8_t *image, size_t len, uint32_t *entry)
{
	const Elf64_Ehdr *eh = (const void *)image;

	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = pvh_phdr(image, eh, i);

		if (ph->p_type == PT_NOTE && pvh_note_entry(image, len, ph, entry) == 0)
			return 0;
	}
	return -ENOEXEC;
}

static int pvh_check_segments(const uint8_t *image, size_t len, uint64_t ram_low_end)
{
	const Elf64_Ehdr *eh = (const void *)image;

	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = pvh_phdr(image, eh, i);

		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset ||
		    ph->p_filesz > ph->p_memsz || ph->p_paddr < PVH_HIGH_RAM_START ||
		    ph->p_paddr > ram_low_end || ph->p_memsz > ram_low_end - ph->p_paddr)
			return -ENOEXEC;
	}
	return 0;
}

int pvh_parse_elf(const uint8_t *image, size_t len, uint64_t ram_low_end, uint32_t *entry,
		  const char **why)
{
	int ret = pvh_check_header(image, len, why);

	if (ret < 0)
		return ret;
	if (pvh_find_entry(image, len, entry) < 0) {
		*why = "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): not a PVH kernel";
		return -ENOEXEC;
	}
	if (pvh_check_segments(image, len, ram_low_end) < 0) {
		*why = "an ELF segment does not fit in guest RAM";
		return -ENOEXEC;
	}
	return 0;
}

int pvh_load_elf(struct gmem *mem, const uint8_t *image, size_t len, struct pvh_kernel *k)
{
	const Elf64_Ehdr *eh = (const void *)image;

	(void)len;
	k->load_end = 0;
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = pvh_phdr(image, eh, i);
		uint8_t *dst;

		if (ph->p_type != PT_LOAD)
			continue;
		dst = gmem_ptr_for_write(mem, ph->p_paddr, ph->p_memsz);
		if (!dst)
			return -EFAULT;
		memcpy(dst, image + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		if (ph->p_paddr + ph->p_memsz > k->load_end)
			k->load_end = ph->p_paddr + ph->p_memsz;
	}
	return 0;
}

/* Maps a whole file read-only; *len = its size. */
static uint64_t pvh_low_ram_end(const struct gmem *mem) { return boot_low_ram_end(mem); }

static int pvh_write_start_info(struct vm *vm, int have_initrd,
				const struct hvm_modlist_entry *mod)
{
	struct hvm_memmap_table_entry map[PVH_MEMMAP_MAX];
	int n = pvh_build_memmap(&vm->mem, map, PVH_MEMMAP_MAX);
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = HVM_START_VERSION,
		.nr_modules = have_initrd ? 1 : 0,
		.modlist_paddr = have_initrd ? PVH_MODLIST_GPA : 0,
		.cmdline_paddr = PVH_CMDLINE_GPA,
		.memmap_paddr = PVH_MEMMAP_GPA,
	};

	if (n < 0)
		return n;
	si.memmap_entries = (uint32_t)n;
	if (have_initrd)
		gmem_write(&vm->mem, PVH_MODLIST_GPA, mod, sizeof(*mod));
	gmem_write(&vm->mem, PVH_MEMMAP_GPA, map, sizeof(map[0]) * (size_t)n);
	return gmem_write(&vm->mem, PVH_START_INFO_GPA, &si, sizeof(si));
}

int pvh_boot(struct vm *vm, const char *path, const uint8_t *image, size_t len, const char *initrd_path,
	     const char *cmdline)
{
	struct hvm_modlist_entry mod = { 0 };
	const char *why = NULL;
	struct pvh_kernel k;
	uint64_t gpa, size;
	int ret;

	if (pvh_low_ram_end(&vm->mem) < 2 * PVH_HIGH_RAM_START) {
		log_error("guest memory too small for PVH boot (need at least 2 MiB)");
		return -EINVAL;
	}
	if ((ret = pvh_parse_elf(image, len, pvh_low_ram_end(&vm->mem), &k.entry, &why)) < 0) {
		log_error("kernel %s: %s", path, why);
		return ret;
	}
	ret = pvh_load_elf(&vm->mem, image, len, &k);
	if (ret == 0 && initrd_path) {
		ret = boot_load_initrd(vm, initrd_path, k.load_end, pvh_low_ram_end(&vm->mem), &gpa, &size);
		mod = (struct hvm_modlist_entry){ .paddr = gpa, .size = size };
	}
	if (ret == 0)
		ret = boot_write_cmdline(vm, cmdline, PVH_CMDLINE_GPA, PVH_CMDLINE_MAX);
	if (ret == 0)
		ret = pvh_write_start_info(vm, initrd_path != NULL, &mod);
	if (ret < 0)
		return ret;
	ret = mptable_write(&vm->mem, PVH_MPTABLE_GPA, PVH_LOW_RAM_END - PVH_MPTABLE_GPA, 1);
	if (ret == 0)
		ret = vcpu_set_pvh_boot_state(vm->vcpu, k.entry, PVH_START_INFO_GPA);
	if (ret < 0)
		log_error("PVH boot setup: %s", strerror(-ret));
	return ret;
}
