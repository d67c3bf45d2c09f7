/* UDP (RFC 768): checksum-verified input and the echo service (RFC 862) on port 7. */
#ifndef GUEST_NET_UDP_H
#define GUEST_NET_UDP_H

#include "ipv4.h"

#define UDP_HLEN 8
#define UDP_PORT_ECHO 7

void udp_input(struct net_if *nif, const struct ipv4_peer *peer, const uint8_t *dgram, size_t len);

#endif
