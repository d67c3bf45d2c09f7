#include "dev/virtio_net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "util/evloop.h"
#include "util/log.h"
#include "vm/vm.h"

#define VIRTIO_NET_STATE_VERSION 1
/* struct virtio_net_config: mac[6], status, max_virtqueue_pairs. */
#define VIRTIO_NET_CONFIG_SIZE 10
/* Offset of num_buffers in virtio_net_hdr_v1. */
#define VNET_HDR_NUM_BUFFERS 10

static struct virtio_net *to_net(struct virtio_mmio *t) { return (struct virtio_net *)t; }

/* ---- RX ------------------------------------------------------------------ */

static void net_on_backend(void *opaque, uint32_t events);

static void net_unwatch_backend(struct virtio_net *n)
{
	if (n->rx_watch_fd >= 0)
		evloop_del(n->mmio.vm->loop, n->rx_watch_fd);
	n->rx_watch_fd = -1;
}

/* Registered with no events: net_rx_watch_update turns EPOLLIN on and off. */
static void net_watch_backend(struct virtio_net *n, int fd)
{
	struct vm *vm = n->mmio.vm;

	if (fd < 0 || !vm->loop)
		return;
	if (evloop_add(vm->loop, fd, 0, net_on_backend, n) < 0) {
		log_warn("%s: cannot watch backend %s; no receive", n->mmio.name, n->backend->name);
		n->rx_dead_fd = fd;
		return;
	}
	n->rx_watch_fd = fd;
	n->rx_events = 0;
}

/* Watch the backend's current rx_fd, and only while a frame could go somewhere. */
static void net_rx_watch_update(struct virtio_net *n)
{
	int fd = net_backend_rx_fd(n->backend);
	uint32_t want = 0;

	if (fd == n->rx_dead_fd)
		fd = -1;
	if (fd != n->rx_watch_fd) {
		net_unwatch_backend(n);
		net_watch_backend(n, fd);
	}
	if (n->rx_watch_fd < 0)
		return;
	if (virtio_mmio_is_live(&n->mmio) && !n->paused && !n->rx_starved)
		want = EPOLLIN;
	if (want != n->rx_events && evloop_modify(n->mmio.vm->loop, n->rx_watch_fd, want) == 0)
		n->rx_events = want;
}

/* Delivers the packet in rx_buf into the next RX chain. Returns 1 when the
 * chain went back to the driver, -1 if the ring is broken. */
static int net_rx_deliver(struct virtio_net *n, size_t len)
{
	struct virtq *q = &n->mmio.queues[VIRTIO_NET_RXQ];
	int ret = virtq_pop_avail(q, &n->chain);

	if (ret <= 0) /* counted as available a moment ago: the ring is broken */
		return -1;
	if (len > n->chain.writable_len) {
		/* Too big for this chain: drop the frame and hand the chain back empty.
		 * Keeping it would wedge RX: it stays first in line for every frame. */
		n->stats.rx_dropped++;
		return virtq_push_used(q, n->chain.head, 0) < 0 ? -1 : 1;
	}
	/* One buffer per packet without VIRTIO_NET_F_MRG_RXBUF; the TAP leaves
	 * this field of the header untouched. */
	n->rx_buf[VNET_HDR_NUM_BUFFERS] = 1;
	n->rx_buf[VNET_HDR_NUM_BUFFERS + 1] = 0;
	if (virtq_chain_write(&n->chain, 0, n->rx_buf, len) ||
	    virtq_push_used(q, n->chain.head, (uint32_t)len))
		return -1;
	n->stats.rx_frames++;
	n->stats.rx_bytes += len - NET_VNET_HDR_BYTES;
	return 1;
}

/* Is there an RX chain? If not, ask the driver for a kick and mark RX starved
 * (the caller then stops watching the backend). */
static int net_rx_have_buffer(struct virtio_net *n)
{
	struct virtq *q = &n->mmio.queues[VIRTIO_NET_RXQ];
	int avail = virtq_avail_count(q);

	if (avail == 0 && virtq_enable_notify(q))
		avail = virtq_avail_count(q);
	if (avail == 0)
		n->rx_starved = 1;
	return avail;
}

/* Moves up to a budget of packets; returns why the ring is broken, or NULL. */
static const char *net_rx_move(struct virtio_net *n, bool *pushed)
{
	for (int budget = VIRTIO_NET_RX_BUDGET; budget > 0; budget--) {
		int avail = net_rx_have_buffer(n);
		ssize_t len;

		if (avail < 0)
			return "RX avail ring index out of range";
		if (avail == 0)
			return NULL;
		len = net_backend_recv(n->backend, n->rx_buf, sizeof(n->rx_buf));
		if (len == -EAGAIN)
			return NULL;
		if (len < NET_VNET_HDR_BYTES) { /* an error, or a truncated packet */
			n->stats.rx_dropped++;
			continue;
		}
		if (net_rx_deliver(n, (size_t)len) < 0)
			return "malformed RX descriptor chain";
		*pushed = true;
	}
	return NULL;
}

