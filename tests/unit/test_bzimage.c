/*
 * The Linux boot protocol loader's pure parts: which files are bzImages, what
 * their setup header says, and the zero page written for them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vm/bzimage.h"

#define IMAGE_LEN (6 * 512 + 8192)

static uint8_t image[IMAGE_LEN];

static void put16(size_t off, uint16_t v)
{
	image[off] = (uint8_t)v;
	image[off + 1] = (uint8_t)(v >> 8);
}

static void put32(size_t off, uint32_t v)
{
	put16(off, (uint16_t)v);
	put16(off + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	return p[off] | p[off + 1] << 8 | p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
}

/* A bzImage as Debian's kernel lays it out: 5 setup sectors, protocol 2.15. */
static void make_image(void)
{
	memset(image, 0, sizeof(image));
	image[0x1f1] = 5;
	put16(0x1fe, 0xaa55);
	image[0x200] = 0xeb;
	image[0x201] = 0x6a;
	memcpy(image + 0x202, "HdrS", 4);
	put16(0x206, 0x020f);
	image[0x211] = 0x01 | 0x40; /* LOADED_HIGH, KEEP_SEGMENTS (must be cleared) */
	put32(0x22c, 0x7fffffff);
	put32(0x238, 2047);
	put32(0x260, 0x2000000);
	memset(image + 6 * 512, 0x90, 8192);
}

static void expect_refused(const char *needle)
{
	struct bzimage_info bi;
	const char *why = NULL;

	assert_int_equal(bzimage_parse(image, sizeof(image), &bi, &why), -ENOEXEC);
	assert_non_null(why);
	if (!strstr(why, needle))
		fail_msg("'%s' does not say '%s'", why, needle);
}

static void test_header_fields(void **state)
{
	struct bzimage_info bi;
	const char *why = NULL;

	(void)state;
	make_image();
	assert_true(bzimage_detect(image, sizeof(image)));
	assert_int_equal(bzimage_parse(image, sizeof(image), &bi, &why), 0);
	assert_int_equal(bi.version, 0x020f);
	assert_int_equal(bi.pm_offset, 6 * 512);
	assert_int_equal(bi.pm_size, 8192);
	assert_int_equal(bi.hdr_end, 0x26c);
	assert_int_equal(bi.initrd_addr_max, 0x7fffffff);
	assert_int_equal(bi.cmdline_size, 2047);
	assert_int_equal(bi.init_size, 0x2000000);
	image[0x1f1] = 0; /* 0 setup sectors means 4 */
	assert_int_equal(bzimage_parse(image, sizeof(image), &bi, &why), 0);
	assert_int_equal(bi.pm_offset, 5 * 512);
}

static void test_bad_headers_are_named(void **state)
{
	(void)state;
	make_image();
	assert_false(bzimage_detect(image, 0x205));
	memcpy(image + 0x202, "HdrZ", 4);
	assert_false(bzimage_detect(image, sizeof(image)));
	expect_refused("no Linux setup header");
	make_image();
	{
		struct bzimage_info bi;
		const char *why = NULL;

		assert_int_equal(bzimage_parse(image, 0x240, &bi, &why), -ENOEXEC);
		assert_string_equal(why, "truncated Linux setup header");
	}
	make_image();
	put16(0x1fe, 0x1234);
	expect_refused("boot flag");
	make_image();
	put16(0x206, 0x0209);
	expect_refused("older than 2.10");
	make_image();
	image[0x211] = 0;
	expect_refused("zImage");
	make_image();
	image[0x1f1] = 40; /* the setup claims more than the file holds */
	expect_refused("kernel is missing");
}

static void test_zero_page(void **state)
{
	struct bz_e820_entry e820[2] = { { 0, 0x9fc00, 1 }, { 0x100000, 0xff00000, 1 } };
	struct bz_layout l = { .cmdline_gpa = 0x20000, .initrd_gpa = 0x8000000, .initrd_size = 12345,
			       .ne820 = 2, .e820 = e820 };
	static uint8_t bp[BZ_ZERO_PAGE_SIZE];
	struct bzimage_info bi;
	const char *why;

	(void)state;
	make_image();
	assert_int_equal(bzimage_parse(image, sizeof(image), &bi, &why), 0);
	memset(bp, 0xcc, sizeof(bp));
	bzimage_fill_boot_params(bp, image, &bi, &l);
	assert_int_equal(bp[0], 0);               /* everything outside the header zeroed */
	assert_memory_equal(bp + 0x202, "HdrS", 4); /* the header copied */
	assert_int_equal(bp[0x26c], 0);           /* ... and no further */
	assert_int_equal(bp[0x210], 0xff);        /* loader type: undefined */
	assert_int_equal(bp[0x211], 0x01);        /* KEEP_SEGMENTS cleared */
	assert_int_equal(get32(bp, 0x228), 0x20000);
	assert_int_equal(get32(bp, 0x218), 0x8000000);
	assert_int_equal(get32(bp, 0x21c), 12345);
	assert_int_equal(bp[0x1e8], 2);
	assert_memory_equal(bp + 0x2d0, e820, sizeof(e820));
	assert_int_equal(get32(bp, 0x2d0 + 20 + 16), 1); /* entry 1's type: packed at 20 bytes */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_bad_headers_are_named),
		cmocka_unit_test(test_zero_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
