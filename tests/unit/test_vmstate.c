/*
 * The VM state stream (docs/vmstate.md): written with the real writers into a
 * memfd, loaded back, compared; hostile streams refused with a reason; COLO
 * checkpoint bodies loaded into a RAM cache; machine state applied all or
 * nothing; dirty tracking of the VMM's own writes.
 *
 * Groups: "vmstate" needs no KVM (VMs that have only guest memory and fake
 * devices); "vmstate_kvm" needs /dev/kvm (kvm_required.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>
#include <cmocka.h>

#include "dev/device.h"
#include "dev/serial.h"
#include "dev/testdev.h"
#include "kvm_required.h"
#include "vcpu_record.h"
#include "state/stream.h"
#include "state/vmstate.h"
#include "state/vmstate_ram.h"
#include "util/sbuf.h"
#include "vm/dirty.h"
#include "vm/memory.h"
#include "vm/platform_state.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

#define PAGE GMEM_PAGE_SIZE
#define MEM_SIZE (8ULL << 20)
#define MEM_PAGES (MEM_SIZE / PAGE)

/* ---- VMs with guest memory and fake devices, no KVM ---- */

#define FAKE_VERSION 1
#define FAKE_SIZE 16

struct fake_dev {
	struct device dev;
	uint8_t state[FAKE_SIZE];
};

static int fake_save(struct device *d, struct sbuf *out)
{
	struct fake_dev *f = (struct fake_dev *)d;

	sbuf_put_u32(out, FAKE_VERSION);
	sbuf_put(out, f->state, sizeof(f->state));
	return out->error;
}

static int fake_load(struct device *d, struct sbuf_reader *in)
{
	struct fake_dev *f = (struct fake_dev *)d;
	uint8_t state[FAKE_SIZE];
	uint32_t version = sbuf_get_u32(in);

	sbuf_get(in, state, sizeof(state));
	if (sbuf_reader_error(in) || version != FAKE_VERSION)
		return -EINVAL;
	memcpy(f->state, state, sizeof(state));
	return 0;
}

static const struct device_ops fake_ops = { .save = fake_save, .load = fake_load };

struct memvm {
	struct vm vm;
	struct fake_dev devs[4];
};

static const char *const default_names[] = { "serial0", "virtio-blk0", NULL };

static struct memvm *memvm_new(uint64_t size, const char *const *names)
{
	struct memvm *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->vm.kvm_fd = m->vm.vm_fd = -1;
	m->vm.loop = NULL;
	pthread_mutex_init(&m->vm.io_lock, NULL);
	assert_int_equal(gmem_init(&m->vm.mem, size), 0);
	for (int i = 0; names[i]; i++) {
		m->devs[i].dev = (struct device){ .name = names[i], .ops = &fake_ops, .vm = &m->vm };
		memset(m->devs[i].state, 0xa0 + i, FAKE_SIZE);
		m->vm.devices[m->vm.ndevices++] = &m->devs[i].dev;
	}
	return m;
}

static void memvm_free(struct memvm *m)
{
	gmem_destroy(&m->vm.mem);
	pthread_mutex_destroy(&m->vm.io_lock);
	free(m);
}

static void fill_page(struct vm *vm, uint64_t page, uint8_t seed)
{
	uint8_t buf[PAGE];

	for (size_t i = 0; i < PAGE; i++)
		buf[i] = (uint8_t)(seed + i * 31 + (i >> 8));
	assert_int_equal(gmem_write(&vm->mem, page * PAGE, buf, PAGE), 0);
}

/* Is page p backed by memory (not a hole of the memfd)? */
static int is_data(const struct vm *vm, uint64_t p) { return gmem_next_data(&vm->mem, p) == p; }

/* ---- building streams ---- */

/* The real writers' output goes to a memfd; collected into an sbuf at the end. */
struct writer {
	int fd;
	struct stream_out out;
};

static void writer_open(struct writer *w)
{
	w->fd = memfd_create("test-vmstate", MFD_CLOEXEC);
	assert_true(w->fd >= 0);
	assert_int_equal(stream_out_init(&w->out, w->fd), 0);
}

static void writer_close(struct writer *w, struct sbuf *dst)
{
	off_t size;

	assert_int_equal(stream_out_flush(&w->out), 0);
	size = lseek(w->fd, 0, SEEK_END);
	assert_true(size >= 0);
	sbuf_init(dst);
	assert_non_null(sbuf_set_len(dst, (size_t)size));
	assert_int_equal(pread(w->fd, dst->data, (size_t)size, 0), size);
	stream_out_free(&w->out);
	close(w->fd);
}

/* A section built by hand (type, version, length, payload, XXH3-64 of the payload). */
static void put_section_v(struct stream_out *out, uint32_t type, uint32_t version, const void *p,
			  uint64_t n)
{
	uint32_t hdr[2] = { type, version };
	uint64_t hash = XXH3_64bits(p, (size_t)n);

	stream_out_write(out, hdr, sizeof(hdr));
	stream_out_write(out, &n, sizeof(n));
	stream_out_write(out, p, (size_t)n);
	stream_out_write(out, &hash, sizeof(hash));
}

static void put_section(struct stream_out *out, uint32_t type, const void *p, uint64_t n)
{
	put_section_v(out, type, 1, p, n);
}

static void put_device(struct stream_out *out, const char *name, const struct sbuf *rec)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_put_u16(&b, (uint16_t)strlen(name));
	sbuf_put(&b, name, strlen(name));
	sbuf_put(&b, rec->data, rec->len);
	put_section(out, VMSTATE_SEC_DEVICE, b.data, b.len);
	sbuf_free(&b);
}

/* Stand-ins for the vCPU and platform records (the loader only collects them), and each device's record. */
static void put_machine(struct stream_out *out, struct vm *vm)
{
	static const uint8_t vcpu[] = "vcpu record", platform[] = "platform record";

	put_section(out, VMSTATE_SEC_VCPU, vcpu, sizeof(vcpu));
	put_section(out, VMSTATE_SEC_PLATFORM, platform, sizeof(platform));
	for (int i = 0; i < vm->ndevices; i++) {
		struct sbuf rec;

		sbuf_init(&rec);
		assert_int_equal(vm->devices[i]->ops->save(vm->devices[i], &rec), 0);
		put_device(out, vm->devices[i]->name, &rec);
		sbuf_free(&rec);
	}
}

enum { WITH_HASH = 1, NO_END = 2 };

/* A whole stream for vm: header, CONFIG, RAM (bitmap or all), machine, [RAM_HASH], END. */
static void build_stream(struct vm *vm, const uint64_t *bitmap, unsigned flags, struct sbuf *s,
			 struct vmstate_ram_stats *st)
{
	struct writer w;

	writer_open(&w);
	assert_int_equal(vmstate_write_header(&w.out), 0);
	assert_int_equal(vmstate_write_config(&w.out, vm), 0);
	assert_int_equal(vmstate_write_ram(&w.out, vm, bitmap, st), 0);
	put_machine(&w.out, vm);
	if (flags & WITH_HASH)
		assert_int_equal(vmstate_write_ram_hash(&w.out, vmstate_ram_hash(vm)), 0);
	if (!(flags & NO_END))
		assert_int_equal(vmstate_write_end(&w.out), 0);
	writer_close(&w, s);
}

/* Header and CONFIG for vm, then whatever fn adds, then END. */
static void build_custom(struct vm *vm, void (*fn)(struct stream_out *, struct vm *, void *),
			 void *ctx, struct sbuf *s)
{
	struct writer w;

	writer_open(&w);
	assert_int_equal(vmstate_write_header(&w.out), 0);
	assert_int_equal(vmstate_write_config(&w.out, vm), 0);
	fn(&w.out, vm, ctx);
	assert_int_equal(vmstate_write_end(&w.out), 0);
	writer_close(&w, s);
}

/* Offset of the n-th section of a type (from 0), -1 if none. */
static long find_section(const struct sbuf *s, uint32_t type, int nth)
{
	size_t pos = 16;

	while (pos + 24 <= s->len) {
		uint32_t t;
		uint64_t len;

		memcpy(&t, s->data + pos, 4);
		memcpy(&len, s->data + pos + 8, 8);
		if (t == type && nth-- == 0)
			return (long)pos;
		pos += 24 + len;
	}
	return -1;
}

/* Recomputes the trailer of the section at off (after its payload was changed). */
static void rehash(struct sbuf *s, long off)
{
	uint64_t len, hash;

	memcpy(&len, s->data + off + 8, 8);
	hash = XXH3_64bits(s->data + off + 16, (size_t)len);
	memcpy(s->data + off + 16 + len, &hash, 8);
}

/* ---- loading ---- */

