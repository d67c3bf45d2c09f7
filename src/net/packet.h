/*
 * Ethernet frame parsing for the COLO network path: one bounds-checked pass
 * over a frame (no virtio-net header in front) that finds the VLAN tags, the
 * IP header and the transport header, plus flow keys, TCP checksums and the
 * TCP fields the rewriter changes.
 *
 * Every input is hostile. pkt_parse reads nothing before checking it is
 * inside the frame, and the mutating helpers trust only a pkt_info that
 * pkt_parse filled in for that same frame.
 */
#ifndef LOCKSTEP_NET_PACKET_H
#define LOCKSTEP_NET_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PKT_ETH_HLEN 14
/* Frames longer than this are rejected (-EINVAL): offsets stay 32-bit. */
#define PKT_MAX_FRAME (256u * 1024)

#define PKT_ETH_IPV4 0x0800
#define PKT_ETH_IPV6 0x86dd
#define PKT_ETH_ARP 0x0806
#define PKT_ETH_VLAN 0x8100   /* 802.1Q */
#define PKT_ETH_QINQ 0x88a8   /* 802.1ad */

#define PKT_PROTO_ICMP 1
#define PKT_PROTO_TCP 6
#define PKT_PROTO_UDP 17
#define PKT_PROTO_ICMPV6 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define TCP_OPT_EOL 0
#define TCP_OPT_NOP 1
#define TCP_OPT_MSS 2
#define TCP_OPT_SACK 5

enum pkt_l3 {
	PKT_L3_NONE = 0, /* not IP (ARP, LLDP, a third VLAN tag, ...) */
	PKT_L3_IPV4 = 4,
	PKT_L3_IPV6 = 6,
};

enum pkt_l4 {
	PKT_L4_NONE = 0, /* not IP, or an IP fragment (transport header not parsed) */
	PKT_L4_TCP,
	PKT_L4_UDP,
	PKT_L4_ICMP,
	PKT_L4_ICMPV6,
	PKT_L4_OTHER, /* another IP protocol, or an IPv6 header we do not walk */
};

/* Offsets are from the start of the frame and always inside it. */
struct pkt_info {
	uint32_t frame_len;
	/* Ethernet */
	uint8_t eth_dst[6], eth_src[6];
	uint16_t ethertype;  /* after the VLAN tags */
	uint8_t vlan_depth;  /* 0, 1 or 2 */
	uint16_t vlan_id;    /* VID of the outer tag, 0 when untagged */
	/* IP */
	enum pkt_l3 l3;
	uint32_t l3_off;     /* the IP header */
	uint32_t l3_end;     /* end of the IP datagram: Ethernet padding excluded */
	uint8_t src[16];     /* IPv4: first 4 bytes, the rest zero */
	uint8_t dst[16];
	uint8_t proto;       /* IPv4 protocol / the IPv6 header where the walk stopped */
	bool fragment;       /* part of a fragmented datagram */
	uint16_t frag_offset; /* in 8-byte units */
	bool more_fragments;
	/* transport */
	enum pkt_l4 l4;
	uint32_t l4_off;     /* transport header (fragments: the fragment's data) */
	uint32_t l4_len;     /* l3_end - l4_off */
	uint16_t sport, dport; /* TCP, UDP */
	/* TCP */
	uint32_t seq, ack;
	uint16_t window;
	uint8_t tcp_flags;
	uint32_t tcp_hdr_len;
	uint32_t tcp_opt_off, tcp_opt_len; /* the options area (data offset bounded) */
	/* TCP and UDP payload (ICMP: after the 8-byte header, if any) */
	uint32_t payload_off, payload_len;
	/* ICMP / ICMPv6 */
	uint8_t icmp_type, icmp_code;
	bool icmp_echo;      /* echo request or reply: icmp_id is valid */
	uint16_t icmp_id;
};

