#include "kv_log.h"

#include "buf.h"
#include "crc32.h"

#define SECTOR BLOCKDEV_SECTOR
#define LOG_MAGIC "LOCKSTEP-KVLOG1"
#define LOG_VERSION 1
#define HEADER_CRC_AT 32
#define REC_MAGIC 0x52564b4cu
#define REC_HDR 32
#define REC_CRC_FROM 12
#define IO_SECTORS 128 /* per request: 64 KiB */
#define READ_AHEAD (256 * 1024)

unsigned int lockstep_rand(void); /* guest/netstack/isn.c */

static const struct blockdev *dev;
static uint64_t log_id, next_seq, tail; /* tail: where the next record goes */
static uint8_t tail_sector[SECTOR];     /* the sector holding tail, as on disk */
static struct buf pending, wbuf;
static bool broken;

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint64_t dev_bytes(void) { return dev->sectors * SECTOR; }

static int dev_io(bool write, uint64_t sector, uint8_t *p, size_t nsectors)
{
	while (nsectors) {
		uint32_t n = nsectors > IO_SECTORS ? IO_SECTORS : (uint32_t)nsectors;
		int r = write ? dev->write(dev->ctx, sector, p, n) : dev->read(dev->ctx, sector, p, n);

		if (r < 0)
			return -1;
		sector += n;
		p += (size_t)n * SECTOR;
		nsectors -= n;
	}
	return 0;
}

static uint32_t record_crc(const uint8_t *rec, size_t len)
{
	return crc32_update(crc32_update(0, &log_id, 8), rec + REC_CRC_FROM, len - REC_CRC_FROM);
}

/* ---- replay: a window of the disk, read ahead in big requests ---- */

struct reader {
	uint64_t base; /* disk offset of data[0] */
	size_t have;
	struct buf b;
};

/* n bytes at disk offset off, or NULL past the end of the disk or on an I/O error. */
static const uint8_t *reader_get(struct reader *r, uint64_t off, size_t n)
{
	uint64_t base = off / SECTOR * SECTOR, want;

	if (n > dev_bytes() || off > dev_bytes() - n)
		return NULL;
	if (off >= r->base && off + n <= r->base + r->have)
		return r->b.data + (off - r->base);
	want = (off + n - base + SECTOR - 1) / SECTOR * SECTOR;
	if (want < READ_AHEAD)
		want = READ_AHEAD;
	if (want > dev_bytes() - base)
		want = dev_bytes() - base;
	r->b.off = r->b.len = 0;
	if (!buf_reserve(&r->b, want) || dev_io(false, base / SECTOR, r->b.data, want / SECTOR) < 0) {
		r->have = 0;
		return NULL;
	}
	r->base = base;
	r->have = want;
	return r->b.data + (off - base);
}

/* The record at off if it is intact and next in sequence; its length in *len. */
static const uint8_t *next_record(struct reader *r, uint64_t off, uint32_t *len)
{
	const uint8_t *h = reader_get(r, off, REC_HDR), *rec;
	uint64_t klen, vlen;

	if (!h || get32(h) != REC_MAGIC || get64(h + 16) != next_seq)
		return NULL;
	*len = get32(h + 4);
	klen = get32(h + 24);
	vlen = get32(h + 28);
	if (*len != REC_HDR + klen + vlen)
		return NULL;
	rec = reader_get(r, off, *len);
	if (!rec || record_crc(rec, *len) != get32(rec + 8))
		return NULL;
	return rec;
}

static long replay(kv_log_apply_fn apply)
{
	struct reader r = { 0 };
	uint64_t off = SECTOR;
	const uint8_t *rec;
	uint32_t len;
	long n = 0;

	while ((rec = next_record(&r, off, &len)) != NULL) {
		uint32_t klen = get32(rec + 24);

		if (apply((enum kv_log_op)get32(rec + 12), rec + REC_HDR, klen, rec + REC_HDR + klen,
			  get32(rec + 28)) < 0) {
			buf_free(&r.b);
			return -1;
		}
		off += len;
		next_seq++;
		n++;
	}
	tail = off;
	memset(tail_sector, 0, sizeof(tail_sector));
	rec = reader_get(&r, off / SECTOR * SECTOR, SECTOR);
	if (rec)
		memcpy(tail_sector, rec, off % SECTOR);
	buf_free(&r.b);
	return n;
}

