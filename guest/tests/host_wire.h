/*
 * The world around the guest's network stack when it runs on the host (the
 * host test): a wire that captures what the stack sends, a fake clock, a
 * peer host (10.0.2.1 / fd00::1) that builds frames, answers ARP and
 * neighbour solicitations, and plays the client side of TCP connections,
 * and an in-memory disk.
 */
#ifndef GUEST_TESTS_HOST_WIRE_H
#define GUEST_TESTS_HOST_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev.h"

#define WIRE_FRAME_MAX 2048

extern const uint8_t guest_mac[6], peer_mac[6];
extern const uint8_t guest_ip4[4], peer_ip4[4];
extern const uint8_t guest_ip6[16], peer_ip6[16];

/* ---- the wire ---- */
struct frame {
	size_t len;
	uint8_t data[WIRE_FRAME_MAX];
};

/* What the stack sent since the last wire_take(). */
int wire_sent(void);
const struct frame *wire_frame(int i);
void wire_clear(void);
/* The link's send function (struct net_link). */
int wire_send(void *ctx, const void *frame, size_t len);
/* Feeds one frame to the stack, from a heap copy of exactly len bytes (so
 * AddressSanitizer sees any read past its end). */
void wire_feed(const uint8_t *frame, size_t len);

/* Problems the wire saw in what the stack sent (bad checksums, lost frames). */
extern int wire_errors;

/* ---- time ---- */
extern uint32_t fake_now_ms;
/* Advances the clock in small steps, running timers, the services and the peer. */
void advance_ms(uint32_t ms);

/* ---- frames the peer sends ---- */
uint16_t get16(const uint8_t *p);
uint32_t get32(const uint8_t *p);
void put16(uint8_t *p, uint16_t v);
void put32(uint8_t *p, uint32_t v);
uint16_t inet_csum(const uint8_t *p, size_t len, uint32_t sum);

size_t build_arp(uint8_t *f, uint16_t op, const uint8_t *target_mac, const uint8_t target_ip[4]);
/* IPv4/IPv6 packet around payload (already at f + 14 + 20 / f + 14 + 40). */
size_t build_ip4(uint8_t *f, const uint8_t src[4], const uint8_t dst[4], uint8_t proto, size_t payload_len);
size_t build_ip6(uint8_t *f, const uint8_t src[16], const uint8_t dst[16], uint8_t next, size_t payload_len);
/* The transport checksum over the pseudo-header of the packet built in f (v4 or v6). */
uint16_t transport_csum(const uint8_t *f, bool v6, uint8_t proto, const uint8_t *seg, size_t len);
size_t build_icmp_echo(uint8_t *f, bool v6, uint16_t id, uint16_t seq, const uint8_t *data, size_t len);
size_t build_udp(uint8_t *f, bool v6, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len);
/* A SYN from a forged source address (4 or 16 bytes). */
size_t build_syn_from(uint8_t *f, bool v6, const uint8_t *src, uint16_t sport, uint16_t dport, uint32_t seq);
/* Neighbour solicitation from the peer for the guest's address, with our link-layer address. */
size_t build_ns(uint8_t *f);

/* ---- frames the stack sent, parsed ---- */
struct pkt {
	uint16_t ethertype;
	bool v6;
	uint8_t proto; /* IP protocol / IPv6 next header */
	const uint8_t *l3, *l4; /* IP header, transport header */
	size_t l4_len;
	bool csum_ok; /* IP header and transport checksums */
	/* TCP */
	uint16_t sport, dport, win;
	uint32_t seq, ack;
	uint8_t flags;
	const uint8_t *data;
	size_t data_len;
	uint16_t mss;    /* from the options, 0 if none */
	int wscale;      /* -1 if none */
};
bool parse_pkt(const struct frame *f, struct pkt *p);

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* ---- the peer's side of a TCP connection ---- */
struct peer_conn {
	bool v6;
	uint16_t sport, dport;
	uint32_t snd_nxt, rcv_nxt, guest_isn;
	uint16_t guest_mss;
	int guest_wscale;
	uint32_t guest_wnd; /* last window the guest advertised, scaled */
	uint16_t window;    /* what we advertise (we send no window scale) */
	bool established, got_fin, got_rst, auto_ack, drop_next_data;
	uint32_t dup_acks_seen, segments_seen, retransmits_seen;
	uint8_t *rx;
	size_t rx_len, rx_cap;
};

/* Sends a SYN and pumps until the handshake completes; true on success. */
bool peer_connect(struct peer_conn *c, bool v6, uint16_t sport, uint16_t dport);
/* Builds and feeds one segment from the peer. */
void peer_segment(struct peer_conn *c, uint32_t seq, uint8_t flags, const void *data, size_t len);
/* Sends data in MSS-sized in-order segments, as the guest's window allows, pumping between. */
bool peer_send(struct peer_conn *c, const void *data, size_t len);
void peer_close(struct peer_conn *c);
/* Resets the connection with a RST the guest accepts. */
void peer_reset(struct peer_conn *c);
void peer_forget(struct peer_conn *c);
/* Handles everything the stack sent: ARP/NS answers, TCP to known peer
 * connections (data kept, ACKed). Returns frames handled. Unknown frames are
 * kept for the caller in the "other" list. */
int pump(void);
int other_count(void);
const struct frame *other_frame(int i);
void other_clear(void);

/* ---- an in-memory disk ---- */
void memdisk_init(struct blockdev *d, uint64_t sectors);
void memdisk_fail(bool fail);

#endif
