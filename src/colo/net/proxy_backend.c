/*
 * The COLO proxy as the NIC's backend, in front of the TAP (be.inner). What a
 * frame does depends on the role:
 *
 *   NONE       guest <-> TAP, with the rewriter of an earlier takeover if any
 *   PRIMARY    send: to the comparator; recv: the TAP's frame, mirrored to the link
 *   SECONDARY  send: rewriter, then the link; recv: the mirror (rxq)
 */
#include <errno.h>

#include "colo/net/proxy_internal.h"

static struct colo_net *to_proxy(struct net_backend *be) { return (struct colo_net *)be; }

static int pass_send(struct colo_net *n, uint8_t *pkt, size_t len)
{
	if (n->rw && len > VNET_HDR_LEN) /* into the numbers the peers of those connections know */
		colo_rewriter_outbound(n->rw, pkt + VNET_HDR_LEN, len - VNET_HDR_LEN);
	return net_backend_send(n->be.inner, pkt, len);
}

/* After a takeover, mirrored frames the guest had no room for come first. */
static ssize_t pass_recv(struct colo_net *n, uint8_t *buf, size_t cap)
{
	ssize_t len;

	if (n->rxq_len)
		return colo_net_rxq_pop(n, buf, cap);
	len = net_backend_recv(n->be.inner, buf, cap);
	if (len > VNET_HDR_LEN && n->rw)
		colo_rewriter_inbound(n->rw, buf + VNET_HDR_LEN, (size_t)len - VNET_HDR_LEN);
	return len;
}

static int proxy_send(struct net_backend *be, void *pkt, size_t len)
{
	struct colo_net *n = to_proxy(be);
	int ret = 0;

	pthread_mutex_lock(&n->lock);
	if (len > VNET_HDR_LEN)
		guest_addrs_learn(&n->addrs, (uint8_t *)pkt + VNET_HDR_LEN, len - VNET_HDR_LEN);
	if (n->role == COLO_MODE_PRIMARY)
		ret = colo_net_primary_send(n, pkt, len);
	else if (n->role == COLO_MODE_SECONDARY)
		ret = colo_net_secondary_send(n, pkt, len);
	else
		ret = pass_send(n, pkt, len);
	pthread_mutex_unlock(&n->lock);
	return ret;
}

static ssize_t proxy_recv(struct net_backend *be, void *buf, size_t cap)
{
	struct colo_net *n = to_proxy(be);
	ssize_t len;

	pthread_mutex_lock(&n->lock);
	if (n->role == COLO_MODE_PRIMARY)
		len = colo_net_primary_recv(n, buf, cap);
	else if (n->role == COLO_MODE_SECONDARY)
		len = colo_net_rxq_pop(n, buf, cap);
	else
		len = pass_recv(n, buf, cap);
	pthread_mutex_unlock(&n->lock);
	return len;
}

static int proxy_rx_fd(struct net_backend *be)
{
	struct colo_net *n = to_proxy(be);
	int fd;

	pthread_mutex_lock(&n->lock);
	if (n->role == COLO_MODE_SECONDARY || (n->role == COLO_MODE_NONE && n->rxq_len))
		fd = n->rx_event;
	else
		fd = net_backend_rx_fd(n->be.inner);
	pthread_mutex_unlock(&n->lock);
	return fd;
}

static int proxy_attach(struct net_backend *be)
{
	struct colo_net *n = to_proxy(be);
	int ret;

	pthread_mutex_lock(&n->lock);
	ret = net_backend_attach(n->be.inner);
	pthread_mutex_unlock(&n->lock);
	return ret;
}

static void proxy_detach(struct net_backend *be)
{
	struct colo_net *n = to_proxy(be);

	pthread_mutex_lock(&n->lock);
	net_backend_detach(n->be.inner);
	pthread_mutex_unlock(&n->lock);
}

/* The proxy itself lives on: colo_net_destroy frees it. */
static void proxy_close(struct net_backend *be)
{
	net_backend_close(net_backend_unwrap(be));
}

const struct net_backend_ops colo_net_backend_ops = {
	.send = proxy_send,
	.recv = proxy_recv,
	.rx_fd = proxy_rx_fd,
	.attach = proxy_attach,
	.detach = proxy_detach,
	.close = proxy_close,
};