static int load_bytes(struct vmstate_loader *l, struct vm *vm, const uint8_t *p, size_t n,
		      int apply_ram, int ram_is_zero)
{
	struct stream_in in;
	int fd = memfd_create("test-vmstate-in", MFD_CLOEXEC), ret;

	assert_true(fd >= 0);
	assert_int_equal(n ? write(fd, p, n) : 0, (ssize_t)n);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	vmstate_loader_init(l, vm, apply_ram);
	l->ram_is_zero = ram_is_zero;
	assert_int_equal(stream_in_init(&in, fd), 0);
	ret = vmstate_load_stream(l, &in);
	stream_in_free(&in);
	close(fd);
	return ret;
}

/* The stream is refused with -EINVAL and a message containing `why`. */
static void expect_refused_n(struct vm *vm, const uint8_t *p, size_t n, int apply_ram,
			     const char *why)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	int ret;

	assert_non_null(l);
	ret = load_bytes(l, vm, p, n, apply_ram, 0);
	if (ret != -EINVAL || !strstr(l->error, why))
		fail_msg("expected -EINVAL with \"%s\", got %d \"%s\"", why, ret, l->error);
	vmstate_loader_free(l);
	free(l);
}

static void expect_refused(struct vm *vm, const struct sbuf *s, int apply_ram, const char *why)
{
	expect_refused_n(vm, s->data, s->len, apply_ram, why);
}

/* ---- (a) RAM roundtrips ---- */

/* Pattern pages (runs, singles, both ends), an allocated zero page, holes elsewhere. */
static const uint64_t pattern_pages[] = { 0, 1, 2, 3, 64, 100, 101, 777, 1000, 1001, 1002, MEM_PAGES - 1 };
#define NPATTERN (sizeof(pattern_pages) / sizeof(pattern_pages[0]))
#define ZERO_DATA_PAGE 50

static void fill_pattern(struct vm *vm)
{
	uint8_t zero[PAGE] = { 0 };

	for (size_t i = 0; i < NPATTERN; i++)
		fill_page(vm, pattern_pages[i], (uint8_t)(i + 1));
	assert_int_equal(gmem_write(&vm->mem, ZERO_DATA_PAGE * PAGE, zero, PAGE), 0);
	assert_true(is_data(vm, ZERO_DATA_PAGE));
}

static int is_pattern_page(uint64_t p)
{
	for (size_t i = 0; i < NPATTERN; i++)
		if (pattern_pages[i] == p)
			return 1;
	return 0;
}

/* dst holds exactly the pattern pages as data; every other page is a hole. Then the bytes. */
static void check_ram_equal_with_holes(struct vm *src, struct vm *dst)
{
	for (uint64_t p = 0; p < MEM_PAGES; p++)
		if (is_data(dst, p) != is_pattern_page(p))
			fail_msg("page %llu: %s in the loaded VM", (unsigned long long)p,
				 is_data(dst, p) ? "data" : "a hole");
	/* Holes checked first: reading a hole through the mapping allocates it. */
	assert_memory_equal(src->mem.base, dst->mem.base, MEM_SIZE);
}

static void test_ram_roundtrip_all(void **state)
{
	struct memvm *src = memvm_new(MEM_SIZE, default_names);
	struct memvm *dst = memvm_new(MEM_SIZE, default_names);
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct vmstate_ram_stats st = { 0 };
	struct sbuf s;

	(void)state;
	fill_pattern(&src->vm);
	build_stream(&src->vm, NULL, WITH_HASH, &s, &st);
	assert_int_equal(st.pages, MEM_PAGES);
	assert_int_equal(st.zero_pages, MEM_PAGES - NPATTERN); /* the allocated zero page too */
	assert_true(st.bytes < (NPATTERN + 4) * PAGE);     /* holes cost a descriptor, not a page */

	/* Into a fresh VM (the --restore case: RAM known to be zero). */
	assert_int_equal(load_bytes(l, &dst->vm, s.data, s.len, 1, 1), 0);
	assert_string_equal(l->error, "");
	assert_int_equal(l->ram_pages, MEM_PAGES);
	assert_true(l->ram_hash_checked);
	assert_int_equal(l->ndevices, 2);
	assert_true(l->have_config && l->vcpu.len && l->platform.len);
	vmstate_loader_free(l);
	check_ram_equal_with_holes(&src->vm, &dst->vm);

	/* Into a VM whose RAM has other contents: data overwritten, the rest punched back to holes. */
	memvm_free(dst);
	dst = memvm_new(MEM_SIZE, default_names);
	for (uint64_t p = 0; p < MEM_PAGES; p += 37)
		fill_page(&dst->vm, p, 0x55);
	fill_page(&dst->vm, ZERO_DATA_PAGE, 0x66);
	assert_int_equal(load_bytes(l, &dst->vm, s.data, s.len, 1, 0), 0);
	assert_true(l->ram_hash_checked);
	vmstate_loader_free(l);
	check_ram_equal_with_holes(&src->vm, &dst->vm);

	sbuf_free(&s);
	free(l);
	memvm_free(src);
	memvm_free(dst);
}

static void test_ram_roundtrip_bitmap(void **state)
{
	struct memvm *src = memvm_new(MEM_SIZE, default_names);
	struct memvm *dst = memvm_new(MEM_SIZE, default_names);
	struct vmstate_loader *l = malloc(sizeof(*l));
	uint64_t bitmap[MEM_PAGES / 64] = { 0 };
	static const uint64_t sent[] = { 1, 2, 100, 777, ZERO_DATA_PAGE, 500, MEM_PAGES - 1 };
	uint8_t *before = malloc(MEM_SIZE);
	struct vmstate_ram_stats st = { 0 };
	struct sbuf s;

	(void)state;
	fill_pattern(&src->vm);
	/* The destination has its own contents everywhere the source has data, and at page 500. */
	for (size_t i = 0; i < NPATTERN; i++)
		fill_page(&dst->vm, pattern_pages[i], 0x77);
	fill_page(&dst->vm, 500, 0x78);
	memcpy(before, dst->vm.mem.base, MEM_SIZE);
	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++)
		bitmap[sent[i] / 64] |= 1ULL << (sent[i] % 64);

	build_stream(&src->vm, bitmap, WITH_HASH, &s, &st);
	assert_int_equal(st.pages, 7);
	assert_int_equal(st.zero_pages, 2); /* the allocated zero page and the hole at 500 */
	/* Only some pages were sent: RAM_HASH cannot match, everything before it is in. */
	expect_refused(&dst->vm, &s, 1, "RAM differs from the sender's");
	sbuf_free(&s);

	memcpy(dst->vm.mem.base, before, MEM_SIZE);
	build_stream(&src->vm, bitmap, 0, &s, NULL);
	assert_int_equal(load_bytes(l, &dst->vm, s.data, s.len, 1, 0), 0);
	assert_int_equal(l->ram_pages, 7);
	assert_false(l->ram_hash_checked);
	vmstate_loader_free(l);
	assert_false(is_data(&dst->vm, 500)); /* a zero page sent over data becomes a hole */
	for (uint64_t p = 0; p < MEM_PAGES; p++) {
		int in_bitmap = (bitmap[p / 64] >> (p % 64)) & 1;
		const uint8_t *want = in_bitmap ? src->vm.mem.base + p * PAGE : before + p * PAGE;

		if (memcmp(dst->vm.mem.base + p * PAGE, want, PAGE) != 0)
			fail_msg("page %llu differs (%s)", (unsigned long long)p,
				 in_bitmap ? "sent" : "not sent, must be untouched");
	}
	sbuf_free(&s);
	free(before);
	free(l);
	memvm_free(src);
	memvm_free(dst);
}

/* A validating loader (pass 1 of snapshot-load) reads every page but writes none. */
static void test_validate_only_leaves_ram(void **state)
{
	struct memvm *src = memvm_new(MEM_SIZE, default_names);
	struct memvm *dst = memvm_new(MEM_SIZE, default_names);
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct sbuf s;

	(void)state;
	fill_pattern(&src->vm);
	fill_page(&dst->vm, 7, 0x42);
	build_stream(&src->vm, NULL, WITH_HASH, &s, NULL);
	assert_int_equal(load_bytes(l, &dst->vm, s.data, s.len, 0, 0), 0);
	assert_int_equal(l->ram_pages, MEM_PAGES);
	assert_false(l->ram_hash_checked); /* RAM was not applied: nothing to compare */
	vmstate_loader_free(l);
	assert_int_equal(gmem_next_data(&dst->vm.mem, 0), 7);
	assert_int_equal(gmem_next_hole(&dst->vm.mem, 7), 8);
	assert_int_equal(gmem_next_data(&dst->vm.mem, 8), MEM_PAGES);
	sbuf_free(&s);
	free(l);
	memvm_free(src);
	memvm_free(dst);
}

/* ---- (b) refused streams ---- */

