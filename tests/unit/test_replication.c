/*
 * Block replication: QEMU's 13 test-replication cases (reference/qemu-colo.md
 * §5.6) on four 64 MiB images (primary local, secondary disk full of 0x11,
 * active, hidden), then the cases that reference adds: errors, refused
 * starts, a failed failover commit, I/O after DONE, a race.
 *
 * Unlike upstream, every read goes into a buffer filled with a sentinel
 * (0x5A) first and is compared exactly with what must be there, so a read
 * that does nothing, or returns the wrong layer, fails. That corrects three
 * upstream expectations (see the cases): after a secondary failover the
 * disk shows the secondary guest's view, not the primary's later writes.
 *
 * Reads and writes split the buffer into three iovecs at odd byte counts,
 * so a request that spans layers is cut at places that are not iovec
 * boundaries.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/file.h"
#include "block/overlay.h"
#include "block/replication.h"

#define DISK (64ull << 20)
#define HALF (DISK / 2)
#define MIB (1ull << 20)
#define SENTINEL 0x5a

enum image { IMG_PRIMARY, IMG_SECONDARY, IMG_ACTIVE, IMG_HIDDEN, NIMAGES };
static char paths[NIMAGES][256];

static uint8_t *buf;      /* DISK bytes: what reads land in, writes come from */
static uint8_t *expected; /* MIB bytes of one value, for comparisons */

/* The replications a test made (teardown frees them) */
static struct replication *pri, *sec;

/* ---- a secondary disk (or primary child) whose writes can be made to fail */

static bool fail_writes;
/* stall_writes: a write signals stall_entered, then waits for stall_release and fails
 * (a forward hanging on a dead secondary). */
static bool stall_writes;
static sem_t stall_entered, stall_release;

struct flaky {
	struct blk_backend be; /* first */
	struct blk_backend *file;
};

static struct blk_backend *inner(struct blk_backend *be) { return ((struct flaky *)be)->file; }

static int flaky_preadv(struct blk_backend *be, struct iovec *iov, int cnt, uint64_t off)
{
	return blk_backend_preadv(inner(be), iov, cnt, off);
}

static int flaky_pwritev(struct blk_backend *be, struct iovec *iov, int cnt, uint64_t off)
{
	if (stall_writes) {
		sem_post(&stall_entered);
		sem_wait(&stall_release);
		return -ETIMEDOUT;
	}
	return fail_writes ? -EIO : blk_backend_pwritev(inner(be), iov, cnt, off);
}

static int flaky_flush(struct blk_backend *be) { return blk_backend_flush(inner(be)); }

static uint64_t flaky_size(struct blk_backend *be) { return blk_backend_size(inner(be)); }

static void flaky_close(struct blk_backend *be)
{
	blk_backend_close(inner(be));
	free(be);
}

static const struct blk_backend_ops flaky_ops = {
	.kind = "flaky", .preadv = flaky_preadv, .pwritev = flaky_pwritev,
	.flush = flaky_flush, .size = flaky_size, .close = flaky_close,
};

static struct blk_backend *open_flaky(const char *path)
{
	struct flaky *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->be.ops = &flaky_ops;
	assert_int_equal(blk_file_open(path, false, &f->file), 0);
	return &f->be;
}

/* ---- images */

static void fill_file(const char *path, uint64_t offset, uint64_t len, int byte)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	memset(expected, byte, MIB);
	for (uint64_t done = 0; done < len; done += MIB)
		assert_int_equal(pwrite(fd, expected, MIB, (off_t)(offset + done)), (ssize_t)MIB);
	close(fd);
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	for (int i = 0; i < NIMAGES; i++) {
		int fd;

		snprintf(paths[i], sizeof(paths[i]), "%s/repl-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		fd = mkstemp(paths[i]);
		if (fd < 0 || ftruncate(fd, DISK) < 0)
			return -1;
		close(fd);
	}
	fill_file(paths[IMG_SECONDARY], 0, DISK, 0x11);
	fail_writes = false;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	repl_free(pri);
	repl_free(sec);
	pri = sec = NULL;
	for (int i = 0; i < NIMAGES; i++)
		unlink(paths[i]);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	buf = malloc(DISK);
	expected = malloc(MIB);
	return buf && expected ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	free(buf);
	free(expected);
	return 0;
}

