/* Reading the VM state stream: every length, index and hash checked. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "dev/device.h"
#include "state/stream.h"
#include "state/vmstate.h"
#include "state/vmstate_ram.h"
#include "vm/platform_state.h"
#include "vm/vcpu.h"

static int load_fail(struct vmstate_loader *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->error, sizeof(l->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An I/O failure while reading: the stream ended or the peer went away. */
static int load_io_fail(struct vmstate_loader *l, struct stream_in *in, const char *where)
{
	if (in->error == -EPIPE)
		load_fail(l, "stream truncated in %s (after %llu bytes)", where,
			  (unsigned long long)in->bytes);
	else
		load_fail(l, "reading %s: %s", where, strerror(-in->error));
	return in->error == -EPIPE ? -EINVAL : in->error;
}

void vmstate_loader_init(struct vmstate_loader *l, struct vm *vm, int apply_ram)
{
	memset(l, 0, sizeof(*l));
	l->vm = vm;
	l->apply_ram = apply_ram;
	l->ram_target_fd = -1;
	sbuf_init(&l->vcpu);
	sbuf_init(&l->platform);
}

void vmstate_loader_free(struct vmstate_loader *l)
{
	sbuf_free(&l->vcpu);
	sbuf_free(&l->platform);
	for (int i = 0; i < l->ndevices; i++)
		sbuf_free(&l->devices[i].rec);
	l->ndevices = 0;
}

/* A section's payload read into memory (small sections only), hash checked. */
static int read_small_payload(struct vmstate_loader *l, struct stream_in *in, uint64_t len,
			      struct sbuf *dst, const char *what)
{
	uint64_t hash;
	void *p;

	if (len > VMSTATE_MAX_RECORD)
		return load_fail(l, "%s section too large (%llu bytes)", what, (unsigned long long)len);
	p = sbuf_set_len(dst, (size_t)len);
	if (!p)
		return -ENOMEM;
	if (stream_in_read(in, p, (size_t)len) < 0 || stream_in_read(in, &hash, sizeof(hash)) < 0)
		return load_io_fail(l, in, what);
	if (hash != XXH3_64bits(p, (size_t)len))
		return load_fail(l, "%s section is corrupted (checksum mismatch)", what);
	return 0;
}

/* Was `name` already listed in the CONFIG payload before byte `end`? */
static int config_has_name_before(const struct sbuf *b, size_t end, const char *name)
{
	size_t pos = 12, n = strlen(name);

	while (pos + 2 <= end) {
		uint16_t len = (uint16_t)(b->data[pos] | b->data[pos + 1] << 8);

		if (len == n && memcmp(b->data + pos + 2, name, n) == 0)
			return 1;
		pos += 2 + len;
	}
	return 0;
}

static int check_config(struct vmstate_loader *l, const struct sbuf *b)
{
	struct sbuf_reader r;
	uint64_t mem;
	uint32_t n;
	struct vm *vm = l->vm;

	sbuf_reader_init(&r, b->data, b->len);
	mem = sbuf_get_u64(&r);
	n = sbuf_get_u32(&r);
	if (sbuf_reader_error(&r))
		return load_fail(l, "CONFIG section truncated");
	if (mem != vm->mem.size)
		return load_fail(l, "state has %llu MiB of RAM, this VM %llu MiB (use the same --mem)",
				 (unsigned long long)(mem >> 20), (unsigned long long)(vm->mem.size >> 20));
	if (n != (uint32_t)vm->ndevices)
		return load_fail(l, "state has %u devices, this VM %d (use the same devices)", n,
				 vm->ndevices);
	for (uint32_t i = 0; i < n; i++) {
		char name[VMSTATE_NAME_MAX + 1];
		uint16_t len = sbuf_get_u16(&r);

		if (len == 0 || len > VMSTATE_NAME_MAX || sbuf_get(&r, name, len) < 0 ||
		    memchr(name, '\0', len))
			return load_fail(l, "CONFIG section: bad device name");
		name[len] = '\0';
		if (!vm_find_device(vm, name))
			return load_fail(l, "state has device %s, this VM does not", name);
		if (config_has_name_before(b, r.pos - len - 2, name))
			return load_fail(l, "CONFIG section names device %s twice", name);
	}
	if (sbuf_remaining(&r))
		return load_fail(l, "CONFIG section has trailing bytes");
	l->have_config = 1;
	return 0;
}

