/*
 * virtio-blk (device id 2) over virtio-mmio, backed by a raw image file.
 *
 * One request queue; requests are served synchronously on the thread that
 * kicks the queue (the vCPU), straight between the image and guest buffers.
 * What the guest sees is described in docs/devices.md.
 */
#ifndef LOCKSTEP_DEV_VIRTIO_BLK_H
#define LOCKSTEP_DEV_VIRTIO_BLK_H

#include <stdint.h>

#include "block/file.h"
#include "dev/virtio_mmio.h"

#define VIRTIO_ID_BLOCK 2

/* Feature bits. */
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

/* Request types and status values. */
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES    20
#define VIRTIO_BLK_HDR_BYTES   16
#define VIRTIO_BLK_QUEUE_SIZE  256
/* Data segments per request: the longest chain minus header and status. */
#define VIRTIO_BLK_SEG_MAX     (VIRTQ_MAX_SEGS - 2)
/* Largest data transfer served in one request (the used length is 32-bit). */
#define VIRTIO_BLK_MAX_XFER    (1ULL << 30)

struct virtio_blk_stats {
	uint64_t reads, writes, flushes, get_ids, unsupported;
	uint64_t read_bytes, write_bytes;
	uint64_t io_errors; /* requests answered IOERR (range, read-only, host I/O) */
};

struct virtio_blk {
	struct virtio_mmio mmio; /* first: the transport finds us through it */
	struct blk_file file;
	uint64_t capacity; /* 512-byte sectors: the image size rounded down */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	struct virtio_blk_stats stats;
	/* Scratch for the request being served (io_lock serialises requests). */
	struct virtq_chain chain;
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* --disk PATH[,readonly]: opens the image (-errno if it is missing, unreadable,
 * or not writable without readonly; the caller prints "disk PATH: <strerror>"),
 * maps a virtio-mmio window and adds the device ("virtio-blk<N>", serial
 * "lockstep-disk<N>") to the VM, which owns it. */
int virtio_blk_create(struct vm *vm, const char *path, int readonly, struct device **out);

#endif
