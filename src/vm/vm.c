#include "vm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dev/device.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vm/vcpu.h"

#define KVM_TSS_ADDR 0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

static const int vm_required_caps[] = {
	KVM_CAP_IRQCHIP, KVM_CAP_PIT2, KVM_CAP_USER_MEMORY, KVM_CAP_SET_TSS_ADDR,
	KVM_CAP_MP_STATE, KVM_CAP_VCPU_EVENTS, KVM_CAP_DEBUGREGS, KVM_CAP_XSAVE,
	KVM_CAP_XCRS, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_EXT_CPUID,
};

static int vm_open_kvm(struct vm *vm)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = -errno;

		log_error("cannot open /dev/kvm: %s", strerror(errno));
		return err;
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_error("/dev/kvm: unsupported KVM API version %d (need %d)", version,
			  KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(vm_required_caps) / sizeof(vm_required_caps[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, vm_required_caps[i]) <= 0) {
			log_error("/dev/kvm lacks required capability %d", vm_required_caps[i]);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* KVM_CREATE_VM can fail with EINTR while the kernel takes all mm locks; retry. */
static int vm_create_kvm_vm(struct vm *vm)
{
	for (int tries = 0; tries < 5; tries++) {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
		if (vm->vm_fd >= 0 || errno != EINTR)
			break;
	}
	if (vm->vm_fd < 0) {
		int err = -errno;

		log_error("KVM_CREATE_VM: %s", strerror(errno));
		return err;
	}
	return 0;
}

/*
 * Order: TSS/identity map and irqchip + PIT before any vCPU exists (KVM
 * requires the irqchip first so the vCPU gets an in-kernel LAPIC).
 */
static int vm_create_platform(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;

	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0 ||
	    ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0 ||
	    ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		int err = -errno;

		log_error("creating the KVM irqchip/PIT: %s", strerror(errno));
		return err;
	}
	return 0;
}

static int vm_register_ram(struct vm *vm)
{
	for (int i = 0; i < vm->mem.nslots; i++) {
		const struct gmem_slot *s = &vm->mem.slots[i];
		struct kvm_userspace_memory_region region = {
			.slot = (uint32_t)i,
			.flags = KVM_MEM_LOG_DIRTY_PAGES,
			.guest_phys_addr = s->gpa,
			.memory_size = s->size,
			.userspace_addr = (uint64_t)(uintptr_t)s->hva,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			int err = -errno;

			log_error("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return err;
		}
	}
	return 0;
}

static int vm_init_fields(struct vm *vm, struct evloop *loop)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	vm->mem.memfd = -1;
	vm->loop = loop;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->io_lock, NULL);
	pthread_mutex_init(&vm->state_lock, NULL);
	pthread_cond_init(&vm->state_cond, NULL);
	vm->state = VM_STATE_CREATED;
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return vm->wake_fd < 0 || vm->shutdown_fd < 0 ? -errno : 0;
}

static void vm_on_shutdown_fd(void *opaque, uint32_t events);

int vm_create(struct vm *vm, struct evloop *loop, uint64_t mem_size)
{
	int ret = vm_init_fields(vm, loop);

	if (ret < 0)
		return ret;
	if ((ret = vm_open_kvm(vm)) || (ret = vm_create_kvm_vm(vm)) ||
	    (ret = vm_create_platform(vm)))
		return ret;
	ret = gmem_init(&vm->mem, mem_size);
	if (ret < 0) {
		log_error("cannot allocate %llu bytes of guest memory: %s",
			  (unsigned long long)mem_size, strerror(-ret));
		return ret;
	}
	if ((ret = vm_register_ram(vm)))
		return ret;
	ret = vcpu_create(vm, 0, &vm->vcpu);
	if (ret < 0) {
		log_error("creating vCPU 0: %s", strerror(-ret));
		return ret;
	}
	if (loop && (ret = evloop_add(loop, vm->shutdown_fd, EPOLLIN, vm_on_shutdown_fd, vm)))
		return ret;
	return 0;
}

static void vm_join_vcpu(struct vm *vm)
{
	if (!vm->vcpu || !vm->vcpu->thread_started)
		return;
	pthread_mutex_lock(&vm->state_lock);
	vm->state = VM_STATE_SHUTDOWN;
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->state_lock);
	vm_wake_idle(vm);
	vcpu_kick(vm->vcpu);
	pthread_join(vm->vcpu->thread, NULL);
	vm->vcpu->thread_started = 0;
}

