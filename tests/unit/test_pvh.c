/* PVH boot structures: ELF validation, the PVH entry note, the memory map. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vm/memory.h"
#include "vm/mptable.h"
#include "vm/pvh.h"

#define RAM_END (64ULL << 20)

/* A minimal ELF: header, two program headers (LOAD, NOTE), the note, 64 bytes of code. */
struct test_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	Elf64_Nhdr nh;
	char name[4];
	uint32_t entry;
	uint8_t code[64];
};

static void build_elf(struct test_elf *e, int with_note)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_phoff = offsetof(struct test_elf, ph);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 2;
	e->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct test_elf, code),
				 .p_paddr = 0x100000, .p_filesz = 64, .p_memsz = 4096 };
	e->ph[1] = (Elf64_Phdr){ .p_type = with_note ? PT_NOTE : PT_NULL,
				 .p_offset = offsetof(struct test_elf, nh),
				 .p_filesz = sizeof(Elf64_Nhdr) + 8 };
	e->nh = (Elf64_Nhdr){ .n_namesz = 4, .n_descsz = 4, .n_type = XEN_ELFNOTE_PHYS32_ENTRY };
	memcpy(e->name, "Xen", 4);
	e->entry = 0x100020;
	memset(e->code, 0x90, sizeof(e->code));
}

static void test_parse_valid_pvh_elf(void **state)
{
	struct test_elf e;
	uint32_t entry = 0;
	const char *why = NULL;

	(void)state;
	build_elf(&e, 1);
	assert_int_equal(pvh_parse_elf((uint8_t *)&e, sizeof(e), RAM_END, &entry, &why), 0);
	assert_int_equal(entry, 0x100020);
}

static void test_parse_rejects_missing_note(void **state)
{
	struct test_elf e;
	uint32_t entry;
	const char *why = NULL;

	(void)state;
	build_elf(&e, 0);
	assert_int_equal(pvh_parse_elf((uint8_t *)&e, sizeof(e), RAM_END, &entry, &why), -ENOEXEC);
	assert_non_null(strstr(why, "PVH"));
}

static void test_parse_rejects_non_elf_and_32bit(void **state)
{
	struct test_elf e;
	uint32_t entry;
	const char *why = NULL;
	uint8_t junk[128] = "#!/bin/sh\n";

	(void)state;
	assert_int_equal(pvh_parse_elf(junk, sizeof(junk), RAM_END, &entry, &why), -ENOEXEC);
	assert_string_equal(why, "not an ELF file");
	build_elf(&e, 1);
	e.eh.e_ident[EI_CLASS] = ELFCLASS32;
	assert_int_equal(pvh_parse_elf((uint8_t *)&e, sizeof(e), RAM_END, &entry, &why), -ENOEXEC);
	assert_string_equal(why, "not a 64-bit x86 ELF");
}

static void test_parse_rejects_truncated_at_every_length(void **state)
{
	struct test_elf e;
	uint32_t entry;
	const char *why;

	(void)state;
	build_elf(&e, 1);
	/* Every cut before the end of the note or the code must be refused, never read past. */
	for (size_t len = 0; len < offsetof(struct test_elf, code) + 64; len++) {
		why = NULL;
		assert_int_equal(pvh_parse_elf((uint8_t *)&e, len, RAM_END, &entry, &why), -ENOEXEC);
		assert_non_null(why);
	}
}

static void test_parse_rejects_segment_outside_ram(void **state)
{
	struct test_elf e;
	uint32_t entry;
	const char *why = NULL;

	(void)state;
	build_elf(&e, 1);
	e.ph[0].p_paddr = RAM_END - 1024; /* memsz 4096 runs past the end */
	assert_int_equal(pvh_parse_elf((uint8_t *)&e, sizeof(e), RAM_END, &entry, &why), -ENOEXEC);
	build_elf(&e, 1);
	e.ph[0].p_paddr = 0x1000; /* would overwrite the boot structures */
	assert_int_equal(pvh_parse_elf((uint8_t *)&e, sizeof(e), RAM_END, &entry, &why), -ENOEXEC);
	build_elf(&e, 1);
	e.ph[0].p_filesz = 8192; /* more file bytes than memory */
	assert_int_equal(pvh_parse_elf((uint8_t *)&e, sizeof(e), RAM_END, &entry, &why), -ENOEXEC);
}

