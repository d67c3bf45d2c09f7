#include "vm/mptable.h"

#include <errno.h>
#include <string.h>

#include "vm/memory.h"

struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* entry count */
	uint32_t lapic;
	uint16_t reserved;
	uint8_t ext_checksum;
	uint8_t reserved2;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type; /* 0 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type; /* 1 */
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type; /* 2 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type; /* 3 = IO interrupt, 4 = local interrupt */
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
#define MP_CPU_ENABLED 1
#define MP_CPU_BSP 2
#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

struct mp_writer {
	uint8_t *base;
	size_t len;
	size_t cap;
	uint16_t count;
};

static void mp_put(struct mp_writer *w, const void *entry, size_t len)
{
	if (w->len + len <= w->cap)
		memcpy(w->base + w->len, entry, len);
	w->len += len;
	w->count++;
}

static void mp_put_entries(struct mp_writer *w, int ncpus)
{
	uint8_t ioapic_id = (uint8_t)ncpus;
	struct mpc_bus bus = { .type = 1, .busid = 0 };

	for (int i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
			.type = 0,
			.apicid = (uint8_t)i,
			.apicver = MP_APIC_VERSION,
			.cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.cpufeature = 0x600,      /* family 6 */
			.featureflag = 1u << 9 | 1, /* APIC, FPU */
		};
		mp_put(w, &cpu, sizeof(cpu));
	}
	memcpy(bus.bustype, "ISA   ", 6);
	mp_put(w, &bus, sizeof(bus));
	mp_put(w, &(struct mpc_ioapic){ 2, ioapic_id, MP_IOAPIC_VERSION, 1, MPTABLE_IOAPIC_GPA },
	       sizeof(struct mpc_ioapic));
	for (uint8_t irq = 0; irq < 16; irq++)
		mp_put(w, &(struct mpc_intsrc){ 3, MP_INT, 0, 0, irq, ioapic_id, irq },
		       sizeof(struct mpc_intsrc));
	mp_put(w, &(struct mpc_intsrc){ 4, MP_EXTINT, 0, 0, 0, 0xff, 0 }, sizeof(struct mpc_intsrc));
	mp_put(w, &(struct mpc_intsrc){ 4, MP_NMI, 0, 0, 0, 0xff, 1 }, sizeof(struct mpc_intsrc));
}

int mptable_write(struct gmem *mem, uint64_t gpa, uint64_t size, int ncpus)
{
	uint8_t *base = gmem_ptr_for_write(mem, gpa, size);
	struct mpf_intel *mpf = (struct mpf_intel *)base;
	struct mpc_table *mpc = (struct mpc_table *)(base + sizeof(*mpf));
	struct mp_writer w;

	if (!base || size < sizeof(*mpf) + sizeof(*mpc) || ncpus < 1 || ncpus > 254)
		return -EINVAL;
	memset(base, 0, size);
	w = (struct mp_writer){ .base = (uint8_t *)mpc, .len = sizeof(*mpc),
				.cap = size - sizeof(*mpf) };
	mp_put_entries(&w, ncpus);
	if (w.len > w.cap)
		return -ENOSPC;

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)w.len;
	mpc->spec = 4;
	memcpy(mpc->oem, "LOCKSTEP", 8);
	memcpy(mpc->productid, "MICROVM     ", 12);
	mpc->oemcount = w.count;
	mpc->lapic = MPTABLE_LAPIC_GPA;
	mpc->checksum = mp_checksum((uint8_t *)mpc, w.len);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(gpa + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = mp_checksum((uint8_t *)mpf, sizeof(*mpf));
	return 0;
}
