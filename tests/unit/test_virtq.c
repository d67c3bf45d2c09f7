/*
 * Split virtqueue, device side: rings hand-built in a small guest memory, as
 * a driver would lay them out, and every way a driver can get them wrong.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dev/virtq.h"
#include "util/sbuf.h"
#include "vm/memory.h"

#define RAM_SIZE (4ULL << 20)
#define DESC  0x10000ULL
#define AVAIL 0x11000ULL
#define USED  0x12000ULL
#define BUF   0x20000ULL
#define TABLE 0x30000ULL /* indirect tables */
#define QSIZE 8

struct fixture {
	struct gmem mem;
	struct virtq q;
	uint16_t avail_idx; /* driver's copy */
	struct virtq_chain chain;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(gmem_init(&f.mem, RAM_SIZE), 0);
	virtq_init(&f.q, &f.mem, VIRTQ_MAX_SIZE);
	f.q.size = QSIZE;
	f.q.desc = DESC;
	f.q.avail = AVAIL;
	f.q.used = USED;
	f.q.ready = 1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	gmem_destroy(&f->mem);
	return 0;
}

/* ---- driver-side helpers ---- */

static void put_desc_at(struct fixture *f, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	uint8_t d[16];

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	assert_int_equal(gmem_write(&f->mem, table + 16ULL * i, d, 16), 0);
}

static void put_desc(struct fixture *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	put_desc_at(f, DESC, i, addr, len, flags, next);
}

static void put16(struct fixture *f, uint64_t gpa, uint16_t v)
{
	assert_int_equal(gmem_write(&f->mem, gpa, &v, 2), 0);
}

static uint16_t get16(struct fixture *f, uint64_t gpa)
{
	uint16_t v;

	assert_int_equal(gmem_read(&f->mem, gpa, &v, 2), 0);
	return v;
}

static uint32_t get32(struct fixture *f, uint64_t gpa)
{
	uint32_t v;

	assert_int_equal(gmem_read(&f->mem, gpa, &v, 4), 0);
	return v;
}

static void make_avail(struct fixture *f, uint16_t head)
{
	put16(f, AVAIL + 4 + 2ULL * (f->avail_idx % QSIZE), head);
	f->avail_idx++;
	put16(f, AVAIL + 2, f->avail_idx);
}

static void clear_dirty(struct fixture *f)
{
	memset(f->mem.vmm_dirty, 0, (gmem_page_count(&f->mem) + 63) / 64 * sizeof(uint64_t));
}

static int page_dirty(struct fixture *f, uint64_t gpa)
{
	int64_t p = gmem_page_index(&f->mem, gpa);

	return (f->mem.vmm_dirty[p / 64] >> (p % 64)) & 1;
}

/* ---- happy paths ---- */

static void test_empty_and_not_ready(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(virtq_avail_count(&f->q), 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 0);
	put_desc(f, 0, BUF, 64, 0, 0);
	make_avail(f, 0);
	f->q.ready = 0;
	assert_int_equal(virtq_avail_count(&f->q), 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 0);
	f->q.ready = 1;
	assert_int_equal(virtq_avail_count(&f->q), 1);
}

static void test_single_descriptor(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 3, BUF, 64, 0, 0);
	make_avail(f, 3);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.head, 3);
	assert_int_equal(f->chain.nsegs, 1);
	assert_int_equal(f->chain.nreadable, 1);
	assert_int_equal(f->chain.readable_len, 64);
	assert_int_equal(f->chain.writable_len, 0);
	assert_int_equal(f->chain.segs[0].gpa, BUF);
	assert_int_equal(f->q.last_avail_idx, 1);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 0);
}

