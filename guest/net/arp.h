/* ARP for IPv4 over Ethernet (RFC 826): we answer requests for our address. */
#ifndef GUEST_NET_ARP_H
#define GUEST_NET_ARP_H

#include "netif.h"

#define ARP_LEN 28

/* src_mac: the Ethernet source of the frame; pkt/len: the ARP message. */
void arp_input(struct net_if *nif, const uint8_t *src_mac, const uint8_t *pkt, size_t len);

#endif