static struct replication *open_primary(void)
{
	struct blk_backend *child;

	assert_int_equal(blk_file_open(paths[IMG_PRIMARY], false, &child), 0);
	assert_int_equal(repl_primary_create(child, &pri), 0);
	return pri;
}

static struct replication *open_secondary_on(struct blk_backend *disk)
{
	struct overlay *active, *hidden;

	assert_int_equal(overlay_open(paths[IMG_ACTIVE], &active), 0);
	assert_int_equal(overlay_open(paths[IMG_HIDDEN], &hidden), 0);
	assert_int_equal(repl_secondary_create(disk, active, hidden, &sec), 0);
	return sec;
}

static struct replication *open_secondary(void)
{
	struct blk_backend *disk;

	assert_int_equal(blk_file_open(paths[IMG_SECONDARY], false, &disk), 0);
	return open_secondary_on(disk);
}

/* ---- I/O and exact comparisons */

/* buf[0, len) as three iovecs cut at odd byte counts. */
static int split(struct iovec *iov, uint64_t len)
{
	size_t a = len / 3 + 100 < len ? len / 3 + 100 : len;
	size_t b = len / 3 + 100 < len - a ? len / 3 + 100 : len - a;

	iov[0] = (struct iovec){ buf, a };
	iov[1] = (struct iovec){ buf + a, b };
	iov[2] = (struct iovec){ buf + a + b, len - a - b };
	return 3;
}

static int read_at(struct blk_backend *be, uint64_t offset, uint64_t len)
{
	struct iovec iov[3];

	memset(buf, SENTINEL, len);
	return blk_backend_preadv(be, iov, split(iov, len), offset);
}

static int write_at(struct blk_backend *be, uint64_t offset, uint64_t len, int byte)
{
	struct iovec iov[3];

	memset(buf, byte, len);
	return blk_backend_pwritev(be, iov, split(iov, len), offset);
}

static int primary_write(uint64_t offset, uint64_t len, int byte)
{
	struct iovec iov[3];

	memset(buf, byte, len);
	return repl_secondary_primary_write(sec, iov, split(iov, len), offset);
}

/* buf[0, len) is all `byte`; `where` is the disk offset of buf[0] for the message. */
static void assert_buf(uint64_t where, uint64_t len, int byte)
{
	memset(expected, byte, MIB);
	for (uint64_t off = 0; off < len; off += MIB) {
		uint64_t n = len - off < MIB ? len - off : MIB;

		if (memcmp(buf + off, expected, n) != 0) {
			uint64_t i = off;

			while (buf[i] == byte)
				i++;
			fail_msg("byte %llu is 0x%02x, expected 0x%02x", (unsigned long long)(where + i),
				 buf[i], byte);
		}
	}
}

static void assert_read(struct blk_backend *be, uint64_t offset, uint64_t len, int byte)
{
	assert_int_equal(read_at(be, offset, len), 0);
	assert_buf(offset, len, byte);
}

static void assert_read_fails(struct blk_backend *be, uint64_t offset, uint64_t len)
{
	assert_true(read_at(be, offset, len) < 0);
}

/* What an image file holds, read past every layer. */
static void assert_file(enum image img, uint64_t offset, uint64_t len, int byte)
{
	int fd = open(paths[img], O_RDONLY);

	assert_true(fd >= 0);
	memset(buf, SENTINEL, len);
	assert_int_equal(pread(fd, buf, len, (off_t)offset), (ssize_t)len);
	close(fd);
	assert_buf(offset, len, byte);
}

/* ---- the 13 upstream cases */

/* 1 /replication/primary/read */
static void test_primary_read(void **state)
{
	(void)state;
	assert_read_fails(repl_backend(open_primary()), 0, DISK);
}

