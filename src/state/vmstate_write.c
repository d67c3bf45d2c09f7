/* Writing the VM state stream (format in vmstate.h and docs/vmstate.md). */
#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "dev/device.h"
#include "state/stream.h"
#include "state/vmstate.h"
#include "state/vmstate_ram.h"
#include "vm/platform_state.h"
#include "vm/vcpu.h"

struct section {
	struct stream_out *out;
	XXH3_state_t hash;
};

static int section_begin(struct section *s, struct stream_out *out, uint32_t type,
			 uint32_t version, uint64_t len)
{
	uint8_t hdr[16];

	memcpy(hdr, &type, 4);
	memcpy(hdr + 4, &version, 4);
	memcpy(hdr + 8, &len, 8);
	s->out = out;
	XXH3_64bits_reset(&s->hash);
	return stream_out_write(out, hdr, sizeof(hdr));
}

static int section_put(struct section *s, const void *p, size_t n)
{
	XXH3_64bits_update(&s->hash, p, n);
	return stream_out_write(s->out, p, n);
}

/*
 * Guest pages change under us while the VM runs: copy each page once, then
 * hash and send that copy, so the checksum matches the bytes on the wire.
 */
static int section_put_pages(struct section *s, const uint8_t *pages, uint64_t count)
{
	for (uint64_t i = 0; i < count; i++) {
		uint8_t *copy = stream_out_reserve(s->out, GMEM_PAGE_SIZE);

		if (!copy)
			return s->out->error ? s->out->error : -ENOMEM;
		memcpy(copy, pages + i * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE); /* the copy is what is sent */
		XXH3_64bits_update(&s->hash, copy, GMEM_PAGE_SIZE);
		stream_out_commit(s->out, GMEM_PAGE_SIZE);
	}
	return s->out->error;
}

static int section_end(struct section *s)
{
	uint64_t h = XXH3_64bits_digest(&s->hash);

	return stream_out_write(s->out, &h, sizeof(h));
}

int vmstate_write_section(struct stream_out *out, uint32_t type, uint32_t version, const void *p,
			  size_t n)
{
	struct section s;

	section_begin(&s, out, type, version, n);
	section_put(&s, p, n);
	return section_end(&s);
}

int vmstate_write_header(struct stream_out *out)
{
	uint64_t magic = VMSTATE_MAGIC;
	uint32_t v[2] = { VMSTATE_FORMAT_VERSION, 0 };

	stream_out_write(out, &magic, sizeof(magic));
	return stream_out_write(out, v, sizeof(v));
}

int vmstate_write_config(struct stream_out *out, struct vm *vm)
{
	struct sbuf b;
	int ret;

	sbuf_init(&b);
	sbuf_put_u64(&b, vm->mem.size);
	sbuf_put_u32(&b, (uint32_t)vm->ndevices);
	for (int i = 0; i < vm->ndevices; i++) {
		size_t n = strlen(vm->devices[i]->name);

		sbuf_put_u16(&b, (uint16_t)n);
		sbuf_put(&b, vm->devices[i]->name, n);
	}
	ret = b.error ? b.error : vmstate_write_section(out, VMSTATE_SEC_CONFIG, 1, b.data, b.len);
	sbuf_free(&b);
	return ret;
}

struct ram_view {
	const struct vm *vm;
	const uint8_t *overlay; /* same layout as the memfd */
	const uint64_t *a, *b;  /* pages taken from overlay: set in a or b */
};

static int view_overlaid(const struct ram_view *v, uint64_t p)
{
	uint64_t w = p / 64, bit = 1ULL << (p % 64);

	return v->overlay && ((v->a && v->a[w] & bit) || (v->b && v->b[w] & bit));
}

/* Hashes pages [p, end) of guest RAM that are all data (hole = 0) or all holes. */
static void hash_range(XXH3_state_t *h, const struct ram_view *v, uint64_t p, uint64_t end, int hole)
{
	static const uint8_t zero[GMEM_PAGE_SIZE];

	while (p < end) {
		uint64_t run = p;

		if (view_overlaid(v, p)) {
			XXH3_64bits_update(h, v->overlay + p * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE);
			p++;
			continue;
		}
		while (run < end && !view_overlaid(v, run))
			run++;
		for (; hole && p < run; p++)
			XXH3_64bits_update(h, zero, sizeof(zero));
		if (!hole)
			XXH3_64bits_update(h, gmem_page_hva(&v->vm->mem, p), (run - p) * GMEM_PAGE_SIZE);
		p = run;
	}
}