static void test_chain_with_next(void **state)
{
	struct fixture *f = *state;
	const char hdr[] = "0123456789abcdef";
	uint8_t out[16], pattern[3] = { 0xaa, 0xbb, 0xcc }, back[3];

	/* Scattered indexes: 2 -> 5 -> 7, readable then two writable. */
	put_desc(f, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(f, 5, BUF + 0x1000, 100, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 7);
	put_desc(f, 7, BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	assert_int_equal(gmem_write(&f->mem, BUF, hdr, 16), 0);
	make_avail(f, 2);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.head, 2);
	assert_int_equal(f->chain.nsegs, 3);
	assert_int_equal(f->chain.nreadable, 1);
	assert_int_equal(f->chain.readable_len, 16);
	assert_int_equal(f->chain.writable_len, 101);
	assert_true(f->chain.segs[1].writable && f->chain.segs[2].writable);

	assert_int_equal(virtq_chain_read(&f->chain, 0, out, 16), 0);
	assert_memory_equal(out, hdr, 16);
	assert_int_equal(virtq_chain_read(&f->chain, 8, out, 8), 0);
	assert_memory_equal(out, hdr + 8, 8);
	assert_int_equal(virtq_chain_read(&f->chain, 8, out, 9), -EINVAL);

	/* A write straddling the two writable segments. */
	clear_dirty(f);
	assert_int_equal(virtq_chain_write(&f->chain, 98, pattern, 3), 0);
	assert_int_equal(gmem_read(&f->mem, BUF + 0x1000 + 98, back, 2), 0);
	assert_int_equal(gmem_read(&f->mem, BUF + 0x2000, back + 2, 1), 0);
	assert_memory_equal(back, pattern, 3);
	assert_true(page_dirty(f, BUF + 0x1000) && page_dirty(f, BUF + 0x2000));
	assert_false(page_dirty(f, BUF));
	assert_int_equal(virtq_chain_write(&f->chain, 100, pattern, 2), -EINVAL);
	assert_int_equal(virtq_chain_write(&f->chain, UINT64_MAX, pattern, 2), -EINVAL);
}

static void test_chain_iov(void **state)
{
	struct fixture *f = *state;
	struct iovec iov[4];

	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF + 0x1000, 512, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 2, BUF + 0x2000, 512, VIRTQ_DESC_F_NEXT, 3);
	put_desc(f, 3, BUF + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(virtq_chain_iov(&f->chain, false, 16, 1024, iov, 4), 2);
	assert_ptr_equal(iov[0].iov_base, gmem_ptr(&f->mem, BUF + 0x1000, 512));
	assert_int_equal(iov[1].iov_len, 512);
	assert_int_equal(virtq_chain_iov(&f->chain, false, 10, 10, iov, 4), 2);
	assert_int_equal(iov[0].iov_len, 6);
	assert_int_equal(iov[1].iov_len, 4);
	assert_int_equal(virtq_chain_iov(&f->chain, false, 16, 1024, iov, 1), -EINVAL);
	assert_int_equal(virtq_chain_iov(&f->chain, true, 0, 2, iov, 4), -EINVAL);
	assert_int_equal(virtq_chain_iov(&f->chain, true, 0, 1, iov, 4), 1);
	assert_true(page_dirty(f, BUF + 0x3000));
}

static void test_push_used_and_interrupt(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 4, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 4);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(virtq_push_used(&f->q, 4, 8), 0);
	assert_int_equal(get16(f, USED + 2), 1);
	assert_int_equal(get32(f, USED + 4), 4);
	assert_int_equal(get32(f, USED + 8), 8);
	assert_true(page_dirty(f, USED));
	assert_true(virtq_needs_interrupt(&f->q));
	assert_false(virtq_needs_interrupt(&f->q)); /* nothing new since */
	/* A head that cannot come from this queue. */
	assert_int_equal(virtq_push_used(&f->q, QSIZE, 0), -EINVAL);

	/* The slot wraps at size. */
	for (int i = 1; i <= QSIZE; i++) {
		make_avail(f, 4);
		assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
		assert_int_equal(virtq_push_used(&f->q, 4, (uint32_t)i), 0);
	}
	assert_int_equal(get16(f, USED + 2), QSIZE + 1);
	assert_int_equal(get32(f, USED + 4 + 8 * 0 + 4), QSIZE); /* slot 0 rewritten last */
}

