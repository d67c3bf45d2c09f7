#include "arp.h"

#include "byteorder.h"
#include "eth.h"

#define ARP_HTYPE_ETHER 1
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

/* Offsets in the 28-byte Ethernet/IPv4 ARP message. */
#define ARP_HTYPE 0
#define ARP_PTYPE 2
#define ARP_HALEN 4
#define ARP_PALEN 5
#define ARP_OP 6
#define ARP_SHA 8
#define ARP_SPA 14
#define ARP_THA 18
#define ARP_TPA 24

static bool arp_format_ok(const uint8_t *pkt)
{
	return get_be16(pkt + ARP_HTYPE) == ARP_HTYPE_ETHER && get_be16(pkt + ARP_PTYPE) == ETH_P_IPV4 &&
	       pkt[ARP_HALEN] == ETH_ALEN && pkt[ARP_PALEN] == 4;
}

/* A sender we could answer: a unicast hardware address. */
static bool arp_sender_ok(const uint8_t *sha)
{
	static const uint8_t zero[ETH_ALEN];

	return !(sha[0] & 1) && memcmp(sha, zero, ETH_ALEN) != 0;
}

static void arp_reply(struct net_if *nif, const uint8_t *req)
{
	uint8_t *r = eth_tx_payload(nif);

	put_be16(r + ARP_HTYPE, ARP_HTYPE_ETHER);
	put_be16(r + ARP_PTYPE, ETH_P_IPV4);
	r[ARP_HALEN] = ETH_ALEN;
	r[ARP_PALEN] = 4;
	put_be16(r + ARP_OP, ARP_OP_REPLY);
	memcpy(r + ARP_SHA, nif->mac, ETH_ALEN);
	put_be32(r + ARP_SPA, nif->ip);
	memcpy(r + ARP_THA, req + ARP_SHA, ETH_ALEN);
	memcpy(r + ARP_TPA, req + ARP_SPA, 4);
	if (eth_output(nif, req + ARP_SHA, ETH_P_ARP, ARP_LEN) == 0)
		nif->stats.arp_replies++;
}

void arp_input(struct net_if *nif, const uint8_t *src_mac, const uint8_t *pkt, size_t len)
{
	(void)src_mac; /* the reply goes to the sender hardware address, per RFC 826 */
	if (len < ARP_LEN) {
		net_drop(nif, DROP_ARP_SHORT);
		return;
	}
	if (!arp_format_ok(pkt) || !arp_sender_ok(pkt + ARP_SHA)) {
		net_drop(nif, DROP_ARP_FORMAT);
		return;
	}
	if (get_be16(pkt + ARP_OP) != ARP_OP_REQUEST || get_be32(pkt + ARP_TPA) != nif->ip) {
		net_drop(nif, DROP_ARP_IGNORED);
		return;
	}
	arp_reply(nif, pkt);
}
