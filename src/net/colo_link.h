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
#ifndef LOCKSTEP_NET_COLO_LINK_H
#define LOCKSTEP_NET_COLO_LINK_H

#include <pthread.h>
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
void colo_link_reader_free(struct colo_link_reader *r);
/* Every complete frame goes to fn. -EPROTO if a length is impossible (the stream is then dead). */
int colo_link_feed(struct colo_link_reader *r, const uint8_t *data, size_t len, colo_link_frame_fn fn,
		   void *opaque);

/* A blocking writer shared by threads. */
struct colo_link_writer {
	int fd;
	pthread_mutex_t lock;
	int error;
};

void colo_link_writer_init(struct colo_link_writer *w, int fd);
void colo_link_writer_destroy(struct colo_link_writer *w);
int colo_link_send(struct colo_link_writer *w, uint32_t epoch, uint64_t seq, const uint8_t *frame,
		   size_t len);
int colo_link_send_magic(int fd);
/* Reads and checks the magic (blocking, with the socket's timeout). */
int colo_link_expect_magic(int fd);

#endif
