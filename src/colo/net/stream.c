/* The secondary's buffered TCP byte stream (see colo_stream.h). */
#include "colo/net/stream.h"

#include <stdlib.h>
#include <string.h>

#include "net/packet.h"

#define MIN_BUF 4096
#define MIN_ENDS 16
/* A reset keeps a buffer up to this size for the connection's next bytes. */
#define KEEP_BUF (256u * 1024)

struct colo_stream_ooo {
	struct colo_stream_ooo *next;
	uint32_t seq, len;
	uint8_t data[];
};

void colo_stream_init(struct colo_stream *s)
{
	memset(s, 0, sizeof(*s));
}

static void free_ooo(struct colo_stream *s)
{
	while (s->ooo) {
		struct colo_stream_ooo *n = s->ooo;

		s->ooo = n->next;
		free(n);
	}
	s->ooo_count = 0;
	s->ooo_bytes = 0;
}

void colo_stream_free(struct colo_stream *s)
{
	free_ooo(s);
	free(s->buf);
	free(s->ends);
	colo_stream_init(s);
}

static void drop_buffer(struct colo_stream *s)
{
	s->start = s->len = 0;
	s->ends_head = s->ends_count = 0;
}

void colo_stream_reset(struct colo_stream *s)
{
	free_ooo(s);
	drop_buffer(s);
	s->synced = false;
	if (s->cap > KEEP_BUF) {
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
}

/* Room for n more bytes at the end of the buffer, moving or growing it. */
static bool reserve_bytes(struct colo_stream *s, uint32_t n)
{
	uint32_t need = s->len + n, cap;
	uint8_t *p;

	if (n > COLO_STREAM_MAX_BYTES || need > COLO_STREAM_MAX_BYTES)
		return false;
	if (s->start + need <= s->cap)
		return true;
	if (need <= s->cap) {
		memmove(s->buf, s->buf + s->start, s->len);
		s->start = 0;
		return true;
	}
	cap = s->cap ? s->cap : MIN_BUF;
	while (cap < need)
		cap *= 2;
	p = malloc(cap);
	if (!p)
		return false;
	if (s->len)
		memcpy(p, s->buf + s->start, s->len);
	free(s->buf);
	s->buf = p;
	s->cap = cap;
	s->start = 0;
	return true;
}

static bool reserve_end_slot(struct colo_stream *s)
{
	uint32_t cap;
	uint32_t *p;

	if (s->ends_count < s->ends_cap)
		return true;
	cap = s->ends_cap ? s->ends_cap * 2 : MIN_ENDS;
	p = malloc((size_t)cap * sizeof(*p));
	if (!p)
		return false;
	for (uint32_t i = 0; i < s->ends_count; i++)
		p[i] = s->ends[(s->ends_head + i) % s->ends_cap];
	free(s->ends);
	s->ends = p;
	s->ends_cap = cap;
	s->ends_head = 0;
	return true;
}

static bool append(struct colo_stream *s, const uint8_t *data, uint32_t n)
{
	if (!reserve_end_slot(s) || !reserve_bytes(s, n))
		return false;
	memcpy(s->buf + s->start + s->len, data, n);
	s->len += n;
	s->ends[(s->ends_head + s->ends_count) % s->ends_cap] = s->base + s->len;
	s->ends_count++;
	return true;
}

void colo_stream_consume(struct colo_stream *s, uint32_t n)
{
	if (n > s->len)
		n = s->len;
	s->start += n;
	s->len -= n;
	s->base += n;
	if (s->len == 0)
		s->start = 0;
	while (s->ends_count && seq_le(s->ends[s->ends_head], s->base)) {
		s->ends_head = (s->ends_head + 1) % s->ends_cap;
		s->ends_count--;
	}
}

/* Takes [seq, seq + len) with seq <= the buffered end: the part before base
 * is verified already, the overlap must equal the buffer, the rest is new. */
static enum colo_stream_result absorb(struct colo_stream *s, uint32_t seq, const uint8_t *data,
				      uint32_t len, uint32_t max_frames)
{
	uint32_t off, overlap;

	if (seq_le(seq + len, s->base))
		return COLO_STREAM_OK;
	if (seq_lt(seq, s->base)) {
		uint32_t skip = s->base - seq;

		seq += skip;
		data += skip;
		len -= skip;
	}
	off = seq - s->base;
	overlap = s->len - off < len ? s->len - off : len;
	if (overlap && memcmp(s->buf + s->start + off, data, overlap) != 0)
		return COLO_STREAM_DIFF;
	if (overlap == len)
		return COLO_STREAM_OK;
	if (colo_stream_frames(s) >= max_frames || !append(s, data + overlap, len - overlap))
		return COLO_STREAM_FULL;
	return COLO_STREAM_OK;
}

/* Moves every out-of-order segment that now touches the buffer into it.
 * Repeats until nothing moves, so the list order (meaningless for hostile
 * sequence numbers far apart) never leaves a mergeable segment behind. */
static enum colo_stream_result merge_ooo(struct colo_stream *s)
{
	bool progress = true;

	while (progress) {
		progress = false;
		for (struct colo_stream_ooo **pp = &s->ooo; *pp;) {
			struct colo_stream_ooo *n = *pp;
			enum colo_stream_result r;

			if (seq_gt(n->seq, colo_stream_end(s))) {
				pp = &n->next;
				continue;
			}
			*pp = n->next;
			s->ooo_count--;
			s->ooo_bytes -= n->len;
			/* Already counted as a frame: the limit cannot refuse it. */
			r = absorb(s, n->seq, n->data, n->len, UINT32_MAX);
			free(n);
			if (r != COLO_STREAM_OK)
				return r;
			progress = true;
		}
	}
	return COLO_STREAM_OK;
}

static enum colo_stream_result insert_ooo(struct colo_stream *s, uint32_t seq, const uint8_t *data,
					  uint32_t len, uint32_t max_frames)
{
	struct colo_stream_ooo *n, **pp = &s->ooo;

	if (colo_stream_frames(s) >= max_frames || len > COLO_STREAM_MAX_BYTES - s->ooo_bytes)
		return COLO_STREAM_FULL;
	n = malloc(sizeof(*n) + len);
	if (!n)
		return COLO_STREAM_FULL;
	n->seq = seq;
	n->len = len;
	memcpy(n->data, data, len);
	while (*pp && seq_le((*pp)->seq, seq))
		pp = &(*pp)->next;
	n->next = *pp;
	*pp = n;
	s->ooo_count++;
	s->ooo_bytes += len;
	return COLO_STREAM_OK;
}

enum colo_stream_result colo_stream_sync(struct colo_stream *s, uint32_t base)
{
	drop_buffer(s);
	s->base = base;
	s->synced = true;
	return merge_ooo(s);
}

enum colo_stream_result colo_stream_add(struct colo_stream *s, uint32_t seq, const uint8_t *data,
					uint32_t len, uint32_t max_frames)
{
	enum colo_stream_result r;

	if (len == 0)
		return COLO_STREAM_OK;
	if (!s->synced || seq_gt(seq, colo_stream_end(s)))
		return insert_ooo(s, seq, data, len, max_frames);
	r = absorb(s, seq, data, len, max_frames);
	if (r != COLO_STREAM_OK)
		return r;
	return s->ooo ? merge_ooo(s) : COLO_STREAM_OK;
}