static void vm_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void vm_destroy(struct vm *vm)
{
	vm_join_vcpu(vm);
	for (int i = vm->ndevices - 1; i >= 0; i--)
		vm->devices[i]->ops->destroy(vm->devices[i]);
	vm->ndevices = 0;
	vcpu_destroy(vm->vcpu);
	vm->vcpu = NULL;
	if (vm->loop && vm->shutdown_fd >= 0)
		evloop_del(vm->loop, vm->shutdown_fd);
	gmem_destroy(&vm->mem);
	vm_close_fd(&vm->vm_fd);
	vm_close_fd(&vm->kvm_fd);
	vm_close_fd(&vm->wake_fd);
	vm_close_fd(&vm->shutdown_fd);
}

int vm_add_device(struct vm *vm, struct device *dev)
{
	if (vm->ndevices == VM_MAX_DEVICES)
		return -ENOSPC;
	if (vm_find_device(vm, dev->name))
		return -EEXIST;
	dev->vm = vm;
	vm->devices[vm->ndevices++] = dev;
	return 0;
}

struct device *vm_find_device(struct vm *vm, const char *name)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (strcmp(vm->devices[i]->name, name) == 0)
			return vm->devices[i];
	return NULL;
}

int vm_register_pio(struct vm *vm, uint16_t port, uint16_t len, struct device *dev)
{
	return bus_register(&vm->pio, port, len, dev);
}

int vm_register_mmio(struct vm *vm, uint64_t gpa, uint64_t len, struct device *dev)
{
	return bus_register(&vm->mmio, gpa, len, dev);
}

int vm_alloc_virtio_mmio(struct vm *vm, uint64_t *base, uint32_t *gsi)
{
	size_t used = strlen(vm->cmdline_devices);
	int n;

	if (vm->nvirtio == VIRTIO_MMIO_MAX)
		return -ENOSPC;
	*base = VIRTIO_MMIO_BASE + (uint64_t)vm->nvirtio * VIRTIO_MMIO_SIZE;
	*gsi = VIRTIO_MMIO_GSI0 + (uint32_t)vm->nvirtio;
	n = snprintf(vm->cmdline_devices + used, sizeof(vm->cmdline_devices) - used,
		     "%svirtio_mmio.device=4K@0x%llx:%u", used ? " " : "",
		     (unsigned long long)*base, *gsi);
	if (n < 0 || (size_t)n >= sizeof(vm->cmdline_devices) - used)
		return -ENOSPC;
	vm->nvirtio++;
	return 0;
}

void vm_detach_backends(struct vm *vm)
{
	vm_io_lock(vm);
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i]->ops->detach_backend)
			vm->devices[i]->ops->detach_backend(vm->devices[i]);
	vm_io_unlock(vm);
}

int vm_attach_backends(struct vm *vm, const char **failed)
{
	int ret = 0;

	vm_io_lock(vm);
	for (int i = 0; i < vm->ndevices && ret == 0; i++) {
		struct device *d = vm->devices[i];

		if (d->ops->attach_backend && (ret = d->ops->attach_backend(d)) < 0 && failed)
			*failed = d->name;
	}
	vm->defer_backends = 0;
	vm_io_unlock(vm);
	return ret;
}

int vm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	if (level)
		vm_wake_idle(vm);
	return 0;
}

void vm_wake_idle(struct vm *vm)
{
	uint64_t one = 1;

	if (write(vm->wake_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: a wake-up is pending anyway */
	}
}

void vm_idle_wait(struct vm *vm, uint32_t timeout_us)
{
	struct pollfd pfd = { .fd = vm->wake_fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = timeout_us / 1000000,
			       .tv_nsec = (long)(timeout_us % 1000000) * 1000 };
	uint64_t v;

	if (ppoll(&pfd, 1, &ts, NULL) > 0 && read(vm->wake_fd, &v, sizeof(v)) < 0) {
		/* raced with another reader: nothing to drain */
	}
}

void vm_set_event_listener(struct vm *vm, vm_event_fn fn, void *opaque)
{
	vm->event_fn = fn;
	vm->event_opaque = opaque;
}

struct vm_posted_event {
	struct vm *vm;
	enum vm_event ev;
	const char *reason;
};

static void vm_deliver_event(void *arg)
{
	struct vm_posted_event *e = arg;

	if (e->vm->event_fn)
		e->vm->event_fn(e->vm->event_opaque, e->ev, e->reason);
	free(e);
}

/* Listeners run on the event-loop thread, whichever thread changed the state. */
static void vm_emit(struct vm *vm, enum vm_event ev, const char *reason)
{
	struct vm_posted_event *e = malloc(sizeof(*e));

	if (!e)
		return;
	*e = (struct vm_posted_event){ vm, ev, reason };
	if (!vm->loop || evloop_post(vm->loop, vm_deliver_event, e) < 0)
		vm_deliver_event(e);
}

int vm_start(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->state_lock);
	if (vm->state == VM_STATE_SHUTDOWN) {
		pthread_mutex_unlock(&vm->state_lock);
		return -EINVAL;
	}
	vm->state = VM_STATE_RUNNING;
	pthread_mutex_unlock(&vm->state_lock);
	ret = vcpu_start(vm->vcpu);
	if (ret < 0)
		log_error("starting the vCPU thread: %s", strerror(-ret));
	return ret;
}

