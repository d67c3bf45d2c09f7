#include "icmp.h"

#include "byteorder.h"
#include "csum.h"

#define ICMP_HLEN 8
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8
#define ICMP_CSUM 2

void icmp_input(struct net_if *nif, const struct ipv4_peer *peer, const uint8_t *msg, size_t len)
{
	uint8_t *r = ipv4_tx_payload(nif);

	if (len < ICMP_HLEN) {
		net_drop(nif, DROP_ICMP_SHORT);
		return;
	}
	if (csum_fold(csum_add(0, msg, len)) != 0) {
		net_drop(nif, DROP_ICMP_CSUM);
		return;
	}
	if (msg[0] != ICMP_ECHO_REQUEST || msg[1] != 0) {
		net_drop(nif, DROP_ICMP_TYPE);
		return;
	}
	if (len > ipv4_tx_room(nif)) {
		net_drop(nif, DROP_TX_SIZE);
		return;
	}
	/* The reply is the request (id, sequence, data) with a new type and checksum. */
	memcpy(r, msg, len);
	r[0] = ICMP_ECHO_REPLY;
	r[1] = 0;
	put_be16(r + ICMP_CSUM, 0);
	put_be16(r + ICMP_CSUM, csum_fold(csum_add(0, r, len)));
	if (ipv4_output(nif, peer, IP_PROTO_ICMP, len) == 0)
		nif->stats.icmp_replies++;
}
