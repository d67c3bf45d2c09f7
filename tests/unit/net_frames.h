/*
 * Frame builders for the network unit tests: Ethernet (with 0-2 VLAN tags),
 * IPv4/IPv6, TCP, UDP, ICMP echo and ARP, with checksums computed here by a
 * deliberately plain implementation, independent of src/net/packet_tcp.c.
 */
#ifndef LOCKSTEP_TESTS_NET_FRAMES_H
#define LOCKSTEP_TESTS_NET_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NF_MAX_FRAME 70000

/* One flow between a (the guest) and b (the peer). */
struct nf_flow {
	int family;        /* 4 or 6 */
	int vlans;         /* 0, 1 or 2 tags */
	uint16_t vlan_id;  /* outer tag; the inner one is vlan_id + 1 */
	uint8_t a[16], b[16];
	uint16_t pa, pb;
	uint16_t ip_id;    /* IPv4 identification, varied to show it is ignored */
	uint8_t ttl;
};

static inline void nf_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nf_put32(uint8_t *p, uint32_t v)
{
	nf_put16(p, (uint16_t)(v >> 16));
	nf_put16(p + 2, (uint16_t)v);
}

static inline uint32_t nf_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reference Internet checksum: byte pairs summed into 64 bits, folded at the end. */
static inline uint16_t nf_ref_csum(const uint8_t *pseudo, size_t plen, const uint8_t *data, size_t len)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < plen; i += 2)
		sum += (uint64_t)pseudo[i] * 256 + pseudo[i + 1];
	for (i = 0; i < len; i++)
		sum += (i % 2 == 0) ? (uint64_t)data[i] * 256 : data[i];
	while (sum > 0xffff)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Transport checksum of l4[0..len) between src and dst (pseudo-header). */
static inline uint16_t nf_l4_csum(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
				  const uint8_t *l4, size_t len)
{
	uint8_t ph[40];
	size_t n;

	memset(ph, 0, sizeof(ph));
	if (family == 4) {
		memcpy(ph, src, 4);
		memcpy(ph + 4, dst, 4);
		ph[9] = proto;
		nf_put16(ph + 10, (uint16_t)len);
		n = 12;
	} else {
		memcpy(ph, src, 16);
		memcpy(ph + 16, dst, 16);
		nf_put32(ph + 32, (uint32_t)len);
		ph[39] = proto;
		n = 40;
	}
	return nf_ref_csum(ph, n, l4, len);
}

