#include "ipv4.h"

#include "byteorder.h"
#include "csum.h"
#include "icmp.h"
#include "udp.h"

/* Header offsets. */
#define IP_VER_IHL 0
#define IP_TOTAL_LEN 2
#define IP_ID 4
#define IP_FRAG 6
#define IP_TTL 8
#define IP_PROTO 9
#define IP_CSUM 10
#define IP_SRC 12
#define IP_DST 16

#define IP_FLAG_MF 0x2000
#define IP_FRAG_OFFSET_MASK 0x1fff
#define IP_DEFAULT_TTL 64

static uint32_t subnet_broadcast(const struct net_if *nif)
{
	uint32_t host_mask = nif->prefix_len >= 32 ? 0 : 0xffffffffu >> nif->prefix_len;

	return nif->ip | host_mask;
}

/* Sources a reply must never go to: unspecified, loopback, multicast,
 * class E and broadcast, our subnet's broadcast, and ourselves. */
static bool source_ok(const struct net_if *nif, uint32_t src)
{
	uint8_t first = (uint8_t)(src >> 24);

	return src != 0 && first != 127 && first < 224 && src != nif->ip &&
	       (nif->prefix_len >= 31 || src != subnet_broadcast(nif));
}

static size_t ipv4_reject(struct net_if *nif, enum net_drop why)
{
	net_drop(nif, why);
	return 0;
}

/* Checks the header; returns the header length, or 0 after counting the drop.
 * On success *total is the datagram length (Ethernet padding excluded). */
static size_t ipv4_check(struct net_if *nif, const uint8_t *pkt, size_t len, size_t *total)
{
	size_t ihl;

	if (len < IPV4_HLEN)
		return ipv4_reject(nif, DROP_IP_SHORT);
	if (pkt[IP_VER_IHL] >> 4 != 4)
		return ipv4_reject(nif, DROP_IP_VERSION);
	ihl = (size_t)(pkt[IP_VER_IHL] & 0xf) * 4;
	if (ihl < IPV4_HLEN || ihl > len)
		return ipv4_reject(nif, DROP_IP_IHL);
	*total = get_be16(pkt + IP_TOTAL_LEN);
	if (*total < ihl || *total > len)
		return ipv4_reject(nif, DROP_IP_LEN);
	if (csum_fold(csum_add(0, pkt, ihl)) != 0)
		return ipv4_reject(nif, DROP_IP_CSUM);
	if (get_be16(pkt + IP_FRAG) & (IP_FLAG_MF | IP_FRAG_OFFSET_MASK))
		return ipv4_reject(nif, DROP_IP_FRAG);
	return ihl;
}

void ipv4_input(struct net_if *nif, const uint8_t *src_mac, const uint8_t *pkt, size_t len)
{
	size_t total = 0, ihl = ipv4_check(nif, pkt, len, &total);
	struct ipv4_peer peer = { src_mac, 0 };

	if (!ihl)
		return;
	if (get_be32(pkt + IP_DST) != nif->ip) {
		net_drop(nif, DROP_IP_NOT_OURS);
		return;
	}
	peer.ip = get_be32(pkt + IP_SRC);
	if (!source_ok(nif, peer.ip)) {
		net_drop(nif, DROP_IP_SRC);
		return;
	}
	/* Options, if any, are skipped: nothing we answer depends on them. */
	switch (pkt[IP_PROTO]) {
	case IP_PROTO_ICMP:
		icmp_input(nif, &peer, pkt + ihl, total - ihl);
		break;
	case IP_PROTO_UDP:
		udp_input(nif, &peer, pkt + ihl, total - ihl);
		break;
	default:
		net_drop(nif, DROP_IP_PROTO);
	}
}

int ipv4_output(struct net_if *nif, const struct ipv4_peer *peer, uint8_t proto, size_t payload_len)
{
	uint8_t *h = eth_tx_payload(nif);
	size_t total = IPV4_HLEN + payload_len;

	if (payload_len > ipv4_tx_room(nif)) {
		net_drop(nif, DROP_TX_SIZE);
		return -1;
	}
	memset(h, 0, IPV4_HLEN);
	h[IP_VER_IHL] = 0x45;
	put_be16(h + IP_TOTAL_LEN, (uint16_t)total);
	put_be16(h + IP_ID, nif->ip_id++);
	h[IP_TTL] = IP_DEFAULT_TTL;
	h[IP_PROTO] = proto;
	put_be32(h + IP_SRC, nif->ip);
	put_be32(h + IP_DST, peer->ip);
	put_be16(h + IP_CSUM, csum_fold(csum_add(0, h, IPV4_HLEN)));
	return eth_output(nif, peer->mac, ETH_P_IPV4, total);
}

/* Parses a decimal number up to `max`; returns the character after it or NULL. */
static const char *parse_dec(const char *s, uint32_t max, uint32_t *out)
{
	uint32_t v = 0;
	int digits = 0;

	while (*s >= '0' && *s <= '9' && digits < 4) {
		v = v * 10 + (uint32_t)(*s++ - '0');
		digits++;
	}
	if (!digits || v > max || (*s >= '0' && *s <= '9'))
		return NULL;
	*out = v;
	return s;
}

int ipv4_parse_cidr(const char *s, uint32_t *ip, int *prefix_len)
{
	uint32_t addr = 0, v, prefix = 24;

	for (int i = 0; i < 4; i++) {
		if (!(s = parse_dec(s, 255, &v)))
			return -1;
		addr = addr << 8 | v;
		if (i < 3 && *s++ != '.')
			return -1;
	}
	if (*s == '/' && !(s = parse_dec(s + 1, 32, &prefix)))
		return -1;
	if (*s)
		return -1;
	*ip = addr;
	*prefix_len = (int)prefix;
	return 0;
}
