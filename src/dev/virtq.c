#include "dev/virtq.h"

#include <errno.h>
#include <string.h>

#include "vm/memory.h"

/* A descriptor as the driver lays it out (little-endian, 16 bytes). */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

_Static_assert(sizeof(struct virtq_desc) == 16, "virtq descriptor is 16 bytes");

/* Offsets inside the rings (spec 2.7.6 and 2.7.8). */
#define AVAIL_FLAGS        0
#define AVAIL_IDX          2
#define AVAIL_RING(i)      (4ULL + 2ULL * (i))
#define USED_IDX           2
#define USED_RING(i)       (4ULL + 8ULL * (i))

static bool is_power_of_two(uint32_t n) { return n && !(n & (n - 1)); }

/* Size and alignment only: the cheap part of virtq_check_layout, run before
 * every ring access so that nothing below can be handed a nonsense queue. */
static bool virtq_shape_ok(const struct virtq *q)
{
	return is_power_of_two(q->size) && q->size <= q->max_size && q->desc % 16 == 0 &&
	       q->avail % 2 == 0 && q->used % 4 == 0;
}

static bool virtq_usable(const struct virtq *q) { return q->ready && virtq_shape_ok(q); }

void virtq_init(struct virtq *q, struct gmem *mem, uint16_t max_size)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->max_size = max_size;
	q->size = max_size;
}

void virtq_reset(struct virtq *q) { virtq_init(q, q->mem, q->max_size); }

int virtq_check_layout(const struct virtq *q)
{
	if (!virtq_shape_ok(q))
		return -EINVAL;
	if (!gmem_ptr(q->mem, q->desc, VIRTQ_DESC_BYTES(q->size)) ||
	    !gmem_ptr(q->mem, q->avail, VIRTQ_AVAIL_BYTES(q->size)) ||
	    !gmem_ptr(q->mem, q->used, VIRTQ_USED_BYTES(q->size)))
		return -EINVAL;
	return 0;
}

/* Ring fields are shared with a running guest: 16-bit atomic accesses (the
 * layout check guarantees natural alignment). Loads acquire, so what the driver
 * wrote before an index is seen after it; stores release, so what the device
 * wrote before (used elements, data) is visible before the index. */
static int ring_load16(const struct virtq *q, uint64_t gpa, uint16_t *val)
{
	uint16_t *p = gmem_ptr(q->mem, gpa, 2);

	if (!p)
		return -EINVAL;
	*val = __atomic_load_n(p, __ATOMIC_ACQUIRE);
	return 0;
}

static int ring_store16(struct virtq *q, uint64_t gpa, uint16_t val)
{
	uint16_t *p = gmem_ptr_for_write(q->mem, gpa, 2);

	if (!p)
		return -EINVAL;
	__atomic_store_n(p, val, __ATOMIC_RELEASE);
	gmem_mark_dirty(q->mem, gpa, 2); /* again, now that the value is there */
	return 0;
}

int virtq_avail_count(struct virtq *q)
{
	uint16_t idx, pending;

	if (!q->ready)
		return 0;
	if (!virtq_shape_ok(q))
		return -EINVAL;
	/* Acquire: the ring entries we read next were written before idx. */
	if (ring_load16(q, q->avail + AVAIL_IDX, &idx))
		return -EINVAL;
	pending = (uint16_t)(idx - q->last_avail_idx);
	if (pending > q->size) /* the driver cannot have more than size chains out */
		return -EINVAL;
	return pending;
}

static int chain_add_seg(const struct virtq *q, struct virtq_chain *c, const struct virtq_desc *d)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;

	if (c->nsegs == VIRTQ_MAX_SEGS)
		return -EINVAL;
	if (!writable && c->nsegs != c->nreadable) /* readable after writable */
		return -EINVAL;
	if (!gmem_ptr(q->mem, d->addr, d->len))
		return -EINVAL;
	c->segs[c->nsegs++] = (struct virtq_seg){ .gpa = d->addr, .len = d->len,
						  .writable = writable };
	if (writable) {
		c->writable_len += d->len;
	} else {
		c->readable_len += d->len;
		c->nreadable++;
	}
	return 0;
}

static int chain_walk_indirect(const struct virtq *q, struct virtq_chain *c,
			       const struct virtq_desc *ind);

/*
 * Follows a chain through a descriptor table of `entries` from `first`. A
 * chain visits each entry at most once, so one step more means a loop.
 */