int vm_vcpu_park_if_requested(struct vm *vm)
{
	int gone;

	pthread_mutex_lock(&vm->state_lock);
	if (vm->pause_requested && vm->state != VM_STATE_SHUTDOWN) {
		vm->vcpu_parked = 1;
		pthread_cond_broadcast(&vm->state_cond);
		while (vm->pause_requested && vm->state != VM_STATE_SHUTDOWN)
			pthread_cond_wait(&vm->state_cond, &vm->state_lock);
		vm->vcpu_parked = 0;
	}
	gone = vm->state == VM_STATE_SHUTDOWN;
	pthread_mutex_unlock(&vm->state_lock);
	return gone;
}

static void vm_pause_devices(struct vm *vm, int pause)
{
	vm_io_lock(vm);
	for (int i = 0; i < vm->ndevices; i++) {
		struct device *d = vm->devices[i];

		if (pause && d->ops->pause)
			d->ops->pause(d);
		else if (!pause && d->ops->resume)
			d->ops->resume(d);
	}
	vm_io_unlock(vm);
}

/* state_lock held: waits until no other pause or resume is in its devices. */
static void vm_wait_devices_settled(struct vm *vm)
{
	while (vm->devices_changing)
		pthread_cond_wait(&vm->state_cond, &vm->state_lock);
}

static void vm_devices_settled(struct vm *vm)
{
	pthread_mutex_lock(&vm->state_lock);
	vm->devices_changing = 0;
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->state_lock);
}

static int vm_pause_emit(struct vm *vm, bool emit);
static int vm_resume_emit(struct vm *vm, bool emit);

int vm_pause(struct vm *vm) { return vm_pause_emit(vm, true); }
int vm_resume(struct vm *vm) { return vm_resume_emit(vm, true); }
int vm_pause_quiet(struct vm *vm) { return vm_pause_emit(vm, false); }
int vm_resume_quiet(struct vm *vm) { return vm_resume_emit(vm, false); }

/*
 * Two holds keep a VM stopped: the monitor's (vm_pause, emit) and a COLO
 * checkpoint's (vm_pause_quiet). Each is taken whatever the other does, so a
 * `stop` during a checkpoint outlives its end, and a checkpoint of a stopped
 * VM still refuses `cont` while it copies the state.
 */
/* state_lock held, the VM paused by someone: take our hold too; unlocks. */
static int vm_join_pause(struct vm *vm, bool emit)
{
	bool newly = emit && !vm->user_paused;

	if (emit)
		vm->user_paused = 1;
	else
		vm->checkpoint_pause = 1;
	pthread_mutex_unlock(&vm->state_lock);
	if (newly)
		vm_emit(vm, VM_EVENT_STOP, NULL);
	return 0;
}

static int vm_pause_emit(struct vm *vm, bool emit)
{
	pthread_mutex_lock(&vm->state_lock);
	for (;;) {
		vm_wait_devices_settled(vm);
		if (vm->state == VM_STATE_PAUSED)
			return vm_join_pause(vm, emit);
		if (vm->state != VM_STATE_RUNNING) {
			int ret = vm->state == VM_STATE_POSTMIGRATE ? 0 : -EINVAL;

			pthread_mutex_unlock(&vm->state_lock);
			return ret;
		}
		vm->pause_requested = 1;
		vcpu_kick(vm->vcpu);
		vm_wake_idle(vm);
		while (!vm->vcpu_parked && vm->state == VM_STATE_RUNNING)
			pthread_cond_wait(&vm->state_cond, &vm->state_lock);
		if (vm->state == VM_STATE_RUNNING)
			break;
		/* A pause that waited beside ours got there first (a `stop` during a
		 * checkpoint's pause, or the other way round): join it. */
	}
	vm->state = VM_STATE_PAUSED;
	vm->checkpoint_pause = !emit;
	vm->user_paused = emit;
	vm->devices_changing = 1;
	pthread_mutex_unlock(&vm->state_lock);
	vm_pause_devices(vm, 1);
	vm_devices_settled(vm);
	if (emit)
		vm_emit(vm, VM_EVENT_STOP, NULL);
	return 0;
}

