/*
 * virtio-blk (device id 2) over virtio-mmio, in front of a block backend
 * (block/backend.h).
 *
 * One request queue. Requests are served off the vCPU and outside io_lock,
 * by the device's I/O worker thread (block/blk_worker.h):
 *  - a queue kick (vCPU, io_lock held) only pops the available chains, reads
 *    their headers and hands them to the worker;
 *  - the worker does the I/O between the backend and guest buffers, holding
 *    no lock (a backend may block for a network round trip);
 *  - completion (status byte, used ring, interrupt) runs under io_lock on the
 *    event-loop thread, which watches the worker's done_fd.
 * The worker never needs io_lock, so a thread holding io_lock may wait for it:
 * pause (vm_pause_devices holds io_lock) drains every request handed to the
 * worker and completes it itself before returning, and takes no new ones until
 * resume; so a saved device never has a request in flight.
 * What the guest sees is described in docs/devices.md.
 */
#ifndef LOCKSTEP_DEV_VIRTIO_BLK_H
#define LOCKSTEP_DEV_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/backend.h"
#include "block/blk_worker.h"
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

struct virtio_blk_req;

struct virtio_blk {
	struct virtio_mmio mmio; /* first: the transport finds us through it */
	struct blk_backend *backend; /* owned; called on the worker thread only */
	uint64_t capacity; /* 512-byte sectors: the backend size rounded down */
	char serial[VIRTIO_BLK_ID_BYTES + 1];

	/* Under io_lock. */
	struct virtio_blk_stats stats;
	struct virtio_blk_req *reqs;      /* VIRTIO_BLK_QUEUE_SIZE: one per chain a queue holds */
	struct virtio_blk_req *free_reqs; /* those not handed to the worker */
	uint32_t in_flight;               /* handed to the worker, not yet in the used ring */
	bool paused;                      /* kicks wait for resume */

	struct blk_worker worker;
	bool done_watched; /* worker.done_fd is on the VM's event loop */
	/* Worker thread only: iovecs of the request being served. */
	struct iovec iov[VIRTQ_MAX_SEGS];
	/* x-blk-test: the worker sleeps this long before each request (atomic). */
	uint32_t test_delay_ms;
};

/* --disk: adds a virtio-blk device ("virtio-blk<N>", serial "lockstep-disk<N>")
 * in front of be, mapping a virtio-mmio window. The device takes be whatever
 * happens (closed on failure); the VM owns the device. Needs the VM's event
 * loop (completions run there). -errno on failure. */
int virtio_blk_create(struct vm *vm, struct blk_backend *be, struct device **out);

/* The virtio-blk behind dev, or NULL if dev is another kind of device. */
struct virtio_blk *virtio_blk_of(struct device *dev);
/* Test hook (x-blk-test): a per-request delay on the worker, as if the
 * backend were slow. 0 turns it off. Any thread. */
void virtio_blk_set_test_delay(struct virtio_blk *b, uint32_t ms);
uint32_t virtio_blk_test_delay(const struct virtio_blk *b);

#endif
