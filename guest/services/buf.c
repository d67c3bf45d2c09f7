#include "buf.h"

#define BUF_MIN_CAP 512

uint8_t *buf_reserve(struct buf *b, size_t n)
{
	size_t used = buf_used(b), cap;
	uint8_t *p;

	if (b->len + n <= b->cap)
		return b->data + b->len;
	if (b->off && used + n <= b->cap) { /* room enough once the consumed front is gone */
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		return b->data + b->len;
	}
	for (cap = b->cap ? b->cap : BUF_MIN_CAP; cap < used + n; cap *= 2)
		if (cap > (SIZE_MAX >> 2))
			return NULL;
	p = malloc(cap);
	if (!p)
		return NULL;
	if (used)
		memcpy(p, b->data + b->off, used);
	free(b->data);
	b->data = p;
	b->cap = cap;
	b->off = 0;
	b->len = used;
	return b->data + b->len;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (n == 0)
		return 0;
	dst = buf_reserve(b, n);
	if (!dst)
		return -1;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n < buf_used(b) ? n : buf_used(b);
	if (b->off == b->len)
		b->off = b->len = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){ 0 };
}