/* 2 /replication/primary/write */
static void test_primary_write(void **state)
{
	(void)state;
	assert_true(write_at(repl_backend(open_primary()), 0, DISK, 0x22) < 0);
	assert_file(IMG_PRIMARY, 0, DISK, 0); /* nothing forwarded */
}

/* 3 /replication/primary/start */
static void test_primary_start(void **state)
{
	struct blk_backend *be = repl_backend(open_primary());

	(void)state;
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), 0);
	assert_int_equal(repl_stage(pri), REPL_STAGE_RUNNING);
	assert_read_fails(be, 0, DISK);
	assert_int_equal(write_at(be, 0, DISK, 0x22), 0);
	assert_file(IMG_PRIMARY, 0, DISK, 0x22); /* forwarded to the child */
}

/* 4 /replication/primary/stop */
static void test_primary_stop(void **state)
{
	(void)state;
	open_primary();
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), 0);
	assert_int_equal(repl_stop(pri, true), 0);
	assert_int_equal(repl_stage(pri), REPL_STAGE_DONE);
	assert_true(write_at(repl_backend(pri), 0, MIB, 0x22) < 0); /* DONE forwards nothing */
}

/* 5 /replication/primary/do_checkpoint */
static void test_primary_do_checkpoint(void **state)
{
	(void)state;
	open_primary();
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), 0);
	assert_int_equal(repl_do_checkpoint(pri), 0);
}

