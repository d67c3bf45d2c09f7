/* ICMP (RFC 792): we answer echo requests and count everything else. */
#ifndef GUEST_NET_ICMP_H
#define GUEST_NET_ICMP_H

#include "ipv4.h"

void icmp_input(struct net_if *nif, const struct ipv4_peer *peer, const uint8_t *msg, size_t len);

#endif
