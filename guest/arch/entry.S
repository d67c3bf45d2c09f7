/*
 * PVH entry of the test guest. On this machine every kernel-mode instruction
 * is emulated (~2 us each), so CPL0 does the minimum: load the GDT, turn on
 * long mode with page tables that are already built (static data below),
 * load TR and IDTR, and iretq to CPL3 with IF=1; ports are open to CPL3
 * through the TSS I/O permission bitmap. Everything else,
 * including filling the IDT, happens at CPL3 (the IDT is ordinary memory).
 *
 * Never sti/cli at CPL3 here (sti at CPL3 kills the guest on this host): IF is
 * set once, through the RFLAGS image of the iretq below.
 */
#include "arch/layout.h"
#include "pvh_abi.h"

	.section .note.pvh, "a", @note
	.align 4
	.long 4				/* name size: "Xen\0" */
	.long 4				/* desc size */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start32

	.section .text.boot, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	movl %ebx, boot_start_info	/* EBX = &hvm_start_info */
	/* TSS descriptor base: the only field not known at link time. */
	movl $tss, %eax
	movw %ax, gdt_tss + 2
	shrl $16, %eax
	movb %al, gdt_tss + 4
	movb %ah, gdt_tss + 7
	lgdt gdt_desc
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl $(CR0_PE | CR0_ET | CR0_WP | CR0_PG), %eax
	movl %eax, %cr0
	ljmp $SEL_KCODE64, $long_mode

	.code64
long_mode:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movw $SEL_TSS, %ax
	ltr %ax
	lidt idt_desc
	movq $kernel_stack_top, %rsp
	/*
	 * First and only entry to CPL3 with IF=1. RFLAGS asks for IOPL=3 too,
	 * but this host's emulated iretq drops IOPL (measured: CPL3 runs with
	 * IOPL=0), so port access comes from the TSS I/O bitmap, which allows
	 * every port.
	 */
	pushq $(SEL_UDATA | 3)
	pushq $user_stack_top
	pushq $(RFLAGS_IF | RFLAGS_IOPL3 | RFLAGS_FIXED)
	pushq $(SEL_UCODE | 3)
	pushq $user_entry
	iretq

/* CPL3 from here on. */
user_entry:
	movl $(SEL_UDATA | 3), %eax
	movl %eax, %ds
	movl %eax, %es
	movl boot_start_info, %edi
	xorl %ebp, %ebp
	call guest_start
1:	jmp 1b

/*
 * Interrupt handlers (CPL0, emulated: keep them a handful of instructions).
 * IRQ vector v records bit (v - IRQ_VECTOR_BASE) in irq_pending and sends the
 * LAPIC EOI; the CPL3 code polls irq_pending.
 */
	.macro irq_stub n
	.globl irq_stub_\n
irq_stub_\n:
	lock btsq $\n, irq_pending
	lock incq irq_counts + 8 * \n
	pushq %rax
	movabsq $LAPIC_EOI, %rax
	movl $0, (%rax)
	popq %rax
	iretq
	.endm

	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23
	irq_stub \n
	.endr

/* Spurious LAPIC interrupts need no EOI. */
	.globl spurious_stub
spurious_stub:
	iretq

/*
 * Exceptions are fatal: report vector, error code and RIP on the console
 * (from CPL0, slowly, it does not matter here) and exit with status
 * EXC_EXIT_BASE + vector. Stubs push a zero error code where the CPU does not.
 */
	.macro exc_stub n
	.globl exc_stub_\n
exc_stub_\n:
	.if (\n == 8 || (\n >= 10 && \n <= 14) || \n == 17 || \n == 21 || \n == 29 || \n == 30)
	.else
	pushq $0
	.endif
	pushq $\n
	jmp exc_common
	.endm

	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	exc_stub \n
	.endr


exc_common:
	movq %rsp, %rdi		/* struct exc_frame *: vector, error, rip, cs, rflags, rsp, ss */
	call exception_report
1:	jmp 1b

	.section .rodata
	.align 8
	.globl irq_stub_table
irq_stub_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23
	.quad irq_stub_\n
	.endr
	.globl exc_stub_table
exc_stub_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_stub_\n
	.endr

	.data
	.align 8
	.globl boot_start_info
boot_start_info:
	.quad 0
	.globl irq_pending
irq_pending:
	.quad 0
	.globl irq_counts
irq_counts:
	.fill IRQ_STUBS, 8, 0

	.align 16
gdt:
	.quad 0				/* 0x00 null */
	.quad 0x00cf9a000000ffff	/* 0x08 kernel code 32 (PVH entry) */
	.quad 0x00af9a000000ffff	/* 0x10 kernel code 64 */
	.quad 0x00cf92000000ffff	/* 0x18 kernel data */
	.quad 0x00cff2000000ffff	/* 0x20 user data, DPL3 */
	.quad 0x00affa000000ffff	/* 0x28 user code 64, DPL3 */
gdt_tss:
	.quad 0x0000890000002068	/* 0x30 64-bit TSS incl. I/O bitmap (base patched at entry) */
	.quad 0
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	.globl idt_desc
idt_desc:
	.word 256 * 16 - 1
	.quad idt

	.align 16
tss:
	.long 0
	.quad kernel_stack_top		/* RSP0: where interrupts from CPL3 land */
	.fill 23, 4, 0
	.word 0
	.word 104			/* I/O permission bitmap right after the TSS */
	.fill 8192, 1, 0		/* every port allowed at CPL3 */
	.byte 0xff

/*
 * Identity map of the first 4 GiB with 2 MiB pages, user-accessible (the guest
 * works at CPL3 and drives devices through MMIO). 1 GiB pages are not used:
 * one over the APIC range triple-faulted on this host.
 */
	.align 4096
pml4:
	.quad pdpt + PTE_DIR
	.fill 511, 8, 0
pdpt:
	.quad pd + PTE_DIR
	.quad pd + 4096 + PTE_DIR
	.quad pd + 8192 + PTE_DIR
	.quad pd + 12288 + PTE_DIR
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.quad (i << 21) + PTE_LARGE
	.set i, i + 1
	.endr

	.bss
	.align 4096
	.globl idt
idt:
	.fill 256 * 16, 1, 0
kernel_stack:
	.fill 16384, 1, 0
kernel_stack_top:
	.align 16
user_stack:
	.fill USER_STACK_SIZE, 1, 0
user_stack_top:
	.section .note.GNU-stack,"",@progbits
