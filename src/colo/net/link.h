/*
 * The COLO network link: a TCP connection between primary and secondary,
 * separate from the checkpoint stream, carrying Ethernet frames with their
 * 12-byte virtio-net header.
 *
 *   primary -> secondary: frames the primary's TAP delivered (the mirror)
 *   secondary -> primary: frames the secondary's guest sent (to the comparator)
 *
 * The connection opens with the 8 bytes COLO_LINK_MAGIC (from the primary);
 * then each frame is a 16-byte header {u32 length, u32 epoch, u64 seq}
 * (little-endian) followed by `length` bytes. seq numbers mirror frames, so the
 * secondary can drop those a checkpoint already contains; epoch numbers the
 * checkpoints, so the comparator can drop output the secondary produced before
 * the last one.
 */
#ifndef LOCKSTEP_COLO_NET_LINK_H
#define LOCKSTEP_COLO_NET_LINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COLO_LINK_MAGIC "LSKNETL1"
#define COLO_LINK_MAGIC_LEN 8
#define COLO_LINK_HDR_LEN 16
#define COLO_LINK_MAX_FRAME (12 + 65550)

struct colo_link_hdr {
	uint32_t len;
	uint32_t epoch;
	uint64_t seq;
};

typedef void (*colo_link_frame_fn)(void *opaque, const struct colo_link_hdr *h, uint8_t *frame);

/* Reassembles frames from a byte stream cut anywhere. */
struct colo_link_reader {
	uint8_t hdr[COLO_LINK_HDR_LEN];
	size_t hdr_got;
	struct colo_link_hdr h;
	uint8_t *buf; /* COLO_LINK_MAX_FRAME bytes */
	size_t got;
};

int colo_link_reader_init(struct colo_link_reader *r);
/* Forgets a partial frame (a new connection starts at a frame boundary). */
void colo_link_reader_reset(struct colo_link_reader *r);
void colo_link_reader_free(struct colo_link_reader *r);
/* Every complete frame goes to fn. -EPROTO if a length is impossible (the stream is then dead). */
int colo_link_feed(struct colo_link_reader *r, const uint8_t *data, size_t len, colo_link_frame_fn fn,
		   void *opaque);

/*
 * The writer never blocks its caller (a vCPU or the event loop, with the VM's
 * io_lock held): a frame goes straight into the socket when nothing is queued
 * and the socket takes it, else into a queue of at most `limit` bytes that
 * the writer's own thread sends. Backpressure: a frame that does not fit is
 * dropped and counted (COLO tolerates a lost frame: the comparator sees the
 * difference and a checkpoint resynchronises the guests; a stall would not be
 * tolerated). The link fails, once, through `failed` (from the writer thread,
 * no lock held) on a socket error or when the peer takes nothing for
 * `stall_ms`; later sends are refused with that error.
 */
#define COLO_LINK_QUEUE_LIMIT (16u << 20)

struct colo_link_chunk;

struct colo_link_writer_stats {
	uint64_t frames;      /* sent or queued */
	uint64_t dropped;     /* refused: queue full */
	uint64_t queued_bytes;
	uint64_t queued_max;  /* high-water mark */
	uint64_t limit;
	int error;            /* 0, or why the link failed (-errno) */
};

struct colo_link_writer {
	int fd;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stopping, error_reported;
	struct colo_link_chunk *head, *tail;
	unsigned stall_ms;
	void (*failed)(void *opaque, int err);
	void *opaque;
	struct colo_link_writer_stats stats;
};

int colo_link_writer_start(struct colo_link_writer *w, int fd, size_t limit, unsigned stall_ms,
			   void (*failed)(void *opaque, int err), void *opaque);
/* Stops the thread (what is still queued is discarded); the fd stays open. */
void colo_link_writer_stop(struct colo_link_writer *w);
/* 0: sent or queued; -ENOBUFS: dropped (queue full); else the link's error. */
int colo_link_send(struct colo_link_writer *w, uint32_t epoch, uint64_t seq, const uint8_t *frame,
		   size_t len);
void colo_link_writer_get_stats(struct colo_link_writer *w, struct colo_link_writer_stats *out);

#endif
