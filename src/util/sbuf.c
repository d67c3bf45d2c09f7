#include "util/sbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *b) { memset(b, 0, sizeof(*b)); }

void sbuf_free(struct sbuf *b)
{
	free(b->data);
	sbuf_init(b);
}

void sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	b->error = 0;
}

void sbuf_put(struct sbuf *b, const void *p, size_t n)
{
	if (b->error)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->error = -ENOMEM;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void *sbuf_set_len(struct sbuf *b, size_t n)
{
	b->len = 0;
	b->error = 0;
	if (n > b->cap || !b->data) {
		uint8_t *d = realloc(b->data, n ? n : 1);

		if (!d) {
			b->error = -ENOMEM;
			return NULL;
		}
		b->data = d;
		b->cap = n ? n : 1;
	}
	b->len = n;
	return b->data;
}

void sbuf_put_u8(struct sbuf *b, uint8_t v) { sbuf_put(b, &v, 1); }

void sbuf_put_u16(struct sbuf *b, uint16_t v)
{
	uint8_t le[2] = { v, v >> 8 };

	sbuf_put(b, le, 2);
}

void sbuf_put_u32(struct sbuf *b, uint32_t v)
{
	sbuf_put_u16(b, v);
	sbuf_put_u16(b, v >> 16);
}

void sbuf_put_u64(struct sbuf *b, uint64_t v)
{
	sbuf_put_u32(b, v);
	sbuf_put_u32(b, v >> 32);
}

void sbuf_reader_init(struct sbuf_reader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->error = 0;
}

int sbuf_get(struct sbuf_reader *r, void *p, size_t n)
{
	if (r->error || n > r->len - r->pos) {
		r->error = -EINVAL;
		memset(p, 0, n);
		return -EINVAL;
	}
	memcpy(p, r->data + r->pos, n);
	r->pos += n;
	return 0;
}

uint8_t sbuf_get_u8(struct sbuf_reader *r)
{
	uint8_t v;

	sbuf_get(r, &v, 1);
	return v;
}

uint16_t sbuf_get_u16(struct sbuf_reader *r)
{
	uint8_t le[2];

	sbuf_get(r, le, 2);
	return (uint16_t)(le[0] | le[1] << 8);
}

uint32_t sbuf_get_u32(struct sbuf_reader *r)
{
	uint32_t lo = sbuf_get_u16(r);

	return lo | (uint32_t)sbuf_get_u16(r) << 16;
}

uint64_t sbuf_get_u64(struct sbuf_reader *r)
{
	uint64_t lo = sbuf_get_u32(r);

	return lo | (uint64_t)sbuf_get_u32(r) << 32;
}

size_t sbuf_remaining(const struct sbuf_reader *r) { return r->len - r->pos; }

void sbuf_put_item(struct sbuf *b, uint32_t tag, const void *p, size_t len)
{
	sbuf_put_u32(b, tag);
	sbuf_put_u32(b, (uint32_t)len);
	sbuf_put(b, p, len);
}

int sbuf_get_item(struct sbuf_reader *r, uint32_t tag, void *p, size_t len)
{
	uint32_t got_tag = sbuf_get_u32(r);
	uint32_t got_len = sbuf_get_u32(r);

	if (r->error || got_tag != tag || got_len != len)
		return -EINVAL;
	return sbuf_get(r, p, len);
}

int sbuf_reader_error(const struct sbuf_reader *r) { return r->error; }
