/* The secondary's half of the COLO network path: mirror in, rewriter, output to the primary. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "colo/net/proxy_internal.h"

/* ---- the mirror queue: the guest's receive queue while we are secondary ---- */

static struct colo_net_mirrored *rxq_at(struct colo_net *n, int i)
{
	return &n->rxq[(n->rxq_head + i) % COLO_NET_RXQ_MAX];
}

/* rx_event is readable exactly while the queue holds frames. */
static void rxq_quiet(struct colo_net *n)
{
	uint64_t count;

	if (read(n->rx_event, &count, sizeof(count)) < 0) {
		/* EAGAIN: it was not signalled */
	}
}

static void rxq_drop_head(struct colo_net *n)
{
	free(rxq_at(n, 0)->frame);
	n->rxq_head = (n->rxq_head + 1) % COLO_NET_RXQ_MAX;
	if (--n->rxq_len == 0)
		rxq_quiet(n);
}

static void rxq_push(struct colo_net *n, uint64_t seq, const uint8_t *pkt, size_t len)
{
	uint64_t one = 1;
	uint8_t *copy;

	if (n->rxq_len == COLO_NET_RXQ_MAX || !(copy = malloc(len))) {
		n->link.mirror_dropped++; /* the guests diverge; the comparator will notice */
		return;
	}
	memcpy(copy, pkt, len);
	*rxq_at(n, n->rxq_len) = (struct colo_net_mirrored){ seq, len, copy };
	if (n->rxq_len++ == 0 && write(n->rx_event, &one, sizeof(one)) < 0) {
		/* cannot fail: the counter stays far below its limit */
	}
}

/* The oldest mirrored frame, for the guest (lock held). */
ssize_t colo_net_rxq_pop(struct colo_net *n, uint8_t *buf, size_t cap)
{
	struct colo_net_mirrored *m;
	ssize_t len;

	if (!n->rxq_len)
		return -EAGAIN;
	m = rxq_at(n, 0);
	len = m->len <= cap ? (ssize_t)m->len : -EMSGSIZE;
	if (len > 0)
		memcpy(buf, m->frame, m->len);
	else
		n->link.mirror_dropped++;
	rxq_drop_head(n);
	return len;
}

/* ---- guest output, link input, checkpoint, failover ---- */

/* Our guest sent a frame: through the rewriter to the primary's comparator. */
int colo_net_secondary_send(struct colo_net *n, uint8_t *pkt, size_t len)
{
	if (len <= VNET_HDR_LEN) /* a header alone: nothing for the comparator */
		return 0;
	if (n->rw)
		colo_rewriter_outbound(n->rw, pkt + VNET_HDR_LEN, len - VNET_HDR_LEN);
	if (n->link_fd >= 0)
		colo_link_send(&n->writer, n->epoch, 0, pkt, len);
	return 0;
}

int colo_net_secondary_start(struct colo_net *n)
{
	colo_net_secondary_free(n);
	colo_net_primary_free(n);
	if (n->rw)
		colo_rewriter_destroy(n->rw);
	n->rw = colo_rewriter_create();
	if (!n->rw)
		return -ENOMEM;
	n->failed_over = false;
	return 0;
}

/* A mirrored frame: what the last checkpoint already contains is dropped. */
void colo_net_secondary_from_link(void *opaque, const struct colo_link_hdr *h, uint8_t *frame)
{
	struct colo_net *n = opaque;

	if (h->len <= VNET_HDR_LEN)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->role == COLO_MODE_SECONDARY && h->seq > n->barrier) {
		if (n->rw)
			colo_rewriter_inbound(n->rw, frame + VNET_HDR_LEN, h->len - VNET_HDR_LEN);
		rxq_push(n, h->seq, frame, h->len);
	}
	pthread_mutex_unlock(&n->lock);
}

/* The checkpoint is in: our guest is the primary's as of mirror position `position`. */
void colo_net_secondary_applied(struct colo_net *n, uint64_t position)
{
	pthread_mutex_lock(&n->lock);
	n->barrier = position;
	while (n->rxq_len && rxq_at(n, 0)->seq <= position)
		rxq_drop_head(n);
	n->epoch++;
	if (n->rw)
		colo_rewriter_checkpoint(n->rw);
	pthread_mutex_unlock(&n->lock);
}

static void secondary_announce(struct colo_net *n)
{
	uint8_t pkt[VNET_HDR_LEN + ANNOUNCE_FRAME_MAX];

	if (!n->be.port.mac)
		return;
	memset(pkt, 0, VNET_HDR_LEN);
	for (int i = 0; i < n->addrs.n; i++)
		net_backend_send(n->be.inner, pkt,
				 VNET_HDR_LEN + announce_frame(pkt + VNET_HDR_LEN, n->be.port.mac,
							       &n->addrs.addr[i]));
}

/* We are the VM now: our TAP is attached; tell the LAN where the guest lives.
 * Mirrored frames still queued reach the guest before the TAP's. */
void colo_net_secondary_failover(struct colo_net *n)
{
	n->role = COLO_MODE_NONE;
	n->failed_over = true;
	if (n->rw)
		colo_rewriter_failover(n->rw);
	secondary_announce(n);
}

/* The mirror queue goes (the rewriter stays: see colo_net_primary_start). */
void colo_net_secondary_free(struct colo_net *n)
{
	while (n->rxq_len)
		rxq_drop_head(n);
}