/* ---- the header sector ---- */

static bool read_header(void)
{
	uint8_t s[SECTOR];

	if (dev_io(false, 0, s, 1) < 0 || memcmp(s, LOG_MAGIC, 16) != 0 || get32(s + 16) != LOG_VERSION ||
	    get32(s + HEADER_CRC_AT) != crc32_update(0, s, HEADER_CRC_AT))
		return false;
	log_id = get64(s + 24);
	return true;
}

static int format(void)
{
	uint8_t s[SECTOR] = { 0 };

	log_id = (uint64_t)lockstep_rand() << 32 | lockstep_rand();
	memcpy(s, LOG_MAGIC, 16);
	put32(s + 16, LOG_VERSION);
	put32(s + 20, SECTOR);
	put64(s + 24, log_id);
	put32(s + HEADER_CRC_AT, crc32_update(0, s, HEADER_CRC_AT));
	if (dev_io(true, 0, s, 1) < 0 || dev->flush(dev->ctx) < 0)
		return -1;
	return 0;
}

long kv_log_open(const struct blockdev *d, kv_log_apply_fn apply)
{
	dev = d;
	next_seq = 1;
	broken = false;
	buf_free(&pending);
	if (dev->sectors < 2)
		return -1;
	if (!read_header() && format() < 0)
		return -1;
	return replay(apply);
}

/* ---- appending ---- */

int kv_log_append(enum kv_log_op op, const void *key, size_t klen, const void *val, size_t vlen)
{
	size_t len = REC_HDR + klen + vlen;
	uint8_t *rec;

	if (broken || !dev || klen > UINT32_MAX || vlen > UINT32_MAX || len > UINT32_MAX)
		return -1;
	if (tail + buf_used(&pending) + len > dev_bytes())
		return KV_LOG_FULL;
	rec = buf_reserve(&pending, len);
	if (!rec)
		return -1;
	put32(rec, REC_MAGIC);
	put32(rec + 4, (uint32_t)len);
	put32(rec + 12, op);
	put64(rec + 16, next_seq++);
	put32(rec + 24, (uint32_t)klen);
	put32(rec + 28, (uint32_t)vlen);
	if (klen)
		memcpy(rec + REC_HDR, key, klen);
	if (vlen)
		memcpy(rec + REC_HDR + klen, val, vlen);
	put32(rec + 8, record_crc(rec, len));
	buf_commit(&pending, len);
	return 0;
}

bool kv_log_pending(void) { return buf_used(&pending) > 0; }

int kv_log_commit(void)
{
	size_t used = buf_used(&pending), prefix = tail % SECTOR, total;
	uint8_t *w;

	if (!used)
		return 0;
	total = (prefix + used + SECTOR - 1) / SECTOR * SECTOR;
	wbuf.off = wbuf.len = 0;
	w = buf_reserve(&wbuf, total);
	if (w) {
		/* The tail's sector is rewritten whole: its old bytes, then the new records. */
		memcpy(w, tail_sector, prefix);
		memcpy(w + prefix, buf_head(&pending), used);
		memset(w + prefix + used, 0, total - prefix - used);
	}
	if (!w || dev_io(true, tail / SECTOR, w, total / SECTOR) < 0 || dev->flush(dev->ctx) < 0) {
		broken = true;
		buf_free(&pending);
		return -1;
	}
	tail += used;
	memset(tail_sector, 0, sizeof(tail_sector));
	if (tail % SECTOR)
		memcpy(tail_sector, w + total - SECTOR, tail % SECTOR);
	buf_consume(&pending, used);
	return 0;
}

uint64_t kv_log_bytes(void) { return tail; }
