/*
 * Comparator throughput: identical TCP segments from the primary and the
 * secondary through colo_compare, as fast as it takes them. Prints
 * `bench: colo.compare.packets_per_s N 1/s` (one primary + one secondary
 * frame = one packet compared) for 64-byte and 1448-byte payloads.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "colo/net/compare.h"

static uint64_t released;

static void on_output(void *opaque, const uint8_t *frame, size_t len)
{
	(void)opaque, (void)frame, (void)len;
	released++;
}

static void on_checkpoint(void *opaque, enum colo_checkpoint_reason r) { (void)opaque, (void)r; }

static const struct colo_compare_ops ops = { .output = on_output, .checkpoint = on_checkpoint };

/* An IPv4 TCP segment from the guest (10.0.2.15:80) to a client, ACK|PSH. */
static size_t build_segment(uint8_t *f, uint32_t seq, size_t payload)
{
	uint8_t *ip = f + 14, *tcp = ip + 20;
	uint16_t tot = htons((uint16_t)(20 + 20 + payload));

	memset(f, 0, 14 + 40 + payload);
	f[12] = 0x08;
	ip[0] = 0x45;
	memcpy(ip + 2, &tot, 2);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 2, 15 }, 4);
	memcpy(ip + 16, (uint8_t[]){ 10, 0, 2, 1 }, 4);
	tcp[1] = 80;
	tcp[2] = 0xc3;
	tcp[3] = 0x50;
	seq = htonl(seq);
	memcpy(tcp + 4, &seq, 4);
	tcp[12] = 5 << 4;
	tcp[13] = 0x18;
	tcp[14] = 0xff;
	for (size_t i = 0; i < payload; i++)
		tcp[20 + i] = (uint8_t)(i * 31);
	return 14 + 40 + payload;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(size_t payload, int n)
{
	struct colo_compare_config cfg = { .compare_timeout_ms = 1000, .max_queue_size = 1024,
					   .max_connections = 1024, .idle_timeout_ms = 60000 };
	struct colo_compare *c = colo_compare_create(&cfg, &ops, NULL);
	uint8_t frame[2048];
	uint32_t seq = 1000;
	double t0 = now_s(), dt;

	for (int i = 0; i < n; i++) {
		size_t len = build_segment(frame, seq, payload);

		colo_compare_primary(c, frame, len, 0);
		colo_compare_secondary(c, frame, len, 0);
		seq += (uint32_t)payload;
	}
	dt = now_s() - t0;
	printf("bench: colo.compare.packets_per_s.payload=%zu %.0f 1/s\n", payload, n / dt);
	printf("bench: colo.compare.MB_per_s.payload=%zu %.1f MB/s\n", payload, n * (double)payload / dt / 1e6);
	if (released != (uint64_t)n)
		fprintf(stderr, "compare_rate: released %llu of %d\n", (unsigned long long)released, n);
	released = 0;
	colo_compare_destroy(c);
}

int main(void)
{
	run(64, 500000);
	run(1448, 300000);
	return 0;
}
