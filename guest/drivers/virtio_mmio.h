/*
 * Driver side of the virtio-mmio transport (virtio 1.x, MMIO version 2) and
 * a small split-virtqueue API. One page of registers per device; the rings
 * live in page_alloc()ed memory (physical == virtual, so ring addresses are
 * plain pointers).
 */
#ifndef GUEST_DRIVERS_VIRTIO_MMIO_H
#define GUEST_DRIVERS_VIRTIO_MMIO_H

#include "guest.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLK 2

#define VIRTIO_F_VERSION_1 32

#define VIRTIO_INT_USED 0x1
#define VIRTIO_INT_CONFIG 0x2

struct virtio_dev {
	uint64_t base;
	uint32_t gsi;
	uint32_t device_id;
	uint64_t features; /* negotiated */
};

/* One buffer of a descriptor chain. */
struct vq_seg {
	void *addr;
	uint32_t len;
};

/* Split virtqueue layout (virtio 1.x 2.7): all little-endian, like x86. */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_USED_F_NO_NOTIFY 1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
};

struct vq {
	struct virtio_dev *dev;
	uint16_t index;     /* queue number on the device */
	uint16_t size;      /* entries, a power of two */
	uint16_t num_free;  /* descriptors on the free list */
	uint16_t free_head; /* first free descriptor */
	uint16_t avail_idx; /* our copy of avail->idx (only we write it) */
	uint16_t last_used; /* used entries consumed so far */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	void **cookies; /* per chain head: what vq_get_used hands back */
};

/* First device announced on the command line with this id; 0 or -1. */
int virtio_find(uint32_t device_id, struct virtio_dev *dev);

/* Reset, ACKNOWLEDGE, DRIVER, negotiate wanted & offered (VERSION_1 is
 * required), FEATURES_OK and check it stuck. 0 or -1 (status FAILED set). */
int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted);
static inline bool virtio_has(const struct virtio_dev *dev, unsigned bit)
{
	return (dev->features >> bit) & 1;
}

/* Sets up queue `index` with min(QueueNumMax, max_size) entries (rounded down
 * to a power of two) and enables it. 0 or -1. */
int virtio_setup_vq(struct virtio_dev *dev, struct vq *vq, uint16_t index, uint16_t max_size);
void virtio_driver_ok(struct virtio_dev *dev);
void virtio_fail(struct virtio_dev *dev);

/* Device config space, read consistently across config_generation. */
uint8_t virtio_config_read8(struct virtio_dev *dev, uint32_t off);
uint32_t virtio_config_read32(struct virtio_dev *dev, uint32_t off);
uint64_t virtio_config_read64(struct virtio_dev *dev, uint32_t off);

/* Reads the interrupt status and acknowledges those bits (lowering the line,
 * so the next completion is a fresh edge); returns them. */
uint32_t virtio_irq_ack(struct virtio_dev *dev);

/* Queues a chain: n_out device-readable segments, then n_in device-writable
 * ones, and publishes it. Returns the head index, or -1 when the ring lacks
 * room. `cookie` (not NULL) comes back from vq_get_used. */
int vq_add_chain(struct vq *vq, const struct vq_seg *segs, int n_out, int n_in, void *cookie);
/* Tells the device new chains are available (unless it asked not to be told). */
void vq_kick(struct vq *vq);
/* The next completed chain's cookie (its descriptors freed) and the bytes the
 * device wrote into it, or NULL when nothing completed. */
void *vq_get_used(struct vq *vq, uint32_t *len);
/* True when the device has completed chains we have not taken yet. */
static inline bool vq_has_used(const struct vq *vq)
{
	return *(volatile uint16_t *)&vq->used->idx != vq->last_used;
}

#endif
