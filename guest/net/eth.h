/* Ethernet II: receive dispatch and framing of our replies. */
#ifndef GUEST_NET_ETH_H
#define GUEST_NET_ETH_H

#include "netif.h"

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_MIN_FRAME 60 /* without the FCS, which the TAP neither gives nor wants */
#define ETH_P_IPV4 0x0800
#define ETH_P_ARP 0x0806

void eth_input(struct net_if *nif, const uint8_t *frame, size_t len);
/* Where a reply's payload goes in nif->tx. */
static inline uint8_t *eth_tx_payload(struct net_if *nif) { return nif->tx + ETH_HLEN; }
/* Frames payload_len bytes already at eth_tx_payload() and sends them; 0 or -1. */
int eth_output(struct net_if *nif, const uint8_t dst[ETH_ALEN], uint16_t type, size_t payload_len);

#endif