/*
 * Parses one Ethernet frame. 0 with *out filled (l3 NONE for non-IP frames),
 * or -EINVAL when the frame is malformed:
 *   - shorter than an Ethernet header, a truncated VLAN tag, longer than PKT_MAX_FRAME;
 *   - IPv4: version not 4, IHL < 5, header or total length beyond the frame,
 *     total length < header length;
 *   - IPv6: version not 6, header beyond the frame, payload length beyond the
 *     frame or 0 (jumbograms), an extension header we walk that is truncated;
 *   - TCP: fewer than 20 bytes, data offset < 5 or beyond the datagram;
 *   - UDP: fewer than 8 bytes, UDP length < 8 or beyond the datagram;
 *   - ICMP: fewer than 8 bytes; ICMPv6: fewer than 4 (8 for echo).
 * Not checked: IP and transport checksums, TCP option syntax (the option
 * readers below stop at a malformed option). Fragments are flagged, never
 * reassembled; their transport header is not parsed (l4 NONE), except for
 * IPv6 atomic fragments (offset 0, no M flag), which are whole datagrams.
 * A third VLAN tag makes the frame non-IP (ethertype 0x8100/0x88a8).
 * On error *out is unspecified.
 */
int pkt_parse(const uint8_t *frame, size_t len, struct pkt_info *out);

/* Flow identity, comparable with flow_key_equal and hashable. Non-IP frames:
 * family 0, the MAC addresses in src/dst, the ethertype set. ICMP echo uses
 * the identifier as both ports; other ICMP and other protocols use 0. */
struct flow_key {
	uint8_t family;     /* 0 (non-IP), 4 or 6 */
	uint8_t proto;
	uint16_t vlan;
	uint16_t ethertype; /* non-IP only, else 0 */
	uint16_t sport, dport;
	uint8_t src[16], dst[16];
};

/* reversed: the key of the opposite direction (addresses and ports swapped). */
void pkt_flow_key(const struct pkt_info *info, bool reversed, struct flow_key *key);
uint32_t flow_key_hash(const struct flow_key *key, uint64_t seed);
bool flow_key_equal(const struct flow_key *a, const struct flow_key *b);

/* Wrap-safe TCP sequence comparisons. */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_lt(a, b) ? b : a; }

/* Internet checksum: the ones'-complement sum of buf added to sum (not folded). */
uint32_t pkt_csum_add(uint32_t sum, const void *buf, size_t len);
/* Folds a sum to 16 bits and complements it: the value for a checksum field. */
uint16_t pkt_csum_fold(uint32_t sum);

/* Recomputes the TCP checksum of a parsed IPv4/IPv6 TCP frame from scratch
 * (pseudo-header included; an IPv6 routing header's final destination is not
 * looked for). -EINVAL if info is not TCP. */
int pkt_tcp_checksum_fixup(uint8_t *frame, const struct pkt_info *info);
/* True if the TCP checksum of the frame is right (same pseudo-header rule). */
bool pkt_tcp_checksum_ok(const uint8_t *frame, const struct pkt_info *info);

/* Rewrite the sequence or acknowledgment number in place, updating the
 * checksum incrementally (RFC 1624): a checksum that was wrong stays wrong,
 * so the receiver still drops a corrupted segment. info->seq/ack not updated. */
void pkt_tcp_set_seq(uint8_t *frame, const struct pkt_info *info, uint32_t seq);
void pkt_tcp_set_ack(uint8_t *frame, const struct pkt_info *info, uint32_t ack);

/* Adds delta to both edges of every SACK block (incremental checksum update).
 * Returns the number of blocks changed; a malformed option list ends the walk. */
int pkt_tcp_sack_shift(uint8_t *frame, const struct pkt_info *info, uint32_t delta);

/* Finds TCP option kind in the options area: its offset in the frame and its
 * total length (kind and length bytes included). -ENOENT if absent or if the
 * list is malformed before it. */
int pkt_tcp_find_option(const uint8_t *frame, const struct pkt_info *info, uint8_t kind,
			uint32_t *off, uint32_t *len);
/* The MSS option's value, or 0 if absent/malformed. */
uint16_t pkt_tcp_mss(const uint8_t *frame, const struct pkt_info *info);

#endif