static void test_no_interrupt_flag(void **state)
{
	struct fixture *f = *state;

	put16(f, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	put_desc(f, 0, BUF, 8, 0, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(virtq_push_used(&f->q, 0, 0), 0);
	assert_false(virtq_needs_interrupt(&f->q));
	put16(f, AVAIL, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(virtq_push_used(&f->q, 0, 0), 0);
	assert_true(virtq_needs_interrupt(&f->q));
}

static void push_one(struct fixture *f)
{
	make_avail(f, 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(virtq_push_used(&f->q, 0, 0), 0);
}

static void test_event_idx_interrupt(void **state)
{
	struct fixture *f = *state;
	uint64_t used_event = AVAIL + 4 + 2 * QSIZE;

	f->q.event_idx = 1;
	put_desc(f, 0, BUF, 8, 0, 0);
	put16(f, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT); /* ignored with EVENT_IDX */
	put16(f, used_event, 0);
	push_one(f); /* used 0 -> 1 crosses used_event 0 */
	assert_true(virtq_needs_interrupt(&f->q));
	push_one(f); /* 1 -> 2: not asked for */
	assert_false(virtq_needs_interrupt(&f->q));
	put16(f, used_event, 2);
	push_one(f); /* 2 -> 3 crosses 2 */
	assert_true(virtq_needs_interrupt(&f->q));
	put16(f, used_event, 3);
	push_one(f);
	push_one(f); /* batch 3 -> 5 crosses 3 */
	assert_true(virtq_needs_interrupt(&f->q));
	put16(f, used_event, 100);
	push_one(f);
	assert_false(virtq_needs_interrupt(&f->q));
}

static void test_enable_notify(void **state)
{
	struct fixture *f = *state;
	uint64_t avail_event = USED + 4 + 8 * QSIZE;

	put_desc(f, 0, BUF, 8, 0, 0);
	/* Without EVENT_IDX it only re-checks the ring. */
	assert_false(virtq_enable_notify(&f->q));
	make_avail(f, 0);
	assert_true(virtq_enable_notify(&f->q));
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);

	f->q.event_idx = 1;
	assert_false(virtq_enable_notify(&f->q));
	assert_int_equal(get16(f, avail_event), 1);
	assert_true(page_dirty(f, avail_event));
	make_avail(f, 0); /* the driver raced us: the caller must go on */
	assert_true(virtq_enable_notify(&f->q));
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_false(virtq_enable_notify(&f->q));
	assert_int_equal(get16(f, avail_event), 2);
}

static void test_unpop(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 6, BUF, 8, 0, 0);
	make_avail(f, 6);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	virtq_unpop_avail(&f->q);
	assert_int_equal(virtq_avail_count(&f->q), 1);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.head, 6);
}

static void test_indirect_table(void **state)
{
	struct fixture *f = *state;

	f->q.indirect = 1;
	put_desc_at(f, TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc_at(f, TABLE, 2, BUF + 0x1000, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc_at(f, TABLE, 1, BUF + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
	/* A direct descriptor first, then the table (allowed, if unusual). */
	put_desc(f, 0, BUF + 0x4000, 4, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.head, 0);
	assert_int_equal(f->chain.nsegs, 4);
	assert_int_equal(f->chain.nreadable, 2);
	assert_int_equal(f->chain.readable_len, 20);
	assert_int_equal(f->chain.writable_len, 4097);
	assert_int_equal(f->chain.segs[3].gpa, BUF + 0x3000);
}

static void test_check_layout(void **state)
{
	struct fixture *f = *state;
	struct virtq q = f->q;

	assert_int_equal(virtq_check_layout(&q), 0);
	q.size = 0;
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
	q.size = 6;
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
	q.size = 512; /* above max */
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
	q = f->q;
	q.desc = DESC + 8;
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
	q = f->q;
	q.avail = AVAIL + 1;
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
	q = f->q;
	q.used = USED + 2;
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
	q = f->q;
	q.used = RAM_SIZE - 8; /* 6 + 8 * 8 bytes do not fit */
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
	q = f->q;
	q.desc = 0xfffffffffffffff0ULL;
	assert_int_equal(virtq_check_layout(&q), -EINVAL);
}

/* ---- rejections: the pop fails, nothing is consumed ---- */

static void expect_rejected(struct fixture *f)
{
	uint16_t before = f->q.last_avail_idx;

	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), -EINVAL);
	assert_int_equal(f->q.last_avail_idx, before);
}

static void test_reject_loop(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	make_avail(f, 0);
	expect_rejected(f);
}

static void test_reject_self_loop(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 3, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	make_avail(f, 3);
	expect_rejected(f);
}

static void test_reject_head_out_of_range(void **state)
{
	struct fixture *f = *state;

	make_avail(f, QSIZE);
	expect_rejected(f);
}

static void test_reject_next_out_of_range(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_NEXT, QSIZE);
	make_avail(f, 0);
	expect_rejected(f);
}

static void test_reject_segment_past_ram(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 0, RAM_SIZE - 10, 100, 0, 0); /* starts inside, ends outside */
	make_avail(f, 0);
	expect_rejected(f);
	put_desc(f, 0, RAM_SIZE, 1, 0, 0);
	expect_rejected(f);
	put_desc(f, 0, UINT64_MAX - 5, 100, 0, 0); /* wraps around */
	expect_rejected(f);
	put_desc(f, 0, RAM_SIZE - 10, 10, 0, 0); /* the last bytes are fine */
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
}

