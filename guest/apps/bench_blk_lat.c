/*
 * app=bench-blk-lat,n=N,mb=M,wait=MS,load=MS,then=exit|idle: virtio-blk write
 * latency as the guest sees it, for comparing a plain VM with a COLO primary
 * whose disk is replicated (bench/disk_guest.py).
 *
 *  1. Sleeps `wait` ms of VM time (a pair's COLO start, with its disk copy,
 *     must be over before anything is measured).
 *  2. N writes of 4 KiB at random 4 KiB-aligned offsets over the whole disk
 *     (a fixed-seed PRNG, so every run writes the same blocks), one at a time:
 *       bench-blk-lat: write4k n=N p50_ns=A p99_ns=B max_ns=C total_us=T
 *  3. M MiB written sequentially in 256 KiB requests, then a flush:
 *       bench-blk-lat: seq256k mb=M total_us=T
 *  4. `load` ms of VM time of the same random 4 KiB writes (dirty overlays for
 *     the checkpoint-pause figure), then
 *       bench-blk-lat: load writes=K ms=L
 *  5. "bench-blk-lat: done", then exits (then=exit) or idles for ever (then=idle:
 *     a COLO primary must keep running while its checkpoints are measured).
 *
 * Times come from the TSC, calibrated against the VM's millisecond clock (the
 * clock itself is a VM exit per read, and too coarse for a single write).
 * Figures are integers: the guest is built without floating point.
 * Defaults: n=2000, mb=16, wait=0, load=0, then=exit.
 */
#include "app.h"
#include "drivers/virtio_blk.h"
#include "guest.h"
#include "netstack/clock.h"

#define SECTORS_PER_4K 8
#define SECTORS_PER_256K 512
#define PAGE_SIZE 4096
#define NS_PER_MS 1000000ull
#define PRNG_SEED 0x9e3779b97f4a7c15ull

struct bench {
	struct virtio_blk blk;
	uint8_t *buf;        /* 256 KiB of a fixed pattern, the data of every write */
	uint64_t rng;        /* xorshift64 state */
	uint64_t tsc_per_ms; /* calibrated once */
};

static uint64_t tsc_to_ns(const struct bench *b, uint64_t cycles)
{
	return cycles * NS_PER_MS / b->tsc_per_ms;
}

