/*
 * Intel MultiProcessor Specification 1.4 table: how a Linux guest finds the
 * IOAPIC and the LAPICs without ACPI. Processors, one ISA bus, the IOAPIC,
 * ISA IRQ i -> IOAPIC pin i (KVM's default routing), LINT0 ExtINT, LINT1 NMI.
 */
#ifndef LOCKSTEP_VM_MPTABLE_H
#define LOCKSTEP_VM_MPTABLE_H

#include <stdint.h>

struct gmem;

#define MPTABLE_IOAPIC_GPA 0xfec00000u
#define MPTABLE_LAPIC_GPA 0xfee00000u
#define MPTABLE_IOAPIC_PINS 24

/* Writes the floating pointer and the table at gpa; -ENOSPC if size is too small. */
int mptable_write(struct gmem *mem, uint64_t gpa, uint64_t size, int ncpus);

#endif
