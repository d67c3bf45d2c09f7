/*
 * app=blkseq[,sectors=N,period=MS]: an endless sequence of disk writes, each checked,
 * for tests of block I/O against a running VM (a slow backend, stop,
 * snapshots).
 *
 * Record k (k = 1, 2, ...) fills sector (k - 1) % N (N defaults to 64) with
 * 64 little-endian u64 words, each SEQ_TAG | k ("SEQ" in the top bytes).
 * After writing record k the app reads it back, and reads back record k - 1
 * too (still on disk, unless a completed write was lost), then prints
 *   blkseq: done seq=K
 * While a request is out it prints, every 100 ms of guest time,
 *   blkseq: waiting seq=K tick=T
 * (T counts such lines since boot): proof that the vCPU runs while the host
 * serves the request. Records follow each other every `period` ms (default
 * 0: at once). A mismatch or a failed request prints
 * "blkseq: FAIL ..." and exits 1. Never returns otherwise.
 */
#include "app.h"
#include "drivers/virtio_blk.h"
#include "guest.h"

#define SEQ_TAG 0x5345510000000000UL /* "SEQ" */
#define SECTOR_WORDS (VIRTIO_BLK_SECTOR_SIZE / 8)
#define TICK_MS 100

static struct virtio_blk blk;
static uint64_t current_seq, ticks;
static uint32_t last_tick_ms;

static void print_tick(struct virtio_blk *b)
{
	(void)b;
	if (guest_clock_ms() - last_tick_ms < TICK_MS)
		return;
	last_tick_ms = guest_clock_ms();
	printf("blkseq: waiting seq=%lu tick=%lu\n", current_seq, ++ticks);
}

static uint64_t sector_of(uint64_t seq, uint64_t nsectors) { return (seq - 1) % nsectors; }

static int write_record(uint64_t *buf, uint64_t seq, uint64_t nsectors)
{
	int st;

	for (int i = 0; i < SECTOR_WORDS; i++)
		buf[i] = SEQ_TAG | seq;
	st = virtio_blk_write(&blk, sector_of(seq, nsectors), buf, 1);
	if (st != VIRTIO_BLK_S_OK)
		printf("blkseq: FAIL write seq=%lu status=%d\n", seq, st);
	return st == VIRTIO_BLK_S_OK ? 0 : -1;
}

static int check_record(uint64_t *buf, uint64_t seq, uint64_t nsectors)
{
	int st = virtio_blk_read(&blk, sector_of(seq, nsectors), buf, 1);

	if (st != VIRTIO_BLK_S_OK) {
		printf("blkseq: FAIL read seq=%lu status=%d\n", seq, st);
		return -1;
	}
	for (int i = 0; i < SECTOR_WORDS; i++) {
		if (buf[i] != (SEQ_TAG | seq)) {
			printf("blkseq: FAIL record seq=%lu word=%d holds 0x%lx\n", seq, i, buf[i]);
			return -1;
		}
	}
	return 0;
}

static uint64_t sectors_wanted(uint64_t capacity)
{
	uint64_t n = cmdline_get_u64("sectors", 64);

	if (n == 0)
		n = 1;
	return n < capacity ? n : capacity;
}

/* Idle calls end early on device work: sleep until the clock says so. */
static void sleep_ms(uint32_t ms)
{
	uint32_t start = guest_clock_ms();

	while (guest_clock_ms() - start < ms)
		guest_idle((ms - (guest_clock_ms() - start)) * 1000);
}

static int blkseq_main(void)
{
	uint64_t *buf = page_alloc(1);
	uint64_t nsectors, period = cmdline_get_u64("period", 0);

	if (virtio_blk_init(&blk) < 0 || blk.capacity == 0 || blk.readonly) {
		printf("blkseq: FAIL no writable virtio-blk disk\n");
		return 1;
	}
	blk.while_waiting = print_tick;
	nsectors = sectors_wanted(blk.capacity);
	printf("blkseq: sectors=%lu\n", nsectors);
	for (current_seq = 1;; current_seq++) {
		if (write_record(buf, current_seq, nsectors) < 0 ||
		    check_record(buf, current_seq, nsectors) < 0 ||
		    (current_seq > 1 && nsectors > 1 && check_record(buf, current_seq - 1, nsectors) < 0))
			return 1;
		printf("blkseq: done seq=%lu\n", current_seq);
		if (period)
			sleep_ms((uint32_t)period);
	}
}
GUEST_APP("blkseq", blkseq_main);
