/*
 * One network interface as the stack sees it: our addresses, the function
 * that puts a frame on the wire, a buffer replies are built in, and counters.
 * Every frame that is not answered is counted under the reason it was dropped.
 */
#ifndef GUEST_NET_NETIF_H
#define GUEST_NET_NETIF_H

#include "net_sys.h"

#define NET_TX_BUF_SIZE 2048

enum net_drop {
	DROP_ETH_SHORT,    /* shorter than an Ethernet header */
	DROP_ETH_NOT_OURS, /* unicast to another MAC, or multicast */
	DROP_ETH_TYPE,     /* neither ARP nor IPv4 (VLAN tags, IPv6, ...) */
	DROP_ARP_SHORT,
	DROP_ARP_FORMAT,   /* not Ethernet/IPv4 ARP, or a bad sender address */
	DROP_ARP_IGNORED,  /* not a request for our address */
	DROP_IP_SHORT,     /* shorter than the minimal header */
	DROP_IP_VERSION,
	DROP_IP_IHL,       /* IHL < 5 or header longer than the frame */
	DROP_IP_LEN,       /* total length < header or > frame */
	DROP_IP_CSUM,
	DROP_IP_FRAG,      /* fragments are not reassembled */
	DROP_IP_SRC,       /* source we must not answer (0, broadcast, multicast) */
	DROP_IP_NOT_OURS,
	DROP_IP_PROTO,
	DROP_ICMP_SHORT,
	DROP_ICMP_CSUM,
	DROP_ICMP_TYPE,    /* anything but an echo request */
	DROP_UDP_SHORT,
	DROP_UDP_LEN,      /* UDP length < 8 or > IP payload */
	DROP_UDP_CSUM,
	DROP_UDP_PORT,     /* no service on that port */
	DROP_TX_SIZE,      /* a reply would not fit the TX buffer */
	DROP_TX_FAIL,      /* the driver refused the frame */
	DROP_REASONS
};

struct net_stats {
	uint64_t rx_frames;
	uint64_t arp_replies, icmp_replies, udp_replies;
	uint64_t drops[DROP_REASONS];
};

struct net_if {
	uint8_t mac[6];
	uint32_t ip; /* host byte order */
	int prefix_len;
	/* Puts one frame (Ethernet header first) on the wire; 0 or -1. */
	int (*output)(void *ctx, const uint8_t *frame, size_t len);
	void *output_ctx;
	uint16_t ip_id; /* identification of the next datagram we send */
	struct net_stats stats;
	uint8_t tx[NET_TX_BUF_SIZE]; /* replies are built here */
};

void net_if_init(struct net_if *nif, const uint8_t mac[6], uint32_t ip, int prefix_len,
		 int (*output)(void *ctx, const uint8_t *frame, size_t len), void *output_ctx);
/* Handles one received frame: answers it or counts why not. */
void net_input(struct net_if *nif, const uint8_t *frame, size_t len);

static inline void net_drop(struct net_if *nif, enum net_drop why) { nif->stats.drops[why]++; }
uint64_t net_drops_total(const struct net_if *nif);
const char *net_drop_name(enum net_drop why);

#endif
