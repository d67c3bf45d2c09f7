/*
 * A VM for virtio device tests, without KVM: guest memory, an MMIO bus, io_lock
 * and an event loop on its own thread (where devices complete work and RX
 * runs), plus the handful of vm_* functions devices call, so vm.c is never
 * linked in. If a test fails to link with "multiple definition", a device
 * started using another vm_* function: stub it here.
 *
 * The including test defines RAM_SIZE and `static struct vm vm; static struct
 * device *dev; static uint16_t avail_idx, used_seen;` first. Like a vCPU, the
 * test holds io_lock for every register access.
 */
#ifndef LOCKSTEP_TESTS_VIRTIO_HARNESS_H
#define LOCKSTEP_TESTS_VIRTIO_HARNESS_H

/* ---- the VM the device sees ---- */

static int irq_level = 0;
static int irq_raises; /* 0 -> 1 transitions */
static int idle_wakes;

int vm_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	(void)vm;
	assert_int_equal(gsi, VIRTIO_MMIO_GSI0);
	if (level && !irq_level)
		irq_raises++;
	irq_level = level;
	return 0;
}

void vm_wake_idle(struct vm *vm) { (void)vm; idle_wakes++; }

int vm_register_mmio(struct vm *vm, uint64_t gpa, uint64_t len, struct device *dev)
{
	return bus_register(&vm->mmio, gpa, len, dev);
}

int vm_alloc_virtio_mmio(struct vm *vm, uint64_t *base, uint32_t *gsi)
{
	if (vm->nvirtio == VIRTIO_MMIO_MAX)
		return -ENOSPC;
	*base = VIRTIO_MMIO_BASE + (uint64_t)vm->nvirtio * VIRTIO_MMIO_SIZE;
	*gsi = VIRTIO_MMIO_GSI0 + (uint32_t)vm->nvirtio++;
	return 0;
}

struct device *vm_find_device(struct vm *vm, const char *name)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (strcmp(vm->devices[i]->name, name) == 0)
			return vm->devices[i];
	return NULL;
}

int vm_add_device(struct vm *vm, struct device *dev)
{
	if (vm->ndevices == VM_MAX_DEVICES)
		return -ENOSPC;
	dev->vm = vm;
	vm->devices[vm->ndevices++] = dev;
	return 0;
}

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define WAIT_MS 10000

static pthread_t loop_thread;

static inline void *loop_main(void *arg)
{
	evloop_run(arg);
	return NULL;
}

/* The VM without a device: memory, bus, lock, and the event loop running. */
static inline void vm_setup(void)
{
	memset(&vm, 0, sizeof(vm));
	assert_int_equal(gmem_init(&vm.mem, RAM_SIZE), 0);
	bus_init(&vm.mmio, "mmio");
	pthread_mutex_init(&vm.io_lock, NULL);
	vm.loop = evloop_create();
	assert_non_null(vm.loop);
	assert_int_equal(pthread_create(&loop_thread, NULL, loop_main, vm.loop), 0);
	irq_level = irq_raises = idle_wakes = 0;
	avail_idx = used_seen = 0;
}

/* Register access as a vCPU makes it: under io_lock. */
static inline void io_read(uint64_t off, void *data, uint32_t len)
{
	vm_io_lock(&vm);
	dev->ops->io_read(dev, off, data, len);
	vm_io_unlock(&vm);
}

static inline uint32_t rd(uint64_t off)
{
	uint32_t v;

	io_read(off, &v, 4);
	return v;
}

static inline void wr(uint64_t off, uint32_t v)
{
	vm_io_lock(&vm);
	dev->ops->io_write(dev, off, &v, 4);
	vm_io_unlock(&vm);
}

static inline uint64_t offered_features(void)
{
	uint64_t f;

	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)rd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

/* ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether it stuck. */
static inline int negotiate(uint64_t features)
{
	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return !!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}

static inline void setup_queue(uint32_t sel, uint64_t desc, uint64_t avail, uint64_t used, uint32_t size)
{
	wr(VIRTIO_MMIO_QUEUE_SEL, sel);
	wr(VIRTIO_MMIO_QUEUE_NUM, size);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

static inline void driver_ok(void)
{
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Destroys the devices (last first) and the VM around them. */
static inline void vm_teardown(void)
{
	for (int i = vm.ndevices - 1; i >= 0; i--)
		vm.devices[i]->ops->destroy(vm.devices[i]);
	vm.ndevices = 0;
	evloop_stop(vm.loop);
	pthread_join(loop_thread, NULL);
	evloop_destroy(vm.loop);
	gmem_destroy(&vm.mem);
	pthread_mutex_destroy(&vm.io_lock);
}

#endif
