/* The CPUID table the guest sees: KVM's supported set, filtered. */
#ifndef LOCKSTEP_VM_CPUID_H
#define LOCKSTEP_VM_CPUID_H

#include <linux/kvm.h>

/* Allocates *out (free()); -errno on failure. */
int cpuid_build(int kvm_fd, int vcpu_id, struct kvm_cpuid2 **out);

#endif