static int vm_resume_emit(struct vm *vm, bool emit)
{
	pthread_mutex_lock(&vm->state_lock);
	vm_wait_devices_settled(vm);
	if (vm->state != VM_STATE_PAUSED) {
		/* After a migration the guest lives on in the destination: running
		 * it here too would give two diverging copies. */
		int ret = vm->state == VM_STATE_RUNNING ? 0
			  : vm->state == VM_STATE_POSTMIGRATE ? -EBUSY : -EINVAL;

		pthread_mutex_unlock(&vm->state_lock);
		return ret;
	}
	/* A COLO checkpoint holds it: running it in the middle would change the
	 * state being copied. */
	if (emit && vm->checkpoint_pause) {
		pthread_mutex_unlock(&vm->state_lock);
		return -EBUSY;
	}
	if (emit)
		vm->user_paused = 0;
	vm->checkpoint_pause = 0;
	if (vm->user_paused) { /* the checkpoint ends; the monitor's stop stays */
		pthread_mutex_unlock(&vm->state_lock);
		return 0;
	}
	vm->devices_changing = 1;
	pthread_mutex_unlock(&vm->state_lock);
	vm_pause_devices(vm, 0);
	pthread_mutex_lock(&vm->state_lock);
	vm->state = VM_STATE_RUNNING;
	vm->pause_requested = 0;
	vm->devices_changing = 0;
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->state_lock);
	if (emit)
		vm_emit(vm, VM_EVENT_RESUME, NULL);
	return 0;
}

void vm_set_state(struct vm *vm, enum vm_run_state from, enum vm_run_state to)
{
	pthread_mutex_lock(&vm->state_lock);
	if (vm->state == from)
		vm->state = to;
	pthread_mutex_unlock(&vm->state_lock);
}

enum vm_run_state vm_get_state(struct vm *vm)
{
	enum vm_run_state s;

	pthread_mutex_lock(&vm->state_lock);
	s = vm->state;
	pthread_mutex_unlock(&vm->state_lock);
	return s;
}

const char *vm_state_name(enum vm_run_state s)
{
	switch (s) {
	case VM_STATE_CREATED:
		return "prelaunch";
	case VM_STATE_RUNNING:
		return "running";
	case VM_STATE_PAUSED:
		return "paused";
	case VM_STATE_SHUTDOWN:
		return "shutdown";
	case VM_STATE_INMIGRATE:
		return "inmigrate";
	case VM_STATE_POSTMIGRATE:
		return "postmigrate";
	}
	return "unknown";
}

void vm_request_shutdown(struct vm *vm, int exit_status, const char *reason)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vm->state_lock);
	if (vm->state != VM_STATE_SHUTDOWN) {
		vm->state = VM_STATE_SHUTDOWN;
		vm->exit_status = exit_status;
		vm->shutdown_reason = reason;
		pthread_cond_broadcast(&vm->state_cond);
	}
	pthread_mutex_unlock(&vm->state_lock);
	if (write(vm->shutdown_fd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

bool vm_shutdown_info(struct vm *vm, int *exit_status, const char **reason)
{
	bool down;

	pthread_mutex_lock(&vm->state_lock);
	down = vm->state == VM_STATE_SHUTDOWN;
	*exit_status = vm->exit_status;
	*reason = vm->shutdown_reason;
	pthread_mutex_unlock(&vm->state_lock);
	return down;
}

static void vm_on_shutdown_fd(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	(void)events;
	if (read(vm->shutdown_fd, &v, sizeof(v)) < 0)
		return;
	evloop_del(vm->loop, vm->shutdown_fd);
	/* Already on the loop thread, and the loop stops next: deliver now. */
	if (vm->event_fn)
		vm->event_fn(vm->event_opaque, VM_EVENT_SHUTDOWN, vm->shutdown_reason);
	evloop_stop(vm->loop);
}
