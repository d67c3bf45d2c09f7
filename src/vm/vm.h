/*
 * One KVM virtual machine: guest memory, the vCPU, the in-kernel irqchip and
 * PIT, the I/O buses and the device table. No global state: everything hangs
 * off struct vm, so tests (and later the COLO engine) can hold several.
 *
 * Threads: the main thread runs the event loop (QMP, backends); one thread runs
 * the vCPU; each disk has an I/O worker thread. Device state is guarded by
 * io_lock, which nobody holds across I/O (see dev/device.h).
 */
#ifndef LOCKSTEP_VM_VM_H
#define LOCKSTEP_VM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dev/bus.h"
#include "vm/memory.h"

struct device;
struct evloop;
struct vcpu;

#define VM_MAX_DEVICES 32
#define VM_CMDLINE_MAX 2048

/* virtio-mmio devices: one 4 KiB window each from here, GSI VIRTIO_MMIO_GSI0 + n. */
#define VIRTIO_MMIO_BASE 0xd0000000ULL
#define VIRTIO_MMIO_SIZE 0x1000ULL
#define VIRTIO_MMIO_GSI0 5
#define VIRTIO_MMIO_MAX 8

enum vm_run_state {
	VM_STATE_CREATED,  /* built, vCPU not started */
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,   /* stopped by the monitor (QMP stop) */
	VM_STATE_SHUTDOWN, /* the guest exited or the VM was told to quit */
	VM_STATE_INMIGRATE,   /* waiting for an incoming migration stream */
	VM_STATE_POSTMIGRATE, /* migrated away: the guest runs elsewhere, never resume here */
};

enum vm_event {
	VM_EVENT_STOP,
	VM_EVENT_RESUME,
	VM_EVENT_SHUTDOWN,
};

/* Called on the event-loop thread. */
typedef void (*vm_event_fn)(void *opaque, enum vm_event ev, const char *reason);

struct vm {
	int kvm_fd;
	int vm_fd;
	struct gmem mem;
	struct vcpu *vcpu;
	struct bus pio;
	struct bus mmio;
	struct evloop *loop;

	pthread_mutex_t io_lock; /* device state */
	int ndevices;
	struct device *devices[VM_MAX_DEVICES];
	int nvirtio;
	int defer_backends; /* set before adding devices: backends attach at vm_attach_backends */
	char cmdline_devices[VM_CMDLINE_MAX]; /* "virtio_mmio.device=..." entries */

	/* Run state; changed only under state_lock. */
	pthread_mutex_t state_lock;
	pthread_cond_t state_cond;
	enum vm_run_state state;
	int pause_requested;
	int vcpu_parked;
	int checkpoint_pause; /* held by vm_pause_quiet: the monitor must not resume it */
	int user_paused;      /* stopped by vm_pause: vm_resume_quiet leaves it stopped */
	/* A pause or resume is running the devices' pause/resume ops (outside
	 * state_lock; a block device may wait there for its I/O to finish):
	 * other pausers and resumers wait, so a VM seen paused has quiet devices. */
	int devices_changing;

	int wake_fd;     /* eventfd: something for an idle vCPU to look at */
	int shutdown_fd; /* eventfd: vCPU thread -> event loop, guest is gone */
	int exit_status; /* process exit status once SHUTDOWN */
	const char *shutdown_reason; /* "guest-shutdown", "host-qmp-quit", "guest-panic" */

	vm_event_fn event_fn;
	void *event_opaque;
};

/* Opens /dev/kvm, creates the VM, irqchip, PIT, guest RAM and the vCPU. Logs why on error. */
int vm_create(struct vm *vm, struct evloop *loop, uint64_t mem_size);
/* Stops the vCPU thread, destroys every device, frees everything. */
void vm_destroy(struct vm *vm);

/* Adds dev to the device table; the VM owns it from now on (destroyed by vm_destroy). */
int vm_add_device(struct vm *vm, struct device *dev);
struct device *vm_find_device(struct vm *vm, const char *name);
int vm_register_pio(struct vm *vm, uint16_t port, uint16_t len, struct device *dev);
int vm_register_mmio(struct vm *vm, uint64_t gpa, uint64_t len, struct device *dev);
/* Next free virtio-mmio window; also announces it on the guest command line. */
int vm_alloc_virtio_mmio(struct vm *vm, uint64_t *base, uint32_t *gsi);

/* Hand every device's host backend over (see device_ops.detach_backend). */
void vm_detach_backends(struct vm *vm);
/* Returns the first failure; devices attached before it stay attached. */
int vm_attach_backends(struct vm *vm, const char **failed);

/* Drive an irqchip input line (level 1 = asserted). Safe from any thread. */
int vm_irq_line(struct vm *vm, uint32_t gsi, int level);
/* Wake a vCPU blocked in the idle call: a device has something for the guest. */
void vm_wake_idle(struct vm *vm);
/* Called on the vCPU thread by the idle call: waits up to timeout_us for a wake. */
void vm_idle_wait(struct vm *vm, uint32_t timeout_us);

void vm_set_event_listener(struct vm *vm, vm_event_fn fn, void *opaque);
/* Starts the vCPU thread. */
int vm_start(struct vm *vm);
/* Monitor stop/cont: returns once the vCPU is parked / running. Any thread but the
 * vCPU's own (the monitor, migration and COLO threads all use them). */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
/* The same without STOP/RESUME events: a COLO checkpoint is not a monitor stop. */
int vm_pause_quiet(struct vm *vm);
int vm_resume_quiet(struct vm *vm);
enum vm_run_state vm_get_state(struct vm *vm);
/* Moves the VM from state `from` to `to`, if it is in `from` (inmigrate, postmigrate). */
void vm_set_state(struct vm *vm, enum vm_run_state from, enum vm_run_state to);
const char *vm_state_name(enum vm_run_state s);
/* Ends the VM: from the vCPU thread (guest exit) or the main thread (quit).
 * The event loop sees it, emits SHUTDOWN and stops. */
void vm_request_shutdown(struct vm *vm, int exit_status, const char *reason);
/* Whether the VM is shut down; if so, its exit status and reason. Any thread. */
bool vm_shutdown_info(struct vm *vm, int *exit_status, const char **reason);

/* vCPU thread, after KVM_RUN returned EINTR: parks while a pause is requested.
 * Returns 1 when the VM is shutting down and the thread must end. */
int vm_vcpu_park_if_requested(struct vm *vm);

/* Lock held around device state changes (vCPU I/O, backend callbacks). */
static inline void vm_io_lock(struct vm *vm) { pthread_mutex_lock(&vm->io_lock); }
static inline void vm_io_unlock(struct vm *vm) { pthread_mutex_unlock(&vm->io_lock); }

#endif
