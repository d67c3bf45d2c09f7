/*
 * app=blkcheck: writes a known pattern to the virtio-blk disk, flushes, and
 * reads it back, with completions taken by interrupt.
 *
 * The pattern (host tests check the image file for exactly this): tested
 * sector s holds 64 little-endian u64 words, each 0x4c4b535400000000 |
 * (s & 0xffffffff), i.e. "LKST" in the high 32 bits and the sector number in
 * the low 32 bits.
 * Tested sectors: 0..63, the last 64 sectors, and every s = k*2048 (each MiB)
 * in between. Sectors 0..63 are written in 8-sector requests and read back one
 * by one; the last 64 the other way round; the rest one at a time.
 * It also checks that requests at or past the end of the disk fail with
 * IOERR. With a read-only disk (feature RO) nothing is written: a write must
 * fail with IOERR ("blkcheck: readonly ok"), and the tested sectors are only
 * read, reporting how many hold the pattern ("blkcheck: pattern=M/N").
 *
 * Output: "blkcheck: capacity=C", "blkcheck: id=...", "blkcheck: irqs=K",
 * then "blkcheck: PASS sectors=N" (exit 0) or "blkcheck: FAIL ..." (exit 1).
 */
#include "app.h"
#include "drivers/virtio_blk.h"
#include "guest.h"

#define PATTERN_TAG 0x4c4b535400000000UL
#define SECTOR_WORDS (VIRTIO_BLK_SECTOR_SIZE / 8)
#define EDGE_SECTORS 64
#define MIB_SECTORS 2048
#define MAX_CHUNK 8

static struct virtio_blk blk;

static void pattern_fill(uint64_t *words, uint64_t sector)
{
	for (int i = 0; i < SECTOR_WORDS; i++)
		words[i] = PATTERN_TAG | (sector & 0xffffffff);
}

/* Index of the first word that breaks the pattern, or -1. */
static int pattern_mismatch(const uint64_t *words, uint64_t sector)
{
	for (int i = 0; i < SECTOR_WORDS; i++)
		if (words[i] != (PATTERN_TAG | (sector & 0xffffffff)))
			return i;
	return -1;
}

/* ---- the set of tested sectors, as ranges [start, end) walked in chunks ---- */

struct range {
	uint64_t start, end;
	uint64_t stride; /* tested sectors are the multiples of stride */
	uint32_t write_chunk, read_chunk;
};

static int tested_ranges(uint64_t cap, struct range r[3])
{
	uint64_t head_end = cap < EDGE_SECTORS ? cap : EDGE_SECTORS;
	uint64_t tail_start = cap > 2 * EDGE_SECTORS ? cap - EDGE_SECTORS : head_end;

	r[0] = (struct range){ 0, head_end, 1, MAX_CHUNK, 1 };
	r[1] = (struct range){ head_end, tail_start, MIB_SECTORS, 1, 1 };
	r[2] = (struct range){ tail_start, cap, 1, 1, MAX_CHUNK };
	return 3;
}

/* The first tested sector of r at or after s (r->end when there is none). */
static uint64_t next_tested(const struct range *r, uint64_t s)
{
	s = (s + r->stride - 1) / r->stride * r->stride;
	return s < r->end ? s : r->end;
}

static uint32_t chunk_at(const struct range *r, uint64_t s, uint32_t chunk)
{
	return r->end - s < chunk ? (uint32_t)(r->end - s) : chunk;
}

/* ---- the passes ---- */

static int write_pass(uint64_t *buf, const struct range *r)
{
	for (uint64_t s = next_tested(r, r->start); s < r->end;) {
		uint32_t n = chunk_at(r, s, r->write_chunk);
		int st;

		for (uint32_t i = 0; i < n; i++)
			pattern_fill(buf + i * SECTOR_WORDS, s + i);
		st = virtio_blk_write(&blk, s, buf, n);
		if (st != VIRTIO_BLK_S_OK) {
			printf("blkcheck: FAIL write sector=%lu count=%u status=%d\n", s, n, st);
			return -1;
		}
		s = next_tested(r, s + n);
	}
	return 0;
}

/* Reads the range back; counts sectors holding the pattern in *good. With
 * `strict`, the first mismatch is a failure. */
static int read_pass(uint64_t *buf, const struct range *r, bool strict, uint64_t *good)
{
	for (uint64_t s = next_tested(r, r->start); s < r->end;) {
		uint32_t n = chunk_at(r, s, r->read_chunk);
		int st = virtio_blk_read(&blk, s, buf, n);

		if (st != VIRTIO_BLK_S_OK) {
			printf("blkcheck: FAIL read sector=%lu count=%u status=%d\n", s, n, st);
			return -1;
		}
		for (uint32_t i = 0; i < n; i++) {
			int w = pattern_mismatch(buf + i * SECTOR_WORDS, s + i);

			if (w < 0) {
				(*good)++;
			} else if (strict) {
				printf("blkcheck: FAIL mismatch sector=%lu word=%d expected=0x%lx got=0x%lx\n",
				       s + i, w, PATTERN_TAG | ((s + i) & 0xffffffff),
				       buf[i * SECTOR_WORDS + w]);
				return -1;
			}
		}
		s = next_tested(r, s + n);
	}
	return 0;
}

