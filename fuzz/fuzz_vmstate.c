/*
 * libFuzzer target for the VM state loader: the input is a hostile state
 * stream, read from a memfd by vmstate_load_stream on a VM that has guest
 * memory (8 MiB) and two devices ("serial0", "virtio-blk0") but no KVM.
 * RAM runs are written into guest memory (apply_ram); vCPU, platform and
 * device records are only collected, which is all the loader does with them
 * before END (vmstate_apply_machine needs KVM and is not run here).
 *
 * The first input byte picks the mode, the rest is the stream:
 *   bit 0     prepend a valid header + CONFIG for this VM, written by the real
 *             writer, so mutations start past the magic and the config check
 *   bit 1     fix up section checksums: walk the section framing and put the
 *             XXH3-64 of each payload into its trailer, so mutations reach the
 *             checks behind the hash (RAM runs, CONFIG and DEVICE contents)
 *   bits 2-3  0, 1: apply_ram; 2: apply_ram on RAM known to be zero
 *             (ram_is_zero, the --restore case); 3: validate only
 *   bit 4     a COLO checkpoint instead (bits 0, 2, 3 ignored): the stream is
 *             loaded with vmstate_load_stream_body as the secondary does, RAM
 *             part first (ram_only, pages into a cache beside guest RAM), then
 *             whatever follows its END as the device-state blob (from memory)
 *
 * What is checked besides the sanitizers: a refused stream returns -EINVAL
 * with a message; an accepted one has CONFIG, vCPU and platform state; a
 * validating loader, and a checkpoint (which fills the cache), never touch
 * guest RAM; the cache's dirty bitmap covers every page the loader counted;
 * every collected device record names a device of the VM and is readable to
 * its stated length.
 *
 *   make fuzz && mkdir -p /tmp/vmstate-corpus &&
 *   build/fuzz/fuzz_vmstate -max_len=32768 /tmp/vmstate-corpus fuzz/corpus/vmstate
 * (new inputs go to the first directory; the seeds stay as they are).
 * FUZZ_VMSTATE_VERBOSE=1 build/fuzz/fuzz_vmstate FILE... prints each verdict.
 *
 * Built with -DVMSTATE_CORPUS_MAIN (plain cc, no -fsanitize=fuzzer) this file
 * is instead a program that writes the seed corpus with the real writer:
 *   cc -std=gnu11 -D_GNU_SOURCE -pthread -Isrc -Iabi -DVMSTATE_CORPUS_MAIN \
 *      fuzz/fuzz_vmstate.c build/liblockstep.a -ljansson -lxxhash -o /tmp/gen
 *   /tmp/gen fuzz/corpus/vmstate
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "dev/device.h"
#include "state/stream.h"
#include "state/vmstate.h"
#include "util/sbuf.h"
#include "vm/dirty.h"
#include "vm/memory.h"
#include "vm/vm.h"

#define FUZZ_RAM_SIZE (8ULL << 20)
#define FAKE_STATE_VERSION 1
#define FAKE_STATE_SIZE 24

enum {
	MODE_PREFIX = 1,
	MODE_FIX_HASH = 2,
	MODE_RAM_SHIFT = 2,
	MODE_RAM_MASK = 3,
	RAM_APPLY = 0,
	RAM_APPLY_ZERO = 2,
	RAM_VALIDATE = 3,
	MODE_COLO = 16,
};

/* A device whose record is a version and FAKE_STATE_SIZE bytes. */
struct fake_dev {
	struct device dev;
	uint8_t state[FAKE_STATE_SIZE];
};

static int fake_save(struct device *d, struct sbuf *out)
{
	struct fake_dev *f = (struct fake_dev *)d;

	sbuf_put_u32(out, FAKE_STATE_VERSION);
	sbuf_put(out, f->state, sizeof(f->state));
	return out->error;
}