/* Ethernet + VLAN tags; returns the header length. */
static inline size_t nf_eth(uint8_t *buf, const struct nf_flow *f, bool from_a, uint16_t ethertype)
{
	static const uint8_t mac_a[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	static const uint8_t mac_b[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	size_t off = 12;

	memcpy(buf, from_a ? mac_b : mac_a, 6);
	memcpy(buf + 6, from_a ? mac_a : mac_b, 6);
	for (int i = 0; i < f->vlans; i++) {
		nf_put16(buf + off, i == 0 && f->vlans == 2 ? 0x88a8 : 0x8100);
		nf_put16(buf + off + 2, (uint16_t)(f->vlan_id + i));
		off += 4;
	}
	nf_put16(buf + off, ethertype);
	return off + 2;
}

/* Ethernet + IP header around an l4 segment already in place after it; fixes
 * the transport checksum at csum_off (if >= 0) inside the segment. */
static inline size_t nf_ip(uint8_t *buf, const struct nf_flow *f, bool from_a, uint8_t proto,
			   const uint8_t *l4, size_t l4len, int csum_off)
{
	const uint8_t *src = from_a ? f->a : f->b, *dst = from_a ? f->b : f->a;
	size_t off = nf_eth(buf, f, from_a, f->family == 4 ? 0x0800 : 0x86dd);
	uint8_t *ip = buf + off;
	size_t hlen = f->family == 4 ? 20 : 40;
	uint8_t *seg = ip + hlen;

	memmove(seg, l4, l4len);
	memset(ip, 0, hlen);
	if (f->family == 4) {
		ip[0] = 0x45;
		nf_put16(ip + 2, (uint16_t)(20 + l4len));
		nf_put16(ip + 4, f->ip_id);
		ip[8] = f->ttl ? f->ttl : 64;
		ip[9] = proto;
		memcpy(ip + 12, src, 4);
		memcpy(ip + 16, dst, 4);
		nf_put16(ip + 10, nf_ref_csum(NULL, 0, ip, 20));
	} else {
		ip[0] = 0x60;
		nf_put16(ip + 4, (uint16_t)l4len);
		ip[6] = proto;
		ip[7] = f->ttl ? f->ttl : 64;
		memcpy(ip + 8, src, 16);
		memcpy(ip + 24, dst, 16);
	}
	if (csum_off >= 0) {
		seg[csum_off] = seg[csum_off + 1] = 0;
		nf_put16(seg + csum_off, nf_l4_csum(f->family, src, dst, proto, seg, l4len));
	}
	return off + hlen + l4len;
}

static inline size_t nf_tcp_opts(uint8_t *buf, const struct nf_flow *f, bool from_a, uint32_t seq,
				 uint32_t ack, uint8_t flags, const uint8_t *opts, size_t optlen,
				 const void *payload, size_t len)
{
	uint8_t seg[NF_MAX_FRAME];
	size_t hlen = 20 + ((optlen + 3) & ~(size_t)3);

	memset(seg, 0, hlen);
	nf_put16(seg, from_a ? f->pa : f->pb);
	nf_put16(seg + 2, from_a ? f->pb : f->pa);
	nf_put32(seg + 4, seq);
	nf_put32(seg + 8, ack);
	seg[12] = (uint8_t)((hlen / 4) << 4);
	seg[13] = flags;
	nf_put16(seg + 14, 65535);
	if (optlen)
		memcpy(seg + 20, opts, optlen);
	if (len)
		memcpy(seg + hlen, payload, len);
	return nf_ip(buf, f, from_a, 6, seg, hlen + len, 16);
}

static inline size_t nf_tcp(uint8_t *buf, const struct nf_flow *f, bool from_a, uint32_t seq,
			    uint32_t ack, uint8_t flags, const void *payload, size_t len)
{
	return nf_tcp_opts(buf, f, from_a, seq, ack, flags, NULL, 0, payload, len);
}

static inline size_t nf_udp(uint8_t *buf, const struct nf_flow *f, bool from_a, const void *payload,
			    size_t len)
{
	uint8_t seg[NF_MAX_FRAME];

	nf_put16(seg, from_a ? f->pa : f->pb);
	nf_put16(seg + 2, from_a ? f->pb : f->pa);
	nf_put16(seg + 4, (uint16_t)(8 + len));
	memcpy(seg + 8, payload, len);
	return nf_ip(buf, f, from_a, 17, seg, 8 + len, 6);
}

/* Echo request (reply=false) or reply; ICMPv6 for an IPv6 flow. */
static inline size_t nf_icmp_echo(uint8_t *buf, const struct nf_flow *f, bool from_a, bool reply,
				  uint16_t id, uint16_t seqno, const void *payload, size_t len)
{
	uint8_t seg[NF_MAX_FRAME];
	bool v6 = f->family == 6;

	seg[0] = v6 ? (reply ? 129 : 128) : (reply ? 0 : 8);
	seg[1] = 0;
	seg[2] = seg[3] = 0;
	nf_put16(seg + 4, id);
	nf_put16(seg + 6, seqno);
	memcpy(seg + 8, payload, len);
	if (!v6)
		nf_put16(seg + 2, nf_ref_csum(NULL, 0, seg, 8 + len));
	return nf_ip(buf, f, from_a, v6 ? 58 : 1, seg, 8 + len, v6 ? 2 : -1);
}

/* ARP request (op 1) or reply (op 2) from a, padded to 60 bytes. */
static inline size_t nf_arp(uint8_t *buf, const struct nf_flow *f, uint16_t op)
{
	size_t off = nf_eth(buf, f, true, 0x0806);
	uint8_t *a = buf + off;

	memset(a, 0, 60 > off ? 60 - off : 28);
	nf_put16(a, 1);
	nf_put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	nf_put16(a + 6, op);
	memcpy(a + 8, buf + 6, 6);
	memcpy(a + 14, f->a, 4);
	memcpy(a + 24, f->b, 4);
	return off + 28 < 60 ? 60 : off + 28;
}

static inline struct nf_flow nf_flow4(void)
{
	struct nf_flow f = { .family = 4, .pa = 80, .pb = 40000 };

	memcpy(f.a, (uint8_t[]){ 10, 0, 0, 2 }, 4);
	memcpy(f.b, (uint8_t[]){ 10, 0, 0, 1 }, 4);
	return f;
}

static inline struct nf_flow nf_flow6(void)
{
	struct nf_flow f = { .family = 6, .pa = 443, .pb = 50000 };

	f.a[0] = 0xfd;
	f.a[15] = 2;
	f.b[0] = 0xfd;
	f.b[15] = 1;
	return f;
}

#endif
