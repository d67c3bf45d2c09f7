/*
 * The overlay on its own: a write marks exactly its sectors present, runs
 * report them, reads return what was written, make_empty clears the map and
 * gives the file's space back, bad ranges are refused, an unnamed overlay
 * leaves nothing behind in its directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/overlay.h"

#define SIZE (1u << 20)
#define S OVERLAY_SECTOR

static char dir[256];
static struct overlay *o;

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/overlay-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	return overlay_create(dir, SIZE, &o);
}

static int teardown(void **state)
{
	(void)state;
	overlay_close(o);
	o = NULL;
	return rmdir(dir); /* fails if the overlay left a file */
}

static int write_bytes(uint64_t offset, size_t len, int byte)
{
	char *buf = malloc(len);
	struct iovec iov = { buf, len };
	int ret;

	memset(buf, byte, len);
	ret = overlay_pwritev(o, &iov, 1, offset);
	free(buf);
	return ret;
}

/* The runs of [0, SIZE) as "start+length:present" in sectors. */
static void runs(char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (uint64_t off = 0, n; off < SIZE; off += n) {
		bool present;

		n = overlay_run(o, off, SIZE - off, &present);
		used += (size_t)snprintf(out + used, len - used, "%s%llu+%llu:%d", used ? " " : "",
					 (unsigned long long)(off / S), (unsigned long long)(n / S),
					 present);
	}
}

static void test_write_marks_its_sectors(void **state)
{
	char got[256];

	(void)state;
	runs(got, sizeof(got));
	assert_string_equal(got, "0+2048:0");
	assert_int_equal(write_bytes(3 * S, 2 * S, 0xab), 0);
	assert_int_equal(write_bytes(64 * S, 130 * S, 0xcd), 0); /* across map words */
	assert_int_equal(write_bytes(2047 * S, S, 0xef), 0);    /* the last sector */
	runs(got, sizeof(got));
	assert_string_equal(got, "0+3:0 3+2:1 5+59:0 64+130:1 194+1853:0 2047+1:1");
}

static void test_run_stops_at_len(void **state)
{
	bool present = true;

	(void)state;
	assert_int_equal(write_bytes(10 * S, 10 * S, 1), 0);
	assert_int_equal(overlay_run(o, 0, 4 * S, &present), 4 * S);
	assert_false(present);
	assert_int_equal(overlay_run(o, 12 * S, 3 * S, &present), 3 * S);
	assert_true(present);
}

static void test_read_back(void **state)
{
	char buf[3 * S], want[3 * S];
	struct iovec iov[2] = { { buf, 100 }, { buf + 100, sizeof(buf) - 100 } };

	(void)state;
	assert_int_equal(write_bytes(S, S, 0x42), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(overlay_preadv(o, iov, 2, 0), 0);
	memset(want, 0, sizeof(want)); /* never written: zero */
	memset(want + S, 0x42, S);
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_make_empty_clears_the_map(void **state)
{
	char got[64];

	(void)state;
	assert_int_equal(write_bytes(0, SIZE, 0x77), 0);
	runs(got, sizeof(got));
	assert_string_equal(got, "0+2048:1");
	assert_int_equal(overlay_make_empty(o), 0);
	runs(got, sizeof(got));
	assert_string_equal(got, "0+2048:0");
}

/* On a named file (overlay_open) the punched holes can be seen. */
static void test_make_empty_gives_space_back(void **state)
{
	char path[300];
	struct stat st;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/named", dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SIZE), 0);
	close(fd);
	overlay_close(o);
	assert_int_equal(overlay_open(path, &o), 0);
	assert_int_equal(write_bytes(0, SIZE, 0x77), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_blocks > 0);
	assert_int_equal(overlay_make_empty(o), 0);
	assert_int_equal(stat(path, &st), 0);
	unlink(path);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(st.st_size, SIZE);
}

static void test_bad_ranges(void **state)
{
	(void)state;
	assert_int_equal(write_bytes(1, S, 0), -EINVAL);
	assert_int_equal(write_bytes(0, S + 1, 0), -EINVAL);
	assert_int_equal(write_bytes(SIZE, S, 0), -EIO);
	assert_int_equal(write_bytes(SIZE - S, 2 * S, 0), -EIO);
	assert_int_equal(overlay_size(o), SIZE);
}

static void test_size_must_be_sectors(void **state)
{
	struct overlay *bad = NULL;

	(void)state;
	assert_int_equal(overlay_create(dir, SIZE + 1, &bad), -EINVAL);
	assert_int_equal(overlay_create(dir, 0, &bad), -EINVAL);
	assert_null(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_write_marks_its_sectors),
		T(test_run_stops_at_len),
		T(test_read_back),
		T(test_make_empty_clears_the_map),
		T(test_make_empty_gives_space_back),
		T(test_bad_ranges),
		T(test_size_must_be_sectors),
#undef T
	};

	return cmocka_run_group_tests_name("overlay", tests, NULL, NULL);
}
