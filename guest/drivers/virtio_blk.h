/*
 * virtio-blk driver: one request in flight, completion by interrupt.
 * Every I/O call returns the device's status byte (VIRTIO_BLK_S_*), or -1
 * when the request never completed or the device did not write a status.
 */
#ifndef GUEST_DRIVERS_VIRTIO_BLK_H
#define GUEST_DRIVERS_VIRTIO_BLK_H

#include "drivers/virtio_mmio.h"

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct virtio_blk {
	struct virtio_dev dev;
	struct vq vq;
	uint64_t capacity; /* sectors of 512 bytes */
	bool readonly;
	bool broken; /* a request timed out: its chain may still come back */
	/* Header and status of the one request in flight. */
	struct virtio_blk_req_hdr *hdr;
	volatile uint8_t *status;
	/* Optional: called each time the driver wakes while a request is out (at
	 * least every 10 ms), so an app can show it runs during slow I/O. */
	void (*while_waiting)(struct virtio_blk *b);
};

/* Finds and starts the first virtio-blk device; 0 or -1. */
int virtio_blk_init(struct virtio_blk *b);
int virtio_blk_read(struct virtio_blk *b, uint64_t sector, void *buf, uint32_t nsectors);
int virtio_blk_write(struct virtio_blk *b, uint64_t sector, const void *buf, uint32_t nsectors);
int virtio_blk_flush(struct virtio_blk *b);
/* The device's serial (up to 20 bytes, NUL-padded); id must hold 21 bytes. */
int virtio_blk_get_id(struct virtio_blk *b, char *id);

#endif