struct rig {
	struct memvm *vm;
	struct sbuf good; /* a complete valid stream for vm */
};

static int rig_setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));

	r->vm = memvm_new(MEM_SIZE, default_names);
	fill_page(&r->vm->vm, 3, 1);
	fill_page(&r->vm->vm, 4, 2);
	fill_page(&r->vm->vm, 900, 3);
	build_stream(&r->vm->vm, NULL, WITH_HASH, &r->good, NULL);
	*state = r;
	return 0;
}

static int rig_teardown(void **state)
{
	struct rig *r = *state;

	sbuf_free(&r->good);
	memvm_free(r->vm);
	free(r);
	return 0;
}

static void copy_sbuf(struct sbuf *dst, const struct sbuf *src)
{
	sbuf_init(dst);
	sbuf_put(dst, src->data, src->len);
}

static void test_good_stream_loads(void **state)
{
	struct rig *r = *state;
	struct vmstate_loader *l = malloc(sizeof(*l));

	assert_int_equal(load_bytes(l, &r->vm->vm, r->good.data, r->good.len, 1, 0), 0);
	/* CONFIG, RAM, VCPU, PLATFORM, 2 DEVICE, RAM_HASH, END */
	assert_int_equal(l->sections, 8);
	assert_true(l->ram_hash_checked);
	vmstate_loader_free(l);
	free(l);
}

static void test_refuses_bad_header(void **state)
{
	struct rig *r = *state;
	struct sbuf s;
	uint32_t v;

	copy_sbuf(&s, &r->good);
	s.data[0] ^= 1;
	expect_refused(&r->vm->vm, &s, 0, "not a lockstep VM state stream (bad magic)");
	s.data[0] ^= 1;
	v = 2;
	memcpy(s.data + 8, &v, 4);
	expect_refused(&r->vm->vm, &s, 0, "unsupported VM state format version 2 (this build reads 1)");
	v = 1;
	memcpy(s.data + 8, &v, 4);
	memcpy(s.data + 12, &v, 4);
	expect_refused(&r->vm->vm, &s, 0, "unsupported VM state flags 0x1");
	expect_refused_n(&r->vm->vm, s.data, 0, 0, "stream truncated in header");
	sbuf_free(&s);
}

static void add_unknown_type(struct stream_out *out, struct vm *vm, void *ctx)
{
	(void)vm;
	put_section(out, *(uint32_t *)ctx, "x", 1);
}

static void add_bad_version(struct stream_out *out, struct vm *vm, void *ctx)
{
	(void)vm;
	(void)ctx;
	put_section_v(out, VMSTATE_SEC_VCPU, 2, "x", 1);
}

/* A section header claiming `len` bytes, with nothing behind it. */
static void add_huge(struct stream_out *out, struct vm *vm, void *ctx)
{
	const uint64_t *len = ctx;
	uint32_t hdr[2] = { (uint32_t)len[0], 1 };

	(void)vm;
	stream_out_write(out, hdr, sizeof(hdr));
	stream_out_write(out, &len[1], 8);
}

static void test_refuses_bad_sections(void **state)
{
	struct rig *r = *state;
	struct vm *vm = &r->vm->vm;
	struct sbuf s;
	uint32_t type;
	uint64_t huge[2];

	type = 10;
	build_custom(vm, add_unknown_type, &type, &s);
	expect_refused(vm, &s, 0, "unknown section type 10");
	sbuf_free(&s);
	type = VMSTATE_SEC_DIGEST; /* only in a COLO checkpoint's RAM part */
	build_custom(vm, add_unknown_type, &type, &s);
	expect_refused(vm, &s, 0, "section type 9 not allowed here");
	sbuf_free(&s);
	type = 0;
	build_custom(vm, add_unknown_type, &type, &s);
	expect_refused(vm, &s, 0, "unknown section type 0");
	sbuf_free(&s);

	build_custom(vm, add_bad_version, NULL, &s);
	expect_refused(vm, &s, 0, "section type 3 has unsupported version 2");
	sbuf_free(&s);

	huge[0] = VMSTATE_SEC_RAM;
	huge[1] = VMSTATE_MAX_SECTION + 1;
	build_custom(vm, add_huge, huge, &s);
	expect_refused(vm, &s, 1, "section of 67108865 bytes is too large");
	sbuf_free(&s);
	huge[0] = VMSTATE_SEC_DEVICE;
	huge[1] = VMSTATE_MAX_RECORD + 1;
	build_custom(vm, add_huge, huge, &s);
	expect_refused(vm, &s, 1, "DEVICE section too large (1048577 bytes)");
	sbuf_free(&s);

	/* A small section whose payload does not match its checksum. */
	copy_sbuf(&s, &r->good);
	s.data[16 + 16] ^= 0x01; /* first byte of CONFIG's payload */
	expect_refused(vm, &s, 0, "CONFIG section is corrupted (checksum mismatch)");
	sbuf_free(&s);
	copy_sbuf(&s, &r->good);
	s.data[find_section(&s, VMSTATE_SEC_DEVICE, 1) + 16 + 5] ^= 0x80;
	expect_refused(vm, &s, 0, "DEVICE section is corrupted (checksum mismatch)");
	sbuf_free(&s);
}

static void test_refuses_missing_pieces(void **state)
{
	struct rig *r = *state;
	struct vm *vm = &r->vm->vm;
	struct sbuf s;
	long config, vcpu;

	/* RAM before CONFIG: the header, then the good stream minus its CONFIG. */
	config = find_section(&r->good, VMSTATE_SEC_CONFIG, 0);
	assert_int_equal(config, 16);
	{
		uint64_t len;
		size_t skip;

		memcpy(&len, r->good.data + 16 + 8, 8);
		skip = 24 + len;
		sbuf_init(&s);
		sbuf_put(&s, r->good.data, 16);
		sbuf_put(&s, r->good.data + 16 + skip, r->good.len - 16 - skip);
		expect_refused(vm, &s, 0, "section type 2 before CONFIG");
		sbuf_free(&s);
	}
	/* END without the vCPU record. */
	vcpu = find_section(&r->good, VMSTATE_SEC_VCPU, 0);
	{
		uint64_t len;

		memcpy(&len, r->good.data + vcpu + 8, 8);
		sbuf_init(&s);
		sbuf_put(&s, r->good.data, (size_t)vcpu);
		sbuf_put(&s, r->good.data + vcpu + 24 + len, r->good.len - (size_t)vcpu - 24 - len);
		expect_refused(vm, &s, 0, "stream ended without vCPU or platform state");
		sbuf_free(&s);
	}
	/* No END at all. */
	build_stream(vm, NULL, NO_END, &s, NULL);
	expect_refused(vm, &s, 0, "stream truncated in section header");
	sbuf_free(&s);
}

/* One RAM section holding the given descriptors (and `pages` pages of 0x5a after the first). */
struct ram_case {
	uint64_t desc[2];
	int ndesc;
	uint64_t pages;
	uint64_t claimed_len; /* 0: the real length */
};

static void add_ram_case(struct stream_out *out, struct vm *vm, void *ctx)
{
	const struct ram_case *c = ctx;
	struct sbuf b;
	uint8_t page[PAGE];

	(void)vm;
	memset(page, 0x5a, sizeof(page));
	sbuf_init(&b);
	for (int i = 0; i < c->ndesc; i++)
		sbuf_put_u64(&b, c->desc[i]);
	for (uint64_t i = 0; i < c->pages; i++)
		sbuf_put(&b, page, PAGE);
	if (c->claimed_len) {
		uint32_t hdr[2] = { VMSTATE_SEC_RAM, 1 };
		uint64_t hash = XXH3_64bits(b.data, c->claimed_len < b.len ? c->claimed_len : b.len);

		stream_out_write(out, hdr, 8);
		stream_out_write(out, &c->claimed_len, 8);
		stream_out_write(out, b.data, c->claimed_len < b.len ? c->claimed_len : b.len);
		stream_out_write(out, &hash, 8);
	} else {
		put_section(out, VMSTATE_SEC_RAM, b.data, b.len);
	}
	sbuf_free(&b);
	put_machine(out, vm);
}

static uint64_t desc(uint64_t first, uint64_t count, int zero)
{
	struct vmstate_ram_run r = { .first = first, .count = count, .zero = zero };

	return vmstate_ram_desc(&r);
}

static void expect_ram_case(struct vm *vm, struct ram_case c, int apply_ram, const char *why)
{
	struct sbuf s;

	build_custom(vm, add_ram_case, &c, &s);
	expect_refused(vm, &s, apply_ram, why);
	sbuf_free(&s);
}

