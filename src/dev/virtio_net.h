/*
 * virtio-net (device id 1) over virtio-mmio: queue 0 receives, queue 1
 * transmits. Packets carry the 12-byte virtio_net_hdr_v1, passed to and from
 * the backend (net/backend.h) unchanged; no offloads, no control queue.
 *
 * TX runs on the vCPU thread when the guest kicks queue 1. RX runs on the
 * event-loop thread when the backend's rx_fd is readable (or the backend says
 * it has frames), and only while the guest has posted receive buffers: with
 * the RX ring empty the backend is not watched at all until the guest kicks
 * queue 0, so nothing spins and frames wait in the backend (the TAP's queue)
 * rather than being read and dropped.
 */
#ifndef LOCKSTEP_DEV_VIRTIO_NET_H
#define LOCKSTEP_DEV_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/virtio_mmio.h"
#include "net/backend.h"

#define VIRTIO_ID_NET 1

#define VIRTIO_NET_F_MAC    5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_QUEUE_SIZE 256
/* Frames moved per event-loop callback before giving other fds a turn. */
#define VIRTIO_NET_RX_BUDGET 64

struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes, rx_dropped; /* bytes: frames without the header */
	uint64_t tx_frames, tx_bytes, tx_dropped;
};

struct virtio_net {
	struct virtio_mmio mmio; /* first: the transport finds us through it */
	struct net_backend *backend; /* owned; maybe a wrapper in front of the host's */
	uint8_t mac[6];
	uint16_t link_status;
	int rx_watch_fd;     /* the backend fd registered with the event loop, or -1 */
	int rx_dead_fd;      /* an rx_fd that reported an error: not watched again */
	uint32_t rx_events;  /* what it is registered for: EPOLLIN, or 0 */
	int rx_starved;      /* RX ring was empty: wait for the guest to kick queue 0 */
	int paused;
	struct virtio_net_stats stats;
	/* Scratch, serialised by io_lock. */
	struct virtq_chain chain;
	uint8_t rx_buf[NET_MAX_PACKET];
	uint8_t tx_buf[NET_MAX_PACKET];
};

/* Adds a virtio-net ("virtio-net<N>") on backend be, which it owns from now
 * on (closed on failure too). mac NULL picks 02:4c:4b:53:54:<N>. Maps a
 * virtio-mmio window and adds the device to the VM, which owns it. -errno. */
int virtio_net_create(struct vm *vm, struct net_backend *be, const uint8_t mac[6],
		      struct device **out);

/* Puts wrapper in front of the current backend, which the wrapper owns from
 * now on; unwrap gives it back (and returns the wrapper, or NULL when there is
 * none). io_lock held. */
void virtio_net_wrap_backend(struct virtio_net *n, struct net_backend *wrapper);
struct net_backend *virtio_net_unwrap_backend(struct virtio_net *n);

/* Moves received frames into the guest's RX buffers, as far as both have some.
 * The event-loop callback calls it with io_lock held; exposed for tests. */
void virtio_net_rx_poll(struct virtio_net *n);

#endif
