/* The primary's half of the COLO network path: mirror, comparator, release (proxy.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "colo/net/proxy_internal.h"
#include "util/log.h"

/* Comparator output (lock held): a released frame goes to the TAP (with an empty vnet header). */
static void primary_release(void *opaque, const uint8_t *frame, size_t len)
{
	struct colo_net *n = opaque;
	uint8_t pkt[VNET_HDR_LEN + 65550];

	if (len > sizeof(pkt) - VNET_HDR_LEN)
		return;
	memset(pkt, 0, VNET_HDR_LEN);
	memcpy(pkt + VNET_HDR_LEN, frame, len);
	if (n->rw) /* connections that survived an earlier takeover: into their peers' numbers */
		colo_rewriter_outbound(n->rw, pkt + VNET_HDR_LEN, len);
	net_backend_send(n->be.inner, pkt, VNET_HDR_LEN + len);
}

static void primary_request_checkpoint(void *opaque, enum colo_checkpoint_reason reason)
{
	(void)reason; /* counted by the comparator's statistics */
	struct colo_net *n = opaque;

	colo_request_checkpoint(n->colo, COLO_REASON_COMPARATOR);
}

static void primary_mismatch(void *opaque, const uint8_t *pframe, size_t plen, const uint8_t *sframe,
			     size_t slen)
{
	struct colo_net *n = opaque;
	uint64_t us = colo_net_now_ms() * 1000;

	if (!n->pcap)
		return;
	if ((pframe && pcap_write(n->pcap, pframe, plen, us) < 0) ||
	    (sframe && pcap_write(n->pcap, sframe, slen, us) < 0)) {
		log_warn("COLO mismatch capture %s: write failed; capture stopped", n->cfg.pcap_path);
		pcap_close(n->pcap);
		n->pcap = NULL;
	}
}

static const struct colo_compare_ops primary_compare_ops = {
	.output = primary_release,
	.checkpoint = primary_request_checkpoint,
	.mismatch = primary_mismatch,
};

/* The guest sent a frame: it waits in the comparator for the secondary's twin. */
int colo_net_primary_send(struct colo_net *n, uint8_t *pkt, size_t len)
{
	if (n->cmp && len > VNET_HDR_LEN) /* a header alone has nothing to compare */
		colo_compare_primary(n->cmp, pkt + VNET_HDR_LEN, len - VNET_HDR_LEN, colo_net_now_ms());
	return 0;
}

/* A frame from the TAP for our guest: the secondary's guest gets the same. */
ssize_t colo_net_primary_recv(struct colo_net *n, uint8_t *buf, size_t cap)
{
	ssize_t len = net_backend_recv(n->be.inner, buf, cap);
	uint64_t seq;

	if (len <= VNET_HDR_LEN)
		return len;
	seq = __atomic_add_fetch(&n->mirror_seq, 1, __ATOMIC_ACQ_REL);
	if (n->rw) /* both guests know those connections in our guest's numbers */
		colo_rewriter_inbound(n->rw, buf + VNET_HDR_LEN, (size_t)len - VNET_HDR_LEN);
	/* Never blocks: a frame the link cannot take is counted as dropped (the
	 * guests then differ and a checkpoint follows); a failed link ends COLO. */
	if (n->link_fd >= 0)
		colo_link_send(&n->writer, n->epoch, seq, buf, (size_t)len);
	return len;
}

/*
 * COLO starts with this VM as primary, maybe again in this process: a new
 * comparator and capture. A rewriter left from an earlier takeover (this VM
 * was a secondary) stays: its connections keep their translation to the wire.
 */
int colo_net_primary_start(struct colo_net *n)
{
	int err = 0;

	colo_net_primary_free(n);
	colo_net_secondary_free(n);
	if (n->rw && !n->failed_over) { /* a secondary that never took over: its rewriter is done */
		colo_rewriter_destroy(n->rw);
		n->rw = NULL;
	}
	n->cmp = colo_compare_create(&n->cfg.compare, &primary_compare_ops, n);
	if (!n->cmp)
		return -ENOMEM;
	if (n->cfg.pcap_path) {
		n->pcap = pcap_open(n->cfg.pcap_path, &err);
		if (!n->pcap)
			log_warn("COLO mismatch capture %s: %s", n->cfg.pcap_path, strerror(-err));
	}
	return 0;
}

static void early_hold(struct colo_net *n, const uint8_t *frame, size_t len)
{
	uint8_t *copy;

	if (n->nearly == COLO_NET_EARLY_MAX || !(copy = malloc(len))) {
		n->link.early_dropped++; /* its twin goes stale: a checkpoint follows */
		return;
	}
	memcpy(copy, frame, len);
	n->early[n->nearly++] = (struct colo_net_early){ len, copy };
	n->link.early_held++;
}

/* The epoch has switched (compare: the held frames are of this one now), or COLO ended. */
static void early_release(struct colo_net *n, bool compare)
{
	for (int i = 0; i < n->nearly; i++) {
		if (compare && n->cmp)
			colo_compare_secondary(n->cmp, n->early[i].frame, n->early[i].len, colo_net_now_ms());
		free(n->early[i].frame);
	}
	n->nearly = 0;
}

/*
 * The secondary's guest output (already in our sequence space). It resumes
 * once it has sent vmstate-received, on another socket: its first frames of
 * the new epoch may be here before our COLO thread has read that message.
 */
void colo_net_primary_from_link(void *opaque, const struct colo_link_hdr *h, uint8_t *frame)
{
	struct colo_net *n = opaque;

	if (h->len <= VNET_HDR_LEN)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->role != COLO_MODE_PRIMARY || !n->cmp)
		; /* failed over: nothing to compare with any more */
	else if (h->epoch == n->epoch)
		colo_compare_secondary(n->cmp, frame + VNET_HDR_LEN, h->len - VNET_HDR_LEN,
				       colo_net_now_ms());
	else if (h->epoch == n->epoch + 1)
		early_hold(n, frame + VNET_HDR_LEN, h->len - VNET_HDR_LEN);
	else
		n->link.stale_dropped++;
	pthread_mutex_unlock(&n->lock);
}

/* vmstate-received: the secondary holds the state behind every held frame. */
void colo_net_primary_committed(struct colo_net *n)
{
	pthread_mutex_lock(&n->lock);
	n->epoch++;
	if (n->cmp)
		colo_compare_checkpoint(n->cmp);
	early_release(n, true);
	pthread_mutex_unlock(&n->lock);
}

/* Alone again: release what is held; the guest talks to the TAP (through the
 * rewriter if connections from an earlier takeover exist). */
void colo_net_primary_failover(struct colo_net *n)
{
	n->role = COLO_MODE_NONE;
	if (n->cmp)
		colo_compare_flush(n->cmp);
	early_release(n, false);
}

void colo_net_primary_free(struct colo_net *n)
{
	early_release(n, false);
	if (n->cmp)
		colo_compare_destroy(n->cmp);
	n->cmp = NULL;
	if (n->pcap)
		pcap_close(n->pcap);
	n->pcap = NULL;
}