static void test_refuses_bad_ram_runs(void **state)
{
	struct rig *r = *state;
	struct vm *vm = &r->vm->vm;
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct ram_case ok = { { desc(MEM_PAGES - 2, 2, 0) }, 1, 2, 0 };
	struct sbuf s;

	/* The boundaries themselves are fine: the last pages, a full-size zero run. */
	build_custom(vm, add_ram_case, &ok, &s);
	assert_int_equal(load_bytes(l, vm, s.data, s.len, 0, 0), 0);
	vmstate_loader_free(l);
	sbuf_free(&s);
	ok = (struct ram_case){ { desc(0, MEM_PAGES, 1) }, 1, 0, 0 };
	build_custom(vm, add_ram_case, &ok, &s);
	assert_int_equal(load_bytes(l, vm, s.data, s.len, 0, 0), 0);
	vmstate_loader_free(l);
	sbuf_free(&s);

	expect_ram_case(vm, (struct ram_case){ { desc(MEM_PAGES, 1, 0) }, 1, 1, 0 }, 1,
			"RAM section: page run 2048+1 outside 2048 pages of RAM");
	expect_ram_case(vm, (struct ram_case){ { desc(MEM_PAGES - 1, 2, 0) }, 1, 2, 0 }, 1,
			"RAM section: page run 2047+2 outside 2048 pages of RAM");
	expect_ram_case(vm, (struct ram_case){ { desc(MEM_PAGES - 1, 2, 1) }, 1, 0, 0 }, 1,
			"RAM section: page run 2047+2 outside");
	expect_ram_case(vm, (struct ram_case){ { desc(1ULL << 39, 1, 1) }, 1, 0, 0 }, 1,
			"outside 2048 pages");
	/* Reserved descriptor bits 56..62 set: refused even though the run fits. */
	for (int bit = 56; bit < 63; bit++)
		expect_ram_case(vm, (struct ram_case){ { desc(0, 1, 1) | 1ULL << bit }, 1, 0, 0 }, 1,
				"RAM section: run descriptor has reserved bits set");
	/* A descriptor cut short by the section length, data past the section end. */
	expect_ram_case(vm, (struct ram_case){ { desc(0, 1, 1) }, 1, 0, 4 }, 1,
			"RAM section: partial run descriptor");
	expect_ram_case(vm, (struct ram_case){ { desc(0, 1, 1), desc(1, 1, 1) }, 2, 0, 12 }, 1,
			"RAM section: partial run descriptor");
	expect_ram_case(vm, (struct ram_case){ { desc(10, 2, 0) }, 1, 2, 8 + PAGE }, 1,
			"RAM section: page data runs past the section end");
	free(l);
}

static void test_refuses_corrupted_ram_page(void **state)
{
	struct rig *r = *state;
	long ram = find_section(&r->good, VMSTATE_SEC_RAM, 0);
	struct sbuf s;
	uint64_t len;

	assert_true(ram > 0);
	memcpy(&len, r->good.data + ram + 8, 8);
	/* Every data page of the section, and the last byte of the payload. */
	for (uint64_t off = 8 + 100; off < len; off += 997) {
		copy_sbuf(&s, &r->good);
		s.data[ram + 16 + off] ^= 0x04;
		expect_refused(&r->vm->vm, &s, 0, "RAM section is corrupted (checksum mismatch)");
		sbuf_free(&s);
	}
	copy_sbuf(&s, &r->good);
	s.data[ram + 16 + len + 3] ^= 0x10; /* the trailer itself */
	expect_refused(&r->vm->vm, &s, 1, "RAM section is corrupted (checksum mismatch)");
	sbuf_free(&s);
}

static void test_refuses_truncation(void **state)
{
	struct rig *r = *state;
	struct vmstate_loader *l = malloc(sizeof(*l));
	size_t n = 0;

	for (size_t len = 0; len < r->good.len; len += 97, n++) {
		int ret = load_bytes(l, &r->vm->vm, r->good.data, len, len % 2, 0);

		if (ret != -EINVAL || !strstr(l->error, "truncated"))
			fail_msg("cut at %zu of %zu: %d \"%s\"", len, r->good.len, ret, l->error);
		vmstate_loader_free(l);
	}
	assert_true(n > 100);
	/* One byte short of complete. */
	expect_refused_n(&r->vm->vm, r->good.data, r->good.len - 1, 0, "stream truncated in END");
	free(l);
}

/* CONFIG payloads built by hand: RAM size, device count, names. */
struct config_case {
	uint64_t mem;
	uint32_t n;
	const char *names[4];
	int trailing;
	uint16_t bad_len;
};

static void add_nothing(struct stream_out *out, struct vm *vm, void *ctx)
{
	(void)ctx;
	put_machine(out, vm);
}

static void expect_config_refused(struct vm *vm, const struct config_case *c, const char *why)
{
	struct sbuf cfg, s;
	struct writer w;

	sbuf_init(&cfg);
	sbuf_put_u64(&cfg, c->mem);
	sbuf_put_u32(&cfg, c->n);
	for (int i = 0; c->names[i]; i++) {
		sbuf_put_u16(&cfg, c->bad_len && i == 0 ? c->bad_len : (uint16_t)strlen(c->names[i]));
		sbuf_put(&cfg, c->names[i], strlen(c->names[i]));
	}
	if (c->trailing)
		sbuf_put_u8(&cfg, 0);
	writer_open(&w);
	vmstate_write_header(&w.out);
	put_section(&w.out, VMSTATE_SEC_CONFIG, cfg.data, cfg.len);
	add_nothing(&w.out, vm, NULL);
	vmstate_write_end(&w.out);
	writer_close(&w, &s);
	expect_refused(vm, &s, 0, why);
	sbuf_free(&s);
	sbuf_free(&cfg);
}

static void test_refuses_config_mismatch(void **state)
{
	struct rig *r = *state;
	struct vm *vm = &r->vm->vm;
	static const char *const three[] = { "serial0", "virtio-blk0", "virtio-net0", NULL };
	static const char *const other[] = { "serial0", "virtio-net0", NULL };
	struct memvm *big = memvm_new(2 * MEM_SIZE, default_names);
	struct memvm *more = memvm_new(MEM_SIZE, three);
	struct memvm *renamed = memvm_new(MEM_SIZE, other);
	struct sbuf s;

	/* Streams written by another VM configuration. */
	build_stream(&big->vm, NULL, 0, &s, NULL);
	expect_refused(vm, &s, 0, "state has 16 MiB of RAM, this VM 8 MiB (use the same --mem)");
	sbuf_free(&s);
	build_stream(&more->vm, NULL, 0, &s, NULL);
	expect_refused(vm, &s, 0, "state has 3 devices, this VM 2 (use the same devices)");
	sbuf_free(&s);
	build_stream(&renamed->vm, NULL, 0, &s, NULL);
	expect_refused(vm, &s, 0, "state has device virtio-net0, this VM does not");
	sbuf_free(&s);

	/* Malformed CONFIG payloads. */
	expect_config_refused(vm, &(struct config_case){ MEM_SIZE, 2, { "serial0", "virtio-blk0" }, 1, 0 },
			      "CONFIG section has trailing bytes");
	expect_config_refused(vm, &(struct config_case){ MEM_SIZE, 2, { "serial0" }, 0, 0 },
			      "CONFIG section: bad device name");
	expect_config_refused(vm, &(struct config_case){ MEM_SIZE, 2, { "serial0", "virtio-blk0" }, 0, 64 },
			      "CONFIG section: bad device name");
	expect_config_refused(vm, &(struct config_case){ MEM_SIZE, 2, { "serial0", "virtio-blk0" }, 0, 200 },
			      "CONFIG section: bad device name");
	expect_config_refused(vm, &(struct config_case){ MEM_SIZE, 0, { NULL }, 0, 0 },
			      "state has 0 devices, this VM 2");
	{
		/* Shorter than a RAM size and a count. */
		struct sbuf s2;
		struct writer w;

		writer_open(&w);
		vmstate_write_header(&w.out);
		put_section(&w.out, VMSTATE_SEC_CONFIG, "abc", 3);
		writer_close(&w, &s2);
		expect_refused(vm, &s2, 0, "CONFIG section truncated");
		sbuf_free(&s2);
	}
	memvm_free(big);
	memvm_free(more);
	memvm_free(renamed);
}

struct device_case {
	const char *names[3];
	uint16_t bad_len;
};

static void add_devices(struct stream_out *out, struct vm *vm, void *ctx)
{
	const struct device_case *c = ctx;
	static const uint8_t vcpu[] = "v", platform[] = "p";
	struct sbuf rec;

	(void)vm;
	put_section(out, VMSTATE_SEC_VCPU, vcpu, sizeof(vcpu));
	put_section(out, VMSTATE_SEC_PLATFORM, platform, sizeof(platform));
	sbuf_init(&rec);
	sbuf_put_u32(&rec, FAKE_VERSION);
	for (int i = 0; i < 3 && c->names[i]; i++) {
		if (c->bad_len) {
			struct sbuf b;

			sbuf_init(&b);
			sbuf_put_u16(&b, c->bad_len);
			sbuf_put(&b, c->names[i], strlen(c->names[i]));
			put_section(out, VMSTATE_SEC_DEVICE, b.data, b.len);
			sbuf_free(&b);
		} else {
			put_device(out, c->names[i], &rec);
		}
	}
	sbuf_free(&rec);
}