static void test_load_copies_and_zeroes_bss(void **state)
{
	struct test_elf e;
	struct gmem mem;
	struct pvh_kernel k;
	uint8_t *p;

	(void)state;
	assert_int_equal(gmem_init(&mem, RAM_END), 0);
	p = gmem_ptr(&mem, 0x100000, 4096);
	memset(p, 0xaa, 4096);
	build_elf(&e, 1);
	assert_int_equal(pvh_load_elf(&mem, (uint8_t *)&e, sizeof(e), &k), 0);
	assert_int_equal(p[0], 0x90);
	assert_int_equal(p[63], 0x90);
	assert_int_equal(p[64], 0);
	assert_int_equal(p[4095], 0);
	assert_int_equal(k.load_end, 0x101000);
	/* The VMM wrote guest memory: those pages are dirty in the VMM bitmap. */
	assert_true(mem.vmm_dirty[0x100000 / 4096 / 64] & (1ULL << ((0x100000 / 4096) % 64)));
	gmem_destroy(&mem);
}

static void test_memmap_small_guest(void **state)
{
	struct hvm_memmap_table_entry map[PVH_MEMMAP_MAX];
	struct gmem mem;
	int n;

	(void)state;
	assert_int_equal(gmem_init(&mem, 256ULL << 20), 0);
	n = pvh_build_memmap(&mem, map, PVH_MEMMAP_MAX);
	assert_int_equal(n, 3);
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].size, PVH_MPTABLE_GPA);
	assert_int_equal(map[0].type, HVM_MEMMAP_RAM);
	assert_int_equal(map[1].addr, PVH_MPTABLE_GPA);
	assert_int_equal(map[1].type, HVM_MEMMAP_RESERVED);
	assert_int_equal(map[2].addr, 0x100000);
	assert_int_equal(map[2].size, (256ULL << 20) - 0x100000);
	assert_int_equal(map[2].type, HVM_MEMMAP_RAM);
	gmem_destroy(&mem);
}

static void test_memmap_guest_above_4g(void **state)
{
	struct hvm_memmap_table_entry map[PVH_MEMMAP_MAX];
	struct gmem mem;
	uint64_t size = 4ULL << 30;
	int n;

	(void)state;
	assert_int_equal(gmem_init(&mem, size), 0);
	assert_int_equal(mem.nslots, 2);
	n = pvh_build_memmap(&mem, map, PVH_MEMMAP_MAX);
	assert_int_equal(n, 4);
	assert_int_equal(map[2].addr + map[2].size, GMEM_HOLE_START); /* nothing in the MMIO hole */
	assert_int_equal(map[3].addr, GMEM_HIGH_START);
	assert_int_equal(map[3].size, size - GMEM_HOLE_START);
	assert_int_equal(pvh_build_memmap(&mem, map, 2), -ENOSPC);
	gmem_destroy(&mem);
}

static uint8_t sum_bytes(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static void test_mptable_checksums_and_entries(void **state)
{
	struct gmem mem;
	const uint8_t *mpf, *mpc;
	uint32_t physptr;
	uint16_t len, count;

	(void)state;
	assert_int_equal(gmem_init(&mem, 16ULL << 20), 0);
	assert_int_equal(mptable_write(&mem, PVH_MPTABLE_GPA, 1024, 1), 0);
	mpf = gmem_ptr(&mem, PVH_MPTABLE_GPA, 16);
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(sum_bytes(mpf, 16), 0);
	memcpy(&physptr, mpf + 4, 4);
	mpc = gmem_ptr(&mem, physptr, 44);
	assert_memory_equal(mpc, "PCMP", 4);
	memcpy(&len, mpc + 4, 2);
	memcpy(&count, mpc + 34, 2);
	assert_int_equal(sum_bytes(gmem_ptr(&mem, physptr, len), len), 0);
	/* 1 cpu + 1 bus + 1 ioapic + 16 io interrupts + 2 local interrupts */
	assert_int_equal(count, 21);
	assert_int_equal(mpc[44], 0); /* first entry: processor */
	assert_int_equal(mpc[44 + 3], 3); /* enabled | bootstrap processor */
	assert_int_equal(mptable_write(&mem, PVH_MPTABLE_GPA, 64, 1), -ENOSPC);
	gmem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid_pvh_elf),
		cmocka_unit_test(test_parse_rejects_missing_note),
		cmocka_unit_test(test_parse_rejects_non_elf_and_32bit),
		cmocka_unit_test(test_parse_rejects_truncated_at_every_length),
		cmocka_unit_test(test_parse_rejects_segment_outside_ram),
		cmocka_unit_test(test_load_copies_and_zeroes_bss),
		cmocka_unit_test(test_memmap_small_guest),
		cmocka_unit_test(test_memmap_guest_above_4g),
		cmocka_unit_test(test_mptable_checksums_and_entries),
	};

	return cmocka_run_group_tests_name("pvh", tests, NULL, NULL);
}