/* 6 /replication/primary/get_error_all */
static void test_primary_get_error_all(void **state)
{
	char msg[160];

	(void)state;
	open_primary();
	assert_int_equal(repl_get_error(pri, msg, sizeof(msg)), -ENOTCONN);
	assert_string_equal(msg, "block replication is not running");
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), 0);
	assert_int_equal(repl_get_error(pri, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
}

/* 7 /replication/secondary/read */
static void test_secondary_read(void **state)
{
	(void)state;
	assert_read_fails(repl_backend(open_secondary()), 0, DISK);
}

/* 8 /replication/secondary/write */
static void test_secondary_write(void **state)
{
	(void)state;
	assert_true(write_at(repl_backend(open_secondary()), 0, DISK, 0x22) < 0);
	assert_file(IMG_SECONDARY, 0, DISK, 0x11);
}

/* The common start of #9..#12: start; the guest sees 0x11; the primary writes
 * 0x22 over the 2nd half; the guest still sees 0x11 there (the pre-images
 * are in hidden). */
static struct blk_backend *start_and_primary_writes_2nd_half(void)
{
	struct blk_backend *top = repl_backend(open_secondary());

	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	assert_read(top, 0, DISK, 0x11);
	assert_int_equal(primary_write(HALF, HALF, 0x22), 0);
	assert_file(IMG_SECONDARY, HALF, HALF, 0x22); /* it did reach the disk */
	assert_read(top, HALF, HALF, 0x11);
	return top;
}

/* 9 /replication/secondary/start. Upstream's weak read check would also
 * pass with 0x22 in the 2nd half; the guest must see exactly 0x11. */
static void test_secondary_start(void **state)
{
	struct blk_backend *top = start_and_primary_writes_2nd_half();

	(void)state;
	assert_int_equal(write_at(top, 0, HALF, 0x33), 0);
	assert_read(top, 0, HALF, 0x33);
	assert_read(top, HALF, HALF, 0x11);
	assert_file(IMG_SECONDARY, 0, HALF, 0x11); /* the guest's writes stay in active */
	assert_int_equal(repl_stop(sec, true), 0);
}

/* After a secondary failover the disk holds the secondary guest's view: its
 * own 0x33 in the 1st half and, in the 2nd, the pre-image 0x11 from hidden.
 * The primary's 0x22 came after the last checkpoint and dies with the
 * primary's state. (Upstream asserts 0x22 but its check cannot tell.) */
static void assert_secondary_guest_view_committed(struct blk_backend *top)
{
	assert_int_equal(repl_stage(sec), REPL_STAGE_DONE);
	assert_read(top, 0, HALF, 0x33);
	assert_read(top, HALF, HALF, 0x11);
	assert_file(IMG_SECONDARY, 0, HALF, 0x33);
	assert_file(IMG_SECONDARY, HALF, HALF, 0x11);
}

/* 10 /replication/secondary/stop */
static void test_secondary_stop(void **state)
{
	struct blk_backend *top = start_and_primary_writes_2nd_half();

	(void)state;
	assert_int_equal(write_at(top, 0, HALF, 0x33), 0);
	assert_int_equal(repl_stop(sec, true), 0);
	assert_secondary_guest_view_committed(top);
}

/* 11 /replication/secondary/continuous_replication: after the failover the
 * promoted secondary ignores the pair's operations, even as a primary. */
static void test_secondary_continuous_replication(void **state)
{
	struct blk_backend *top = start_and_primary_writes_2nd_half();

	(void)state;
	assert_int_equal(write_at(top, 0, HALF, 0x33), 0);
	assert_int_equal(repl_stop(sec, true), 0);
	assert_int_equal(repl_start(sec, REPL_MODE_PRIMARY), 0);
	assert_int_equal(repl_do_checkpoint(sec), 0);
	assert_int_equal(repl_stop(sec, true), 0);
	assert_secondary_guest_view_committed(top);
}

/* 12 /replication/secondary/do_checkpoint: the checkpoint makes the
 * primary's writes the guest's view. */
static void test_secondary_do_checkpoint(void **state)
{
	struct blk_backend *top = start_and_primary_writes_2nd_half();

	(void)state;
	assert_int_equal(repl_do_checkpoint(sec), 0);
	assert_read(top, HALF, HALF, 0x22);
	assert_int_equal(repl_stop(sec, true), 0);
	assert_file(IMG_SECONDARY, HALF, HALF, 0x22);
}

/* The checkpoint also drops what the secondary guest wrote: its VM is
 * replaced by the primary's, whose disk is the secondary disk. */
static void test_checkpoint_drops_the_guest_writes(void **state)
{
	struct blk_backend *top = repl_backend(open_secondary());

	(void)state;
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	assert_int_equal(write_at(top, 0, HALF, 0x33), 0);
	assert_read(top, 0, HALF, 0x33);
	assert_int_equal(repl_do_checkpoint(sec), 0);
	assert_read(top, 0, HALF, 0x11);
	assert_int_equal(repl_stop(sec, true), 0);
	assert_file(IMG_SECONDARY, 0, DISK, 0x11);
}

/* 13 /replication/secondary/get_error_all */
static void test_secondary_get_error_all(void **state)
{
	char msg[160];

	(void)state;
	open_secondary();
	assert_int_equal(repl_get_error(sec, msg, sizeof(msg)), -ENOTCONN);
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	assert_int_equal(repl_get_error(sec, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
	assert_int_equal(repl_stop(sec, true), 0);
	assert_int_equal(repl_get_error(sec, msg, sizeof(msg)), 0);
}

/* ---- beyond upstream */

/* A replica that fails must not fail the guest: the write succeeds, the
 * error waits in get_error for the COLO engine. */
static void test_primary_forwarding_error_is_recorded_not_returned(void **state)
{
	char msg[160];

	(void)state;
	assert_int_equal(repl_primary_create(open_flaky(paths[IMG_PRIMARY]), &pri), 0);
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), 0);
	fail_writes = true;
	assert_int_equal(write_at(repl_backend(pri), MIB, MIB, 0x22), 0);
	assert_int_equal(repl_get_error(pri, msg, sizeof(msg)), -EIO);
	assert_non_null(strstr(msg, "forwarding a write at byte 1048576"));
	/* the first error stays; a later success does not clear it */
	fail_writes = false;
	assert_int_equal(write_at(repl_backend(pri), 0, MIB, 0x22), 0);
	assert_int_equal(repl_get_error(pri, msg, sizeof(msg)), -EIO);
}

static void test_start_with_the_wrong_mode_fails(void **state)
{
	char msg[160];

	(void)state;
	open_primary();
	open_secondary();
	assert_int_equal(repl_start(pri, REPL_MODE_SECONDARY), -EINVAL);
	assert_int_equal(repl_start(sec, REPL_MODE_PRIMARY), -EINVAL);
	repl_last_failure(sec, msg, sizeof(msg));
	assert_string_equal(msg, "cannot start a secondary replication as primary: Invalid argument");
	assert_int_equal(repl_stage(pri), REPL_STAGE_NONE);
	assert_int_equal(repl_stage(sec), REPL_STAGE_NONE);
	/* and starting twice is refused */
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), 0);
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), -EINVAL);
}