static uint64_t next_random(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

/* One 4 KiB write at a random 4 KiB block of the disk, waited for. */
static void write_random_4k(struct bench *b)
{
	uint64_t blocks = b->blk.capacity / SECTORS_PER_4K;
	uint64_t sector = next_random(b) % blocks * SECTORS_PER_4K;
	int st = virtio_blk_write(&b->blk, sector, b->buf, SECTORS_PER_4K);

	if (st != VIRTIO_BLK_S_OK)
		panic("bench-blk-lat: write at sector %lu: status %d", sector, st);
}

/* Shell sort: no libc here, and n is a few thousand. */
static void sort_u64(uint64_t *v, uint64_t n)
{
	for (uint64_t gap = n / 2; gap > 0; gap /= 2)
		for (uint64_t i = gap; i < n; i++)
			for (uint64_t j = i; j >= gap && v[j - gap] > v[j]; j -= gap) {
				uint64_t t = v[j];

				v[j] = v[j - gap];
				v[j - gap] = t;
			}
}

static void latency_pass(struct bench *b, uint64_t n)
{
	uint64_t *lat_ns = page_alloc((n * sizeof(uint64_t) + PAGE_SIZE - 1) / PAGE_SIZE);
	uint64_t start = rdtsc();

	for (uint64_t i = 0; i < n; i++) {
		uint64_t t = rdtsc();

		write_random_4k(b);
		lat_ns[i] = tsc_to_ns(b, rdtsc() - t);
	}
	uint64_t total_us = tsc_to_ns(b, rdtsc() - start) / 1000;

	sort_u64(lat_ns, n);
	printf("bench-blk-lat: write4k n=%lu p50_ns=%lu p99_ns=%lu max_ns=%lu total_us=%lu\n", n,
	       lat_ns[n / 2], lat_ns[n * 99 / 100], lat_ns[n - 1], total_us);
}

static void sequential_pass(struct bench *b, uint64_t mb)
{
	uint64_t sectors = mb << 11, start = rdtsc();

	for (uint64_t s = 0; s < sectors; s += SECTORS_PER_256K) {
		int st = virtio_blk_write(&b->blk, s, b->buf, SECTORS_PER_256K);

		if (st != VIRTIO_BLK_S_OK)
			panic("bench-blk-lat: sequential write at sector %lu: status %d", s, st);
	}
	if (virtio_blk_flush(&b->blk) != VIRTIO_BLK_S_OK)
		panic("bench-blk-lat: flush failed");
	printf("bench-blk-lat: seq256k mb=%lu total_us=%lu\n", mb, tsc_to_ns(b, rdtsc() - start) / 1000);
}

/* VM time, not the TSC: a checkpoint's pause must not eat into the load. */
static void load_pass(struct bench *b, uint32_t ms)
{
	uint32_t start = guest_clock_ms();
	uint64_t writes = 0;

	while (guest_clock_ms() - start < ms) {
		write_random_4k(b);
		writes++;
	}
	printf("bench-blk-lat: load writes=%lu ms=%u\n", writes, guest_clock_ms() - start);
}

static void sleep_ms(uint32_t ms)
{
	uint32_t deadline = guest_clock_ms() + ms;
	int32_t left;

	/* An idle call ends early on device work: sleep again until the deadline. */
	while ((left = (int32_t)(deadline - guest_clock_ms())) > 0)
		guest_idle((uint32_t)left * 1000);
}

static bool idle_when_done(void)
{
	char then[8];

	if (!cmdline_get("then", then, sizeof(then)) || !strcmp(then, "exit"))
		return false;
	if (strcmp(then, "idle"))
		panic("bench-blk-lat: then=%s: exit or idle", then);
	return true;
}

/* The disk, checked to hold the sequential pass, and the data every write sends. */
static void bench_setup(struct bench *b, uint64_t mb)
{
	if (virtio_blk_init(&b->blk) < 0)
		panic("bench-blk-lat: no usable virtio-blk device");
	if ((mb << 11) > b->blk.capacity || b->blk.capacity < SECTORS_PER_4K)
		panic("bench-blk-lat: disk holds %lu sectors, %lu MiB wanted", b->blk.capacity, mb);
	b->buf = page_alloc(SECTORS_PER_256K * VIRTIO_BLK_SECTOR_SIZE / PAGE_SIZE);
	for (uint32_t i = 0; i < SECTORS_PER_256K * VIRTIO_BLK_SECTOR_SIZE; i++)
		b->buf[i] = (uint8_t)(i * 7 + 1);
}

static int bench_blk_lat_main(void)
{
	static struct bench b = { .rng = PRNG_SEED };
	uint64_t n = cmdline_get_u64("n", 2000), mb = cmdline_get_u64("mb", 16);
	uint32_t wait = (uint32_t)cmdline_get_u64("wait", 0), load = (uint32_t)cmdline_get_u64("load", 0);
	bool idle = idle_when_done();

	if (n == 0)
		panic("bench-blk-lat: n must be at least 1");
	bench_setup(&b, mb);
	sleep_ms(wait);
	/* After the wait: a pause during calibration (the TSC runs on, the VM clock
	 * does not) would skew every figure. */
	clock_init();
	b.tsc_per_ms = clock_tsc_per_ms();
	printf("bench-blk-lat: start tsc_per_ms=%lu\n", b.tsc_per_ms);
	latency_pass(&b, n);
	sequential_pass(&b, mb);
	if (load)
		load_pass(&b, load);
	printf("bench-blk-lat: done\n");
	while (idle)
		guest_idle(1000000);
	return 0;
}
GUEST_APP("bench-blk-lat", bench_blk_lat_main);