/*
 * The same digest as hashing the whole mapping, but holes are hashed from a
 * static zero page instead of being read (reading a hole would allocate it).
 */
static uint64_t ram_view_hash(const struct ram_view *v)
{
	uint64_t pages = gmem_page_count(&v->vm->mem);
	XXH3_state_t h;

	XXH3_64bits_reset(&h);
	for (uint64_t p = 0; p < pages;) {
		uint64_t data = gmem_next_data(&v->vm->mem, p), hole = gmem_next_hole(&v->vm->mem, data);

		hash_range(&h, v, p, data, 1);
		hash_range(&h, v, data, hole, 0);
		p = hole > data ? hole : data;
	}
	return XXH3_64bits_digest(&h);
}

uint64_t vmstate_ram_hash(const struct vm *vm)
{
	struct ram_view v = { .vm = vm };

	return ram_view_hash(&v);
}

uint64_t vmstate_ram_hash_overlay(const struct vm *vm, const uint8_t *overlay, const uint64_t *a,
				  const uint64_t *b)
{
	struct ram_view v = { .vm = vm, .overlay = overlay, .a = a, .b = b };

	return ram_view_hash(&v);
}

int vmstate_write_ram_hash(struct stream_out *out, uint64_t hash)
{
	return vmstate_write_section(out, VMSTATE_SEC_RAM_HASH, 1, &hash, sizeof(hash));
}