static void test_start_with_lengths_that_differ_fails(void **state)
{
	char msg[160];
	int fd = open(paths[IMG_HIDDEN], O_WRONLY);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, HALF), 0);
	close(fd);
	open_secondary();
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), -EINVAL);
	repl_last_failure(sec, msg, sizeof(msg));
	assert_non_null(strstr(msg, "lengths differ"));
	assert_int_equal(repl_stage(sec), REPL_STAGE_NONE);
	assert_read_fails(repl_backend(sec), 0, MIB);
}

static void test_start_without_an_overlay_fails(void **state)
{
	struct blk_backend *disk;
	struct overlay *o;
	char msg[160];

	(void)state;
	assert_int_equal(blk_file_open(paths[IMG_SECONDARY], false, &disk), 0);
	assert_int_equal(overlay_open(paths[IMG_ACTIVE], &o), 0);
	assert_int_equal(repl_secondary_create(disk, o, NULL, &sec), 0);
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), -EINVAL);
	repl_last_failure(sec, msg, sizeof(msg));
	assert_non_null(strstr(msg, "no hidden overlay"));
	repl_free(sec);
	assert_int_equal(blk_file_open(paths[IMG_SECONDARY], false, &disk), 0);
	assert_int_equal(overlay_open(paths[IMG_HIDDEN], &o), 0);
	assert_int_equal(repl_secondary_create(disk, NULL, o, &sec), 0);
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), -EINVAL);
	assert_int_equal(repl_stage(sec), REPL_STAGE_NONE);
}

/* The commit fails: FAILOVER_FAILED, the error recorded, the guest runs on
 * with the overlays (a write goes to active where an overlay holds the
 * sector, else to the disk), a checkpoint is refused, and a second stop
 * commits everything. */
static void test_failed_commit(void **state)
{
	struct blk_backend *top = repl_backend(open_secondary_on(open_flaky(paths[IMG_SECONDARY])));
	char msg[160];

	(void)state;
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	assert_int_equal(primary_write(HALF, MIB, 0x22), 0); /* hidden: 0x11 pre-images */
	assert_int_equal(write_at(top, 0, MIB, 0x33), 0);    /* active */
	fail_writes = true;
	assert_int_equal(repl_stop(sec, true), -EIO);
	assert_int_equal(repl_stage(sec), REPL_STAGE_FAILOVER_FAILED);
	assert_int_equal(repl_get_error(sec, msg, sizeof(msg)), -EIO);
	assert_non_null(strstr(msg, "to the secondary disk"));
	fail_writes = false;

	assert_int_equal(write_at(top, 0, 4096, 0x44), 0);        /* active holds it */
	assert_int_equal(write_at(top, HALF, 4096, 0x55), 0);     /* hidden holds it */
	assert_int_equal(write_at(top, 2 * MIB, 4096, 0x66), 0);  /* no overlay does */
	assert_file(IMG_SECONDARY, 0, MIB, 0x11);
	assert_file(IMG_SECONDARY, HALF, MIB, 0x22);
	assert_file(IMG_SECONDARY, 2 * MIB, 4096, 0x66);

	assert_int_equal(repl_do_checkpoint(sec), -EINVAL); /* would drop the guest's data */
	assert_read(top, 0, 4096, 0x44);
	assert_read(top, 4096, MIB - 4096, 0x33);
	assert_read(top, HALF, 4096, 0x55);
	assert_read(top, HALF + 4096, MIB - 4096, 0x11);
	assert_read(top, 2 * MIB, 4096, 0x66);

	assert_int_equal(repl_stop(sec, true), 0);
	assert_int_equal(repl_stage(sec), REPL_STAGE_DONE);
	assert_file(IMG_SECONDARY, 0, 4096, 0x44);
	assert_file(IMG_SECONDARY, 4096, MIB - 4096, 0x33);
	assert_file(IMG_SECONDARY, MIB, MIB, 0x11);
	assert_file(IMG_SECONDARY, 2 * MIB, 4096, 0x66);
	assert_file(IMG_SECONDARY, HALF, 4096, 0x55);
	assert_file(IMG_SECONDARY, HALF + 4096, HALF - 4096, 0x11);
}

