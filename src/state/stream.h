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

struct sbuf;

struct stream_out {
	int fd;
	struct sbuf *capture; /* set: bytes are appended here instead of written to fd */
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
	int in_memory;
};

int stream_out_init(struct stream_out *s, int fd);
/* A stream that collects its bytes in b (for a length-prefixed blob). */
int stream_out_init_capture(struct stream_out *s, struct sbuf *b);
void stream_out_free(struct stream_out *s);
int stream_out_write(struct stream_out *s, const void *p, size_t n);
/* Room for n (<= STREAM_BUF_SIZE) bytes in the buffer, to fill in place and
 * then stream_out_commit; NULL after an error. Saves a copy of large data. */
uint8_t *stream_out_reserve(struct stream_out *s, size_t n);
void stream_out_commit(struct stream_out *s, size_t n);
int stream_out_flush(struct stream_out *s);
/* Rate limit from now on (bytes per second, 0 = none). */
void stream_out_set_bandwidth(struct stream_out *s, uint64_t bytes_per_s);

int stream_in_init(struct stream_in *s, int fd);
/* A stream over bytes in memory (not copied; they must outlive the stream). */
void stream_in_init_mem(struct stream_in *s, const void *data, size_t len);
/* Bytes already buffered: a read of that many will not block. */
size_t stream_in_buffered(const struct stream_in *s);
void stream_in_free(struct stream_in *s);
/* Reads exactly n bytes; -EPIPE if the stream ends first. */
int stream_in_read(struct stream_in *s, void *p, size_t n);
/* Reads and drops n bytes. */
int stream_in_skip(struct stream_in *s, uint64_t n);

uint64_t stream_now_ns(void);

#endif
