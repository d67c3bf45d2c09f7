/* A growable byte queue: append at the tail, consume from the head. */
#ifndef GUEST_SERVICES_BUF_H
#define GUEST_SERVICES_BUF_H

#include "portable.h"

struct buf {
	uint8_t *data;
	size_t off; /* consumed bytes at the front, reclaimed lazily */
	size_t len; /* end of the valid bytes */
	size_t cap;
};

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline uint8_t *buf_head(const struct buf *b) { return b->data + b->off; }
/* 0, or -1 when memory runs out (the buffer is unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);
/* Room for n more bytes at buf_head(b) + buf_used(b); NULL when memory runs out.
 * Commit what was written there with buf_commit. */
uint8_t *buf_reserve(struct buf *b, size_t n);
static inline void buf_commit(struct buf *b, size_t n) { b->len += n; }
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

#endif
