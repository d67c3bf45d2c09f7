/*
 * The vCPU: creation, boot register state, the KVM_RUN loop with its exit
 * dispatch, and the full save/load of everything KVM exposes about a vCPU.
 */
#ifndef LOCKSTEP_VM_VCPU_H
#define LOCKSTEP_VM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>

#include "util/sbuf.h"

struct vm;

struct vcpu {
	struct vm *vm;
	int id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	int thread_started;
	struct kvm_cpuid2 *cpuid; /* what KVM_SET_CPUID2 was given (needed again on load) */
	uint32_t *msr_indices;    /* MSRs saved and restored, from KVM_GET_MSR_INDEX_LIST */
	uint32_t nmsrs;
	uint32_t xsave_size;      /* bytes of struct kvm_xsave (KVM_CAP_XSAVE2) */
	uint32_t idle_request_us; /* set by the test device, served after the exit */
};

int vcpu_create(struct vm *vm, int id, struct vcpu **out);
void vcpu_destroy(struct vcpu *vcpu);
/* 32-bit protected mode, paging off, EBX = start_info (the PVH entry state). */
int vcpu_set_pvh_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t start_info);
/* Linux's 32-bit boot protocol: entry with %esi = the boot_params (zero page). */
int vcpu_set_linux32_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t boot_params);
/* Starts the thread that loops on KVM_RUN. */
int vcpu_start(struct vcpu *vcpu);
/* Asks the vCPU thread to block in the idle call after this exit (vCPU thread). */
void vcpu_request_idle(struct vcpu *vcpu, uint32_t timeout_us);
/* Makes KVM_RUN return to userspace soon (any thread). */
void vcpu_kick(struct vcpu *vcpu);

/* Full vCPU state in KVM's own order; only while the vCPU is parked. */
int vcpu_save(struct vcpu *vcpu, struct sbuf *out);
int vcpu_load(struct vcpu *vcpu, struct sbuf_reader *in);

#endif
