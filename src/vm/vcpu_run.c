/* The vCPU thread: KVM_RUN, dispatch the exit, repeat. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

/* Port I/O: `count` repetitions of `size` bytes (string I/O), data in the run page. */
static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	struct vm *vm = vcpu->vm;

	vm_io_lock(vm);
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus_write(&vm->pio, run->io.port, data, run->io.size);
		else
			bus_read(&vm->pio, run->io.port, data, run->io.size);
	}
	vm_io_unlock(vm);
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;
	uint32_t len = run->mmio.len;

	if (len > sizeof(run->mmio.data))
		return;
	vm_io_lock(vm);
	if (run->mmio.is_write)
		bus_write(&vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	else
		bus_read(&vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	vm_io_unlock(vm);
}

/* One line with where the guest was: enough to find the instruction with objdump. */
static void vcpu_report_fault(struct vcpu *vcpu, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	memset(&regs, 0, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	ioctl(vcpu->fd, KVM_GET_REGS, &regs);
	ioctl(vcpu->fd, KVM_GET_SREGS, &sregs);
	log_error("vcpu%d: %s at rip 0x%llx (cs 0x%x cpl %d rsp 0x%llx rflags 0x%llx cr0 0x%llx cr3 0x%llx "
		  "cr4 0x%llx efer 0x%llx)",
		  vcpu->id, what, (unsigned long long)regs.rip, sregs.cs.selector, sregs.cs.dpl,
		  (unsigned long long)regs.rsp, (unsigned long long)regs.rflags,
		  (unsigned long long)sregs.cr0,
		  (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4,
		  (unsigned long long)sregs.efer);
}

/* Returns 0 to keep running, 1 when the guest is gone. */
static int vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		break;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		break;
	case KVM_EXIT_INTR:
		break;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; treat as a short idle. */
		vm_idle_wait(vcpu->vm, 1000);
		break;
	case KVM_EXIT_SHUTDOWN:
		vcpu_report_fault(vcpu, "guest triple fault (KVM_EXIT_SHUTDOWN)");
		vm_request_shutdown(vcpu->vm, 1, "guest-reset");
		return 1;
	case KVM_EXIT_SYSTEM_EVENT:
		vm_request_shutdown(vcpu->vm, 0, "guest-shutdown");
		return 1;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_report_fault(vcpu, run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
						? "KVM internal error (instruction emulation failed)"
						: "KVM internal error");
		vm_request_shutdown(vcpu->vm, 1, "guest-panic");
		return 1;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("vcpu%d: VM entry failed (reason 0x%llx)", vcpu->id,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vm_request_shutdown(vcpu->vm, 1, "guest-panic");
		return 1;
	default:
		log_error("vcpu%d: unhandled KVM exit %u", vcpu->id, run->exit_reason);
		vm_request_shutdown(vcpu->vm, 1, "guest-panic");
		return 1;
	}
	return 0;
}

/* Idle requested by the test device during the last exit: wait outside io_lock. */
static void vcpu_do_pending_idle(struct vcpu *vcpu)
{
	uint32_t us = __atomic_exchange_n(&vcpu->idle_request_us, 0, __ATOMIC_ACQ_REL);

	if (us)
		vm_idle_wait(vcpu->vm, us);
}

/*
 * A vCPU counts as parked only after KVM_RUN returned EINTR: KVM has then
 * committed the result of the last port/MMIO read into guest registers, so
 * saved state is complete.
 */
static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	sigset_t set;

	sigfillset(&set);
	sigdelset(&set, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	for (;;) {
		int ret = ioctl(vcpu->fd, KVM_RUN, 0);

		if (ret < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				log_error("vcpu%d: KVM_RUN: %s", vcpu->id, strerror(errno));
				vm_request_shutdown(vm, 1, "guest-panic");
				break;
			}
			__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_RELEASE);
			if (vm_vcpu_park_if_requested(vm))
				break;
			continue;
		}
		if (vcpu_handle_exit(vcpu))
			break;
		vcpu_do_pending_idle(vcpu);
		if (vm_get_state(vm) == VM_STATE_SHUTDOWN)
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	int ret = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (ret)
		return -ret;
	vcpu->thread_started = 1;
	return 0;
}

void vcpu_request_idle(struct vcpu *vcpu, uint32_t timeout_us)
{
	__atomic_store_n(&vcpu->idle_request_us, timeout_us ? timeout_us : 1, __ATOMIC_RELEASE);
}
