/* Gratuitous ARP and unsolicited neighbour advertisements after a failover (announce.h). */
#include "net/announce.h"

#include <string.h>

#include "net/packet.h"

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static int is_usable(int family, const uint8_t *ip)
{
	static const uint8_t zero[16];

	if (family == 4)
		return ip[0] != 0 && ip[0] != 127 && ip[0] < 224;
	return ip[0] != 0xff && memcmp(ip, zero, 16) != 0;
}

static void add_addr(struct guest_addrs *a, int family, const uint8_t *ip, const uint8_t *frame,
		     int ntags)
{
	struct guest_addr n = { .family = (uint8_t)family, .ntags = (uint8_t)ntags };

	memcpy(n.ip, ip, family == 4 ? 4 : 16);
	memcpy(n.tags, frame + 12, (size_t)ntags * 4);
	for (int i = 0; i < a->n; i++)
		if (memcmp(&a->addr[i], &n, sizeof(n)) == 0)
			return;
	if (a->n < ANNOUNCE_MAX_ADDRS && is_usable(family, n.ip))
		a->addr[a->n++] = n;
}

void guest_addrs_learn(struct guest_addrs *a, const uint8_t *f, size_t len)
{
	struct pkt_info p;
	uint32_t arp;

	if (pkt_parse(f, len, &p) < 0 || p.vlan_depth > 2)
		return;
	arp = PKT_ETH_HLEN + 4u * p.vlan_depth;
	if (p.l3 == PKT_L3_NONE && p.ethertype == PKT_ETH_ARP && len >= arp + 28 && be16(f + arp) == 1 &&
	    be16(f + arp + 2) == PKT_ETH_IPV4)
		add_addr(a, 4, f + arp + 14, f, p.vlan_depth); /* sender protocol address */
	else if (p.l3 == PKT_L3_IPV4)
		add_addr(a, 4, p.src, f, p.vlan_depth);
	else if (p.l3 == PKT_L3_IPV6)
		add_addr(a, 6, p.src, f, p.vlan_depth);
}

/* Destination and source MAC, the VLAN tags, the ethertype; returns the header length. */
static size_t put_eth(uint8_t *o, const uint8_t dst[6], const uint8_t mac[6], const struct guest_addr *a,
		      uint16_t ethertype)
{
	size_t off = 12;

	memcpy(o, dst, 6);
	memcpy(o + 6, mac, 6);
	memcpy(o + off, a->tags, (size_t)a->ntags * 4);
	off += (size_t)a->ntags * 4;
	put_be16(o + off, ethertype);
	return off + 2;
}

static size_t announce_garp(uint8_t *o, const uint8_t mac[6], const struct guest_addr *a)
{
	static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	size_t h = put_eth(o, broadcast, mac, a, PKT_ETH_ARP), end;
	uint8_t *arp = o + h;

	put_be16(arp, 1);                /* Ethernet */
	put_be16(arp + 2, PKT_ETH_IPV4); /* IPv4 */
	arp[4] = 6;
	arp[5] = 4;
	put_be16(arp + 6, 1); /* request: the form most hosts and switches act on */
	memcpy(arp + 8, mac, 6);
	memcpy(arp + 14, a->ip, 4);
	memset(arp + 18, 0, 6);
	memcpy(arp + 24, a->ip, 4);
	end = h + 28;
	if (end < 60) { /* pad to the Ethernet minimum */
		memset(o + end, 0, 60 - end);
		end = 60;
	}
	return end;
}

static size_t announce_na(uint8_t *o, const uint8_t mac[6], const struct guest_addr *a)
{
	static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
	const uint16_t icmp_len = 32;
	uint8_t *ip = o + put_eth(o, all_nodes_mac, mac, a, PKT_ETH_IPV6), *icmp = ip + 40;
	uint8_t pseudo[8] = { 0, 0, 0, (uint8_t)icmp_len, 0, 0, 0, PKT_PROTO_ICMPV6 };
	uint32_t sum;

	memset(ip, 0, 40);
	ip[0] = 0x60;
	put_be16(ip + 4, icmp_len);
	ip[6] = PKT_PROTO_ICMPV6;
	ip[7] = 255; /* hop limit, as neighbour discovery requires */
	memcpy(ip + 8, a->ip, 16);
	memcpy(ip + 24, all_nodes, 16);
	memset(icmp, 0, icmp_len);
	icmp[0] = 136;  /* neighbour advertisement */
	icmp[4] = 0x20; /* override */
	memcpy(icmp + 8, a->ip, 16);
	icmp[24] = 2; /* target link-layer address option */
	icmp[25] = 1;
	memcpy(icmp + 26, mac, 6);
	sum = pkt_csum_add(0, ip + 8, 32); /* source and destination */
	sum = pkt_csum_add(sum, pseudo, sizeof(pseudo));
	sum = pkt_csum_add(sum, icmp, icmp_len);
	put_be16(icmp + 2, pkt_csum_fold(sum));
	return (size_t)(icmp - o) + icmp_len;
}

size_t announce_frame(uint8_t *out, const uint8_t mac[6], const struct guest_addr *addr)
{
	return addr->family == 4 ? announce_garp(out, mac, addr) : announce_na(out, mac, addr);
}
