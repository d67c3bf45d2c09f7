/*
 * The Linux boot protocol loader on hostile kernel files: bzimage_parse on
 * any bytes, and for what it accepts, the zero page it would write. Nothing
 * may be read outside the file or written outside the page, and an accepted
 * header must describe a kernel inside the file.
 *
 *   make fuzz && build/fuzz/fuzz_bzimage fuzz/corpus/bzimage
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vm/bzimage.h"

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct bz_e820_entry e820[2] = { { 0, 0x9fc00, 1 }, { 0x100000, 0x7f00000, 1 } };
	const struct bz_layout l = { .cmdline_gpa = 0x20000, .initrd_gpa = 0x7000000, .initrd_size = 4096,
				     .ne820 = 2, .e820 = e820 };
	static uint8_t bp[BZ_ZERO_PAGE_SIZE];
	struct bzimage_info bi;
	const char *why = NULL;

	if (bzimage_parse(data, size, &bi, &why) < 0) {
		check(why != NULL);
		return 0;
	}
	check(bzimage_detect(data, size));
	check(bi.pm_offset < size && bi.pm_offset + bi.pm_size == size);
	check(bi.hdr_end <= bi.pm_offset && bi.hdr_end <= BZ_ZERO_PAGE_SIZE);
	bzimage_fill_boot_params(bp, data, &bi, &l);
	check(bp[0x210] == 0xff && memcmp(bp + 0x202, "HdrS", 4) == 0);
	return 0;
}
