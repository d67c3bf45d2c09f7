/*
 * Byte buffers for device and vCPU state: a growable little-endian writer and a
 * bounds-checked reader. The reader never reads past its end; after the first
 * short read every getter returns zero and sbuf_reader_error() reports -EINVAL,
 * so a loader can decode a whole record and check once.
 */
#ifndef LOCKSTEP_UTIL_SBUF_H
#define LOCKSTEP_UTIL_SBUF_H

#include <stddef.h>
#include <stdint.h>

struct sbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int error; /* -ENOMEM once an allocation failed */
};

void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
void sbuf_put(struct sbuf *b, const void *p, size_t n);
/* Makes the buffer exactly n bytes long (contents unspecified) and returns it, or NULL. */
void *sbuf_set_len(struct sbuf *b, size_t n);
void sbuf_put_u8(struct sbuf *b, uint8_t v);
void sbuf_put_u16(struct sbuf *b, uint16_t v);
void sbuf_put_u32(struct sbuf *b, uint32_t v);
void sbuf_put_u64(struct sbuf *b, uint64_t v);

struct sbuf_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	int error; /* -EINVAL once a read went past the end */
};

void sbuf_reader_init(struct sbuf_reader *r, const void *data, size_t len);
int sbuf_get(struct sbuf_reader *r, void *p, size_t n);
uint8_t sbuf_get_u8(struct sbuf_reader *r);
uint16_t sbuf_get_u16(struct sbuf_reader *r);
uint32_t sbuf_get_u32(struct sbuf_reader *r);
uint64_t sbuf_get_u64(struct sbuf_reader *r);
size_t sbuf_remaining(const struct sbuf_reader *r);

/*
 * Tagged items, the shape of the vCPU and platform records: u32 tag, u32
 * length, bytes. sbuf_get_item accepts only exactly `tag` with exactly `len`
 * bytes (-EINVAL otherwise).
 */
void sbuf_put_item(struct sbuf *b, uint32_t tag, const void *p, size_t len);
int sbuf_get_item(struct sbuf_reader *r, uint32_t tag, void *p, size_t len);
/* 0 when every read so far was in bounds, -EINVAL otherwise. */
int sbuf_reader_error(const struct sbuf_reader *r);

#endif
