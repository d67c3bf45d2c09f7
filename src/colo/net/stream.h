/*
 * The secondary's TCP byte stream of one connection, as the comparator keeps
 * it: the bytes beyond the last verified position, in the PRIMARY's sequence
 * space, contiguous from `base`, plus segments that arrived beyond a gap
 * (out of order) until the gap fills. It counts the secondary segments whose
 * bytes it still holds, so queue limits can be expressed in frames.
 *
 * Until the stream position is known (a connection first seen mid-stream),
 * the stream is unsynced and every segment waits in the out-of-order list;
 * colo_stream_sync() fixes the position and merges what fits.
 */
#ifndef LOCKSTEP_COLO_NET_STREAM_H
#define LOCKSTEP_COLO_NET_STREAM_H

#include <stdbool.h>
#include <stdint.h>

/* Bytes buffered per stream, whatever the frame count: beyond it -> FULL. */
#define COLO_STREAM_MAX_BYTES (16u << 20)

struct colo_stream_ooo;

struct colo_stream {
	bool synced;
	uint32_t base;             /* sequence number of buf[start] */
	uint8_t *buf;
	uint32_t cap, start, len;
	uint32_t *ends;            /* ring: end sequence of each segment still buffered */
	uint32_t ends_cap, ends_head, ends_count;
	struct colo_stream_ooo *ooo; /* sorted by sequence number */
	uint32_t ooo_count;
	uint32_t ooo_bytes;
};

enum colo_stream_result {
	COLO_STREAM_OK = 0,
	COLO_STREAM_DIFF,  /* bytes differ from bytes already buffered */
	COLO_STREAM_FULL,  /* frame or byte limit reached (or no memory): not stored */
};

void colo_stream_init(struct colo_stream *s);
/* Drops everything and frees the memory; unsynced afterwards. */
void colo_stream_free(struct colo_stream *s);
/* Drops every byte and segment, unsynced afterwards; keeps a small buffer
 * for reuse (a checkpoint does this to every connection). */
void colo_stream_reset(struct colo_stream *s);
/* Sets the position: buffered bytes are dropped, out-of-order segments are
 * trimmed to base and merged. DIFF if merging found overlapping segments
 * that disagree. */
enum colo_stream_result colo_stream_sync(struct colo_stream *s, uint32_t base);
/*
 * Adds the secondary's bytes [seq, seq + len). Bytes before base are ignored
 * (verified already), bytes overlapping the buffer are compared with it,
 * bytes beyond it are appended, bytes beyond a gap are kept out of order.
 * max_frames bounds buffered + out-of-order segments.
 */
enum colo_stream_result colo_stream_add(struct colo_stream *s, uint32_t seq, const uint8_t *data,
					uint32_t len, uint32_t max_frames);
/* n bytes verified: drop them from the front (n <= s->len). */
void colo_stream_consume(struct colo_stream *s, uint32_t n);

static inline const uint8_t *colo_stream_data(const struct colo_stream *s)
{
	return s->buf + s->start;
}
static inline uint32_t colo_stream_end(const struct colo_stream *s) { return s->base + s->len; }
static inline uint32_t colo_stream_frames(const struct colo_stream *s)
{
	return s->ends_count + s->ooo_count;
}
static inline uint64_t colo_stream_bytes(const struct colo_stream *s)
{
	return (uint64_t)s->len + s->ooo_bytes;
}
static inline bool colo_stream_empty(const struct colo_stream *s)
{
	return s->len == 0 && s->ooo_count == 0;
}

#endif
