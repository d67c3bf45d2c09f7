/*
 * Telling the LAN where a guest now lives after a failover: a gratuitous ARP
 * for each IPv4 address and an unsolicited neighbour advertisement (override
 * flag) for each IPv6 address, sent from the guest's MAC, on the VLAN where
 * the guest used that address (802.1Q/802.1ad tags are copied as they came).
 */
#ifndef LOCKSTEP_NET_ANNOUNCE_H
#define LOCKSTEP_NET_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>

#define ANNOUNCE_MAX_ADDRS 8
#define ANNOUNCE_FRAME_MAX 100 /* an NA with two VLAN tags: 14 + 8 + 40 + 32 */

/* One address the guest uses, with the VLAN tags of the frames that carried it. */
struct guest_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t ip[16]; /* IPv4: the first 4 bytes */
	uint8_t ntags;  /* 0, 1 or 2 */
	uint8_t tags[2][4]; /* TPID + TCI, as on the wire */
};

/* The addresses a guest uses, learned from the frames it sends. */
struct guest_addrs {
	struct guest_addr addr[ANNOUNCE_MAX_ADDRS];
	int n;
};

/* Notes the source address of a frame the guest sent (ARP, IPv4, IPv6; unicast only).
 * Malformed frames (net/packet.c's rules) teach nothing. */
void guest_addrs_learn(struct guest_addrs *a, const uint8_t *frame, size_t len);
/* Builds the announcement frame for one address into out (ANNOUNCE_FRAME_MAX
 * bytes); returns its length. */
size_t announce_frame(uint8_t *out, const uint8_t mac[6], const struct guest_addr *addr);

#endif