static uint64_t count_tested(const struct range *r, int nr)
{
	uint64_t n = 0;

	for (int i = 0; i < nr; i++)
		for (uint64_t s = next_tested(&r[i], r[i].start); s < r[i].end; s = next_tested(&r[i], s + 1))
			n++;
	return n;
}

/* ---- the checks around the pattern ---- */

static void print_id(void)
{
	char id[VIRTIO_BLK_ID_BYTES + 1];
	int st = virtio_blk_get_id(&blk, id);

	if (st != VIRTIO_BLK_S_OK) {
		printf("blkcheck: id unavailable (status %d)\n", st);
		return;
	}
	for (int i = 0; id[i]; i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			id[i] = '?';
	printf("blkcheck: id=%s\n", id);
}

/* Requests at or past the end of the disk must fail with IOERR. */
static int check_out_of_range(uint64_t *buf)
{
	int st = virtio_blk_read(&blk, blk.capacity, buf, 1);

	if (st != VIRTIO_BLK_S_IOERR) {
		printf("blkcheck: FAIL read at capacity=%lu gave status %d, not IOERR\n", blk.capacity, st);
		return -1;
	}
	st = virtio_blk_read(&blk, blk.capacity - 1, buf, 2);
	if (st != VIRTIO_BLK_S_IOERR) {
		printf("blkcheck: FAIL read across the end gave status %d, not IOERR\n", st);
		return -1;
	}
	return 0;
}

static int check_readonly(uint64_t *buf, const struct range *r, int nr, uint64_t tested)
{
	uint64_t good = 0;
	int st;

	pattern_fill(buf, 0);
	st = virtio_blk_write(&blk, 0, buf, 1);
	if (st != VIRTIO_BLK_S_IOERR) {
		printf("blkcheck: FAIL write to a read-only disk gave status %d, not IOERR\n", st);
		return -1;
	}
	printf("blkcheck: readonly ok\n");
	for (int i = 0; i < nr; i++)
		if (read_pass(buf, &r[i], false, &good) < 0)
			return -1;
	printf("blkcheck: pattern=%lu/%lu\n", good, tested);
	return 0;
}

static int check_read_write(uint64_t *buf, const struct range *r, int nr, uint64_t tested)
{
	uint64_t good = 0;
	int st;

	for (int i = 0; i < nr; i++)
		if (write_pass(buf, &r[i]) < 0)
			return -1;
	if (virtio_has(&blk.dev, VIRTIO_BLK_F_FLUSH) && (st = virtio_blk_flush(&blk)) != VIRTIO_BLK_S_OK) {
		printf("blkcheck: FAIL flush status=%d\n", st);
		return -1;
	}
	for (int i = 0; i < nr; i++)
		if (read_pass(buf, &r[i], true, &good) < 0)
			return -1;
	if (good != tested) {
		printf("blkcheck: FAIL verified %lu of %lu sectors\n", good, tested);
		return -1;
	}
	return 0;
}

static int blkcheck_main(void)
{
	uint64_t *buf = page_alloc(MAX_CHUNK * VIRTIO_BLK_SECTOR_SIZE / 4096);
	struct range r[3];
	int nr, ret;
	uint64_t tested;

	if (virtio_blk_init(&blk) < 0) {
		printf("blkcheck: FAIL no usable virtio-blk device\n");
		return 1;
	}
	printf("blkcheck: capacity=%lu%s gsi=%u\n", blk.capacity, blk.readonly ? " readonly" : "", blk.dev.gsi);
	if (blk.capacity == 0) {
		printf("blkcheck: FAIL empty disk\n");
		return 1;
	}
	print_id();
	nr = tested_ranges(blk.capacity, r);
	tested = count_tested(r, nr);
	ret = blk.readonly ? check_readonly(buf, r, nr, tested) : check_read_write(buf, r, nr, tested);
	if (ret == 0)
		ret = check_out_of_range(buf);
	printf("blkcheck: irqs=%lu\n", irq_count(blk.dev.gsi));
	if (ret < 0)
		return 1;
	if (blk.readonly)
		printf("blkcheck: PASS readonly\n");
	else
		printf("blkcheck: PASS sectors=%lu\n", tested);
	return 0;
}
GUEST_APP("blkcheck", blkcheck_main);
