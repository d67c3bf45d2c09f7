/*
 * virtio-net (device id 1) over virtio-mmio: queue 0 receives, queue 1
 * transmits. Packets carry the 12-byte virtio_net_hdr_v1, passed to and from
 * the backend (net/tap.h) unchanged; no offloads, no control queue.
 *
 * TX runs on the vCPU thread when the guest kicks queue 1. RX runs on the
 * event-loop thread when the TAP is readable, and only while the guest has
 * posted receive buffers: with the RX ring empty the TAP is not watched at
 * all until the guest kicks queue 0, so nothing spins and frames wait in the
 * TAP's queue rather than being read and dropped.
 */
#ifndef LOCKSTEP_DEV_VIRTIO_NET_H
#define LOCKSTEP_DEV_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/virtio_mmio.h"
#include "net/tap.h"

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

/*
 * Where a COLO network proxy plugs into the NIC (src/colo/net/proxy.c). Frames
 * carry the 12-byte virtio-net header. All callbacks run with vm->io_lock held.
 */
struct virtio_net_filter {
	/* A frame the guest sent: true if consumed (then it does not reach the backend). */
	bool (*guest_tx)(void *opaque, uint8_t *pkt, size_t len);
	/* A frame read from the backend, just before the guest gets it (may be edited in place). */
	void (*backend_rx)(void *opaque, uint8_t *pkt, size_t len);
	/* The guest posted receive buffers (virtio_net_inject_rx may succeed again). */
	void (*rx_space)(void *opaque);
	void *opaque;
};

struct virtio_net {
	struct virtio_mmio mmio; /* first: the transport finds us through it */
	struct net_backend backend;
	char tap_ifname[16]; /* "" for the none backend */
	uint8_t mac[6];
	uint16_t link_status;
	int rx_watched;      /* the backend fd is registered with the event loop */
	uint32_t rx_events;  /* what it is registered for: EPOLLIN, or 0 */
	int rx_starved;      /* RX ring was empty: wait for the guest to kick queue 0 */
	int paused;
	struct virtio_net_stats stats;
	const struct virtio_net_filter *filter; /* NULL: frames go straight between guest and backend */
	/* Scratch, serialised by io_lock. */
	struct virtq_chain chain;
	uint8_t rx_buf[NET_MAX_PACKET];
	uint8_t tx_buf[NET_MAX_PACKET];
};

/* --net tap=IFNAME[,mac=MAC] (tap_ifname = IFNAME) or --net none (tap_ifname =
 * NULL). mac NULL picks 02:4c:4b:53:54:<N>. Opens the backend (-errno; the
 * caller prints "net tap=IFNAME: <strerror>"), maps a virtio-mmio window and
 * adds the device ("virtio-net<N>") to the VM, which owns it. */
int virtio_net_create(struct vm *vm, const char *tap_ifname, const uint8_t mac[6],
		      struct device **out);

/* Plugs a proxy in (NULL: out). Call with vm->io_lock held. */
void virtio_net_set_filter(struct virtio_net *n, const struct virtio_net_filter *f);
/* Sends a frame (with its vnet header) out through the backend. */
int virtio_net_backend_send(struct virtio_net *n, const uint8_t *pkt, size_t len);
/* Hands a frame (with its vnet header) to the guest as if it had been received:
 * -ENOBUFS when the guest has no receive buffer posted. io_lock held. */
int virtio_net_inject_rx(struct virtio_net *n, const uint8_t *pkt, size_t len);
/* The guest's MAC address. */
const uint8_t *virtio_net_mac(const struct virtio_net *n);

/* Moves received frames into the guest's RX buffers, as far as both have some.
 * The event-loop callback calls it with io_lock held; exposed for tests. */
void virtio_net_rx_poll(struct virtio_net *n);

#endif
