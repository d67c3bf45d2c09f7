/*
 * The lwIP network interface over an Ethernet link: frames go out through
 * the link's send function (the virtio-net driver in the guest, a capture
 * buffer in the host test) and come in through netif_link_input.
 */
#ifndef GUEST_NETSTACK_NETIF_LINK_H
#define GUEST_NETSTACK_NETIF_LINK_H

#include "lwip/netif.h"
#include "portable.h"

struct net_link {
	uint8_t mac[6];
	/* Puts one frame (Ethernet header first) on the wire; 0 or -1. */
	int (*send)(void *ctx, const void *frame, size_t len);
	void *ctx;
};

/* netif_add()'s init callback; netif->state must be the struct net_link. */
err_t netif_link_init(struct netif *netif);
/* Hands one received frame (copied) to the stack. */
void netif_link_input(struct netif *netif, const void *frame, size_t len);

#endif
