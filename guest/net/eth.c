#include "eth.h"

#include "arp.h"
#include "byteorder.h"
#include "ipv4.h"

static const uint8_t eth_broadcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static bool eth_for_us(const struct net_if *nif, const uint8_t *dst)
{
	return memcmp(dst, nif->mac, ETH_ALEN) == 0 || memcmp(dst, eth_broadcast, ETH_ALEN) == 0;
}

void eth_input(struct net_if *nif, const uint8_t *frame, size_t len)
{
	const uint8_t *src = frame + ETH_ALEN;

	if (len < ETH_HLEN) {
		net_drop(nif, DROP_ETH_SHORT);
		return;
	}
	if (!eth_for_us(nif, frame)) {
		net_drop(nif, DROP_ETH_NOT_OURS);
		return;
	}
	switch (get_be16(frame + 12)) {
	case ETH_P_ARP:
		arp_input(nif, src, frame + ETH_HLEN, len - ETH_HLEN);
		break;
	case ETH_P_IPV4:
		ipv4_input(nif, src, frame + ETH_HLEN, len - ETH_HLEN);
		break;
	default:
		net_drop(nif, DROP_ETH_TYPE);
	}
}

int eth_output(struct net_if *nif, const uint8_t dst[ETH_ALEN], uint16_t type, size_t payload_len)
{
	size_t len = ETH_HLEN + payload_len;

	if (len > sizeof(nif->tx)) {
		net_drop(nif, DROP_TX_SIZE);
		return -1;
	}
	memcpy(nif->tx, dst, ETH_ALEN);
	memcpy(nif->tx + ETH_ALEN, nif->mac, ETH_ALEN);
	put_be16(nif->tx + 12, type);
	if (len < ETH_MIN_FRAME) { /* pad like a NIC would: bridges may drop runts */
		memset(nif->tx + len, 0, ETH_MIN_FRAME - len);
		len = ETH_MIN_FRAME;
	}
	if (nif->output(nif->output_ctx, nif->tx, len) < 0) {
		net_drop(nif, DROP_TX_FAIL);
		return -1;
	}
	return 0;
}
