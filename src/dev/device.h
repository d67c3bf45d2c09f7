/*
 * The device model: every device is a struct device with one ops table.
 * A device registers its I/O ranges on the VM's buses and is listed in the
 * VM's device table; nothing else in the VMM knows device types.
 *
 * Locking: I/O callbacks run on the vCPU thread, fd callbacks on the event-loop
 * thread; both hold vm->io_lock while touching device state
 * (bus_dispatch takes it for I/O; event-loop callbacks take it themselves).
 * Work that may block (disk I/O) belongs on a device's own worker thread,
 * which touches no device state and needs no io_lock (virtio_blk.h): a vCPU
 * must never wait for I/O while it holds io_lock.
 */
#ifndef LOCKSTEP_DEV_DEVICE_H
#define LOCKSTEP_DEV_DEVICE_H

#include <stdint.h>

#include "util/sbuf.h"

struct vm;
struct device;

struct device_ops {
	/* Back to power-on state (state only; backends stay open). */
	void (*reset)(struct device *dev);
	/* offset is relative to the registered range; len is 1, 2, 4 or 8. */
	void (*io_read)(struct device *dev, uint64_t offset, void *data, uint32_t len);
	void (*io_write)(struct device *dev, uint64_t offset, const void *data, uint32_t len);
	/* Full guest-visible state, versioned by the device itself. */
	int (*save)(struct device *dev, struct sbuf *out);
	/* Validates everything before changing anything: on error the device is untouched. */
	int (*load)(struct device *dev, struct sbuf_reader *in);
	/*
	 * Stop / restart producing guest-visible changes (backend polling).
	 * Called with io_lock held and the vCPU parked. When pause returns, the
	 * device has nothing in flight: every request it took from the guest is
	 * complete (saved state never holds half-done work), and it takes no new
	 * ones until resume, which looks at what the guest queued meanwhile.
	 */
	void (*pause)(struct device *dev);
	void (*resume)(struct device *dev);
	/*
	 * Optional: let go of / take the host backend (a TAP device can have one
	 * owner). Used to hand a VM's network over between two processes
	 * (migration, failover); the device state is unaffected.
	 */
	void (*detach_backend)(struct device *dev);
	int (*attach_backend)(struct device *dev);
	/* Frees the device and closes its backends. */
	void (*destroy)(struct device *dev);
};

struct device {
	const char *name; /* unique within the VM, e.g. "serial0", "virtio-net0" */
	const struct device_ops *ops;
	struct vm *vm;
};

#endif
