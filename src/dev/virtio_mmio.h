/*
 * virtio-mmio transport, version 2 (virtio 1.x): the register page a guest
 * driver sees at VIRTIO_MMIO_BASE + n * 4 KiB, feature negotiation, the device
 * status state machine, queue setup and the interrupt line.
 *
 * A virtio device (blk, net) embeds struct virtio_mmio as its first member and
 * plugs in with a struct virtio_dev_ops; the transport implements the generic
 * struct device ops (register access, reset, save/load, pause/resume) and calls
 * the device only for what is device-specific.
 *
 * Every callback runs with vm->io_lock held: register accesses come from the
 * vCPU thread through the MMIO bus; devices with backends take the lock in
 * their event-loop callbacks before calling into the transport.
 */
#ifndef LOCKSTEP_DEV_VIRTIO_MMIO_H
#define LOCKSTEP_DEV_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "dev/device.h"
#include "dev/virtq.h"

struct vm;

/* Register offsets (virtio 1.2, 4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC     0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION_2 2
#define VIRTIO_MMIO_VENDOR    0x4c4b5354 /* "LKST" */

/* Device status bits (virtio 1.2, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

/* Interrupt status bits. */
#define VIRTIO_MMIO_INT_VRING  1 /* used buffer notification */
#define VIRTIO_MMIO_INT_CONFIG 2 /* configuration change (also: device needs reset) */

/* Device-independent feature bits. */
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_MMIO_MAX_QUEUES 4
/* Warnings a guest can trigger, per device, before we stop logging them. */
#define VIRTIO_MMIO_GUEST_ERROR_LOG_MAX 8

struct virtio_mmio;

struct virtio_dev_ops {
	const char *kind;       /* "virtio-blk": names the device "virtio-blk0", ... */
	uint32_t device_id;     /* virtio device type: 1 net, 2 blk */
	uint16_t nqueues;       /* <= VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max;     /* QueueNumMax of every queue, <= VIRTQ_MAX_SIZE */
	/* Device configuration space (offset 0x100): copy [offset, offset+len),
	 * already clipped to config_size. Writes are optional (NULL: ignored). */
	uint32_t config_size;
	void (*config_read)(struct virtio_mmio *t, uint32_t offset, void *data, uint32_t len);
	void (*config_write)(struct virtio_mmio *t, uint32_t offset, const void *data,
			     uint32_t len);
	/* DRIVER_OK: the negotiated features and ready queues are final. Return <0 to
	 * refuse (e.g. a required queue is not ready): the device then needs reset. */
	int (*activate)(struct virtio_mmio *t);
	/* The driver kicked queue q (only called while the device is live). */
	void (*notify)(struct virtio_mmio *t, uint16_t q);
	/* The driver reset the device (or the VM did): forget per-session state. */
	void (*reset)(struct virtio_mmio *t);
	/* Optional: stop / restart backend polling and requests in flight (VM
	 * stop, cont, checkpoints); see struct device_ops for what pause promises. */
	void (*pause)(struct virtio_mmio *t);
	void (*resume)(struct virtio_mmio *t);
	/* Device-specific state inside the transport record. load gets exactly the
	 * bytes save wrote; it must validate all of them (trailing bytes included)
	 * before changing anything. post_load (optional) runs once the whole
	 * transport state is in place. */
	int (*save)(struct virtio_mmio *t, struct sbuf *out);
	int (*load)(struct virtio_mmio *t, struct sbuf_reader *in);
	void (*post_load)(struct virtio_mmio *t);
	/* Optional: hand the host backend over (see struct device_ops). */
	void (*detach_backend)(struct virtio_mmio *t);
	int (*attach_backend)(struct virtio_mmio *t);
	/* Close backends and free the device (which embeds t). */
	void (*destroy)(struct virtio_mmio *t);
};

struct virtio_mmio {
	struct device dev; /* dev.ops is the transport; dev.name points at name */
	char name[32];
	int index; /* N in the name: the Nth device of this kind */
	const struct virtio_dev_ops *vops;
	struct vm *vm;
	uint64_t base;
	uint32_t gsi;

	uint64_t device_features;
	uint64_t driver_features;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t status;
	uint32_t interrupt_status;
	uint32_t config_generation;
	int active;    /* DRIVER_OK was accepted by the device */
	int irq_level; /* what we last drove onto the GSI */
	unsigned guest_errors_logged; /* guest-triggered warnings are capped */
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
};

/* Fills t for a device of type vops offering features (VERSION_1 is added),
 * picking the first free name "<kind>N" in the VM. No VM resources yet. */
void virtio_mmio_init(struct virtio_mmio *t, struct vm *vm, const struct virtio_dev_ops *vops,
		      uint64_t features);
/* Takes the next virtio-mmio window and GSI, maps the registers and adds the
 * device to the VM, which owns it from then on. On error the caller still owns
 * it (a window may have been used up: start-up fails anyway). */
int virtio_mmio_attach(struct virtio_mmio *t);

/* The transport behind dev, or NULL if dev is not a virtio-mmio device. */
struct virtio_mmio *virtio_mmio_of(struct device *dev);
/* The device is serving requests: DRIVER_OK accepted and no NEEDS_RESET. */
bool virtio_mmio_is_live(const struct virtio_mmio *t);
/* Negotiated feature bit. */
bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned bit);
/* After pushing used buffers on queue q: interrupt if the driver wants one, and
 * always wake a vCPU blocked in the idle call (a polling guest). */
void virtio_mmio_notify_used(struct virtio_mmio *t, uint16_t q);
/* The device configuration changed: bump the generation, config interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/* The driver broke the device (malformed ring or request): set
 * DEVICE_NEEDS_RESET, raise a config interrupt and serve nothing until reset. */
void virtio_mmio_device_error(struct virtio_mmio *t, const char *why);

#endif
