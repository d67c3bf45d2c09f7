#include "udp.h"

#include "byteorder.h"
#include "csum.h"

#define UDP_SRC_PORT 0
#define UDP_DST_PORT 2
#define UDP_LEN 4
#define UDP_CSUM 6

/* A zero checksum field means the sender did not compute one (IPv4 only). */
static bool udp_csum_ok(const struct net_if *nif, const struct ipv4_peer *peer, const uint8_t *dgram,
			uint16_t ulen)
{
	uint32_t sum;

	if (get_be16(dgram + UDP_CSUM) == 0)
		return true;
	sum = csum_pseudo(peer->ip, nif->ip, IP_PROTO_UDP, ulen);
	return csum_fold(csum_add(sum, dgram, ulen)) == 0;
}

static void udp_echo(struct net_if *nif, const struct ipv4_peer *peer, const uint8_t *dgram, uint16_t ulen)
{
	uint8_t *r = ipv4_tx_payload(nif);
	uint16_t csum;

	if (ulen > ipv4_tx_room(nif)) {
		net_drop(nif, DROP_TX_SIZE);
		return;
	}
	memcpy(r, dgram, ulen);
	put_be16(r + UDP_SRC_PORT, UDP_PORT_ECHO);
	memcpy(r + UDP_DST_PORT, dgram + UDP_SRC_PORT, 2);
	put_be16(r + UDP_CSUM, 0);
	csum = csum_fold(csum_add(csum_pseudo(nif->ip, peer->ip, IP_PROTO_UDP, ulen), r, ulen));
	put_be16(r + UDP_CSUM, csum ? csum : 0xffff); /* 0 would mean "no checksum" */
	if (ipv4_output(nif, peer, IP_PROTO_UDP, ulen) == 0)
		nif->stats.udp_replies++;
}

void udp_input(struct net_if *nif, const struct ipv4_peer *peer, const uint8_t *dgram, size_t len)
{
	uint16_t ulen;

	if (len < UDP_HLEN) {
		net_drop(nif, DROP_UDP_SHORT);
		return;
	}
	/* Shorter than the IP payload is allowed (the rest is ignored); longer is not. */
	ulen = get_be16(dgram + UDP_LEN);
	if (ulen < UDP_HLEN || ulen > len) {
		net_drop(nif, DROP_UDP_LEN);
		return;
	}
	if (!udp_csum_ok(nif, peer, dgram, ulen)) {
		net_drop(nif, DROP_UDP_CSUM);
		return;
	}
	/* Never answer port 0 (no reply wanted) or another echo server (endless ping-pong). */
	if (get_be16(dgram + UDP_DST_PORT) != UDP_PORT_ECHO || get_be16(dgram + UDP_SRC_PORT) == 0 ||
	    get_be16(dgram + UDP_SRC_PORT) == UDP_PORT_ECHO) {
		net_drop(nif, DROP_UDP_PORT);
		return;
	}
	udp_echo(nif, peer, dgram, ulen);
}