static void expect_devices_refused(struct vm *vm, struct device_case c, const char *why)
{
	struct sbuf s;

	build_custom(vm, add_devices, &c, &s);
	expect_refused(vm, &s, 0, why);
	sbuf_free(&s);
}

static void test_refuses_bad_device_sections(void **state)
{
	struct rig *r = *state;
	struct vm *vm = &r->vm->vm;

	expect_devices_refused(vm, (struct device_case){ { "serial0", "virtio-net0" }, 0 },
			       "state for unknown device virtio-net0");
	expect_devices_refused(vm, (struct device_case){ { "serial0", "virtio-blk0", "serial0" }, 0 },
			       "device serial0 appears twice");
	expect_devices_refused(vm, (struct device_case){ { "serial0" }, 64 }, "DEVICE section: bad name");
	expect_devices_refused(vm, (struct device_case){ { "serial0" }, 8 }, "DEVICE section: bad name");
	expect_devices_refused(vm, (struct device_case){ { "" }, 0 }, "DEVICE section: bad name");
}

static void add_ram_hash(struct stream_out *out, struct vm *vm, void *ctx)
{
	const uint64_t *h = ctx;

	assert_int_equal(vmstate_write_ram(out, vm, NULL, NULL), 0);
	put_machine(out, vm);
	put_section(out, VMSTATE_SEC_RAM_HASH, h, h[1] ? 4 : 8);
}

static void test_refuses_ram_hash_mismatch(void **state)
{
	struct rig *r = *state;
	struct vm *vm = &r->vm->vm;
	struct memvm *dst = memvm_new(MEM_SIZE, default_names);
	struct vmstate_loader *l = malloc(sizeof(*l));
	uint64_t h[2] = { vmstate_ram_hash(vm) ^ 1, 0 };
	struct sbuf s;

	build_custom(vm, add_ram_hash, h, &s);
	expect_refused(&dst->vm, &s, 1, "RAM differs from the sender's (hash ");
	/* Validating only: RAM is not loaded, so the hash is not compared. */
	assert_int_equal(load_bytes(l, &dst->vm, s.data, s.len, 0, 0), 0);
	assert_false(l->ram_hash_checked);
	vmstate_loader_free(l);
	sbuf_free(&s);
	h[1] = 1;
	build_custom(vm, add_ram_hash, h, &s);
	expect_refused(&dst->vm, &s, 1, "RAM_HASH section has 4 bytes");
	sbuf_free(&s);
	free(l);
	memvm_free(dst);
}

/* ---- COLO checkpoints: bodies without header or CONFIG, RAM into a cache ---- */

static int load_body(struct vmstate_loader *l, const uint8_t *p, size_t n)
{
	struct stream_in in;
	int ret;

	stream_in_init_mem(&in, p, n);
	ret = vmstate_load_stream_body(l, &in);
	stream_in_free(&in);
	return ret;
}

/* A loader for the RAM part of a COLO checkpoint, into a cache (fd: its memfd, or -1). */
static void cache_loader_init(struct vmstate_loader *l, struct vm *vm, uint8_t *cache, int fd,
			      uint64_t *dirty)
{
	vmstate_loader_init(l, vm, 1);
	l->have_config = 1;
	l->ram_target = cache;
	l->ram_target_fd = fd;
	l->ram_target_dirty = dirty;
	l->ram_only = 1;
}

static void test_checkpoint_body_into_cache(void **state)
{
	struct memvm *src = memvm_new(MEM_SIZE, default_names);
	struct memvm *dst = memvm_new(MEM_SIZE, default_names);
	struct vmstate_loader *l = malloc(sizeof(*l));
	uint8_t *cache = calloc(1, MEM_SIZE);
	uint64_t dirty[MEM_PAGES / 64] = { 0 }, bitmap[MEM_PAGES / 64] = { 0 };
	struct sbuf ram, dev, bad;
	struct writer w;

	(void)state;
	fill_pattern(&src->vm);
	bitmap[0] = 0x0f;                  /* pages 0-3 */
	bitmap[100 / 64] = 1ULL << (100 % 64);
	bitmap[500 / 64] = 1ULL << (500 % 64); /* a hole: sent as a zero page */
	memset(cache + 500 * PAGE, 0x99, PAGE);
	/* The RAM part as the primary writes it, then the device part. */
	writer_open(&w);
	assert_int_equal(vmstate_write_ram(&w.out, &src->vm, bitmap, NULL), 0);
	assert_int_equal(vmstate_write_ram_hash(&w.out, vmstate_ram_hash(&src->vm)), 0);
	assert_int_equal(vmstate_write_end(&w.out), 0);
	writer_close(&w, &ram);
	writer_open(&w);
	put_machine(&w.out, &src->vm);
	assert_int_equal(vmstate_write_end(&w.out), 0);
	writer_close(&w, &dev);

	cache_loader_init(l, &dst->vm, cache, -1, dirty);
	assert_int_equal(load_body(l, ram.data, ram.len), 0);
	assert_int_equal(l->ram_pages, 6);
	assert_true(l->ram_hash_expected); /* recorded, compared once the cache is flushed */
	assert_false(l->ram_hash_checked);
	assert_int_equal(dirty[0], 0x0f);
	assert_int_equal(dirty_count(dirty, MEM_PAGES / 64), 6);
	assert_memory_equal(cache, src->vm.mem.base, 4 * PAGE);
	assert_memory_equal(cache + 100 * PAGE, src->vm.mem.base + 100 * PAGE, PAGE);
	assert_int_equal(cache[500 * PAGE + 7], 0); /* the zero page cleared the cache */
	assert_int_equal(gmem_next_data(&dst->vm.mem, 0), MEM_PAGES); /* guest RAM untouched */
	/* The device part: machine sections only. */
	l->ram_only = 0;
	assert_int_equal(load_body(l, dev.data, dev.len), 0);
	assert_int_equal(l->ndevices, 2);
	assert_true(l->vcpu.len && l->platform.len);
	vmstate_loader_free(l);

	/* What may not appear where: CONFIG in a checkpoint, machine state in the RAM part, RAM in the device part. */
	cache_loader_init(l, &dst->vm, cache, -1, dirty);
	assert_int_equal(load_body(l, dev.data, dev.len), -EINVAL);
	assert_non_null(strstr(l->error, "section type 3 not allowed here"));
	vmstate_loader_free(l);
	l->have_config = 1;
	l->ram_only = 0;
	assert_int_equal(load_body(l, ram.data, ram.len), -EINVAL);
	assert_non_null(strstr(l->error, "section type 2 not allowed here"));
	vmstate_loader_free(l);
	build_stream(&src->vm, NULL, 0, &bad, NULL);
	l->ram_only = 1;
	assert_int_equal(load_body(l, bad.data + 16, bad.len - 16), -EINVAL);
	assert_non_null(strstr(l->error, "section type 1 not allowed here"));
	vmstate_loader_free(l);
	/* A checkpoint's RAM part is checked like any other: a cut is refused. */
	l->ram_only = 1;
	assert_int_equal(load_body(l, ram.data, ram.len - 9), -EINVAL);
	assert_non_null(strstr(l->error, "truncated"));
	vmstate_loader_free(l);

	sbuf_free(&ram);
	sbuf_free(&dev);
	sbuf_free(&bad);
	free(cache);
	free(l);
	memvm_free(src);
	memvm_free(dst);
}

/* The RAM part of a checkpoint with the given DIGEST sections, then END. */
static void digest_body(struct vm *vm, const char *const *names, int n, struct sbuf *out)
{
	uint64_t bitmap[MEM_PAGES / 64] = { 1 };
	struct writer w;

	writer_open(&w);
	assert_int_equal(vmstate_write_ram(&w.out, vm, bitmap, NULL), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(vmstate_write_digest(&w.out, names[i], 0x1000u + (uint64_t)i), 0);
	assert_int_equal(vmstate_write_end(&w.out), 0);
	writer_close(&w, out);
}

/* The checkpoint body in s, loaded as a COLO secondary's RAM part: refused, saying `why`. */
static void expect_body_refused(struct vm *vm, struct sbuf *s, const char *why)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	uint8_t *cache = calloc(1, MEM_SIZE);
	uint64_t dirty[MEM_PAGES / 64] = { 0 };

	cache_loader_init(l, vm, cache, -1, dirty);
	assert_int_equal(load_body(l, s->data, s->len), -EINVAL);
	if (!strstr(l->error, why))
		fail_msg("'%s' does not say '%s'", l->error, why);
	vmstate_loader_free(l);
	free(l);
	free(cache);
	sbuf_free(s);
}