static int take_device_record(struct vmstate_loader *l, struct sbuf *b)
{
	struct sbuf_reader r;
	struct vmstate_device_record *d;
	uint16_t len;

	sbuf_reader_init(&r, b->data, b->len);
	len = sbuf_get_u16(&r);
	if (sbuf_reader_error(&r) || len == 0 || len > VMSTATE_NAME_MAX || len > sbuf_remaining(&r) ||
	    memchr(b->data + 2, '\0', len))
		return load_fail(l, "DEVICE section: bad name");
	if (l->ndevices == VM_MAX_DEVICES)
		return load_fail(l, "too many DEVICE sections");
	d = &l->devices[l->ndevices];
	memcpy(d->name, b->data + 2, len);
	d->name[len] = '\0';
	if (!vm_find_device(l->vm, d->name))
		return load_fail(l, "state for unknown device %s", d->name);
	for (int i = 0; i < l->ndevices; i++)
		if (strcmp(l->devices[i].name, d->name) == 0)
			return load_fail(l, "device %s appears twice", d->name);
	sbuf_init(&d->rec);
	sbuf_put(&d->rec, b->data + 2 + len, b->len - 2 - len);
	l->ndevices++;
	return d->rec.error;
}

static void mark_run(uint64_t *bitmap, const struct vmstate_ram_run *run)
{
	for (uint64_t p = run->first; p < run->first + run->count; p++)
		bitmap[p / 64] |= 1ULL << (p % 64);
}

/* Memory behind a run before its pages are written: a full host then refuses
 * the stream here instead of killing the process (SIGBUS) in the copy. */
static int reserve_run(struct vmstate_loader *l, const struct vmstate_ram_run *run)
{
	off_t off = (off_t)(run->first * GMEM_PAGE_SIZE), len = (off_t)(run->count * GMEM_PAGE_SIZE);

	if (!l->ram_target)
		return gmem_reserve(&l->vm->mem, run->first, run->count);
	if (l->ram_target_fd >= 0 && fallocate(l->ram_target_fd, FALLOC_FL_KEEP_SIZE, off, len) < 0)
		return -errno;
	return 0;
}