static int chain_walk_table(const struct virtq *q, struct virtq_chain *c, uint64_t table,
			    uint32_t entries, uint32_t first, bool in_indirect)
{
	uint32_t i = first, steps = 0;
	struct virtq_desc d;
	int ret;

	for (;;) {
		if (i >= entries || ++steps > entries)
			return -EINVAL;
		if (gmem_read(q->mem, table + (uint64_t)i * sizeof(d), &d, sizeof(d)))
			return -EINVAL;
		if (d.flags & VIRTQ_DESC_F_INDIRECT) /* no nesting */
			return in_indirect ? -EINVAL : chain_walk_indirect(q, c, &d);
		ret = chain_add_seg(q, c, &d);
		if (ret < 0)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

/* An indirect descriptor points at a table of len/16 descriptors whose chain
 * starts at entry 0 and ends the whole chain (it may not carry NEXT itself). */
static int chain_walk_indirect(const struct virtq *q, struct virtq_chain *c,
			       const struct virtq_desc *ind)
{
	if (!q->indirect || (ind->flags & VIRTQ_DESC_F_NEXT) || ind->len == 0 ||
	    ind->len % sizeof(struct virtq_desc) != 0 || !gmem_ptr(q->mem, ind->addr, ind->len))
		return -EINVAL;
	return chain_walk_table(q, c, ind->addr, ind->len / sizeof(struct virtq_desc), 0, true);
}

static int chain_walk(const struct virtq *q, uint16_t head, struct virtq_chain *c)
{
	return chain_walk_table(q, c, q->desc, q->size, head, false);
}

int virtq_pop_avail(struct virtq *q, struct virtq_chain *c)
{
	int pending = virtq_avail_count(q);
	uint16_t slot, head;
	int ret;

	if (pending <= 0)
		return pending;
	slot = q->last_avail_idx & (q->size - 1);
	if (ring_load16(q, q->avail + AVAIL_RING(slot), &head))
		return -EINVAL;
	c->mem = q->mem;
	c->head = head;
	c->nsegs = c->nreadable = 0;
	c->readable_len = c->writable_len = 0;
	ret = chain_walk(q, head, c);
	if (ret < 0)
		return ret;
	q->last_avail_idx++;
	return 1;
}

void virtq_unpop_avail(struct virtq *q) { q->last_avail_idx--; }

int virtq_push_used(struct virtq *q, uint16_t head, uint32_t written_len)
{
	uint64_t gpa;
	uint32_t *elem;

	if (!virtq_usable(q) || head >= q->size)
		return -EINVAL;
	gpa = q->used + USED_RING(q->used_idx & (q->size - 1));
	elem = gmem_ptr_for_write(q->mem, gpa, 8);
	if (!elem)
		return -EINVAL;
	__atomic_store_n(&elem[0], (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n(&elem[1], written_len, __ATOMIC_RELAXED);
	gmem_mark_dirty(q->mem, gpa, 8);
	q->used_idx++;
	/* Release: the element (and the data the device wrote) before the index. */
	return ring_store16(q, q->used + USED_IDX, q->used_idx);
}

bool virtq_needs_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled_used, new = q->used_idx, val;

	q->signalled_used = new;
	if (!virtq_usable(q) || old == new)
		return false;
	/* Full fence: used->idx must be visible before we read the driver's
	 * suppression state, or a driver re-enabling interrupts after reading
	 * the old index would never hear about the new one. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx) {
		/* used_event sits after the avail ring; interrupt iff it lies in (old, new]. */
		if (ring_load16(q, q->avail + AVAIL_RING(q->size), &val))
			return true;
		return (uint16_t)(new - val - 1) < (uint16_t)(new - old);
	}
	if (ring_load16(q, q->avail + AVAIL_FLAGS, &val))
		return true;
	return !(val & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

bool virtq_enable_notify(struct virtq *q)
{
	if (!q->ready)
		return false;
	if (q->event_idx && virtq_shape_ok(q)) {
		/* avail_event sits after the used ring: "notify me when you make
		 * last_avail_idx available". */
		if (ring_store16(q, q->used + USED_RING(q->size), q->last_avail_idx))
			return true;
		/* The store must be visible before we look at avail->idx again,
		 * or a chain added in between goes unnotified (lost wake-up). */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	/* Errors count as "more work": the caller's next pop reports them. */
	return virtq_avail_count(q) != 0;
}

/* Calls fn for each guest range making up [offset, offset+len) of the readable
 * or writable part of the chain. */
typedef int (*chain_range_fn)(const struct virtq_chain *c, uint64_t gpa, uint64_t len,
			      void *ctx);

static int chain_for_range(const struct virtq_chain *c, bool writable, uint64_t offset,
			   uint64_t len, chain_range_fn fn, void *ctx)
{
	uint16_t first = writable ? c->nreadable : 0;
	uint16_t end = writable ? c->nsegs : c->nreadable;
	uint64_t total = writable ? c->writable_len : c->readable_len;
	int ret;

	if (offset > total || len > total - offset)
		return -EINVAL;
	for (uint16_t i = first; i < end && len > 0; i++) {
		const struct virtq_seg *s = &c->segs[i];
		uint64_t n;

		if (offset >= s->len) {
			offset -= s->len;
			continue;
		}
		n = s->len - offset < len ? s->len - offset : len;
		ret = fn(c, s->gpa + offset, n, ctx);
		if (ret < 0)
			return ret;
		offset = 0;
		len -= n;
	}
	return 0;
}

static int range_read(const struct virtq_chain *c, uint64_t gpa, uint64_t len, void *ctx)
{
	uint8_t **buf = ctx;

	if (gmem_read(c->mem, gpa, *buf, len))
		return -EINVAL;
	*buf += len;
	return 0;
}

static int range_write(const struct virtq_chain *c, uint64_t gpa, uint64_t len, void *ctx)
{
	const uint8_t **buf = ctx;

	if (gmem_write(c->mem, gpa, *buf, len))
		return -EINVAL;
	gmem_mark_dirty(c->mem, gpa, len);
	*buf += len;
	return 0;
}

static int range_mark(const struct virtq_chain *c, uint64_t gpa, uint64_t len, void *ctx)
{
	(void)ctx;
	gmem_mark_dirty(c->mem, gpa, len);
	return 0;
}

struct iov_fill {
	bool writable;
	struct iovec *iov;
	int n;
	int max;
};

static int range_iov(const struct virtq_chain *c, uint64_t gpa, uint64_t len, void *ctx)
{
	struct iov_fill *f = ctx;
	void *p = f->writable ? gmem_ptr_for_write(c->mem, gpa, len) : gmem_ptr(c->mem, gpa, len);

	if (!p || f->n == f->max)
		return -EINVAL;
	f->iov[f->n++] = (struct iovec){ .iov_base = p, .iov_len = len };
	return 0;
}

int virtq_chain_read(const struct virtq_chain *c, uint64_t offset, void *buf, uint64_t len)
{
	uint8_t *p = buf;

	return chain_for_range(c, false, offset, len, range_read, &p);
}

int virtq_chain_write(const struct virtq_chain *c, uint64_t offset, const void *buf,
		      uint64_t len)
{
	const uint8_t *p = buf;

	return chain_for_range(c, true, offset, len, range_write, &p);
}

int virtq_chain_iov(const struct virtq_chain *c, bool writable, uint64_t offset, uint64_t len,
		    struct iovec *iov, int max_iov)
{
	struct iov_fill f = { .writable = writable, .iov = iov, .n = 0, .max = max_iov };
	int ret = chain_for_range(c, writable, offset, len, range_iov, &f);

	return ret < 0 ? ret : f.n;
}

void virtq_chain_written(const struct virtq_chain *c, uint64_t offset, uint64_t len)
{
	chain_for_range(c, true, offset, len, range_mark, NULL);
}

void virtq_save(const struct virtq *q, struct sbuf *out)
{
	sbuf_put_u16(out, q->size);
	sbuf_put_u8(out, q->ready);
	sbuf_put_u8(out, q->event_idx);
	sbuf_put_u8(out, q->indirect);
	sbuf_put_u64(out, q->desc);
	sbuf_put_u64(out, q->avail);
	sbuf_put_u64(out, q->used);
	sbuf_put_u16(out, q->last_avail_idx);
	sbuf_put_u16(out, q->used_idx);
	sbuf_put_u16(out, q->signalled_used);
}

int virtq_load(struct virtq *q, struct sbuf_reader *in)
{
	struct virtq t = *q; /* keeps mem and max_size: those belong to the device */

	t.size = sbuf_get_u16(in);
	t.ready = sbuf_get_u8(in);
	t.event_idx = sbuf_get_u8(in);
	t.indirect = sbuf_get_u8(in);
	t.desc = sbuf_get_u64(in);
	t.avail = sbuf_get_u64(in);
	t.used = sbuf_get_u64(in);
	t.last_avail_idx = sbuf_get_u16(in);
	t.used_idx = sbuf_get_u16(in);
	t.signalled_used = sbuf_get_u16(in);
	if (sbuf_reader_error(in))
		return -EINVAL;
	if (t.size > t.max_size || t.ready > 1 || t.event_idx > 1 || t.indirect > 1)
		return -EINVAL;
	/* A ready queue always has a valid layout (the transport refuses others),
	 * and the device never has more than size chains taken but not returned. */
	if (t.ready && (virtq_check_layout(&t) ||
			(uint16_t)(t.last_avail_idx - t.used_idx) > t.size))
		return -EINVAL;
	*q = t;
	return 0;
}