static void test_secondary_io_after_done_passes_through(void **state)
{
	struct blk_backend *top = repl_backend(open_secondary());

	(void)state;
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	assert_int_equal(repl_stop(sec, true), 0);
	assert_int_equal(write_at(top, MIB, MIB, 0x77), 0);
	assert_file(IMG_SECONDARY, MIB, MIB, 0x77);
	assert_file(IMG_SECONDARY, 0, MIB, 0x11);
	fill_file(paths[IMG_SECONDARY], 0, MIB, 0x78);
	assert_read(top, 0, MIB, 0x78);
	assert_int_equal(primary_write(0, MIB, 0x22), -EIO); /* the primary is gone */
	assert_file(IMG_SECONDARY, 0, MIB, 0x78);
}

/* Stopped without failover, the guest's writes are dropped and the primary's
 * stay: the secondary's VM is discarded. */
static void test_secondary_stop_without_failover(void **state)
{
	struct blk_backend *top = start_and_primary_writes_2nd_half();

	(void)state;
	assert_int_equal(write_at(top, 0, HALF, 0x33), 0);
	assert_int_equal(repl_stop(sec, false), 0);
	assert_int_equal(repl_stage(sec), REPL_STAGE_DONE);
	assert_read(top, 0, HALF, 0x11);
	assert_read(top, HALF, HALF, 0x22);
}

/* The guest's own write wins over a later primary write, before and after
 * the failover; no pre-image is needed for it. */
static void test_guest_write_hides_a_later_primary_write(void **state)
{
	struct blk_backend *top = repl_backend(open_secondary());

	(void)state;
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	assert_int_equal(write_at(top, HALF, 65536, 0x44), 0);
	assert_int_equal(primary_write(HALF, MIB, 0x22), 0);
	assert_read(top, HALF, 65536, 0x44);
	assert_read(top, HALF + 65536, MIB - 65536, 0x11);
	assert_int_equal(repl_stop(sec, true), 0);
	assert_file(IMG_SECONDARY, HALF, 65536, 0x44);
	assert_file(IMG_SECONDARY, HALF + 65536, MIB - 65536, 0x11);
}

/* Before start the primary's writes go straight to the disk (the initial
 * synchronisation); they are the guest's view once it starts. */
static void test_primary_writes_before_start_reach_the_disk(void **state)
{
	(void)state;
	open_secondary();
	assert_int_equal(primary_write(0, MIB, 0x22), 0);
	assert_file(IMG_SECONDARY, 0, MIB, 0x22);
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	assert_read(repl_backend(sec), 0, MIB, 0x22);
}

/* A primary writing while the guest reads, from two threads: every read of
 * the guest sees its checkpoint's 0x11, never a primary write. */
#define RACE_WRITE 4096u  /* small writes: many chances to interleave */
#define RACE_READ MIB      /* long reads, each over many of them */
static volatile bool writer_done;

static void *primary_writer(void *arg)
{
	static uint8_t data[RACE_WRITE];
	intptr_t failures = 0;

	(void)arg;
	for (int round = 0; round < 2; round++) {
		memset(data, 0x22 + round, sizeof(data));
		for (uint64_t off = HALF; off < DISK; off += RACE_WRITE) {
			struct iovec iov = { data, sizeof(data) };

			failures += repl_secondary_primary_write(sec, &iov, 1, off) != 0;
		}
	}
	writer_done = true;
	return (void *)failures;
}