static int fake_load(struct device *d, struct sbuf_reader *in)
{
	struct fake_dev *f = (struct fake_dev *)d;
	uint8_t state[FAKE_STATE_SIZE];
	uint32_t version = sbuf_get_u32(in);

	sbuf_get(in, state, sizeof(state));
	if (sbuf_reader_error(in) || version != FAKE_STATE_VERSION || sbuf_remaining(in))
		return -EINVAL;
	memcpy(f->state, state, sizeof(state));
	return 0;
}

static const struct device_ops fake_ops = {
	.save = fake_save,
	.load = fake_load,
};

static struct vm vm;
static struct fake_dev devs[2] = {
	{ .dev = { .name = "serial0", .ops = &fake_ops, .vm = &vm } },
	{ .dev = { .name = "virtio-blk0", .ops = &fake_ops, .vm = &vm } },
};

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

/* A VM with guest memory and the two fake devices; no KVM, no event loop. */
static void fuzz_vm_init(void)
{
	memset(&vm, 0, sizeof(vm));
	vm.kvm_fd = vm.vm_fd = -1;
	vm.loop = NULL;
	check(gmem_init(&vm.mem, FUZZ_RAM_SIZE) == 0);
	for (int i = 0; i < 2; i++) {
		memset(devs[i].state, 0x10 * (i + 1), sizeof(devs[i].state));
		vm.devices[vm.ndevices++] = &devs[i].dev;
	}
}

/* Everything written to a memfd by fn, returned as a malloc'd buffer. */
static uint8_t *capture(void (*fn)(struct stream_out *, void *), void *ctx, size_t *len)
{
	struct stream_out out;
	int fd = memfd_create("fuzz-vmstate-gen", MFD_CLOEXEC);
	off_t size;
	uint8_t *buf;

	check(fd >= 0 && stream_out_init(&out, fd) == 0);
	fn(&out, ctx);
	check(stream_out_flush(&out) == 0);
	stream_out_free(&out);
	size = lseek(fd, 0, SEEK_END);
	buf = malloc((size_t)size + 1);
	check(buf && pread(fd, buf, (size_t)size, 0) == size);
	close(fd);
	*len = (size_t)size;
	return buf;
}

static void gen_prefix(struct stream_out *out, void *ctx)
{
	(void)ctx;
	check(vmstate_write_header(out) == 0);
	check(vmstate_write_config(out, &vm) == 0);
}

static uint8_t *prefix;
static size_t prefix_len;

#ifndef VMSTATE_CORPUS_MAIN
static int stream_fd = -1;
static int verbose; /* FUZZ_VMSTATE_VERBOSE=1: print each verdict (reproducing an input) */
static uint8_t *scratch;
static size_t scratch_cap;
static uint8_t *colo_cache; /* the secondary's RAM cache: same layout as guest RAM */
static uint64_t colo_dirty[FUZZ_RAM_SIZE / GMEM_PAGE_SIZE / 64];

