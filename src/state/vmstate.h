/*
 * The VM state stream: one format for snapshot files, live migration and
 * (later) COLO checkpoints. Little-endian throughout.
 *
 *   header:  u64 magic "LSKVMST1", u32 format version, u32 flags (0)
 *   section: u32 type, u32 version, u64 length, payload[length], u64 XXH3-64(payload)
 *
 * Sections: CONFIG (RAM size and device names, checked against the loading VM),
 * RAM (runs of pages, see vmstate.c), VCPU, PLATFORM (PICs, IOAPIC, PIT, clock),
 * DEVICE (a device's own record, by name), END. docs/vmstate.md has the details.
 *
 * The loader treats its input as hostile: every length and index is checked,
 * every section's hash verified, and device/vCPU records are only applied once
 * END arrives, all of them or none.
 */
#ifndef LOCKSTEP_STATE_VMSTATE_H
#define LOCKSTEP_STATE_VMSTATE_H

#include <stdint.h>

#include "util/sbuf.h"
#include "vm/vm.h"

struct stream_in;
struct stream_out;

#define VMSTATE_MAGIC 0x3154534d564b534cULL /* "LSKVMST1" */
#define VMSTATE_FORMAT_VERSION 1
#define VMSTATE_MAX_SECTION (64ULL << 20)
#define VMSTATE_MAX_RECORD (1u << 20)
#define VMSTATE_NAME_MAX 63

enum vmstate_section_type {
	VMSTATE_SEC_CONFIG = 1,
	VMSTATE_SEC_RAM = 2,
	VMSTATE_SEC_VCPU = 3,
	VMSTATE_SEC_PLATFORM = 4,
	VMSTATE_SEC_DEVICE = 5,
	VMSTATE_SEC_END = 6,
	VMSTATE_SEC_RAM_HASH = 7, /* optional: XXH3-64 of all RAM as the writer saw it */
	VMSTATE_SEC_COLO = 8,     /* empty: the sender enters COLO after this migration */
	VMSTATE_SEC_DIGEST = 9,   /* COLO checkpoint, optional: a named digest of state outside
				   * the VM (a replicated disk), for the receiver to compare */
};

/* A DIGEST section's payload. */
#define VMSTATE_DIGEST_NAME_MAX 15
#define VMSTATE_MAX_DIGESTS 8
struct vmstate_digest {
	char name[VMSTATE_DIGEST_NAME_MAX + 1]; /* NUL-terminated */
	uint64_t value;
};

struct vmstate_ram_stats {
	uint64_t pages;      /* pages described (zero + data) */
	uint64_t zero_pages; /* sent as markers only */
	uint64_t bytes;      /* stream bytes written */
};

/* ---- writing ---- */
int vmstate_write_header(struct stream_out *out);
/* One section of any type (the typed writers below use it). */
int vmstate_write_section(struct stream_out *out, uint32_t type, uint32_t version, const void *p,
			  size_t n);
int vmstate_write_config(struct stream_out *out, struct vm *vm);
/* Pages set in bitmap (NULL: all RAM). The VM may be running. */
int vmstate_write_ram(struct stream_out *out, struct vm *vm, const uint64_t *bitmap,
		      struct vmstate_ram_stats *stats);
/* vCPU, platform and every device; the vCPU must be parked. */
int vmstate_write_machine(struct stream_out *out, struct vm *vm);
int vmstate_write_end(struct stream_out *out);
/* XXH3-64 of all guest RAM (a consistency check; the vCPU should be parked). */
uint64_t vmstate_ram_hash(const struct vm *vm);
/* The same digest of RAM as it will read once the pages set in a or b (either
 * may be NULL) are copied from overlay (laid out like RAM), without copying. */
uint64_t vmstate_ram_hash_overlay(const struct vm *vm, const uint8_t *overlay, const uint64_t *a,
				  const uint64_t *b);
/* A COLO section: the destination is to become a COLO secondary. */
int vmstate_write_colo(struct stream_out *out);
/* A RAM_HASH section: the loader compares it with its own RAM once loaded. */
int vmstate_write_ram_hash(struct stream_out *out, uint64_t hash);
/* A DIGEST section (a COLO checkpoint's RAM body): the loader only records it. */
int vmstate_write_digest(struct stream_out *out, const char *name, uint64_t value);

/* ---- reading ---- */
struct vmstate_device_record {
	char name[VMSTATE_NAME_MAX + 1];
	struct sbuf rec;
};

struct vmstate_loader {
	struct vm *vm;
	int apply_ram;  /* 0: validate only (pages are checked and skipped) */
	int ram_is_zero; /* RAM known to be all zero: zero runs need no work */
	int have_config;
	struct sbuf vcpu;
	struct sbuf platform;
	int ndevices;
	struct vmstate_device_record devices[VM_MAX_DEVICES];
	uint64_t ram_pages; /* pages received */
	int ram_hash_checked; /* a RAM_HASH section arrived and matched */
	uint64_t ram_hash;
	/* COLO secondary: pages go into ram_target (same layout as guest RAM) and
	 * are marked in ram_target_dirty; a RAM_HASH is only recorded
	 * (ram_hash_expected) to be compared once the pages are applied. */
	uint8_t *ram_target;
	int ram_target_fd; /* the memfd behind ram_target (memory reserved per run), or -1 */
	uint64_t *ram_target_dirty;
	int ram_hash_expected;
	int ram_only; /* body: RAM, RAM_HASH, DIGEST and END only (else: machine sections and END) */
	int ndigests; /* DIGEST sections, for the COLO secondary to compare */
	struct vmstate_digest digests[VMSTATE_MAX_DIGESTS];
	int colo_requested; /* a COLO section arrived */
	uint64_t sections;
	char error[256]; /* why the stream was refused */
};

void vmstate_loader_init(struct vmstate_loader *l, struct vm *vm, int apply_ram);
void vmstate_loader_free(struct vmstate_loader *l);
/* Header through END. -EINVAL (bad stream, l->error says why) or -errno (I/O). */
int vmstate_load_stream(struct vmstate_loader *l, struct stream_in *in);
/* Sections through END, without header or CONFIG (a COLO checkpoint). */
int vmstate_load_stream_body(struct vmstate_loader *l, struct stream_in *in);
/*
 * Puts the collected vCPU, platform and device records into the VM (vCPU
 * parked). If any record is refused, what was applied is rolled back from a
 * copy taken first, and l->error says which record.
 */
int vmstate_apply_machine(struct vmstate_loader *l);

#endif
