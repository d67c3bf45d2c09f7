/*
 * virtio-net driver, polled: the RX ring is kept full of 2 KiB buffers and
 * frames are copied into TX buffers on send. The guest never takes the
 * device's interrupt; it sleeps in the idle call, which the VMM ends when a
 * frame arrives.
 */
#ifndef GUEST_DRIVERS_VIRTIO_NET_H
#define GUEST_DRIVERS_VIRTIO_NET_H

#include "drivers/virtio_mmio.h"

#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */
#define VIRTIO_NET_BUF_SIZE 2048
#define VIRTIO_NET_RX_BUFS 128
#define VIRTIO_NET_TX_BUFS 64
#define VIRTIO_NET_MAX_FRAME (VIRTIO_NET_BUF_SIZE - VIRTIO_NET_HDR_LEN)

struct virtio_net_stats {
	uint64_t rx_frames, tx_frames;
	uint64_t rx_bad;   /* completions too short to hold a header */
	uint64_t tx_full;  /* sends dropped: no free TX buffer */
};

struct virtio_net {
	struct virtio_dev dev;
	struct vq rx, tx;
	uint8_t mac[6];
	uint8_t *rx_bufs;    /* VIRTIO_NET_RX_BUFS buffers */
	uint8_t *tx_bufs;    /* VIRTIO_NET_TX_BUFS buffers */
	uint8_t *tx_free[VIRTIO_NET_TX_BUFS];
	int tx_nfree;
	uint8_t *rx_held;    /* buffer lent to the caller by the last poll */
	uint16_t rx_unkicked; /* RX buffers posted since the last kick */
	uint16_t tx_unkicked; /* frames queued since the last TX kick */
	struct virtio_net_stats stats;
};

/* Finds and starts the first virtio-net device; 0 or -1. */
int virtio_net_init(struct virtio_net *n);
/* The next received frame (Ethernet header first) and its length, or NULL.
 * The frame stays valid until the next call. */
const uint8_t *virtio_net_poll_rx(struct virtio_net *n, size_t *len);
/* Copies a frame out; 0, or -1 when it is too long or the TX ring is full. */
int virtio_net_send(struct virtio_net *n, const void *frame, size_t len);
/* Like virtio_net_send, but the device hears of the frame only at the next
 * virtio_net_kick_tx (or when the ring fills): each kick is a VM exit, so a
 * burst of frames should cost one. */
int virtio_net_queue(struct virtio_net *n, const void *frame, size_t len);
void virtio_net_kick_tx(struct virtio_net *n);
/* Sleeps up to timeout_us unless a received frame is already waiting. */
void virtio_net_idle(struct virtio_net *n, uint32_t timeout_us);

#endif
