/*
 * libFuzzer target for the device side of the split virtqueue: the input
 * becomes a queue setup plus the contents of a small guest memory (rings,
 * descriptors, indirect tables, buffers all hostile), and the device walks it
 * as virtio-blk/net would: pop, copy in and out, push, decide interrupts. The
 * tail of the input is also fed to virtq_load as a saved record.
 *
 *   make fuzz && build/fuzz/fuzz_virtq -max_total_time=60
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dev/virtq.h"
#include "util/sbuf.h"
#include "vm/memory.h"

#define RAM_SIZE (64 * 1024)

struct fuzz_params {
	uint8_t size_log2;  /* queue size 1 << (n % 10): up to 512, above max */
	uint8_t flags;      /* 1 event_idx, 2 indirect, 4 raw size, 8 not ready */
	uint16_t raw_size;
	uint32_t desc, avail, used; /* masked to twice the RAM: half fall outside */
	uint16_t last_avail_idx, used_idx;
	uint16_t copy_offset; /* where chain reads/writes start */
	uint16_t pad;
};

static struct gmem mem;
static uint8_t scratch[RAM_SIZE];

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

/* What virtq_pop_avail promises about every chain it returns. */
static void check_chain(const struct virtq *q, const struct virtq_chain *c)
{
	uint64_t rd = 0, wr = 0;

	check(c->head < q->size && c->nsegs <= VIRTQ_MAX_SEGS && c->nreadable <= c->nsegs);
	for (int i = 0; i < c->nsegs; i++) {
		check(gmem_ptr(&mem, c->segs[i].gpa, c->segs[i].len) != NULL);
		check(!!c->segs[i].writable == (i >= c->nreadable));
		if (c->segs[i].writable)
			wr += c->segs[i].len;
		else
			rd += c->segs[i].len;
	}
	check(rd == c->readable_len && wr == c->writable_len);
}

static void exercise_chain(const struct virtq_chain *c, uint64_t off)
{
	struct iovec iov[8];
	uint64_t n;

	off %= c->readable_len + 1;
	n = c->readable_len - off < sizeof(scratch) ? c->readable_len - off : sizeof(scratch);
	check(virtq_chain_read(c, off, scratch, n) == 0);
	check(virtq_chain_read(c, off, scratch, c->readable_len - off + 1) < 0);
	virtq_chain_iov(c, false, off, n, iov, 8);

	off = c->writable_len ? off % c->writable_len : 0;
	n = c->writable_len - off < sizeof(scratch) ? c->writable_len - off : sizeof(scratch);
	/* May overwrite the rings themselves: so can a guest, at any time. */
	check(virtq_chain_write(c, off, scratch, n) == 0);
	virtq_chain_iov(c, true, off, n, iov, 8);
	virtq_chain_written(c, off, n);
}

static void run_queue(const struct fuzz_params *p)
{
	static struct virtq_chain chain;
	struct virtq q;

	virtq_init(&q, &mem, VIRTQ_MAX_SIZE);
	q.size = (p->flags & 4) ? p->raw_size : (uint16_t)(1u << (p->size_log2 % 10));
	q.event_idx = p->flags & 1;
	q.indirect = !!(p->flags & 2);
	q.ready = !(p->flags & 8);
	q.desc = p->desc % (2 * RAM_SIZE);
	q.avail = p->avail % (2 * RAM_SIZE);
	q.used = p->used % (2 * RAM_SIZE);
	q.last_avail_idx = p->last_avail_idx;
	q.used_idx = p->used_idx;

	for (int i = 0; i < 2 * VIRTQ_MAX_SIZE + 2; i++) {
		int ret = virtq_pop_avail(&q, &chain);

		if (ret <= 0) {
			if (!virtq_enable_notify(&q))
				break;
			if (ret < 0)
				break;
			continue;
		}
		check_chain(&q, &chain);
		exercise_chain(&chain, p->copy_offset);
		if (i % 3 == 2) {
			virtq_unpop_avail(&q);
			continue;
		}
		virtq_push_used(&q, chain.head, (uint32_t)chain.writable_len);
		virtq_needs_interrupt(&q);
	}
	virtq_avail_count(&q);
}

static void run_load(const uint8_t *data, size_t size)
{
	struct virtq q, before;
	struct sbuf_reader r;

	virtq_init(&q, &mem, VIRTQ_MAX_SIZE);
	before = q;
	sbuf_reader_init(&r, data, size);
	if (virtq_load(&q, &r) == 0) {
		/* A loaded ready queue is as safe to walk as one set up by a driver. */
		check(!q.ready || virtq_check_layout(&q) == 0);
	} else {
		check(memcmp(&q, &before, sizeof(q)) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_params p;

	if (!mem.base && gmem_init(&mem, RAM_SIZE) != 0)
		__builtin_trap();
	if (size < sizeof(p))
		return 0;
	memcpy(&p, data, sizeof(p));
	memset(mem.base, 0, RAM_SIZE);
	memcpy(mem.base, data + sizeof(p),
	       size - sizeof(p) < RAM_SIZE ? size - sizeof(p) : RAM_SIZE);
	run_queue(&p);
	run_load(data + sizeof(p), size - sizeof(p));
	return 0;
}