static void test_reject_avail_idx_too_far(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 0, BUF, 8, 0, 0);
	put16(f, AVAIL + 2, QSIZE + 1);
	assert_int_equal(virtq_avail_count(&f->q), -EINVAL);
	expect_rejected(f);
	put16(f, AVAIL + 2, QSIZE); /* exactly a full ring is fine */
	assert_int_equal(virtq_avail_count(&f->q), QSIZE);
	put16(f, AVAIL + 2, (uint16_t)-1); /* "behind": as far ahead as it gets */
	assert_int_equal(virtq_avail_count(&f->q), -EINVAL);
}

static void test_reject_bad_size(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 0, BUF, 8, 0, 0);
	make_avail(f, 0);
	f->q.size = 0;
	expect_rejected(f);
	assert_int_equal(virtq_push_used(&f->q, 0, 0), -EINVAL);
	assert_false(virtq_needs_interrupt(&f->q));
	f->q.size = 3;
	expect_rejected(f);
	f->q.size = QSIZE;
	f->q.avail = AVAIL + 1; /* misaligned ring */
	expect_rejected(f);
}

static void test_reject_readable_after_writable(void **state)
{
	struct fixture *f = *state;

	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 8, 0, 0);
	make_avail(f, 0);
	expect_rejected(f);
}

