#include "net/announce.h"

#include <string.h>

#define ETH_HLEN 14
#define ETHERTYPE_ARP 0x0806
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static int is_usable_ip4(const uint8_t *ip)
{
	return ip[0] != 0 && ip[0] != 127 && ip[0] < 224;
}

static int is_usable_ip6(const uint8_t *ip)
{
	static const uint8_t zero[16];

	return ip[0] != 0xff && memcmp(ip, zero, 16) != 0;
}

static void add_ip4(struct guest_addrs *a, const uint8_t *ip)
{
	for (int i = 0; i < a->n4; i++)
		if (memcmp(a->ip4[i], ip, 4) == 0)
			return;
	if (a->n4 < ANNOUNCE_MAX_ADDRS && is_usable_ip4(ip))
		memcpy(a->ip4[a->n4++], ip, 4);
}

static void add_ip6(struct guest_addrs *a, const uint8_t *ip)
{
	for (int i = 0; i < a->n6; i++)
		if (memcmp(a->ip6[i], ip, 16) == 0)
			return;
	if (a->n6 < ANNOUNCE_MAX_ADDRS && is_usable_ip6(ip))
		memcpy(a->ip6[a->n6++], ip, 16);
}

void guest_addrs_learn(struct guest_addrs *a, const uint8_t *f, size_t len)
{
	uint16_t type;

	if (len < ETH_HLEN)
		return;
	type = be16(f + 12);
	if (type == ETHERTYPE_ARP && len >= ETH_HLEN + 28 && be16(f + 14) == 1 && be16(f + 16) == 0x0800)
		add_ip4(a, f + ETH_HLEN + 14); /* sender protocol address */
	else if (type == ETHERTYPE_IPV4 && len >= ETH_HLEN + 20 && (f[14] >> 4) == 4)
		add_ip4(a, f + ETH_HLEN + 12);
	else if (type == ETHERTYPE_IPV6 && len >= ETH_HLEN + 40 && (f[14] >> 4) == 6)
		add_ip6(a, f + ETH_HLEN + 8);
}

size_t announce_garp(uint8_t *o, const uint8_t mac[6], const uint8_t ip[4])
{
	memset(o, 0xff, 6);
	memcpy(o + 6, mac, 6);
	put_be16(o + 12, ETHERTYPE_ARP);
	put_be16(o + 14, 1);      /* Ethernet */
	put_be16(o + 16, 0x0800); /* IPv4 */
	o[18] = 6;
	o[19] = 4;
	put_be16(o + 20, 1); /* request: the form most hosts and switches act on */
	memcpy(o + 22, mac, 6);
	memcpy(o + 28, ip, 4);
	memset(o + 32, 0, 6);
	memcpy(o + 38, ip, 4);
	memset(o + 42, 0, 18); /* pad to the Ethernet minimum */
	return 60;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += be16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

size_t announce_na(uint8_t *o, const uint8_t mac[6], const uint8_t ip6[16])
{
	static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
	uint8_t *ip = o + ETH_HLEN, *icmp = ip + 40;
	const uint16_t icmp_len = 32;
	uint32_t sum;

	memcpy(o, (uint8_t[]){ 0x33, 0x33, 0, 0, 0, 1 }, 6);
	memcpy(o + 6, mac, 6);
	put_be16(o + 12, ETHERTYPE_IPV6);
	memset(ip, 0, 40);
	ip[0] = 0x60;
	put_be16(ip + 4, icmp_len);
	ip[6] = 58;  /* ICMPv6 */
	ip[7] = 255; /* hop limit, as neighbour discovery requires */
	memcpy(ip + 8, ip6, 16);
	memcpy(ip + 24, all_nodes, 16);
	memset(icmp, 0, icmp_len);
	icmp[0] = 136;  /* neighbour advertisement */
	icmp[4] = 0x20; /* override */
	memcpy(icmp + 8, ip6, 16);
	icmp[24] = 2; /* target link-layer address option */
	icmp[25] = 1;
	memcpy(icmp + 26, mac, 6);
	sum = csum_add(0, ip + 8, 32);
	sum += icmp_len + 58;
	sum = csum_add(sum, icmp, icmp_len);
	put_be16(icmp + 2, csum_fold(sum));
	return ETH_HLEN + 40 + icmp_len;
}
