/* Constants of the guest's CPU setup, shared by entry.S and C. */
#ifndef GUEST_ARCH_LAYOUT_H
#define GUEST_ARCH_LAYOUT_H

#include "testdev_abi.h"

#define SEL_KCODE32 0x08
#define SEL_KCODE64 0x10
#define SEL_KDATA 0x18
#define SEL_UDATA 0x20
#define SEL_UCODE 0x28
#define SEL_TSS 0x30

#define CR0_PE 0x1
#define CR0_ET 0x10
#define CR0_WP 0x10000
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100

#define RFLAGS_FIXED 0x2
#define RFLAGS_IF 0x200
#define RFLAGS_IOPL3 0x3000

/* present | writable | user */
#define PTE_DIR 0x7
/* present | writable | user | 2 MiB page */
#define PTE_LARGE 0x87

#define LAPIC_BASE 0xfee00000
#define LAPIC_EOI 0xfee000b0
#define IOAPIC_BASE 0xfec00000

#define IRQ_VECTOR_BASE 32
#define IRQ_STUBS 24 /* one per IOAPIC pin; entry.S lists 0..23 */
#define EXC_EXIT_BASE 64
#define TESTDEV_EXIT TESTDEV_PORT_EXIT

#define USER_STACK_SIZE 65536

#endif