/* Puts XXH3-64(payload) into every complete section's trailer, sections from byte pos. */
static void fix_hashes(uint8_t *p, size_t n, size_t pos)
{
	while (n >= pos + 24) {
		uint64_t len, hash;

		memcpy(&len, p + pos + 8, 8);
		if (len > n - pos - 24)
			break;
		hash = XXH3_64bits(p + pos + 16, (size_t)len);
		memcpy(p + pos + 16 + len, &hash, 8);
		pos += 24 + (size_t)len;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_vm_init();
	prefix = capture(gen_prefix, NULL, &prefix_len);
	stream_fd = memfd_create("fuzz-vmstate", MFD_CLOEXEC);
	check(stream_fd >= 0);
	verbose = getenv("FUZZ_VMSTATE_VERBOSE") != NULL;
	colo_cache = mmap(NULL, FUZZ_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check(colo_cache != MAP_FAILED);
	return 0;
}

/* The bytes the loader will read: [valid prefix] + input, checksums fixed if asked. */
static const uint8_t *assemble(uint8_t mode, const uint8_t *data, size_t size, size_t *len)
{
	size_t head = (mode & MODE_PREFIX) && !(mode & MODE_COLO) ? prefix_len : 0;

	*len = head + size;
	if (!(mode & (MODE_PREFIX | MODE_FIX_HASH)))
		return data;
	if (*len > scratch_cap) {
		free(scratch);
		scratch_cap = *len;
		scratch = malloc(scratch_cap);
		check(scratch != NULL);
	}
	if (head)
		memcpy(scratch, prefix, head);
	if (size)
		memcpy(scratch + head, data, size);
	if (mode & MODE_FIX_HASH) /* a checkpoint body has no header */
		fix_hashes(scratch, *len, (mode & MODE_COLO) ? 0 : 16);
	return scratch;
}

static void check_result(const struct vmstate_loader *l, int ret, int ram_mode, int colo)
{
	uint64_t pages = gmem_page_count(&vm.mem);

	/* Everything the loader refuses is a stream error with a reason (memfd input: no I/O errors). */
	check(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	if (ret == -EINVAL)
		check(l->error[0] != '\0' && memchr(l->error, '\0', sizeof(l->error)) != NULL);
	if (ret == 0 && !colo)
		check(l->have_config && l->vcpu.len > 0 && l->platform.len > 0);
	/* Validation only, and a checkpoint, never write guest memory: it is still one big hole. */
	if (ram_mode == RAM_VALIDATE || colo)
		check(gmem_next_data(&vm.mem, 0) == pages);
	/* Every page an accepted checkpoint brought is marked for the flush (pages may repeat). */
	if (colo && ret == 0)
		check(dirty_count(colo_dirty, sizeof(colo_dirty) / 8) <= l->ram_pages &&
		      (l->ram_pages == 0) == (dirty_count(colo_dirty, sizeof(colo_dirty) / 8) == 0));
	/* Collected records: one per named device at most, each readable to its length. */
	check(l->ndevices >= 0 && l->ndevices <= vm.ndevices);
	for (int i = 0; i < l->ndevices; i++) {
		struct device *d = vm_find_device(&vm, l->devices[i].name);
		struct sbuf_reader r;

		check(d != NULL);
		for (int j = 0; j < i; j++)
			check(strcmp(l->devices[i].name, l->devices[j].name) != 0);
		sbuf_reader_init(&r, l->devices[i].rec.data, l->devices[i].rec.len);
		if (d->ops->load(d, &r) == 0)
			check(sbuf_remaining(&r) == 0);
	}
}

/* A COLO checkpoint as the secondary reads it: RAM part from the connection, device blob from memory. */
static void run_checkpoint(struct vmstate_loader *l, const uint8_t *stream, size_t len)
{
	struct stream_in in, blob;
	int ret;

	check(madvise(colo_cache, FUZZ_RAM_SIZE, MADV_DONTNEED) == 0);
	memset(colo_dirty, 0, sizeof(colo_dirty));
	vmstate_loader_init(l, &vm, 1);
	l->have_config = 1;
	l->ram_target = colo_cache;
	l->ram_target_dirty = colo_dirty;
	l->ram_only = 1;
	check(stream_in_init(&in, stream_fd) == 0);
	ret = vmstate_load_stream_body(l, &in);
	if (ret == 0) {
		check(in.bytes <= len);
		stream_in_init_mem(&blob, stream + in.bytes, len - (size_t)in.bytes);
		l->ram_only = 0;
		ret = vmstate_load_stream_body(l, &blob);
		stream_in_free(&blob);
	}
	if (verbose)
		fprintf(stderr, "vmstate: checkpoint, %zu bytes: %d %s (%llu sections, %llu pages, %d devices)\n",
			len, ret, l->error, (unsigned long long)l->sections,
			(unsigned long long)l->ram_pages, l->ndevices);
	check_result(l, ret, RAM_APPLY, 1);
	stream_in_free(&in);
	vmstate_loader_free(l);
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmstate_loader l;
	struct stream_in in;
	const uint8_t *stream;
	size_t len;
	uint8_t mode;
	int ram_mode, ret;

	if (size < 1)
		return 0;
	mode = data[0];
	ram_mode = (mode >> MODE_RAM_SHIFT) & MODE_RAM_MASK;
	stream = assemble(mode, data + 1, size - 1, &len);
	/* Every run starts from all-zero RAM (one hole), like a fresh VM. */
	check(gmem_discard(&vm.mem, 0, gmem_page_count(&vm.mem)) == 0);
	check(ftruncate(stream_fd, 0) == 0);
	check(len == 0 || pwrite(stream_fd, stream, len, 0) == (ssize_t)len);
	check(lseek(stream_fd, 0, SEEK_SET) == 0);

	if (mode & MODE_COLO) {
		run_checkpoint(&l, stream, len);
		return 0;
	}
	vmstate_loader_init(&l, &vm, ram_mode != RAM_VALIDATE);
	l.ram_is_zero = ram_mode == RAM_APPLY_ZERO;
	check(stream_in_init(&in, stream_fd) == 0);
	ret = vmstate_load_stream(&l, &in);
	if (verbose)
		fprintf(stderr, "vmstate: mode 0x%02x, %zu bytes: %d %s (%llu sections, %llu pages, %d devices)\n",
			mode, len, ret, l.error, (unsigned long long)l.sections,
			(unsigned long long)l.ram_pages, l.ndevices);
	check_result(&l, ret, ram_mode, 0);
	stream_in_free(&in);
	vmstate_loader_free(&l);
	return 0;
}

#else /* VMSTATE_CORPUS_MAIN: write the seed corpus */

#define PAGE GMEM_PAGE_SIZE

/* Writes a whole stream section (type, version, length, payload, XXH3-64). */
static void put_section(struct stream_out *out, uint32_t type, const void *p, size_t n)
{
	uint32_t hdr[2] = { type, 1 };
	uint64_t len = n, hash = XXH3_64bits(p, n);

	stream_out_write(out, hdr, sizeof(hdr));
	stream_out_write(out, &len, sizeof(len));
	stream_out_write(out, p, n);
	stream_out_write(out, &hash, sizeof(hash));
}

/* A DEVICE section for dev: u16 name length, name, the device's own record. */
static void put_device_section(struct stream_out *out, struct device *dev)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_put_u16(&b, (uint16_t)strlen(dev->name));
	sbuf_put(&b, dev->name, strlen(dev->name));
	check(dev->ops->save(dev, &b) == 0);
	put_section(out, VMSTATE_SEC_DEVICE, b.data, b.len);
	sbuf_free(&b);
}

/* Guest RAM with pattern pages, an allocated page of zeros and holes everywhere else. */
static void fill_ram(void)
{
	uint64_t last = gmem_page_count(&vm.mem) - 1;
	uint64_t data_pages[] = { 0, 1, 100, last };
	uint8_t page[PAGE];

	for (size_t i = 0; i < sizeof(data_pages) / sizeof(data_pages[0]); i++) {
		for (size_t b = 0; b < PAGE; b++)
			page[b] = (uint8_t)(b * 7 + data_pages[i] * 13 + 1);
		check(gmem_write(&vm.mem, data_pages[i] * PAGE, page, PAGE) == 0);
	}
	memset(page, 0, sizeof(page));
	check(gmem_write(&vm.mem, 5 * PAGE, page, PAGE) == 0); /* allocated, but zero */
}

/* Stand-ins for the vCPU and platform records (the loader only collects them). */
static void put_machine(struct stream_out *out)
{
	static const uint8_t vcpu[] = { 1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 'v', 'c', 'p', 'u' };
	static const uint8_t platform[] = { 1, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 'p', 'i', 't' };

	put_section(out, VMSTATE_SEC_VCPU, vcpu, sizeof(vcpu));
	put_section(out, VMSTATE_SEC_PLATFORM, platform, sizeof(platform));
	for (int i = 0; i < vm.ndevices; i++)
		put_device_section(out, vm.devices[i]);
}

struct gen {
	int prefix;        /* header and CONFIG left out (the fuzzer adds them) */
	const uint64_t *bitmap;
	int ram_hash;
};

static void gen_stream(struct stream_out *out, void *ctx)
{
	const struct gen *g = ctx;

	if (!g->prefix)
		gen_prefix(out, NULL);
	check(vmstate_write_ram(out, &vm, g->bitmap, NULL) == 0);
	put_machine(out);
	if (g->ram_hash)
		check(vmstate_write_ram_hash(out, vmstate_ram_hash(&vm)) == 0);
	check(vmstate_write_end(out) == 0);
}

static void gen_checkpoint(struct stream_out *out, void *ctx)
{
	check(vmstate_write_ram(out, &vm, ctx, NULL) == 0);
	check(vmstate_write_ram_hash(out, vmstate_ram_hash(&vm)) == 0);
	check(vmstate_write_end(out) == 0);
	put_machine(out);
	check(vmstate_write_end(out) == 0);
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	check(f != NULL);
	check(fwrite(&mode, 1, 1, f) == 1 && (n == 0 || fwrite(p, 1, n, f) == n));
	check(fclose(f) == 0);
}

int main(int argc, char **argv)
{
	uint64_t bitmap[FUZZ_RAM_SIZE / PAGE / 64] = { 0 };
	struct gen full = { .ram_hash = 1 }, tail = { .prefix = 1 }, some = { .prefix = 1, .bitmap = bitmap };
	uint8_t *p;
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	fuzz_vm_init();
	prefix = capture(gen_prefix, NULL, &prefix_len);
	fill_ram();
	bitmap[0] = 0x23; /* pages 0, 1, 5 */
	bitmap[100 / 64] |= 1ULL << (100 % 64);
	bitmap[2] = 1ULL << 3; /* page 131: a hole, sent as a zero page */

	/* A complete stream (all RAM, machine, RAM_HASH, END), as is and in each RAM mode. */
	p = capture(gen_stream, &full, &n);
	write_seed(argv[1], "full", 0, p, n);
	write_seed(argv[1], "full-fixhash", MODE_FIX_HASH, p, n);
	write_seed(argv[1], "full-ram-is-zero", RAM_APPLY_ZERO << MODE_RAM_SHIFT, p, n);
	write_seed(argv[1], "full-validate", RAM_VALIDATE << MODE_RAM_SHIFT, p, n);
	/* Cut inside the second RAM page (after the section header and the first run
	 * descriptor), and inside the stream header's version field. */
	write_seed(argv[1], "truncated-in-ram", 0, p, prefix_len + 16 + 8 + PAGE + 100);
	write_seed(argv[1], "truncated-short", 0, p, 10);
	free(p);

	/* The rest after the fuzzer's valid prefix: all RAM, or only the pages of a bitmap. */
	p = capture(gen_stream, &tail, &n);
	write_seed(argv[1], "after-config", MODE_PREFIX, p, n);
	write_seed(argv[1], "after-config-fixhash", MODE_PREFIX | MODE_FIX_HASH, p, n);
	free(p);
	p = capture(gen_stream, &some, &n);
	write_seed(argv[1], "after-config-bitmap", MODE_PREFIX | MODE_FIX_HASH, p, n);
	free(p);
	/* Small and quick to mutate: only zero pages (holes of the writer's RAM). */
	memset(bitmap, 0, sizeof(bitmap));
	bitmap[3] = 0xff00ff00ff00ff01ULL;
	bitmap[30] = 1ULL << 63;
	p = capture(gen_stream, &some, &n);
	write_seed(argv[1], "after-config-zero-runs", MODE_PREFIX | MODE_FIX_HASH, p, n);
	free(p);
	/* A COLO checkpoint: RAM of a bitmap, RAM_HASH, END, then the device blob and its END. */
	memset(bitmap, 0, sizeof(bitmap));
	bitmap[0] = 0x23;
	bitmap[2] = 1ULL << 3;
	p = capture(gen_checkpoint, bitmap, &n);
	write_seed(argv[1], "colo-checkpoint", MODE_COLO, p, n);
	write_seed(argv[1], "colo-checkpoint-fixhash", MODE_COLO | MODE_FIX_HASH, p, n);
	free(p);
	free(prefix);
	gmem_destroy(&vm.mem);
	return 0;
}
#endif
