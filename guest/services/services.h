/*
 * The network services of the test guest, chosen on the command line with
 * services=NAME+NAME... (see guest/apps/serve.c):
 *   echo    TCP and UDP echo on port 7
 *   kv      RESP key-value server on port 6379 (kv.c), persistent with a disk
 *   http    HTTP/1.1 on port 80 (http.c)
 *   stream  the guest connects out and sends a pattern stream (stream.c)
 *   discard TCP discard on port 9 (a sink for throughput measurements)
 */
#ifndef GUEST_SERVICES_SERVICES_H
#define GUEST_SERVICES_SERVICES_H

#include "blockdev.h"
#include "lwip/ip_addr.h"

enum service {
	SERVICE_ECHO = 1 << 0,
	SERVICE_KV = 1 << 1,
	SERVICE_HTTP = 1 << 2,
	SERVICE_STREAM = 1 << 3,
	SERVICE_DISCARD = 1 << 4,
};

struct services_config {
	unsigned set; /* enum service bits */
	const struct blockdev *kv_disk; /* NULL: the KV store lives in memory only */
	ip_addr_t stream_addr;
	uint16_t stream_port;
	uint64_t stream_bytes;
};

/* "echo+kv+http" into service bits; 0, or -1 naming no known service (*bad set). */
int services_parse(const char *list, unsigned *set, const char **bad);
/* Starts the chosen services; 0, or -1 (a message says which failed). */
int services_start(const struct services_config *cfg);
/* Work that is not driven by a packet: the KV log commit. Call every loop. */
void services_poll(void);

/* Each service's start (used by services_start). */
int echo_start(void);
int kv_start(const struct blockdev *disk);
/* Opens the log on disk and replays it into the store: records replayed, or -1. */
long kv_load(const struct blockdev *disk);
void kv_poll(void);
int http_start(void);
int discard_start(void);
int stream_start(const ip_addr_t *addr, uint16_t port, uint64_t bytes);

#endif
