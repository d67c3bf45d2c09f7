/*
 * Interrupt setup, all at CPL3: the IDT is plain memory and the PIC, LAPIC
 * and IOAPIC are reached through port I/O (IOPL=3) and user-mapped MMIO.
 * The CPL0 handlers in entry.S only set a bit and send EOI.
 */
#include "arch/layout.h"
#include "guest.h"

#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1
#define LAPIC_TPR 0x80
#define LAPIC_SVR 0xf0
#define LAPIC_LINT0 0x350
#define LAPIC_LINT1 0x360
#define LVT_MASKED 0x10000
#define SPURIOUS_VECTOR 0xff
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REDIR(pin) (0x10 + 2 * (pin))

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type; /* 0x8e: present, DPL0, 64-bit interrupt gate */
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

extern struct idt_gate idt[256];
extern const uint64_t irq_stub_table[IRQ_STUBS];
extern const uint64_t exc_stub_table[32];
extern volatile uint64_t irq_pending;
extern volatile uint64_t irq_counts[IRQ_STUBS];
void spurious_stub(void);

static void idt_set(int vec, uint64_t handler)
{
	idt[vec] = (struct idt_gate){
		.off_lo = (uint16_t)handler,
		.sel = SEL_KCODE64,
		.type = 0x8e,
		.off_mid = (uint16_t)(handler >> 16),
		.off_hi = (uint32_t)(handler >> 32),
	};
}

static void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }

static void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

void irq_init(void)
{
	/* The IDT first: IF is already 1, so any interrupt needs a gate. */
	for (int v = 0; v < 32; v++)
		idt_set(v, exc_stub_table[v]);
	for (int i = 0; i < IRQ_STUBS; i++)
		idt_set(IRQ_VECTOR_BASE + i, irq_stub_table[i]);
	idt_set(SPURIOUS_VECTOR, (uint64_t)spurious_stub);
	/* Mask the 8259s: LINT0 is ExtINT after reset and an unprogrammed PIC
	 * delivers a bogus vector. */
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
	lapic_write(LAPIC_LINT0, LVT_MASKED | 0x700);
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100 | SPURIOUS_VECTOR);
}

int irq_enable(uint32_t gsi)
{
	if (gsi >= IRQ_STUBS)
		return -1;
	ioapic_write(IOAPIC_REDIR(gsi) + 1, 0); /* destination: APIC id 0 */
	ioapic_write(IOAPIC_REDIR(gsi), IRQ_VECTOR_BASE + gsi); /* fixed, edge, high, unmasked */
	return 0;
}

int irq_take(uint32_t gsi)
{
	uint64_t bit = 1UL << gsi;

	if (gsi >= IRQ_STUBS || !(irq_pending & bit))
		return 0;
	__atomic_fetch_and(&irq_pending, ~bit, __ATOMIC_SEQ_CST);
	return 1;
}

uint64_t irq_count(uint32_t gsi) { return gsi < IRQ_STUBS ? irq_counts[gsi] : 0; }

struct exc_frame {
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

void exception_report(const struct exc_frame *f);

/* Runs at CPL0 from exc_common: fatal, so speed does not matter. */
void exception_report(const struct exc_frame *f)
{
	printf("\nguest exception %lu (error 0x%lx) at rip 0x%lx rsp 0x%lx cs 0x%lx rflags 0x%lx\n", f->vector,
	       f->error, f->rip, f->rsp, f->cs, f->rflags);
	guest_exit(EXC_EXIT_BASE + (int)f->vector);
}