/* A zero run into the target: freed pages read as zero and cost no memory. */
static void zero_target_run(struct vmstate_loader *l, const struct vmstate_ram_run *run, uint8_t *dst)
{
	off_t off = (off_t)(run->first * GMEM_PAGE_SIZE), len = (off_t)(run->count * GMEM_PAGE_SIZE);

	if (l->ram_target_fd < 0 ||
	    fallocate(l->ram_target_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0)
		memset(dst, 0, (size_t)len);
}

/* RAM payload: runs, each page range checked; data goes straight into guest RAM. */
static int load_ram(struct vmstate_loader *l, struct stream_in *in, uint64_t len)
{
	uint64_t pages = gmem_page_count(&l->vm->mem), left = len, hash;
	XXH3_state_t h;

	XXH3_64bits_reset(&h);
	while (left) {
		uint64_t desc, bytes;
		struct vmstate_ram_run run;
		uint8_t *dst;

		if (left < 8 || stream_in_read(in, &desc, 8) < 0)
			return left < 8 ? load_fail(l, "RAM section: partial run descriptor")
					: load_io_fail(l, in, "RAM section");
		XXH3_64bits_update(&h, &desc, 8);
		left -= 8;
		run = vmstate_ram_run_from(desc);
		if (desc & VMSTATE_RAM_RESERVED_MASK)
			return load_fail(l, "RAM section: run descriptor has reserved bits set");
		if (run.first >= pages || run.count > pages - run.first)
			return load_fail(l, "RAM section: page run %llu+%llu outside %llu pages of RAM",
					 (unsigned long long)run.first, (unsigned long long)run.count,
					 (unsigned long long)pages);
		dst = l->ram_target ? l->ram_target + run.first * GMEM_PAGE_SIZE
				    : gmem_page_hva(&l->vm->mem, run.first);
		bytes = run.count * GMEM_PAGE_SIZE;
		if (l->ram_target_dirty)
			mark_run(l->ram_target_dirty, &run);
		if (run.zero && l->ram_target) {
			zero_target_run(l, &run, dst);
		} else if (run.zero) {
			/* Freeing the pages zeroes them without allocating memory. */
			if (l->apply_ram && !l->ram_is_zero && gmem_discard(&l->vm->mem, run.first, run.count) < 0)
				memset(dst, 0, bytes);
		} else {
			uint8_t scratch[4096];

			int err;

			if (bytes > left)
				return load_fail(l, "RAM section: page data runs past the section end");
			if (l->apply_ram && (err = reserve_run(l, &run)) < 0)
				return load_fail(l, "RAM section: no memory for %llu pages at page %llu: %s",
						 (unsigned long long)run.count, (unsigned long long)run.first,
						 strerror(-err));
			for (uint64_t off = 0; off < bytes; off += GMEM_PAGE_SIZE) {
				uint8_t *p = l->apply_ram ? dst + off : scratch;

				if (stream_in_read(in, p, GMEM_PAGE_SIZE) < 0)
					return load_io_fail(l, in, "RAM section");
				XXH3_64bits_update(&h, p, GMEM_PAGE_SIZE);
			}
			left -= bytes;
		}
		l->ram_pages += run.count;
	}
	if (stream_in_read(in, &hash, 8) < 0)
		return load_io_fail(l, in, "RAM section");
	if (hash != XXH3_64bits_digest(&h))
		return load_fail(l, "RAM section is corrupted (checksum mismatch)");
	return 0;
}

/* Only meaningful when RAM was applied: then it must equal the writer's. */
static int check_ram_hash(struct vmstate_loader *l, const struct sbuf *b)
{
	uint64_t theirs;

	if (b->len != sizeof(theirs))
		return load_fail(l, "RAM_HASH section has %zu bytes", b->len);
	memcpy(&theirs, b->data, sizeof(theirs));
	if (!l->apply_ram)
		return 0;
	if (l->ram_target) {
		l->ram_hash = theirs;
		l->ram_hash_expected = 1;
		return 0;
	}
	l->ram_hash = vmstate_ram_hash(l->vm);
	if (l->ram_hash != theirs)
		return load_fail(l, "RAM differs from the sender's (hash %016llx, sender %016llx)",
				 (unsigned long long)l->ram_hash, (unsigned long long)theirs);
	l->ram_hash_checked = 1;
	return 0;
}

/* Recorded for the COLO secondary, which compares it once the checkpoint is applied. */
static int take_digest(struct vmstate_loader *l, const struct sbuf *b)
{
	struct vmstate_digest d;

	if (b->len != sizeof(d))
		return load_fail(l, "DIGEST section has %zu bytes", b->len);
	memcpy(&d, b->data, sizeof(d));
	if (memchr(d.name, 0, sizeof(d.name)) == NULL || !d.name[0])
		return load_fail(l, "DIGEST section without a name");
	if (l->ndigests == VMSTATE_MAX_DIGESTS)
		return load_fail(l, "more than %d DIGEST sections", VMSTATE_MAX_DIGESTS);
	for (int i = 0; i < l->ndigests; i++)
		if (!strcmp(l->digests[i].name, d.name))
			return load_fail(l, "two DIGEST sections for '%s'", d.name);
	l->digests[l->ndigests++] = d;
	return 0;
}

static int load_small_section(struct vmstate_loader *l, struct stream_in *in, uint32_t type,
			      uint64_t len)
{
	struct sbuf b;
	int ret;

	sbuf_init(&b);
	ret = read_small_payload(l, in, len, type == VMSTATE_SEC_VCPU ? &l->vcpu
					   : type == VMSTATE_SEC_PLATFORM ? &l->platform : &b,
				 type == VMSTATE_SEC_CONFIG ? "CONFIG" : type == VMSTATE_SEC_VCPU ? "VCPU"
					   : type == VMSTATE_SEC_PLATFORM ? "PLATFORM"
					   : type == VMSTATE_SEC_END ? "END"
					   : type == VMSTATE_SEC_RAM_HASH ? "RAM_HASH"
					   : type == VMSTATE_SEC_DIGEST ? "DIGEST"
					   : type == VMSTATE_SEC_COLO ? "COLO" : "DEVICE");
	if (ret == 0 && type == VMSTATE_SEC_CONFIG)
		ret = check_config(l, &b);
	else if (ret == 0 && type == VMSTATE_SEC_DEVICE)
		ret = take_device_record(l, &b);
	else if (ret == 0 && type == VMSTATE_SEC_RAM_HASH)
		ret = check_ram_hash(l, &b);
	else if (ret == 0 && type == VMSTATE_SEC_DIGEST)
		ret = take_digest(l, &b);
	else if (ret == 0 && type == VMSTATE_SEC_COLO)
		l->colo_requested = 1;
	sbuf_free(&b);
	return ret;
}

static int load_header(struct vmstate_loader *l, struct stream_in *in)
{
	uint64_t magic;
	uint32_t v[2];

	if (stream_in_read(in, &magic, 8) < 0 || stream_in_read(in, v, 8) < 0)
		return load_io_fail(l, in, "header");
	if (magic != VMSTATE_MAGIC)
		return load_fail(l, "not a lockstep VM state stream (bad magic)");
	if (v[0] != VMSTATE_FORMAT_VERSION)
		return load_fail(l, "unsupported VM state format version %u (this build reads %u)",
				 v[0], VMSTATE_FORMAT_VERSION);
	if (v[1] != 0)
		return load_fail(l, "unsupported VM state flags 0x%x", v[1]);
	return 0;
}

/* Which section types may appear in this stream (a checkpoint body is split in two). */
static int section_allowed(const struct vmstate_loader *l, uint32_t type)
{
	if (!l->ram_target)
		return type != VMSTATE_SEC_DIGEST;
	if (type == VMSTATE_SEC_CONFIG || type == VMSTATE_SEC_COLO)
		return 0;
	if (l->ram_only)
		return type == VMSTATE_SEC_RAM || type == VMSTATE_SEC_RAM_HASH ||
		       type == VMSTATE_SEC_DIGEST || type == VMSTATE_SEC_END;
	return type != VMSTATE_SEC_RAM && type != VMSTATE_SEC_RAM_HASH && type != VMSTATE_SEC_DIGEST;
}

int vmstate_load_stream(struct vmstate_loader *l, struct stream_in *in)
{
	int ret = load_header(l, in);

	if (ret == 0)
		ret = vmstate_load_stream_body(l, in);
	if (ret == 0 && (!l->vcpu.len || !l->platform.len))
		return load_fail(l, "stream ended without vCPU or platform state");
	return ret;
}

int vmstate_load_stream_body(struct vmstate_loader *l, struct stream_in *in)
{
	int ret = 0;

	while (ret == 0) {
		uint32_t hdr[2];
		uint64_t len;

		if (stream_in_read(in, hdr, 8) < 0 || stream_in_read(in, &len, 8) < 0)
			return load_io_fail(l, in, "section header");
		l->sections++;
		if (hdr[0] < VMSTATE_SEC_CONFIG || hdr[0] > VMSTATE_SEC_DIGEST)
			return load_fail(l, "unknown section type %u", hdr[0]);
		if (hdr[1] != 1)
			return load_fail(l, "section type %u has unsupported version %u", hdr[0], hdr[1]);
		if (len > VMSTATE_MAX_SECTION)
			return load_fail(l, "section of %llu bytes is too large", (unsigned long long)len);
		if (hdr[0] != VMSTATE_SEC_CONFIG && !l->have_config)
			return load_fail(l, "section type %u before CONFIG", hdr[0]);
		if (!section_allowed(l, hdr[0]))
			return load_fail(l, "section type %u not allowed here", hdr[0]);
		if (hdr[0] == VMSTATE_SEC_RAM)
			ret = load_ram(l, in, len);
		else
			ret = load_small_section(l, in, hdr[0], len);
		if (ret == 0 && hdr[0] == VMSTATE_SEC_END)
			break;
	}
	return ret;
}