/* One DIGEST section with this payload, then END. */
static void raw_digest_body(const void *payload, size_t len, struct sbuf *out)
{
	struct writer w;

	writer_open(&w);
	put_section_v(&w.out, VMSTATE_SEC_DIGEST, 1, payload, len);
	writer_close(&w, out);
}

/* DIGEST sections (replicated disks) are recorded for the COLO secondary; bad ones refused. */
static void test_checkpoint_digests(void **state)
{
	static const char *const two[] = { "disk0", "disk1" }, *const dup[] = { "disk0", "disk0" };
	static const char *const many[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i" };
	struct memvm *vm = memvm_new(MEM_SIZE, default_names);
	struct vmstate_loader *l = malloc(sizeof(*l));
	uint8_t *cache = calloc(1, MEM_SIZE);
	uint64_t dirty[MEM_PAGES / 64] = { 0 };
	struct writer w;
	struct sbuf s;

	(void)state;
	digest_body(&vm->vm, two, 2, &s);
	cache_loader_init(l, &vm->vm, cache, -1, dirty);
	assert_int_equal(load_body(l, s.data, s.len), 0);
	assert_int_equal(l->ndigests, 2);
	assert_string_equal(l->digests[0].name, "disk0");
	assert_int_equal(l->digests[0].value, 0x1000);
	assert_string_equal(l->digests[1].name, "disk1");
	assert_int_equal(l->digests[1].value, 0x1001);
	vmstate_loader_free(l);
	sbuf_free(&s);

	digest_body(&vm->vm, dup, 2, &s);
	expect_body_refused(&vm->vm, &s, "two DIGEST sections for 'disk0'");
	digest_body(&vm->vm, many, 9, &s);
	expect_body_refused(&vm->vm, &s, "more than 8 DIGEST sections");
	/* A name without its NUL, a payload of the wrong size, an overlong name. */
	raw_digest_body("0123456789abcdef01234567", 24, &s);
	expect_body_refused(&vm->vm, &s, "DIGEST section without a name");
	raw_digest_body("disk0", 5, &s);
	expect_body_refused(&vm->vm, &s, "DIGEST section has 5 bytes");
	writer_open(&w);
	assert_int_equal(vmstate_write_digest(&w.out, "a-name-of-16-chr", 1), -ENAMETOOLONG);
	writer_close(&w, &s);
	sbuf_free(&s);

	free(cache);
	free(l);
	memvm_free(vm);
}

/* ---- (c) machine state on a real VM, (d) dirty tracking: need KVM ---- */

static struct vm kvm;
static struct device *kserial, *ktestdev;

static int kvm_setup(void **state)
{
	(void)state;
	if (vm_create(&kvm, NULL, 16ULL << 20) < 0)
		return -1;
	if (vcpu_set_pvh_boot_state(kvm.vcpu, 0x100000, 0x6000) < 0 ||
	    testdev_create(&kvm, &ktestdev) < 0 || serial_create(&kvm, -1, -1, &kserial) < 0)
		return -1;
	/* A paused test device's clock stands still, so its records compare. */
	ktestdev->ops->pause(ktestdev);
	return 0;
}

static int kvm_teardown(void **state)
{
	(void)state;
	vm_destroy(&kvm);
	return 0;
}

struct machine_snap {
	struct sbuf vcpu, platform, dev[VM_MAX_DEVICES];
};

/*
 * The platform record keeps time too: the KVM clock item (2) runs, and the
 * PIT (1) stamps each channel's count_load_time when it is set. Blank those;
 * the PICs and the IOAPIC must compare exactly.
 */
static void blank_platform_time(struct sbuf *rec)
{
	size_t pos = 4;

	while (pos + 8 <= rec->len) {
		uint32_t tag, len;

		memcpy(&tag, rec->data + pos, 4);
		memcpy(&len, rec->data + pos + 4, 4);
		pos += 8;
		if (tag == 2)
			memset(rec->data + pos, 0, len);
		if (tag == 1)
			for (int ch = 0; ch < 3; ch++)
				memset(rec->data + pos + ch * sizeof(struct kvm_pit_channel_state) +
					       offsetof(struct kvm_pit_channel_state, count_load_time),
				       0, 8);
		pos += len;
	}
}

static void snap_take(struct vm *vm, struct machine_snap *s)
{
	sbuf_init(&s->vcpu);
	sbuf_init(&s->platform);
	assert_int_equal(vcpu_save(vm->vcpu, &s->vcpu), 0);
	assert_int_equal(platform_save(vm, &s->platform), 0);
	vcpu_record_blank_clocks(&s->vcpu);
	blank_platform_time(&s->platform);
	for (int i = 0; i < vm->ndevices; i++) {
		sbuf_init(&s->dev[i]);
		assert_int_equal(vm->devices[i]->ops->save(vm->devices[i], &s->dev[i]), 0);
	}
}

static void snap_free(struct vm *vm, struct machine_snap *s)
{
	sbuf_free(&s->vcpu);
	sbuf_free(&s->platform);
	for (int i = 0; i < vm->ndevices; i++)
		sbuf_free(&s->dev[i]);
}

static void sbuf_equal(const struct sbuf *a, const struct sbuf *b, const char *what)
{
	if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
		size_t i = 0;

		while (i < a->len && i < b->len && a->data[i] == b->data[i])
			i++;
		fail_msg("%s differs (%zu vs %zu bytes, first difference at %zu)", what, a->len, b->len, i);
	}
}

static void snap_equal(struct vm *vm, const struct machine_snap *a, const struct machine_snap *b)
{
	sbuf_equal(&a->vcpu, &b->vcpu, "vCPU state");
	sbuf_equal(&a->platform, &b->platform, "platform state");
	for (int i = 0; i < vm->ndevices; i++)
		sbuf_equal(&a->dev[i], &b->dev[i], vm->devices[i]->name);
}

static uint8_t serial_reg(int off)
{
	uint8_t v;

	kserial->ops->io_read(kserial, (uint64_t)off, &v, 1);
	return v;
}

static void set_serial_reg(int off, uint8_t v) { kserial->ops->io_write(kserial, (uint64_t)off, &v, 1); }

static void set_ioapic_entry(int pin, uint64_t bits)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

	assert_int_equal(ioctl(kvm.vm_fd, KVM_GET_IRQCHIP, &chip), 0);
	chip.chip.ioapic.redirtbl[pin].bits = bits;
	assert_int_equal(ioctl(kvm.vm_fd, KVM_SET_IRQCHIP, &chip), 0);
}

/* The real VM as state A: rip, a serial scratch register, an IOAPIC entry, RAM. */
static void put_state(uint64_t rip, uint8_t scr, uint64_t ioapic, uint8_t ram_seed)
{
	kvm_set_vcpu_rip(kvm.vcpu->fd, rip);
	set_serial_reg(7, scr);
	set_ioapic_entry(5, ioapic);
	fill_page(&kvm, 0x200, ram_seed);
	fill_page(&kvm, 0x201, ram_seed + 1);
}

static void write_machine_stream(struct sbuf *s)
{
	struct writer w;

	writer_open(&w);
	assert_int_equal(vmstate_write_header(&w.out), 0);
	assert_int_equal(vmstate_write_config(&w.out, &kvm), 0);
	assert_int_equal(vmstate_write_ram(&w.out, &kvm, NULL, NULL), 0);
	assert_int_equal(vmstate_write_machine(&w.out, &kvm), 0);
	assert_int_equal(vmstate_write_ram_hash(&w.out, vmstate_ram_hash(&kvm)), 0);
	assert_int_equal(vmstate_write_end(&w.out), 0);
	writer_close(&w, s);
}

