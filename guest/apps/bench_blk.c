/*
 * app=bench-blk,mb=N: sequential virtio-blk throughput as the guest sees it:
 * write N MiB in 256 KiB requests, flush, then read them back.
 * Prints "bench-blk: write mb=N ms=T" and "bench-blk: read mb=N ms=T".
 */
#include "app.h"
#include "drivers/virtio_blk.h"
#include "guest.h"

#define CHUNK_SECTORS 512 /* 256 KiB per request */

static int bench_pass(struct virtio_blk *b, uint8_t *buf, uint64_t mb, bool write)
{
	uint64_t sectors = mb << 11;
	uint32_t start = guest_clock_ms();

	for (uint64_t s = 0; s < sectors; s += CHUNK_SECTORS) {
		int st = write ? virtio_blk_write(b, s, buf, CHUNK_SECTORS)
			       : virtio_blk_read(b, s, buf, CHUNK_SECTORS);

		if (st != VIRTIO_BLK_S_OK)
			panic("bench-blk: %s at sector %lu: status %d", write ? "write" : "read", s, st);
	}
	if (write && virtio_blk_flush(b) != VIRTIO_BLK_S_OK)
		panic("bench-blk: flush failed");
	printf("bench-blk: %s mb=%lu ms=%u\n", write ? "write" : "read", mb,
	       guest_clock_ms() - start);
	return 0;
}

static int bench_blk_main(void)
{
	static struct virtio_blk blk;
	uint64_t mb = cmdline_get_u64("mb", 64);
	uint8_t *buf;

	if (virtio_blk_init(&blk) < 0)
		panic("bench-blk: no usable virtio-blk device");
	if ((mb << 11) > blk.capacity)
		panic("bench-blk: disk holds %lu sectors, %lu MiB wanted", blk.capacity, mb);
	buf = page_alloc(CHUNK_SECTORS * 512 / 4096);
	for (uint32_t i = 0; i < CHUNK_SECTORS * 512; i++)
		buf[i] = (uint8_t)(i * 7);
	bench_pass(&blk, buf, mb, true);
	return bench_pass(&blk, buf, mb, false);
}
GUEST_APP("bench-blk", bench_blk_main);
