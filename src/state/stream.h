/*
 * Buffered, blocking byte streams over a file descriptor (a snapshot file or
 * a migration socket). Errors are sticky: after the first failure every call
 * returns the same -errno, so a writer can check once at the end.
 */
#ifndef LOCKSTEP_STATE_STREAM_H
#define LOCKSTEP_STATE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define STREAM_BUF_SIZE (1u << 20)

struct stream_out {
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t bytes;      /* total bytes handed to the kernel */
	uint64_t max_bw;     /* bytes/s, 0 = unlimited */
	uint64_t bw_start_ns;
	uint64_t bw_start_bytes;
	int error;
};

struct stream_in {
	int fd;
	uint8_t *buf;
	size_t pos, len;
	uint64_t bytes; /* total bytes consumed */
	int error;
};

int stream_out_init(struct stream_out *s, int fd);
void stream_out_free(struct stream_out *s);
int stream_out_write(struct stream_out *s, const void *p, size_t n);
int stream_out_flush(struct stream_out *s);
/* Rate limit from now on (bytes per second, 0 = none). */
void stream_out_set_bandwidth(struct stream_out *s, uint64_t bytes_per_s);

int stream_in_init(struct stream_in *s, int fd);
void stream_in_free(struct stream_in *s);
/* Reads exactly n bytes; -EPIPE if the stream ends first. */
int stream_in_read(struct stream_in *s, void *p, size_t n);
/* Reads and drops n bytes. */
int stream_in_skip(struct stream_in *s, uint64_t n);

uint64_t stream_now_ns(void);

#endif
