/* IPv4 (RFC 791): header validation, dispatch, and the header of our replies. */
#ifndef GUEST_NET_IPV4_H
#define GUEST_NET_IPV4_H

#include "eth.h"

#define IPV4_HLEN 20 /* we send no options */
#define IP_PROTO_ICMP 1
#define IP_PROTO_UDP 17

/* Who sent the datagram being answered. */
struct ipv4_peer {
	const uint8_t *mac; /* Ethernet source: replies go back there, no ARP lookup */
	uint32_t ip;
};

void ipv4_input(struct net_if *nif, const uint8_t *src_mac, const uint8_t *pkt, size_t len);

/* Where a reply's transport payload goes in nif->tx, and how much fits. */
static inline uint8_t *ipv4_tx_payload(struct net_if *nif) { return eth_tx_payload(nif) + IPV4_HLEN; }
static inline size_t ipv4_tx_room(const struct net_if *nif) { return sizeof(nif->tx) - ETH_HLEN - IPV4_HLEN; }
/* Sends payload_len bytes already at ipv4_tx_payload() to peer; 0 or -1. */
int ipv4_output(struct net_if *nif, const struct ipv4_peer *peer, uint8_t proto, size_t payload_len);

/* "A.B.C.D/NN" (or without /NN: 24) into a host-order address; 0 or -1. */
int ipv4_parse_cidr(const char *s, uint32_t *ip, int *prefix_len);

#endif