int vmstate_write_digest(struct stream_out *out, const char *name, uint64_t value)
{
	struct vmstate_digest d = { .value = value };

	if (strlen(name) > VMSTATE_DIGEST_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(d.name, name, strlen(name));
	return vmstate_write_section(out, VMSTATE_SEC_DIGEST, 1, &d, sizeof(d));
}

int vmstate_write_colo(struct stream_out *out)
{
	return vmstate_write_section(out, VMSTATE_SEC_COLO, 1, NULL, 0);
}

int vmstate_write_end(struct stream_out *out)
{
	vmstate_write_section(out, VMSTATE_SEC_END, 1, NULL, 0);
	return stream_out_flush(out);
}

/* One record: a section of the given type holding an sbuf built by fn. */
static int write_record(struct stream_out *out, uint32_t type, const char *name,
			int (*fn)(void *ctx, struct sbuf *b), void *ctx)
{
	struct sbuf b;
	int ret;

	sbuf_init(&b);
	if (name) {
		sbuf_put_u16(&b, (uint16_t)strlen(name));
		sbuf_put(&b, name, strlen(name));
	}
	ret = fn(ctx, &b);
	if (ret == 0 && b.error)
		ret = b.error;
	if (ret == 0)
		ret = vmstate_write_section(out, type, 1, b.data, b.len);
	sbuf_free(&b);
	return ret;
}

static int save_vcpu(void *ctx, struct sbuf *b) { return vcpu_save(ctx, b); }
static int save_platform(void *ctx, struct sbuf *b) { return platform_save(ctx, b); }

static int save_device(void *ctx, struct sbuf *b)
{
	struct device *d = ctx;

	return d->ops->save(d, b);
}

int vmstate_write_machine(struct stream_out *out, struct vm *vm)
{
	int ret;

	if ((ret = write_record(out, VMSTATE_SEC_VCPU, NULL, save_vcpu, vm->vcpu)) ||
	    (ret = write_record(out, VMSTATE_SEC_PLATFORM, NULL, save_platform, vm)))
		return ret;
	vm_io_lock(vm);
	for (int i = 0; i < vm->ndevices && ret == 0; i++)
		if (vm->devices[i]->ops->save)
			ret = write_record(out, VMSTATE_SEC_DEVICE, vm->devices[i]->name,
					   save_device, vm->devices[i]);
	vm_io_unlock(vm);
	return ret;
}

/* ---- RAM ---- */

/* A section is written once its runs are collected, so its length is known. */
#define RAM_SECTION_MAX_DATA_PAGES 256
#define RAM_SECTION_MAX_RUNS 512

struct ram_batch {
	int nruns;
	struct vmstate_ram_run runs[RAM_SECTION_MAX_RUNS];
	uint64_t data_pages;
};

static int ram_batch_flush(struct stream_out *out, struct vm *vm, struct ram_batch *b,
			   struct vmstate_ram_stats *st)
{
	struct section s;
	uint64_t len = (uint64_t)b->nruns * 8 + b->data_pages * GMEM_PAGE_SIZE;
	uint64_t before = out->bytes + out->len;

	if (!b->nruns)
		return 0;
	section_begin(&s, out, VMSTATE_SEC_RAM, 1, len);
	for (int i = 0; i < b->nruns; i++) {
		const struct vmstate_ram_run *r = &b->runs[i];
		uint64_t desc = vmstate_ram_desc(r);

		section_put(&s, &desc, sizeof(desc));
		if (!r->zero)
			section_put_pages(&s, gmem_page_hva(&vm->mem, r->first), r->count);
		st->pages += r->count;
		st->zero_pages += r->zero ? r->count : 0;
	}
	section_end(&s);
	st->bytes += out->bytes + out->len - before;
	b->nruns = 0;
	b->data_pages = 0;
	return out->error;
}

/* Adds page p to the batch, extending the last run when it continues it. */
static int ram_batch_add(struct stream_out *out, struct vm *vm, struct ram_batch *b,
			 uint64_t p, struct vmstate_ram_stats *st)
{
	int zero = vmstate_page_is_zero(gmem_page_hva(&vm->mem, p));
	struct vmstate_ram_run *last = b->nruns ? &b->runs[b->nruns - 1] : NULL;

	if (last && last->zero == zero && last->first + last->count == p &&
	    last->count < VMSTATE_RAM_RUN_MAX) {
		last->count++;
	} else {
		if (b->nruns == RAM_SECTION_MAX_RUNS && ram_batch_flush(out, vm, b, st) < 0)
			return out->error;
		b->runs[b->nruns++] = (struct vmstate_ram_run){ .first = p, .count = 1, .zero = zero };
	}
	if (!zero && ++b->data_pages == RAM_SECTION_MAX_DATA_PAGES)
		return ram_batch_flush(out, vm, b, st);
	return 0;
}

/* Pages known to be zero (holes): one run, nothing read. */
static int ram_batch_add_zero(struct stream_out *out, struct vm *vm, struct ram_batch *b,
			      uint64_t first, uint64_t count, struct vmstate_ram_stats *st)
{
	while (count) {
		uint64_t n = count < VMSTATE_RAM_RUN_MAX ? count : VMSTATE_RAM_RUN_MAX;

		if (b->nruns == RAM_SECTION_MAX_RUNS && ram_batch_flush(out, vm, b, st) < 0)
			return out->error;
		b->runs[b->nruns++] = (struct vmstate_ram_run){ .first = first, .count = n, .zero = 1 };
		first += n;
		count -= n;
	}
	return 0;
}

/* Every page: holes of the memfd as zero runs, allocated extents page by page. */
static int ram_write_all(struct stream_out *out, struct vm *vm, struct ram_batch *b,
			 struct vmstate_ram_stats *st)
{
	uint64_t pages = gmem_page_count(&vm->mem);

	for (uint64_t p = 0; p < pages;) {
		uint64_t data = gmem_next_data(&vm->mem, p), hole;

		if (data > p && ram_batch_add_zero(out, vm, b, p, data - p, st) < 0)
			return out->error;
		hole = gmem_next_hole(&vm->mem, data);
		for (p = data; p < hole; p++)
			if (ram_batch_add(out, vm, b, p, st) < 0)
				return out->error;
	}
	return ram_batch_flush(out, vm, b, st);
}

int vmstate_write_ram(struct stream_out *out, struct vm *vm, const uint64_t *bitmap,
		      struct vmstate_ram_stats *stats)
{
	static __thread struct ram_batch batch;
	uint64_t pages = gmem_page_count(&vm->mem);
	struct vmstate_ram_stats local = { 0 };
	struct vmstate_ram_stats *st = stats ? stats : &local;

	batch.nruns = 0;
	batch.data_pages = 0;
	if (!bitmap)
		return ram_write_all(out, vm, &batch, st);
	for (uint64_t w = 0; w < (pages + 63) / 64; w++) {
		uint64_t bits = bitmap[w];

		while (bits) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (p >= pages)
				break;
			if (ram_batch_add(out, vm, &batch, p, st) < 0)
				return out->error;
		}
	}
	return ram_batch_flush(out, vm, &batch, st);
}