void virtio_net_rx_poll(struct virtio_net *n)
{
	bool pushed = false;
	const char *broken = NULL;

	if (virtio_mmio_is_live(&n->mmio) && !n->paused)
		broken = net_rx_move(n, &pushed);
	if (pushed)
		virtio_mmio_notify_used(&n->mmio, VIRTIO_NET_RXQ);
	if (broken)
		virtio_mmio_device_error(&n->mmio, broken);
	net_rx_watch_update(n);
}

static void net_on_backend(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	struct vm *vm = n->mmio.vm;

	vm_io_lock(vm);
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* Reported even when not asked for: the TAP went away. Stop
		 * watching rather than spin; the guest just stops receiving. */
		log_warn("%s: backend %s failed; no more receive", n->mmio.name, n->backend->name);
		n->rx_dead_fd = n->rx_watch_fd;
		net_unwatch_backend(n);
	} else {
		virtio_net_rx_poll(n);
	}
	vm_io_unlock(vm);
}

/* The backend's port: it has frames without an fd event, or a new rx_fd. */
static void net_on_rx_changed(void *opaque)
{
	virtio_net_rx_poll(opaque);
}

static void net_set_backend(struct virtio_net *n, struct net_backend *be)
{
	net_unwatch_backend(n);
	n->backend = be;
	be->port = (struct net_port){ .rx_changed = net_on_rx_changed, .opaque = n, .mac = n->mac };
	net_rx_watch_update(n);
}

void virtio_net_wrap_backend(struct virtio_net *n, struct net_backend *wrapper)
{
	net_unwatch_backend(n); /* before the inner backend loses its port */
	net_backend_wrap(wrapper, n->backend);
	net_set_backend(n, wrapper);
}

struct net_backend *virtio_net_unwrap_backend(struct virtio_net *n)
{
	struct net_backend *wrapper = n->backend, *inner = net_backend_unwrap(wrapper);

	if (!inner)
		return NULL;
	net_set_backend(n, inner);
	return wrapper;
}

/* ---- TX ------------------------------------------------------------------ */

static void net_tx_one(struct virtio_net *n, const struct virtq_chain *c)
{
	uint64_t len = c->readable_len;

	if (len < NET_VNET_HDR_BYTES || len > NET_MAX_PACKET || virtq_chain_read(c, 0, n->tx_buf, len)) {
		n->stats.tx_dropped++;
		return;
	}
	if (net_backend_send(n->backend, n->tx_buf, len) < 0) {
		n->stats.tx_dropped++;
		return;
	}
	n->stats.tx_frames++;
	n->stats.tx_bytes += len - NET_VNET_HDR_BYTES;
}

static const char *net_tx_drain(struct virtio_net *n, bool *pushed)
{
	struct virtq *q = &n->mmio.queues[VIRTIO_NET_TXQ];
	int ret;

	do {
		while ((ret = virtq_pop_avail(q, &n->chain)) > 0) {
			net_tx_one(n, &n->chain);
			if (virtq_push_used(q, n->chain.head, 0) < 0)
				return "used ring not writable";
			*pushed = true;
		}
		if (ret < 0)
			return "malformed TX descriptor chain or avail ring";
	} while (virtq_enable_notify(q));
	return NULL;
}

/* ---- virtio device ops --------------------------------------------------- */

static void net_notify(struct virtio_mmio *t, uint16_t qi)
{
	struct virtio_net *n = to_net(t);
	bool pushed = false;
	const char *broken;

	if (qi == VIRTIO_NET_RXQ) {
		/* New RX buffers: the event loop picks up waiting frames. */
		n->rx_starved = 0;
		net_rx_watch_update(n);
		return;
	}
	if (qi != VIRTIO_NET_TXQ)
		return;
	broken = net_tx_drain(n, &pushed);
	if (pushed)
		virtio_mmio_notify_used(t, VIRTIO_NET_TXQ);
	if (broken)
		virtio_mmio_device_error(t, broken);
}

static int net_activate(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	if (!t->queues[VIRTIO_NET_RXQ].ready || !t->queues[VIRTIO_NET_TXQ].ready)
		return -EINVAL;
	n->rx_starved = 0; /* the transport's post-activation kick re-arms RX */
	return 0;
}

