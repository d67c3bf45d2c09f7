/*
 * Ethernet / VLAN / IPv4 / IPv6 / TCP / UDP / ICMP parsing and flow keys.
 * Each layer checks the bytes it reads against the end of its enclosing
 * layer: Ethernet against the frame, IP against the frame, the transport
 * header against the IP datagram (so Ethernet padding is never payload).
 */
#include "net/packet.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#define IPV4_MIN_HLEN 20
#define IPV6_HLEN 40
#define TCP_MIN_HLEN 20
#define UDP_HLEN 8
#define ICMP_HLEN 8

#define IPV6_EXT_HOPOPTS 0
#define IPV6_EXT_ROUTING 43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_DSTOPTS 60

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_vlan_ethertype(uint16_t t) { return t == PKT_ETH_VLAN || t == PKT_ETH_QINQ; }

/* Ethernet header and up to two VLAN tags; sets l3_off to what follows. */
static int parse_ethernet(const uint8_t *f, uint32_t len, struct pkt_info *out)
{
	uint32_t off = 12;

	if (len < PKT_ETH_HLEN)
		return -EINVAL;
	memcpy(out->eth_dst, f, 6);
	memcpy(out->eth_src, f + 6, 6);
	out->ethertype = get16(f + off);
	while (is_vlan_ethertype(out->ethertype) && out->vlan_depth < 2) {
		if (len < off + 4 + 2)
			return -EINVAL;
		if (out->vlan_depth == 0)
			out->vlan_id = get16(f + off + 2) & 0x0fff;
		out->vlan_depth++;
		off += 4;
		out->ethertype = get16(f + off);
	}
	out->l3_off = off + 2;
	return 0;
}

static int parse_ipv4(const uint8_t *f, uint32_t len, struct pkt_info *out)
{
	const uint8_t *ip = f + out->l3_off;
	uint32_t avail = len - out->l3_off;
	uint32_t hlen, total;
	uint16_t frag;

	if (avail < IPV4_MIN_HLEN || ip[0] >> 4 != 4)
		return -EINVAL;
	hlen = (uint32_t)(ip[0] & 0x0f) * 4;
	total = get16(ip + 2);
	if (hlen < IPV4_MIN_HLEN || hlen > avail || total < hlen || total > avail)
		return -EINVAL;
	frag = get16(ip + 6);
	out->l3 = PKT_L3_IPV4;
	out->l3_end = out->l3_off + total;
	out->proto = ip[9];
	out->frag_offset = frag & 0x1fff;
	out->more_fragments = (frag & 0x2000) != 0;
	out->fragment = out->frag_offset != 0 || out->more_fragments;
	memcpy(out->src, ip + 12, 4);
	memcpy(out->dst, ip + 16, 4);
	out->l4_off = out->l3_off + hlen;
	return 0;
}

/* The IPv6 fragment header: flags the datagram unless it is an atomic fragment. */
static void note_ipv6_fragment(const uint8_t *h, struct pkt_info *out)
{
	uint16_t v = get16(h + 2);

	out->frag_offset = v >> 3;
	out->more_fragments = (v & 1) != 0;
	out->fragment = out->frag_offset != 0 || out->more_fragments;
}

/* Walks hop-by-hop, routing, destination options and fragment headers; stops
 * at anything else (the transport header or an unknown header) or at a
 * non-atomic fragment. */
static int walk_ipv6_extensions(const uint8_t *f, struct pkt_info *out, uint8_t next)
{
	uint32_t off = out->l3_off + IPV6_HLEN;

	for (;;) {
		uint32_t hlen;

		if (next != IPV6_EXT_HOPOPTS && next != IPV6_EXT_ROUTING &&
		    next != IPV6_EXT_DSTOPTS && next != IPV6_EXT_FRAGMENT)
			break;
		if (out->l3_end - off < 8)
			return -EINVAL;
		hlen = next == IPV6_EXT_FRAGMENT ? 8 : ((uint32_t)f[off + 1] + 1) * 8;
		if (out->l3_end - off < hlen)
			return -EINVAL;
		if (next == IPV6_EXT_FRAGMENT)
			note_ipv6_fragment(f + off, out);
		next = f[off];
		off += hlen;
		if (out->fragment)
			break;
	}
	out->proto = next;
	out->l4_off = off;
	return 0;
}

static int parse_ipv6(const uint8_t *f, uint32_t len, struct pkt_info *out)
{
	const uint8_t *ip = f + out->l3_off;
	uint32_t avail = len - out->l3_off;
	uint32_t plen;

	if (avail < IPV6_HLEN || ip[0] >> 4 != 6)
		return -EINVAL;
	plen = get16(ip + 4);
	if (plen == 0 || plen > avail - IPV6_HLEN)
		return -EINVAL;
	out->l3 = PKT_L3_IPV6;
	out->l3_end = out->l3_off + IPV6_HLEN + plen;
	memcpy(out->src, ip + 8, 16);
	memcpy(out->dst, ip + 24, 16);
	return walk_ipv6_extensions(f, out, ip[6]);
}

static int parse_tcp(const uint8_t *f, struct pkt_info *out)
{
	const uint8_t *t = f + out->l4_off;
	uint32_t hlen;

	if (out->l4_len < TCP_MIN_HLEN)
		return -EINVAL;
	hlen = (uint32_t)(t[12] >> 4) * 4;
	if (hlen < TCP_MIN_HLEN || hlen > out->l4_len)
		return -EINVAL;
	out->l4 = PKT_L4_TCP;
	out->sport = get16(t);
	out->dport = get16(t + 2);
	out->seq = get32(t + 4);
	out->ack = get32(t + 8);
	out->tcp_flags = t[13];
	out->window = get16(t + 14);
	out->tcp_hdr_len = hlen;
	out->tcp_opt_off = out->l4_off + TCP_MIN_HLEN;
	out->tcp_opt_len = hlen - TCP_MIN_HLEN;
	out->payload_off = out->l4_off + hlen;
	out->payload_len = out->l4_len - hlen;
	return 0;
}