static void test_reject_indirect_not_negotiated(void **state)
{
	struct fixture *f = *state;

	put_desc_at(f, TABLE, 0, BUF, 8, 0, 0);
	put_desc(f, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_rejected(f);
	f->q.indirect = 1;
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
}

static void test_reject_bad_indirect(void **state)
{
	struct fixture *f = *state;

	f->q.indirect = 1;
	make_avail(f, 0);
	/* INDIRECT together with NEXT */
	put_desc_at(f, TABLE, 0, BUF, 8, 0, 0);
	put_desc(f, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 8, 0, 0);
	expect_rejected(f);
	/* table length not a multiple of 16, or zero */
	put_desc(f, 0, TABLE, 24, VIRTQ_DESC_F_INDIRECT, 0);
	expect_rejected(f);
	put_desc(f, 0, TABLE, 0, VIRTQ_DESC_F_INDIRECT, 0);
	expect_rejected(f);
	/* table outside RAM */
	put_desc(f, 0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_rejected(f);
	/* nested table */
	put_desc_at(f, TABLE, 0, TABLE + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(f, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_rejected(f);
	/* next beyond the table */
	put_desc_at(f, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_rejected(f);
	/* loop inside the table */
	put_desc_at(f, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(f, TABLE, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	expect_rejected(f);
	/* segment outside RAM inside the table */
	put_desc_at(f, TABLE, 0, RAM_SIZE - 4, 8, 0, 0);
	expect_rejected(f);
	/* readable after writable inside the table */
	put_desc_at(f, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	put_desc_at(f, TABLE, 1, BUF, 8, 0, 0);
	expect_rejected(f);
}

static void test_reject_too_many_segments(void **state)
{
	struct fixture *f = *state;
	uint16_t n = VIRTQ_MAX_SEGS + 1;

	f->q.indirect = 1;
	for (uint16_t i = 0; i < n; i++)
		put_desc_at(f, TABLE, i, BUF, 1, i + 1 < n ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	put_desc(f, 0, TABLE, 16U * n, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_rejected(f);
	/* One fewer is the longest accepted chain. */
	put_desc_at(f, TABLE, n - 2, BUF, 1, 0, 0);
	assert_int_equal(virtq_pop_avail(&f->q, &f->chain), 1);
	assert_int_equal(f->chain.nsegs, VIRTQ_MAX_SEGS);
}

/* ---- save / load ---- */

static void test_save_load_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct virtq q2;
	struct sbuf b;
	struct sbuf_reader r;

	f->q.last_avail_idx = 70;
	f->q.used_idx = 66;
	f->q.signalled_used = 60;
	f->q.event_idx = 1;
	sbuf_init(&b);
	virtq_save(&f->q, &b);
	assert_int_equal(b.error, 0);
	virtq_init(&q2, &f->mem, VIRTQ_MAX_SIZE);
	sbuf_reader_init(&r, b.data, b.len);
	assert_int_equal(virtq_load(&q2, &r), 0);
	assert_int_equal(sbuf_remaining(&r), 0);
	assert_memory_equal(&q2, &f->q, sizeof(q2));
	sbuf_free(&b);
}

/* Offsets in the record: size 0, ready 2, event_idx 3, indirect 4, desc 5,
 * avail 13, used 21, last_avail 29, used_idx 31, signalled 33; 35 bytes. */
static int load_patched(struct fixture *f, size_t off, const void *val, size_t n, size_t cut)
{
	struct virtq q2;
	struct sbuf b;
	struct sbuf_reader r;
	int ret;

	sbuf_init(&b);
	virtq_save(&f->q, &b);
	assert_int_equal(b.len, 35);
	if (val)
		memcpy(b.data + off, val, n);
	virtq_init(&q2, &f->mem, VIRTQ_MAX_SIZE);
	q2.size = 0x77; /* marker: must survive a rejected load */
	sbuf_reader_init(&r, b.data, b.len - cut);
	ret = virtq_load(&q2, &r);
	if (ret)
		assert_int_equal(q2.size, 0x77);
	sbuf_free(&b);
	return ret;
}

static void test_load_rejects_corruption(void **state)
{
	struct fixture *f = *state;
	uint16_t u16;
	uint8_t u8;
	uint64_t u64;

	assert_int_equal(load_patched(f, 0, NULL, 0, 0), 0);
	assert_int_equal(load_patched(f, 0, NULL, 0, 1), -EINVAL); /* truncated */
	u16 = 6; /* not a power of two while ready */
	assert_int_equal(load_patched(f, 0, &u16, 2, 0), -EINVAL);
	u16 = 512; /* above the device's max */
	assert_int_equal(load_patched(f, 0, &u16, 2, 0), -EINVAL);
	u8 = 2;
	assert_int_equal(load_patched(f, 2, &u8, 1, 0), -EINVAL);
	assert_int_equal(load_patched(f, 3, &u8, 1, 0), -EINVAL);
	assert_int_equal(load_patched(f, 4, &u8, 1, 0), -EINVAL);
	u64 = RAM_SIZE - 16; /* used ring beyond RAM */
	assert_int_equal(load_patched(f, 21, &u64, 8, 0), -EINVAL);
	u64 = DESC + 4; /* misaligned */
	assert_int_equal(load_patched(f, 5, &u64, 8, 0), -EINVAL);
	u16 = QSIZE + 1; /* more chains in flight than the ring holds */
	assert_int_equal(load_patched(f, 29, &u16, 2, 0), -EINVAL);
	/* A queue that is not ready may hold whatever the driver wrote so far. */
	u8 = 0;
	f->q.desc = 0x12345;
	f->q.size = 3;
	assert_int_equal(load_patched(f, 2, &u8, 1, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_empty_and_not_ready),
		T(test_single_descriptor),
		T(test_chain_with_next),
		T(test_chain_iov),
		T(test_push_used_and_interrupt),
		T(test_no_interrupt_flag),
		T(test_event_idx_interrupt),
		T(test_enable_notify),
		T(test_unpop),
		T(test_indirect_table),
		T(test_check_layout),
		T(test_reject_loop),
		T(test_reject_self_loop),
		T(test_reject_head_out_of_range),
		T(test_reject_next_out_of_range),
		T(test_reject_segment_past_ram),
		T(test_reject_avail_idx_too_far),
		T(test_reject_bad_size),
		T(test_reject_readable_after_writable),
		T(test_reject_indirect_not_negotiated),
		T(test_reject_bad_indirect),
		T(test_reject_too_many_segments),
		T(test_save_load_roundtrip),
		T(test_load_rejects_corruption),
#undef T
	};

	return cmocka_run_group_tests_name("virtq", tests, NULL, NULL);
}
