/*
 * Split virtqueue (virtio 1.x), device side.
 *
 * The rings live in guest RAM and the guest may scribble on them at any time,
 * so every value read from them is validated before use: indexes against the
 * queue size, chains against loops, every buffer against guest RAM. Nothing
 * here keeps a host pointer into guest memory across calls; each access goes
 * through gmem_* with its whole range checked.
 *
 * A chain is handed to the device as a list of segments {gpa, len, writable},
 * device-readable segments first (a readable segment after a writable one is
 * rejected, as the spec requires of drivers). Indirect descriptor tables are
 * accepted when VIRTIO_RING_F_INDIRECT_DESC was negotiated and flattened into
 * the same list.
 *
 * Return convention for functions that look at the rings: -EINVAL means the
 * driver broke the queue (the device must stop using it until reset).
 */
#ifndef LOCKSTEP_DEV_VIRTQ_H
#define LOCKSTEP_DEV_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/sbuf.h"

struct gmem;

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
/* avail->flags: the driver does not want used-buffer interrupts. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* Ring feature bits (negotiated through the transport). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX     29

/* Largest queue size a device may offer, and the longest chain accepted
 * (direct descriptors plus indirect tables together). */
#define VIRTQ_MAX_SIZE 256
#define VIRTQ_MAX_SEGS VIRTQ_MAX_SIZE

/* Ring sizes in guest memory, event fields included (spec 2.7: 16n, 6 + 2n, 6 + 8n). */
#define VIRTQ_DESC_BYTES(n)  (16ULL * (n))
#define VIRTQ_AVAIL_BYTES(n) (6ULL + 2ULL * (n))
#define VIRTQ_USED_BYTES(n)  (6ULL + 8ULL * (n))

struct virtq {
	struct gmem *mem;
	uint16_t max_size;  /* what the device offers (QueueNumMax) */
	uint16_t size;      /* what the driver chose (QueueNum) */
	uint8_t ready;      /* QueueReady; the transport only sets it on a valid layout */
	uint8_t event_idx;  /* VIRTIO_RING_F_EVENT_IDX negotiated */
	uint8_t indirect;   /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	uint64_t desc;      /* guest-physical addresses of the three rings */
	uint64_t avail;
	uint64_t used;
	uint16_t last_avail_idx; /* next avail->ring slot the device will take */
	uint16_t used_idx;       /* next used->ring slot; published as used->idx */
	uint16_t signalled_used; /* used_idx when the interrupt decision was last made */
};

struct virtq_seg {
	uint64_t gpa;
	uint32_t len;
	uint8_t writable;
};

struct virtq_chain {
	struct gmem *mem;
	uint16_t head;          /* id to hand back in the used ring */
	uint16_t nsegs;
	uint16_t nreadable;     /* segs[0..nreadable) are readable, the rest writable */
	uint64_t readable_len;  /* bytes in readable segments */
	uint64_t writable_len;  /* bytes in writable segments */
	struct virtq_seg segs[VIRTQ_MAX_SEGS];
};

/* Power-on state: size = max_size, not ready, no rings. */
void virtq_init(struct virtq *q, struct gmem *mem, uint16_t max_size);
/* Forget everything the driver set up (device reset). */
void virtq_reset(struct virtq *q);
/* 0 if size is a power of two <= max_size and the rings are aligned and inside RAM. */
int virtq_check_layout(const struct virtq *q);

/* Chains the driver made available and the device has not taken yet (0 when not
 * ready), or -EINVAL if avail->idx ran more than size ahead. */
int virtq_avail_count(struct virtq *q);
/* Takes the next chain: 1 and *chain filled, 0 if none is waiting, -EINVAL if
 * the chain (or the ring) is malformed. */
int virtq_pop_avail(struct virtq *q, struct virtq_chain *chain);
/* Gives back the chain just popped (it will be popped again next time). */
void virtq_unpop_avail(struct virtq *q);
/* Returns the chain headed by head to the driver; written_len counts the bytes
 * the device wrote into it. Publishes used->idx after a release fence. */
int virtq_push_used(struct virtq *q, uint16_t head, uint32_t written_len);
/* Whether the driver wants an interrupt for what was pushed since the last call
 * (avail->flags NO_INTERRUPT, or used_event with EVENT_IDX). */
bool virtq_needs_interrupt(struct virtq *q);
/* Called when the device runs out of chains and goes idle: with EVENT_IDX asks
 * the driver to notify on the next chain (avail_event), then re-reads avail->idx.
 * Returns true if chains arrived meanwhile: the caller must keep processing,
 * otherwise that notification would be lost. */
bool virtq_enable_notify(struct virtq *q);

/* Copies between a chain and a host buffer. offset counts bytes inside the
 * readable (for _read) or writable (for _write) part of the chain.
 * -EINVAL if [offset, offset+len) is not inside that part. */
int virtq_chain_read(const struct virtq_chain *c, uint64_t offset, void *buf, uint64_t len);
int virtq_chain_write(const struct virtq_chain *c, uint64_t offset, const void *buf,
		      uint64_t len);
/* Host iovecs for [offset, offset+len) of the readable or writable part, for
 * preadv/pwritev straight into guest memory. Writable ranges are marked dirty;
 * call virtq_chain_written() again once the data is in place. Returns the
 * number of iovecs or -EINVAL. */
int virtq_chain_iov(const struct virtq_chain *c, bool writable, uint64_t offset, uint64_t len,
		    struct iovec *iov, int max_iov);
/* Marks [offset, offset+len) of the writable part dirty after the device wrote it
 * (a harvest of the dirty bitmap between the first mark and the write would
 * otherwise copy the page before the data arrived). */
void virtq_chain_written(const struct virtq_chain *c, uint64_t offset, uint64_t len);

/* Queue state (the driver's setup and both indexes). virtq_load validates the
 * record into a copy and changes *q only if all of it is sound. */
void virtq_save(const struct virtq *q, struct sbuf *out);
int virtq_load(struct virtq *q, struct sbuf_reader *in);

#endif
