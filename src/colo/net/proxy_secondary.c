/* The secondary's half of the COLO network path: mirror in, rewriter, output to the primary. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "colo/net/proxy_internal.h"
#include "util/log.h"
#include "vm/vm.h"

static void pending_drop(struct colo_net *n, int i)
{
	free(n->pending[i].frame);
	memmove(&n->pending[i], &n->pending[i + 1], (size_t)(n->npending - i - 1) * sizeof(n->pending[0]));
	n->npending--;
}

/* Hands waiting mirrored frames to the guest, oldest first, as far as it has buffers. */
static void pending_drain(struct colo_net *n)
{
	while (n->npending && virtio_net_inject_rx(n->nic, n->pending[0].frame, n->pending[0].len) == 0)
		pending_drop(n, 0);
}

static void pending_add(struct colo_net *n, uint64_t seq, const uint8_t *pkt, size_t len)
{
	uint8_t *copy;

	if (n->npending == COLO_NET_PENDING_MAX || !(copy = malloc(len))) {
		n->link.mirror_dropped++; /* the guests diverge; the comparator will notice */
		return;
	}
	memcpy(copy, pkt, len);
	n->pending[n->npending++] = (struct colo_net_pending){ seq, len, copy };
}

/* Our guest sent a frame: to the primary's comparator, or (after failover) to our TAP. */
static bool secondary_guest_tx(void *opaque, uint8_t *pkt, size_t len)
{
	struct colo_net *n = opaque;
	bool consumed;

	if (len <= VNET_HDR_LEN)
		return true;
	pthread_mutex_lock(&n->lock);
	guest_addrs_learn(&n->addrs, pkt + VNET_HDR_LEN, len - VNET_HDR_LEN);
	if (n->rw)
		colo_rewriter_outbound(n->rw, pkt + VNET_HDR_LEN, len - VNET_HDR_LEN);
	consumed = !n->failed_over;
	if (consumed && n->link_fd >= 0)
		colo_link_send(&n->writer, n->epoch, 0, pkt, len);
	pthread_mutex_unlock(&n->lock);
	return consumed;
}

/* After failover: frames from our own TAP still need their ACK numbers shifted. */
static void secondary_backend_rx(void *opaque, uint8_t *pkt, size_t len)
{
	struct colo_net *n = opaque;

	if (len <= VNET_HDR_LEN)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->rw)
		colo_rewriter_inbound(n->rw, pkt + VNET_HDR_LEN, len - VNET_HDR_LEN);
	pthread_mutex_unlock(&n->lock);
}

static void secondary_rx_space(void *opaque)
{
	struct colo_net *n = opaque;

	pthread_mutex_lock(&n->lock);
	pending_drain(n);
	pthread_mutex_unlock(&n->lock);
}

static void secondary_set_filter(struct colo_net *n)
{
	n->filter = (struct virtio_net_filter){ .guest_tx = secondary_guest_tx,
						.backend_rx = secondary_backend_rx,
						.rx_space = secondary_rx_space,
						.opaque = n };
	virtio_net_set_filter(n->nic, &n->filter);
}

int colo_net_secondary_start(struct colo_net *n)
{
	colo_net_secondary_free(n);
	colo_net_primary_free(n);
	n->rw = colo_rewriter_create();
	if (!n->rw)
		return -ENOMEM;
	n->failed_over = false;
	secondary_set_filter(n);
	return 0;
}

/* Alone again after a pair that began with connections from an earlier
 * takeover: only their translation stays between guest and TAP (io_lock held). */
void colo_net_translate_only(struct colo_net *n)
{
	n->failed_over = true;
	secondary_set_filter(n);
}

/* A mirrored frame: what the last checkpoint already contains is dropped. */
void colo_net_secondary_from_link(void *opaque, const struct colo_link_hdr *h, uint8_t *frame)
{
	struct colo_net *n = opaque;

	if (h->len <= VNET_HDR_LEN)
		return;
	vm_io_lock(n->vm);
	pthread_mutex_lock(&n->lock);
	if (h->seq > n->barrier && !n->failed_over) {
		if (n->rw)
			colo_rewriter_inbound(n->rw, frame + VNET_HDR_LEN, h->len - VNET_HDR_LEN);
		pending_add(n, h->seq, frame, h->len);
		pending_drain(n);
	}
	pthread_mutex_unlock(&n->lock);
	vm_io_unlock(n->vm);
}

/* The checkpoint is in: our guest is the primary's as of mirror position `position`. */
void colo_net_secondary_applied(struct colo_net *n, uint64_t position)
{
	vm_io_lock(n->vm);
	pthread_mutex_lock(&n->lock);
	n->barrier = position;
	while (n->npending && n->pending[0].seq <= position)
		pending_drop(n, 0);
	n->epoch++;
	if (n->rw)
		colo_rewriter_checkpoint(n->rw);
	pthread_mutex_unlock(&n->lock);
	vm_io_unlock(n->vm);
}

static void secondary_announce(struct colo_net *n)
{
	uint8_t pkt[VNET_HDR_LEN + ANNOUNCE_FRAME_MAX];
	const uint8_t *mac = virtio_net_mac(n->nic);

	memset(pkt, 0, VNET_HDR_LEN);
	for (int i = 0; i < n->addrs.n; i++)
		virtio_net_backend_send(n->nic, pkt,
					VNET_HDR_LEN + announce_frame(pkt + VNET_HDR_LEN, mac, &n->addrs.addr[i]));
}

/* We are the VM now: our TAP is attached; tell the LAN where the guest lives. */
void colo_net_secondary_failover(struct colo_net *n)
{
	vm_io_lock(n->vm);
	pthread_mutex_lock(&n->lock);
	n->failed_over = true;
	if (n->rw)
		colo_rewriter_failover(n->rw);
	pending_drain(n);
	secondary_announce(n);
	pthread_mutex_unlock(&n->lock);
	vm_io_unlock(n->vm);
}

void colo_net_secondary_free(struct colo_net *n)
{
	while (n->npending)
		pending_drop(n, 0);
	if (n->rw)
		colo_rewriter_destroy(n->rw);
	n->rw = NULL;
}