static void test_primary_writes_racing_guest_reads(void **state)
{
	struct blk_backend *top = repl_backend(open_secondary());
	pthread_t writer;
	void *failures;
	int bad_reads = 0;

	(void)state;
	assert_int_equal(repl_start(sec, REPL_MODE_SECONDARY), 0);
	writer_done = false;
	assert_int_equal(pthread_create(&writer, NULL, primary_writer, NULL), 0);
	memset(expected, 0x11, MIB);
	/* No assert until the writer is joined: teardown must not free what it uses. */
	for (uint64_t i = 0; (!writer_done || i < 64) && !bad_reads; i++) {
		/* all over the 2nd half, at offsets that are not the writer's */
		uint64_t off = HALF + (i * (RACE_READ / 2 + 512)) % (HALF - RACE_READ);

		bad_reads += read_at(top, off, RACE_READ) != 0 || memcmp(buf, expected, RACE_READ) != 0;
	}
	pthread_join(writer, &failures);
	assert_int_equal(bad_reads, 0);
	assert_int_equal((intptr_t)failures, 0);
	assert_read(top, HALF, HALF, 0x11);
	assert_file(IMG_SECONDARY, HALF, HALF, 0x23);
}

static void *write_through_primary(void *arg)
{
	(void)arg;
	write_at(repl_backend(pri), 0, MIB, 0x33);
	return NULL;
}

/* The recorded error can be read while a forward hangs on a dead secondary
 * (it holds the replication's lock): COLO's prepare step and QMP must not wait
 * for TCP to give up. SIGALRM ends the test if they do. */
static void test_error_readable_while_a_forward_hangs(void **state)
{
	pthread_t writer;
	char msg[160];

	(void)state;
	assert_int_equal(repl_primary_create(open_flaky(paths[IMG_PRIMARY]), &pri), 0);
	assert_int_equal(repl_start(pri, REPL_MODE_PRIMARY), 0);
	assert_int_equal(sem_init(&stall_entered, 0, 0), 0);
	assert_int_equal(sem_init(&stall_release, 0, 0), 0);
	stall_writes = true;
	assert_int_equal(pthread_create(&writer, NULL, write_through_primary, NULL), 0);
	sem_wait(&stall_entered);
	alarm(10);
	assert_int_equal(repl_get_error(pri, msg, sizeof(msg)), 0);
	alarm(0);
	stall_writes = false;
	sem_post(&stall_release);
	pthread_join(writer, NULL);
	assert_int_equal(repl_get_error(pri, msg, sizeof(msg)), -ETIMEDOUT);
	sem_destroy(&stall_entered);
	sem_destroy(&stall_release);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_primary_read),
		T(test_primary_write),
		T(test_primary_start),
		T(test_primary_stop),
		T(test_primary_do_checkpoint),
		T(test_primary_get_error_all),
		T(test_secondary_read),
		T(test_secondary_write),
		T(test_secondary_start),
		T(test_secondary_stop),
		T(test_secondary_continuous_replication),
		T(test_secondary_do_checkpoint),
		T(test_secondary_get_error_all),
		T(test_checkpoint_drops_the_guest_writes),
		T(test_primary_forwarding_error_is_recorded_not_returned),
		T(test_start_with_the_wrong_mode_fails),
		T(test_start_with_lengths_that_differ_fails),
		T(test_start_without_an_overlay_fails),
		T(test_failed_commit),
		T(test_secondary_io_after_done_passes_through),
		T(test_secondary_stop_without_failover),
		T(test_guest_write_hides_a_later_primary_write),
		T(test_primary_writes_before_start_reach_the_disk),
		T(test_primary_writes_racing_guest_reads),
		T(test_error_readable_while_a_forward_hangs),
#undef T
	};

	return cmocka_run_group_tests_name("replication", tests, group_setup, group_teardown);
}
