/*
 * One virtio-blk request, from the chain popped off the queue to the outcome
 * the completion reports: private to virtio_blk.c and virtio_blk_req.c.
 *
 * Who touches what: the kicking vCPU fills chain and hdr (io_lock held) and
 * hands the request to the worker; the worker (no lock) runs it and fills the
 * outcome; the completion (io_lock held) reads the outcome after taking the
 * request from the worker's done list, whose lock orders the two.
 */
#ifndef LOCKSTEP_DEV_VIRTIO_BLK_REQ_H
#define LOCKSTEP_DEV_VIRTIO_BLK_REQ_H

#include <stdint.h>

#include "block/blk_worker.h"
#include "dev/virtio_blk.h"
#include "dev/virtq.h"

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct virtio_blk_req {
	struct blk_job job; /* first: the worker hands it back as a job */
	struct virtio_blk *blk;
	struct virtio_blk_req *next_free;
	struct virtq_chain chain;
	struct virtio_blk_req_hdr hdr;
	/* Outcome. */
	uint8_t status;     /* VIRTIO_BLK_S_* */
	uint32_t written;   /* data bytes written into the chain (used length - 1) */
	uint64_t bytes;     /* data bytes transferred, for the statistics */
	int host_err;       /* -errno of a failed backend call, else 0 */
	const char *op;     /* the backend call that failed: "read", "write", "flush" */
};

/* vCPU: reads the header of a popped chain. -EINVAL if the chain is not a
 * request (under 16 readable bytes, or no writable byte for the status). */
int virtio_blk_req_parse(struct virtio_blk_req *r);
/* Worker: serves the request (the blk_job run function). */
void virtio_blk_req_run(struct blk_job *job);
/* Completion, io_lock held: counts the outcome in the device's statistics
 * (and logs the first host error) and writes the status byte. -EINVAL if the
 * status byte cannot be written. */
int virtio_blk_req_finish(struct virtio_blk_req *r);

#endif