static void net_reset(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	n->rx_starved = 0;
	net_rx_watch_update(n); /* not live any more: stops watching */
}

static void net_pause(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	n->paused = 1;
	net_rx_watch_update(n);
}

static void net_resume(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	n->paused = 0;
	n->rx_starved = 0; /* look again: buffers may have been posted meanwhile */
	net_rx_watch_update(n);
}

static void net_config_read(struct virtio_mmio *t, uint32_t off, void *data, uint32_t len)
{
	struct virtio_net *n = to_net(t);
	uint8_t cfg[VIRTIO_NET_CONFIG_SIZE];

	memcpy(cfg, n->mac, 6);
	cfg[6] = (uint8_t)n->link_status;
	cfg[7] = (uint8_t)(n->link_status >> 8);
	cfg[8] = 1; /* max_virtqueue_pairs */
	cfg[9] = 0;
	memcpy(data, cfg + off, len);
}

/* Device record: u32 version, mac[6], u16 link status. The MAC is guest-visible
 * state: after a load the guest keeps the address it has been using. */
static int net_save(struct virtio_mmio *t, struct sbuf *out)
{
	struct virtio_net *n = to_net(t);

	sbuf_put_u32(out, VIRTIO_NET_STATE_VERSION);
	sbuf_put(out, n->mac, 6);
	sbuf_put_u16(out, n->link_status);
	return 0;
}

static int net_load(struct virtio_mmio *t, struct sbuf_reader *in)
{
	struct virtio_net *n = to_net(t);
	uint8_t mac[6];
	uint32_t version = sbuf_get_u32(in);
	uint16_t link;

	sbuf_get(in, mac, 6);
	link = sbuf_get_u16(in);
	if (sbuf_reader_error(in) || sbuf_remaining(in) || version != VIRTIO_NET_STATE_VERSION ||
	    (link & ~VIRTIO_NET_S_LINK_UP) || (mac[0] & 1))
		return -EINVAL;
	memcpy(n->mac, mac, 6);
	n->link_status = link;
	return 0;
}

static void net_post_load(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	n->rx_starved = 0;
	net_rx_watch_update(n);
}

/* Detached, the device keeps working: the backend drops TX and has no RX. */
static void net_detach_backend(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	net_unwatch_backend(n); /* before the fd closes */
	net_backend_detach(n->backend);
	n->rx_dead_fd = -1; /* closed: the number may come back for a new fd */
	net_rx_watch_update(n);
}

static int net_attach_backend(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);
	int ret = net_backend_attach(n->backend);

	net_rx_watch_update(n);
	return ret;
}

static void net_destroy(struct virtio_mmio *t)
{
	struct virtio_net *n = to_net(t);

	net_unwatch_backend(n);
	net_backend_close(n->backend);
	free(n);
}

static const struct virtio_dev_ops virtio_net_ops = {
	.kind = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.nqueues = 2,
	.queue_max = VIRTIO_NET_QUEUE_SIZE,
	.config_size = VIRTIO_NET_CONFIG_SIZE,
	.config_read = net_config_read,
	.activate = net_activate,
	.notify = net_notify,
	.reset = net_reset,
	.pause = net_pause,
	.resume = net_resume,
	.save = net_save,
	.load = net_load,
	.post_load = net_post_load,
	.detach_backend = net_detach_backend,
	.attach_backend = net_attach_backend,
	.destroy = net_destroy,
};

int virtio_net_create(struct vm *vm, struct net_backend *be, const uint8_t mac[6],
		      struct device **out)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint64_t features = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS |
			    1ULL << VIRTIO_RING_F_INDIRECT_DESC | 1ULL << VIRTIO_RING_F_EVENT_IDX;
	int ret;

	if (!n) {
		net_backend_close(be);
		return -ENOMEM;
	}
	virtio_mmio_init(&n->mmio, vm, &virtio_net_ops, features);
	if (mac) {
		memcpy(n->mac, mac, 6);
	} else {
		static const uint8_t default_mac[6] = { 0x02, 0x4c, 0x4b, 0x53, 0x54, 0x00 };

		memcpy(n->mac, default_mac, 6);
		n->mac[5] = (uint8_t)n->mmio.index;
	}
	n->link_status = VIRTIO_NET_S_LINK_UP;
	n->rx_watch_fd = n->rx_dead_fd = -1;
	net_set_backend(n, be);
	ret = virtio_mmio_attach(&n->mmio);
	if (ret < 0) {
		net_destroy(&n->mmio);
		return ret;
	}
	*out = &n->mmio.dev;
	return 0;
}
