/*
 * A network backend: where virtio-net's frames go and come from (a TAP, none,
 * or a wrapper in front of one such as the COLO proxy).
 *
 * Frames cross this interface with the 12-byte virtio_net_hdr_v1 in front.
 * Every op is called with the VM's io_lock held (the device's TX on a vCPU,
 * its RX on the event loop), and none may block: a backend that cannot take or
 * give a frame now says so (-EAGAIN).
 *
 * RX is pulled: the device calls recv while the guest has receive buffers and
 * watches rx_fd only meanwhile. A backend whose frames arrive some other way
 * (or whose rx_fd changes outside a recv) tells the device through its port.
 */
#ifndef LOCKSTEP_NET_BACKEND_H
#define LOCKSTEP_NET_BACKEND_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NET_VNET_HDR_BYTES 12
/* Largest frame we pass either way, header included. */
#define NET_MAX_PACKET 65550

struct net_backend;

/* What the device gives the backend in front of it. */
struct net_port {
	/* Frames are there, or rx_fd changed: the device re-reads rx_fd and polls
	 * RX. Call with io_lock held and none of the backend's own locks. */
	void (*rx_changed)(void *opaque);
	void *opaque;
	const uint8_t *mac; /* the guest's MAC address as of now (announcements) */
};

struct net_backend_ops {
	/* One frame from the guest: 0, or -errno (the frame is dropped). pkt is
	 * the caller's scratch: a wrapper may rewrite the frame in place. */
	int (*send)(struct net_backend *be, void *pkt, size_t len);
	/* The next frame for the guest into buf: its length, -EAGAIN when none
	 * is pending, or another -errno (that frame is lost). */
	ssize_t (*recv)(struct net_backend *be, void *buf, size_t cap);
	/* The fd whose readability means recv may have something, or -1. */
	int (*rx_fd)(struct net_backend *be);
	/* Live-migration handover: open / close the host side (a wrapper forwards
	 * to its inner backend). Detached, send fails and recv has nothing. */
	int (*attach)(struct net_backend *be);
	void (*detach)(struct net_backend *be);
	/* Releases what the backend holds (a wrapper: its inner backend too). */
	void (*close)(struct net_backend *be);
};

struct net_backend {
	const struct net_backend_ops *ops;
	struct net_port port;        /* set by whoever has this backend in front */
	struct net_backend *inner;   /* a wrapper's: the backend it fronts (owned) */
	char name[24];               /* for messages: "tap0", "none" */
};

static inline int net_backend_send(struct net_backend *be, void *pkt, size_t len)
{
	return be->ops->send(be, pkt, len);
}

static inline ssize_t net_backend_recv(struct net_backend *be, void *buf, size_t cap)
{
	return be->ops->recv(be, buf, cap);
}

static inline int net_backend_rx_fd(struct net_backend *be)
{
	return be->ops->rx_fd ? be->ops->rx_fd(be) : -1;
}

static inline int net_backend_attach(struct net_backend *be)
{
	return be->ops->attach ? be->ops->attach(be) : 0;
}

static inline void net_backend_detach(struct net_backend *be)
{
	if (be->ops->detach)
		be->ops->detach(be);
}

static inline void net_backend_close(struct net_backend *be)
{
	if (be)
		be->ops->close(be);
}

/* Puts wrapper in front of inner, which it owns from now on. */
static inline void net_backend_wrap(struct net_backend *wrapper, struct net_backend *inner)
{
	wrapper->inner = inner;
	inner->port = (struct net_port){ 0 };
}

/* Takes the inner backend back from wrapper (NULL if it has none). */
static inline struct net_backend *net_backend_unwrap(struct net_backend *wrapper)
{
	struct net_backend *inner = wrapper->inner;

	wrapper->inner = NULL;
	return inner;
}

/* For a backend: tell the device in front (io_lock held, own locks released). */
static inline void net_backend_rx_changed(struct net_backend *be)
{
	if (be->port.rx_changed)
		be->port.rx_changed(be->port.opaque);
}

#endif