static void test_machine_roundtrip(void **state)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct machine_snap a, b, after;
	uint8_t page_a[PAGE];
	struct sbuf s;

	(void)state;
	put_state(0x100000, 0x11, 0x31, 0x40);
	snap_take(&kvm, &a);
	memcpy(page_a, gmem_ptr(&kvm.mem, 0x200 * PAGE, PAGE), PAGE);
	write_machine_stream(&s);
	assert_true(find_section(&s, VMSTATE_SEC_DEVICE, 1) > 0);

	put_state(0xdead000, 0x22, 0x25, 0x90);
	kserial->ops->reset(kserial);
	set_serial_reg(7, 0x22);
	snap_take(&kvm, &b);
	assert_int_equal(kvm_vcpu_rip(kvm.vcpu->fd), 0xdead000);

	/* Load (RAM too) and apply: back to state A exactly. */
	assert_int_equal(load_bytes(l, &kvm, s.data, s.len, 1, 0), 0);
	assert_true(l->ram_hash_checked);
	assert_int_equal(l->ndevices, 2);
	assert_int_equal(vmstate_apply_machine(l), 0);
	vmstate_loader_free(l);
	snap_take(&kvm, &after);
	snap_equal(&kvm, &a, &after);
	assert_int_equal(kvm_vcpu_rip(kvm.vcpu->fd), 0x100000);
	assert_int_equal(serial_reg(7), 0x11);
	assert_memory_equal(gmem_ptr(&kvm.mem, 0x200 * PAGE, PAGE), page_a, PAGE);

	snap_free(&kvm, &a);
	snap_free(&kvm, &b);
	snap_free(&kvm, &after);
	sbuf_free(&s);
	free(l);
}

/* Which collected record to spoil before applying, and how. */
enum spoil { SPOIL_VCPU, SPOIL_PLATFORM, SPOIL_TESTDEV, SPOIL_SERIAL_VERSION, SPOIL_SERIAL_TRAILING };

static void spoil(struct vmstate_loader *l, enum spoil how)
{
	struct sbuf *rec = NULL;

	for (int i = 0; i < l->ndevices; i++)
		if (strcmp(l->devices[i].name, how == SPOIL_TESTDEV ? "testdev" : "serial0") == 0)
			rec = &l->devices[i].rec;
	switch (how) {
	case SPOIL_VCPU:
		l->vcpu.data[4] = 99; /* the first item's tag */
		break;
	case SPOIL_PLATFORM:
		l->platform.len -= 3; /* the IOAPIC item cut short */
		break;
	case SPOIL_TESTDEV:
		sbuf_put_u8(rec, 0); /* a record must be consumed exactly */
		break;
	case SPOIL_SERIAL_VERSION: /* done in the stream itself, see below */
		break;
	case SPOIL_SERIAL_TRAILING:
		sbuf_put_u8(rec, 0);
		break;
	}
}

static void test_refused_record_rolls_back(void **state)
{
	static const struct {
		enum spoil how;
		const char *why;
	} cases[] = {
		{ SPOIL_VCPU, "the vCPU state was refused" },
		{ SPOIL_PLATFORM, "the platform state was refused" },
		{ SPOIL_TESTDEV, "the testdev state was refused" },
		{ SPOIL_SERIAL_VERSION, "the serial0 state was refused (Invalid argument); the VM keeps its own" },
		{ SPOIL_SERIAL_TRAILING, "the serial0 state was refused" },
	};
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct sbuf s, bad;
	long serial_sec;

	(void)state;
	put_state(0x100000, 0x11, 0x31, 0x40);
	write_machine_stream(&s);
	/* A stream whose serial record has a wrong version but a valid checksum:
	 * the stream loads, the serial device refuses its record. */
	copy_sbuf(&bad, &s);
	serial_sec = find_section(&bad, VMSTATE_SEC_DEVICE, 1);
	assert_memory_equal(bad.data + serial_sec + 16, "\x07\x00serial0", 9);
	bad.data[serial_sec + 16 + 9] = 7; /* u32 version after the name */
	rehash(&bad, serial_sec);
	/* State B: everything applied before the refused record must come back to this. */
	put_state(0xbeef000, 0x33, 0x27, 0x70);
	set_serial_reg(1, 0x01); /* IER: RX interrupt enabled */
	kserial->ops->io_write(kserial, 4, &(uint8_t){ 0x10 }, 1); /* MCR: loopback */
	set_serial_reg(0, 'q'); /* a byte in the RX FIFO */
	ktestdev->ops->reset(ktestdev);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct machine_snap before, after;
		uint8_t page[PAGE];

		snap_take(&kvm, &before);
		memcpy(page, gmem_ptr(&kvm.mem, 0x200 * PAGE, PAGE), PAGE);
		if (cases[i].how == SPOIL_SERIAL_VERSION)
			assert_int_equal(load_bytes(l, &kvm, bad.data, bad.len, 0, 0), 0);
		else
			assert_int_equal(load_bytes(l, &kvm, s.data, s.len, 0, 0), 0);
		spoil(l, cases[i].how);
		assert_int_equal(vmstate_apply_machine(l), -EINVAL);
		if (!strstr(l->error, cases[i].why))
			fail_msg("case %zu: \"%s\"", i, l->error);
		vmstate_loader_free(l);
		snap_take(&kvm, &after);
		snap_equal(&kvm, &before, &after);
		assert_int_equal(kvm_vcpu_rip(kvm.vcpu->fd), 0xbeef000);
		assert_int_equal(serial_reg(7), 0x33);
		assert_memory_equal(gmem_ptr(&kvm.mem, 0x200 * PAGE, PAGE), page, PAGE);
		snap_free(&kvm, &before);
		snap_free(&kvm, &after);
	}
	/* The looped-back byte is still in the FIFO. */
	assert_true(serial_reg(5) & 0x01);
	assert_int_equal(serial_reg(0), 'q');
	/* A stream missing a device's record is refused before anything is applied. */
	assert_int_equal(load_bytes(l, &kvm, s.data, s.len, 0, 0), 0);
	sbuf_free(&l->devices[1].rec);
	l->ndevices = 1;
	assert_int_equal(vmstate_apply_machine(l), -EINVAL);
	assert_non_null(strstr(l->error, "stream has no state for device"));
	vmstate_loader_free(l);
	assert_int_equal(kvm_vcpu_rip(kvm.vcpu->fd), 0xbeef000);
	sbuf_free(&s);
	sbuf_free(&bad);
	free(l);
}

/* A second VM with the same devices takes the first one's state (what migration does). */
static void test_machine_into_second_vm(void **state)
{
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct machine_snap a, got;
	struct device *td2;
	struct vm *vm2 = calloc(1, sizeof(*vm2));
	struct sbuf s;

	(void)state;
	put_state(0x100000, 0x5c, 0x33, 0x10);
	snap_take(&kvm, &a);
	write_machine_stream(&s);
	assert_int_equal(vm_create(vm2, NULL, 16ULL << 20), 0);
	assert_int_equal(testdev_create(vm2, &td2), 0);
	assert_int_equal(serial_create(vm2, -1, -1, NULL), 0);
	td2->ops->pause(td2);
	assert_int_equal(load_bytes(l, vm2, s.data, s.len, 1, 1), 0);
	assert_true(l->ram_hash_checked);
	assert_int_equal(vmstate_apply_machine(l), 0);
	vmstate_loader_free(l);
	snap_take(vm2, &got);
	snap_equal(&kvm, &a, &got);
	assert_memory_equal(gmem_ptr(&kvm.mem, 0x200 * PAGE, 2 * PAGE),
			    gmem_ptr(&vm2->mem, 0x200 * PAGE, 2 * PAGE), 2 * PAGE);
	assert_int_equal(vmstate_ram_hash(&kvm), vmstate_ram_hash(vm2));
	snap_free(&kvm, &a);
	snap_free(vm2, &got);
	vm_destroy(vm2);
	free(vm2);
	sbuf_free(&s);
	free(l);
}

static int bit_set(const uint64_t *b, uint64_t p) { return (b[p / 64] >> (p % 64)) & 1; }

static void test_dirty_harvest_vmm_writes(void **state)
{
	uint64_t words = dirty_bitmap_words(&kvm);
	uint64_t *bm = calloc(words, sizeof(uint64_t)), *again = calloc(words, sizeof(uint64_t));
	static const uint64_t expect[] = { 3, 10, 11, 300, 4095 };
	uint8_t buf[200];
	uint8_t *p;

	(void)state;
	assert_int_equal(words, (16ULL << 20) / PAGE / 64);
	/* Start a period: whatever earlier tests wrote is harvested and dropped. */
	assert_true(dirty_harvest(&kvm, bm) >= 0);
	memset(bm, 0, words * sizeof(uint64_t));

	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(gmem_write(&kvm.mem, 3 * PAGE + 17, buf, 1), 0);
	assert_int_equal(gmem_write(&kvm.mem, 10 * PAGE + PAGE - 100, buf, 200), 0); /* spans 10-11 */
	p = gmem_ptr_for_write(&kvm.mem, 300 * PAGE, 8);
	assert_non_null(p);
	p[0] = 1;
	assert_int_equal(gmem_write(&kvm.mem, 4095 * PAGE, buf, 8), 0); /* the last page */
	/* Failed writes (outside RAM) and reads mark nothing. */
	assert_int_equal(gmem_write(&kvm.mem, 16ULL << 20, buf, 1), -EFAULT);
	assert_int_equal(gmem_read(&kvm.mem, 500 * PAGE, buf, 8), 0);
	assert_non_null(gmem_ptr(&kvm.mem, 501 * PAGE, 8));

	assert_int_equal(dirty_harvest(&kvm, bm), 5);
	assert_int_equal(dirty_count(bm, words), 5);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		assert_true(bit_set(bm, expect[i]));
	/* No writes since: nothing new, into a fresh bitmap or the old one. */
	assert_int_equal(dirty_harvest(&kvm, again), 0);
	assert_int_equal(dirty_count(again, words), 0);
	assert_int_equal(dirty_harvest(&kvm, bm), 0);
	assert_int_equal(dirty_count(bm, words), 5);
	/* A page written again is counted only if the bitmap did not have it. */
	assert_int_equal(gmem_write(&kvm.mem, 3 * PAGE, buf, 1), 0);
	assert_int_equal(gmem_write(&kvm.mem, 7 * PAGE, buf, 1), 0);
	assert_int_equal(dirty_harvest(&kvm, bm), 1);
	assert_true(bit_set(bm, 7));
	assert_int_equal(dirty_count(bm, words), 6);
	free(bm);
	free(again);
}

