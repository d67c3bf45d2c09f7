#include "vm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev/bus.h"
#include "util/log.h"
#include "vm/cpuid.h"
#include "vm/vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STRING 1ULL

static void vcpu_kick_handler(int sig) { (void)sig; }

static int vcpu_install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

/*
 * MSRs to save: KVM's list, minus any this KVM refuses to read back (the
 * list here includes a few that GET_MSRS rejects, so probe each once).
 */
static int vcpu_probe_msrs(struct vcpu *vcpu)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *list;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} one;

	if (ioctl(vcpu->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	vcpu->msr_indices = calloc(probe.nmsrs + 1, sizeof(uint32_t));
	if (!list || !vcpu->msr_indices) {
		free(list);
		return -ENOMEM;
	}
	list->nmsrs = probe.nmsrs;
	if (ioctl(vcpu->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return -errno;
	}
	for (uint32_t i = 0; i < list->nmsrs; i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e.index = list->indices[i];
		if (ioctl(vcpu->fd, KVM_GET_MSRS, &one) == 1 &&
		    list->indices[i] != MSR_IA32_TSC_DEADLINE)
			vcpu->msr_indices[vcpu->nmsrs++] = list->indices[i];
	}
	/* TSC_DEADLINE last: KVM compares it against the TSC when it is written. */
	vcpu->msr_indices[vcpu->nmsrs++] = MSR_IA32_TSC_DEADLINE;
	free(list);
	return 0;
}

static int vcpu_set_msr(struct vcpu *vcpu, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e.index = index;
	m.e.data = value;
	return ioctl(vcpu->fd, KVM_SET_MSRS, &m) == 1 ? 0 : -EINVAL;
}

/* Boot LAPIC: LINT0 = ExtINT (the 8259 behind it), LINT1 = NMI, as on a PC. */
static int vcpu_set_lint(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t *lint0 = (uint32_t *)&lapic.regs[0x350];
	uint32_t *lint1 = (uint32_t *)&lapic.regs[0x360];

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	*lint0 = (*lint0 & ~0x700u) | (7u << 8);
	*lint1 = (*lint1 & ~0x700u) | (4u << 8);
	return ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0 ? -errno : 0;
}

/*
 * Order (KVM rules): CPUID before MSRs, because KVM decides from the guest's
 * CPUID which MSRs exist; LAPIC after the irqchip exists (vm_create).
 */
static int vcpu_configure(struct vcpu *vcpu)
{
	int ret = cpuid_build(vcpu->vm->kvm_fd, vcpu->id, &vcpu->cpuid);
	int xsave2;

	if (ret < 0)
		return ret;
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, vcpu->cpuid) < 0)
		return -errno;
	ret = vcpu_probe_msrs(vcpu);
	if (ret < 0)
		return ret;
	ret = vcpu_set_msr(vcpu, MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING);
	if (ret < 0)
		return ret;
	xsave2 = ioctl(vcpu->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	vcpu->xsave_size = xsave2 > (int)sizeof(struct kvm_xsave) ? (uint32_t)xsave2
								   : sizeof(struct kvm_xsave);
	return vcpu_set_lint(vcpu);
}

int vcpu_create(struct vm *vm, int id, struct vcpu **out)
{
	struct vcpu *vcpu = calloc(1, sizeof(*vcpu));
	int mmap_size, ret;

	if (!vcpu)
		return -ENOMEM;
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (vcpu->fd < 0) {
		ret = -errno;
		goto fail;
	}
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run)) {
		ret = mmap_size < 0 ? -errno : -EINVAL;
		goto fail;
	}
	vcpu->run_size = (size_t)mmap_size;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		ret = -errno;
		goto fail;
	}
	ret = vcpu_install_kick_handler();
	if (ret == 0)
		ret = vcpu_configure(vcpu);
	if (ret < 0)
		goto fail;
	*out = vcpu;
	return 0;
fail:
	vcpu_destroy(vcpu);
	return ret;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (!vcpu)
		return;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd > 0)
		close(vcpu->fd);
	free(vcpu->cpuid);
	free(vcpu->msr_indices);
	free(vcpu);
}

static void vcpu_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff; /* byte limit, although G=1 */
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

/* 32-bit protected mode, flat 4 GiB segments, paging off: what both the PVH
 * entry and Linux's 32-bit boot protocol expect. */
static int vcpu_set_flat32_state(struct vcpu *vcpu, uint16_t cs, uint16_t ds, const struct kvm_regs *regs)
{
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	vcpu_flat_segment(&sregs.cs, cs, 0xb);
	vcpu_flat_segment(&sregs.ds, ds, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.type = 0xb; /* busy 32-bit TSS: entry checks want a usable TR */
	sregs.tr.present = 1;
	sregs.tr.limit = 0x67;
	sregs.cr0 = 0x11; /* PE | ET, paging off */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0)
		return -errno;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	return ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

int vcpu_set_pvh_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t start_info)
{
	struct kvm_regs regs = { .rip = entry, .rbx = start_info, .rflags = 0x2 };

	return vcpu_set_flat32_state(vcpu, 0x08, 0x10, &regs);
}

int vcpu_set_linux32_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t boot_params)
{
	/* Documentation/arch/x86/boot.rst: __BOOT_CS 0x10, __BOOT_DS 0x18, %esi
	 * the boot_params, interrupts off; %ebp, %edi, %ebx zero. */
	struct kvm_regs regs = { .rip = entry, .rsi = boot_params, .rflags = 0x2 };

	return vcpu_set_flat32_state(vcpu, 0x10, 0x18, &regs);
}

void vcpu_kick(struct vcpu *vcpu)
{
	/* immediate_exit closes the race with a signal landing just before KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_RELEASE);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}
