#include "vm/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 256

#define CPUID1_ECX_CX16 (1u << 13)
#define CPUID1_ECX_PDCM (1u << 15)
#define CPUID1_ECX_XSAVE (1u << 26)
#define CPUID1_ECX_OSXSAVE (1u << 27)
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define CPUID1_EDX_HTT (1u << 28)

static void cpuid_filter_entry(struct kvm_cpuid_entry2 *e, int vcpu_id)
{
	switch (e->function) {
	case 1:
		/* APIC id, one logical CPU, 64-byte CLFLUSH line. */
		e->ebx = (uint32_t)vcpu_id << 24 | 1u << 16 | 8u << 8;
		e->edx &= ~CPUID1_EDX_HTT;
		/* This host's emulator of kernel-mode code fails on cmpxchg16b and
		 * xrstor (DESIGN.md §1): do not advertise them. */
		e->ecx &= ~(CPUID1_ECX_CX16 | CPUID1_ECX_XSAVE | CPUID1_ECX_OSXSAVE | CPUID1_ECX_PDCM);
		e->ecx |= CPUID1_ECX_HYPERVISOR;
		break;
	case 6:
		e->ecx &= ~(1u << 3); /* no energy/performance bias MSR */
		break;
	case 0xa:
		e->eax = e->ebx = e->ecx = e->edx = 0; /* no PMU */
		break;
	case 0xb:
	case 0x1f:
		e->edx = (uint32_t)vcpu_id;
		break;
	default:
		break;
	}
}

int cpuid_build(int kvm_fd, int vcpu_id, struct kvm_cpuid2 **out)
{
	struct kvm_cpuid2 *c;

	c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int err = -errno;

		free(c);
		return err;
	}
	for (uint32_t i = 0; i < c->nent; i++)
		cpuid_filter_entry(&c->entries[i], vcpu_id);
	*out = c;
	return 0;
}