/* Above 3 GiB RAM is split around the MMIO hole: the high slot's pages follow the low ones. */
static void test_dirty_harvest_two_slots(void **state)
{
	struct vm *big = calloc(1, sizeof(*big));
	uint64_t size = GMEM_HOLE_START + (64ULL << 20), words, *bm;
	uint64_t low_pages = GMEM_HOLE_START / PAGE;
	uint8_t v = 1;

	(void)state;
	assert_int_equal(vm_create(big, NULL, size), 0);
	assert_int_equal(big->mem.nslots, 2);
	words = dirty_bitmap_words(big);
	bm = calloc(words, sizeof(uint64_t));
	assert_true(dirty_harvest(big, bm) >= 0);
	memset(bm, 0, words * sizeof(uint64_t));
	assert_int_equal(gmem_write(&big->mem, GMEM_HIGH_START, &v, 1), 0);
	assert_int_equal(gmem_write(&big->mem, GMEM_HIGH_START + 5 * PAGE, &v, 1), 0);
	assert_int_equal(gmem_write(&big->mem, GMEM_HOLE_START - 1, &v, 1), 0);
	assert_int_equal(gmem_write(&big->mem, GMEM_HOLE_START, &v, 1), -EFAULT); /* the hole */
	assert_int_equal(dirty_harvest(big, bm), 3);
	assert_true(bit_set(bm, low_pages - 1));
	assert_true(bit_set(bm, low_pages));
	assert_true(bit_set(bm, low_pages + 5));
	assert_int_equal(gmem_page_index(&big->mem, GMEM_HIGH_START + 5 * PAGE), (int64_t)(low_pages + 5));
	assert_int_equal(dirty_harvest(big, bm), 0);
	free(bm);
	vm_destroy(big);
	free(big);
}

/* RAM runs for a cache in a memfd: memory reserved before each data run is
 * written (a full host refuses the stream instead of faulting), zero runs freed. */
static void test_checkpoint_body_reserves_cache_memory(void **state)
{
	struct memvm *src = memvm_new(MEM_SIZE, default_names);
	struct memvm *dst = memvm_new(MEM_SIZE, default_names);
	struct vmstate_loader *l = malloc(sizeof(*l));
	uint64_t dirty[MEM_PAGES / 64] = { 0 }, bitmap[MEM_PAGES / 64] = { 0 };
	int fd = memfd_create("test-cache", MFD_CLOEXEC), ro;
	char path[64];
	uint8_t *cache;
	struct sbuf ram;
	struct writer w;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MEM_SIZE), 0);
	cache = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(cache != MAP_FAILED);
	memset(cache + 500 * PAGE, 0x99, PAGE); /* the zero run below frees it */
	fill_pattern(&src->vm);
	bitmap[0] = 0x0f;
	bitmap[500 / 64] = 1ULL << (500 % 64); /* a hole in src: a zero run */
	writer_open(&w);
	assert_int_equal(vmstate_write_ram(&w.out, &src->vm, bitmap, NULL), 0);
	assert_int_equal(vmstate_write_end(&w.out), 0);
	writer_close(&w, &ram);

	cache_loader_init(l, &dst->vm, cache, fd, dirty);
	assert_int_equal(load_body(l, ram.data, ram.len), 0);
	assert_memory_equal(cache, src->vm.mem.base, 4 * PAGE);
	assert_int_equal(lseek(fd, 500 * PAGE, SEEK_HOLE), 500 * PAGE); /* freed, not written */
	assert_int_equal(cache[500 * PAGE + 7], 0);                    /* (reading it allocates) */
	vmstate_loader_free(l);

	/* Memory that cannot be reserved (here: an fd fallocate refuses) refuses the stream. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	cache_loader_init(l, &dst->vm, cache, ro, dirty);
	assert_int_equal(load_body(l, ram.data, ram.len), -EINVAL);
	assert_non_null(strstr(l->error, "no memory for 4 pages at page 0"));
	vmstate_loader_free(l);
	close(ro);
	munmap(cache, MEM_SIZE);
	close(fd);
	sbuf_free(&ram);
	free(l);
	memvm_free(src);
	memvm_free(dst);
}

/* The hash of RAM as it will be once the overlay is copied, without copying. */
static void test_ram_hash_overlay(void **state)
{
	struct memvm *src = memvm_new(MEM_SIZE, default_names);
	struct memvm *dst = memvm_new(MEM_SIZE, default_names);
	uint8_t *cache = calloc(1, MEM_SIZE);
	uint64_t a[MEM_PAGES / 64] = { 0 }, b[MEM_PAGES / 64] = { 0 };
	uint64_t want, before;

	(void)state;
	fill_pattern(&src->vm);
	fill_page(&dst->vm, 7, 0x42);    /* data in dst, a hole in src: overlaid with zeros */
	fill_page(&dst->vm, 1500, 0x43); /* the same on both sides: not overlaid */
	fill_page(&src->vm, 1500, 0x43);
	want = vmstate_ram_hash(&src->vm);
	before = vmstate_ram_hash(&dst->vm);
	memcpy(cache, src->vm.mem.base, MEM_SIZE);
	/* Every page that differs, split between the two bitmaps (SVM-dirty, received). */
	for (uint64_t p = 0; p < MEM_PAGES; p++)
		if (memcmp(src->vm.mem.base + p * PAGE, dst->vm.mem.base + p * PAGE, PAGE))
			(p % 2 ? a : b)[p / 64] |= 1ULL << (p % 64);
	assert_true(a[7 / 64] & 1ULL << 7);
	assert_int_equal(vmstate_ram_hash_overlay(&dst->vm, cache, a, b), want);
	assert_int_equal(vmstate_ram_hash_overlay(&dst->vm, cache, NULL, NULL), before);
	assert_int_equal(vmstate_ram_hash(&dst->vm), before); /* nothing was copied */
	/* One overlaid page missing from the bitmaps: the digest tells. */
	a[7 / 64] &= ~(1ULL << 7);
	assert_int_not_equal(vmstate_ram_hash_overlay(&dst->vm, cache, a, b), want);
	free(cache);
	memvm_free(src);
	memvm_free(dst);
}

int main(void)
{
	const struct CMUnitTest plain[] = {
		cmocka_unit_test(test_ram_roundtrip_all),
		cmocka_unit_test(test_ram_roundtrip_bitmap),
		cmocka_unit_test(test_validate_only_leaves_ram),
		cmocka_unit_test_setup_teardown(test_good_stream_loads, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_bad_header, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_bad_sections, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_missing_pieces, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_bad_ram_runs, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_corrupted_ram_page, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_truncation, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_config_mismatch, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_bad_device_sections, rig_setup, rig_teardown),
		cmocka_unit_test_setup_teardown(test_refuses_ram_hash_mismatch, rig_setup, rig_teardown),
		cmocka_unit_test(test_checkpoint_body_into_cache),
		cmocka_unit_test(test_checkpoint_digests),
		cmocka_unit_test(test_ram_hash_overlay),
		cmocka_unit_test(test_checkpoint_body_reserves_cache_memory),
	};
	const struct CMUnitTest with_kvm[] = {
		cmocka_unit_test(test_machine_roundtrip),
		cmocka_unit_test(test_refused_record_rolls_back),
		cmocka_unit_test(test_machine_into_second_vm),
		cmocka_unit_test(test_dirty_harvest_vmm_writes),
		cmocka_unit_test(test_dirty_harvest_two_slots),
	};
	int failed = cmocka_run_group_tests_name("vmstate", plain, NULL, NULL);

	if (!kvm_available())
		return failed;
	return failed + cmocka_run_group_tests_name("vmstate_kvm", with_kvm, kvm_setup, kvm_teardown);
}
