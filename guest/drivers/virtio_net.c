/*
 * virtio-net, queue 0 RX and queue 1 TX. Each buffer is one descriptor
 * holding the 12-byte virtio_net_hdr_v1 followed by the frame (no
 * MRG_RXBUF, no offloads, so every frame fits one 2 KiB buffer).
 */
#include "drivers/virtio_net.h"

#define RX_QUEUE 0
#define TX_QUEUE 1
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define NET_CONFIG_MAC 0
/* Returned RX buffers are announced in batches: each kick is a VM exit. */
#define RX_KICK_BATCH 32

static int rx_post(struct virtio_net *n, uint8_t *buf)
{
	struct vq_seg seg = { buf, VIRTIO_NET_BUF_SIZE };

	return vq_add_chain(&n->rx, &seg, 0, 1, buf);
}

static int rx_fill(struct virtio_net *n)
{
	int count = VIRTIO_NET_RX_BUFS < n->rx.size ? VIRTIO_NET_RX_BUFS : n->rx.size;

	for (int i = 0; i < count; i++)
		if (rx_post(n, n->rx_bufs + (size_t)i * VIRTIO_NET_BUF_SIZE) < 0)
			return -1;
	return 0;
}

static void tx_pool_init(struct virtio_net *n)
{
	for (int i = 0; i < VIRTIO_NET_TX_BUFS; i++)
		n->tx_free[i] = n->tx_bufs + (size_t)i * VIRTIO_NET_BUF_SIZE;
	n->tx_nfree = VIRTIO_NET_TX_BUFS;
}

static void read_mac(struct virtio_net *n)
{
	for (uint32_t i = 0; i < 6; i++)
		n->mac[i] = virtio_config_read8(&n->dev, NET_CONFIG_MAC + i);
}

static int setup_queues(struct virtio_net *n)
{
	if (virtio_setup_vq(&n->dev, &n->rx, RX_QUEUE, VIRTIO_NET_RX_BUFS) < 0 ||
	    virtio_setup_vq(&n->dev, &n->tx, TX_QUEUE, VIRTIO_NET_TX_BUFS) < 0)
		return -1;
	/* We poll: interrupts would only cost emulated CPL0 entries. */
	n->rx.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	n->tx.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	return 0;
}

int virtio_net_init(struct virtio_net *n)
{
	*n = (struct virtio_net){ 0 };
	if (virtio_find(VIRTIO_ID_NET, &n->dev) < 0 || virtio_negotiate(&n->dev, 1UL << VIRTIO_NET_F_MAC) < 0)
		return -1;
	if (!virtio_has(&n->dev, VIRTIO_NET_F_MAC) || setup_queues(n) < 0) {
		virtio_fail(&n->dev);
		return -1;
	}
	read_mac(n);
	n->rx_bufs = page_alloc(VIRTIO_NET_RX_BUFS * VIRTIO_NET_BUF_SIZE / 4096);
	n->tx_bufs = page_alloc(VIRTIO_NET_TX_BUFS * VIRTIO_NET_BUF_SIZE / 4096);
	tx_pool_init(n);
	/* RX buffers may be posted before DRIVER_OK (spec 3.1.1 step 7 comes after). */
	if (rx_fill(n) < 0) {
		virtio_fail(&n->dev);
		return -1;
	}
	virtio_driver_ok(&n->dev);
	vq_kick(&n->rx);
	return 0;
}

static void rx_kick(struct virtio_net *n)
{
	if (!n->rx_unkicked)
		return;
	n->rx_unkicked = 0;
	vq_kick(&n->rx);
}

static void rx_repost(struct virtio_net *n, uint8_t *buf)
{
	rx_post(n, buf);
	if (++n->rx_unkicked >= RX_KICK_BATCH)
		rx_kick(n);
}

/* Gives the buffer lent out by the previous poll back to the device. */
static void rx_recycle(struct virtio_net *n)
{
	if (!n->rx_held)
		return;
	rx_repost(n, n->rx_held);
	n->rx_held = NULL;
}

const uint8_t *virtio_net_poll_rx(struct virtio_net *n, size_t *len)
{
	uint8_t *buf;
	uint32_t used_len;

	rx_recycle(n);
	while ((buf = vq_get_used(&n->rx, &used_len)) != NULL) {
		/* The device's length is checked, not trusted. */
		if (used_len < VIRTIO_NET_HDR_LEN || used_len > VIRTIO_NET_BUF_SIZE) {
			n->stats.rx_bad++;
			rx_repost(n, buf);
			continue;
		}
		n->rx_held = buf;
		n->stats.rx_frames++;
		*len = used_len - VIRTIO_NET_HDR_LEN;
		return buf + VIRTIO_NET_HDR_LEN;
	}
	/* Caught up: a device that ran out of buffers must hear about them now. */
	rx_kick(n);
	return NULL;
}

static void tx_reclaim(struct virtio_net *n)
{
	uint8_t *buf;

	while ((buf = vq_get_used(&n->tx, NULL)) != NULL)
		n->tx_free[n->tx_nfree++] = buf;
}

void virtio_net_kick_tx(struct virtio_net *n)
{
	if (!n->tx_unkicked)
		return;
	n->tx_unkicked = 0;
	vq_kick(&n->tx);
}

int virtio_net_queue(struct virtio_net *n, const void *frame, size_t len)
{
	struct vq_seg seg;
	uint8_t *buf;

	if (len > VIRTIO_NET_MAX_FRAME) {
		n->stats.tx_full++;
		return -1;
	}
	tx_reclaim(n);
	if (n->tx_nfree == 0 && n->tx_unkicked) {
		/* The device completes TX during the kick: buffers come back now. */
		virtio_net_kick_tx(n);
		tx_reclaim(n);
	}
	if (n->tx_nfree == 0) {
		n->stats.tx_full++;
		return -1;
	}
	buf = n->tx_free[--n->tx_nfree];
	memset(buf, 0, VIRTIO_NET_HDR_LEN); /* no checksum offload, no GSO */
	memcpy(buf + VIRTIO_NET_HDR_LEN, frame, len);
	seg = (struct vq_seg){ buf, (uint32_t)(VIRTIO_NET_HDR_LEN + len) };
	if (vq_add_chain(&n->tx, &seg, 1, 0, buf) < 0) {
		n->tx_free[n->tx_nfree++] = buf;
		n->stats.tx_full++;
		return -1;
	}
	n->tx_unkicked++;
	n->stats.tx_frames++;
	return 0;
}

int virtio_net_send(struct virtio_net *n, const void *frame, size_t len)
{
	int ret = virtio_net_queue(n, frame, len);

	virtio_net_kick_tx(n);
	return ret;
}

void virtio_net_idle(struct virtio_net *n, uint32_t timeout_us)
{
	rx_recycle(n);
	rx_kick(n);
	virtio_net_kick_tx(n); /* nothing queued may wait through a sleep */
	if (!vq_has_used(&n->rx))
		guest_idle(timeout_us);
	tx_reclaim(n);
}
