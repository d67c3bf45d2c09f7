/*
 * Telling the LAN where a guest now lives after a failover: a gratuitous ARP
 * for each IPv4 address and an unsolicited neighbour advertisement (override
 * flag) for each IPv6 address, sent from the guest's MAC.
 */
#ifndef LOCKSTEP_NET_ANNOUNCE_H
#define LOCKSTEP_NET_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>

#define ANNOUNCE_MAX_ADDRS 4
#define ANNOUNCE_FRAME_MAX 90

/* The addresses a guest uses, learned from the frames it sends. */
struct guest_addrs {
	uint8_t ip4[ANNOUNCE_MAX_ADDRS][4];
	int n4;
	uint8_t ip6[ANNOUNCE_MAX_ADDRS][16];
	int n6;
};

/* Notes the source address of a frame the guest sent (ARP, IPv4, IPv6 unicast only). */
void guest_addrs_learn(struct guest_addrs *a, const uint8_t *frame, size_t len);
/* Builds the announcement frames; returns the frame length. */
size_t announce_garp(uint8_t *out, const uint8_t mac[6], const uint8_t ip[4]);
size_t announce_na(uint8_t *out, const uint8_t mac[6], const uint8_t ip6[16]);

#endif