static int parse_udp(const uint8_t *f, struct pkt_info *out)
{
	const uint8_t *u = f + out->l4_off;
	uint32_t ulen;

	if (out->l4_len < UDP_HLEN)
		return -EINVAL;
	ulen = get16(u + 4);
	if (ulen < UDP_HLEN || ulen > out->l4_len)
		return -EINVAL;
	out->l4 = PKT_L4_UDP;
	out->sport = get16(u);
	out->dport = get16(u + 2);
	out->payload_off = out->l4_off + UDP_HLEN;
	out->payload_len = ulen - UDP_HLEN;
	return 0;
}

static int parse_icmp(const uint8_t *f, struct pkt_info *out, bool v6)
{
	const uint8_t *h = f + out->l4_off;
	uint32_t min = v6 ? 4 : ICMP_HLEN;

	if (out->l4_len < min)
		return -EINVAL;
	out->l4 = v6 ? PKT_L4_ICMPV6 : PKT_L4_ICMP;
	out->icmp_type = h[0];
	out->icmp_code = h[1];
	out->icmp_echo = v6 ? (h[0] == 128 || h[0] == 129) : (h[0] == 8 || h[0] == 0);
	if (out->icmp_echo) {
		if (out->l4_len < ICMP_HLEN)
			return -EINVAL;
		out->icmp_id = get16(h + 4);
	}
	if (out->l4_len >= ICMP_HLEN) {
		out->payload_off = out->l4_off + ICMP_HLEN;
		out->payload_len = out->l4_len - ICMP_HLEN;
	}
	return 0;
}

static int parse_transport(const uint8_t *f, struct pkt_info *out)
{
	out->l4_len = out->l3_end - out->l4_off;
	out->payload_off = out->l4_off;
	out->payload_len = out->l4_len;
	if (out->fragment) {
		out->l4 = PKT_L4_NONE;
		return 0;
	}
	switch (out->proto) {
	case PKT_PROTO_TCP:
		return parse_tcp(f, out);
	case PKT_PROTO_UDP:
		return parse_udp(f, out);
	case PKT_PROTO_ICMP:
		return out->l3 == PKT_L3_IPV4 ? parse_icmp(f, out, false) : (out->l4 = PKT_L4_OTHER, 0);
	case PKT_PROTO_ICMPV6:
		return out->l3 == PKT_L3_IPV6 ? parse_icmp(f, out, true) : (out->l4 = PKT_L4_OTHER, 0);
	default:
		out->l4 = PKT_L4_OTHER;
		return 0;
	}
}

int pkt_parse(const uint8_t *frame, size_t len, struct pkt_info *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (len > PKT_MAX_FRAME)
		return -EINVAL;
	out->frame_len = (uint32_t)len;
	r = parse_ethernet(frame, out->frame_len, out);
	if (r < 0)
		return r;
	if (out->ethertype == PKT_ETH_IPV4)
		r = parse_ipv4(frame, out->frame_len, out);
	else if (out->ethertype == PKT_ETH_IPV6)
		r = parse_ipv6(frame, out->frame_len, out);
	else
		return 0; /* non-IP: the Ethernet fields are all there is */
	if (r < 0)
		return r;
	return parse_transport(frame, out);
}

static void key_ports(const struct pkt_info *info, struct flow_key *key)
{
	if (info->l4 == PKT_L4_TCP || info->l4 == PKT_L4_UDP) {
		key->sport = info->sport;
		key->dport = info->dport;
	} else if ((info->l4 == PKT_L4_ICMP || info->l4 == PKT_L4_ICMPV6) && info->icmp_echo) {
		/* Both ports: the request and its reply share one key either way round. */
		key->sport = info->icmp_id;
		key->dport = info->icmp_id;
	}
}

static void swap_bytes(uint8_t *a, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t t = a[i];

		a[i] = b[i];
		b[i] = t;
	}
}

void pkt_flow_key(const struct pkt_info *info, bool reversed, struct flow_key *key)
{
	memset(key, 0, sizeof(*key));
	key->vlan = info->vlan_id;
	if (info->l3 == PKT_L3_NONE) {
		key->ethertype = info->ethertype;
		memcpy(key->src, info->eth_src, 6);
		memcpy(key->dst, info->eth_dst, 6);
	} else {
		key->family = (uint8_t)info->l3;
		key->proto = info->proto;
		memcpy(key->src, info->src, 16);
		memcpy(key->dst, info->dst, 16);
		key_ports(info, key);
	}
	if (reversed) {
		uint16_t p = key->sport;

		swap_bytes(key->src, key->dst, 16);
		key->sport = key->dport;
		key->dport = p;
	}
}

uint32_t flow_key_hash(const struct flow_key *key, uint64_t seed)
{
	return (uint32_t)XXH3_64bits_withSeed(key, sizeof(*key), seed);
}

bool flow_key_equal(const struct flow_key *a, const struct flow_key *b)
{
	return a->family == b->family && a->proto == b->proto && a->vlan == b->vlan &&
	       a->ethertype == b->ethertype && a->sport == b->sport && a->dport == b->dport &&
	       memcmp(a->src, b->src, 16) == 0 && memcmp(a->dst, b->dst, 16) == 0;
}
