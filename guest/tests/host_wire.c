#include "host_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/sys.h"
#include "services.h"
#include "stack.h"

const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
const uint8_t peer_mac[6] = { 0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc };
const uint8_t guest_ip4[4] = { 10, 0, 2, 15 };
const uint8_t peer_ip4[4] = { 10, 0, 2, 1 };
const uint8_t guest_ip6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15 };
const uint8_t peer_ip6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 };

#define ETH_HLEN 14
#define IP4_HLEN 20
#define IP6_HLEN 40
#define MAX_CAPTURED 8192
#define MAX_PEERS 256
#define STEP_MS 10

/* ---- byte order and checksums ---- */

uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)), put16(p + 2, (uint16_t)v); }

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t inet_csum(const uint8_t *p, size_t len, uint32_t sum) { return csum_fold(csum_add(sum, p, len)); }

static uint32_t pseudo_sum(const uint8_t *ip, bool v6, uint8_t proto, size_t len)
{
	uint32_t sum = proto + (uint32_t)len;

	if (v6)
		return csum_add(sum, ip + 8, 32);
	return csum_add(sum, ip + 12, 8);
}

uint16_t transport_csum(const uint8_t *f, bool v6, uint8_t proto, const uint8_t *seg, size_t len)
{
	return inet_csum(seg, len, pseudo_sum(f + ETH_HLEN, v6, proto, len));
}

/* ---- the wire ---- */

static struct frame *captured;
static int ncaptured, captured_lost;
uint32_t fake_now_ms = 1000;

u32_t sys_now(void) { return fake_now_ms; }

int wire_send(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	if (!captured)
		captured = calloc(MAX_CAPTURED, sizeof(*captured));
	if (ncaptured == MAX_CAPTURED || len > WIRE_FRAME_MAX) {
		captured_lost++;
		fprintf(stderr, "wire: frame lost (%d captured)\n", ncaptured);
		return -1;
	}
	captured[ncaptured].len = len;
	memcpy(captured[ncaptured].data, frame, len);
	ncaptured++;
	return 0;
}

int wire_sent(void) { return ncaptured; }
const struct frame *wire_frame(int i) { return &captured[i]; }
void wire_clear(void) { ncaptured = 0; }

void wire_feed(const uint8_t *frame, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	memcpy(copy, frame, len);
	netstack_input(copy, len);
	free(copy);
}

void advance_ms(uint32_t ms)
{
	for (uint32_t t = 0; t < ms; t += STEP_MS) {
		fake_now_ms += STEP_MS;
		netstack_poll();
		services_poll();
		pump();
	}
}

/* ---- building frames ---- */

static size_t put_eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, peer_mac, 6);
	put16(f + 12, type);
	return ETH_HLEN;
}

size_t build_arp(uint8_t *f, uint16_t op, const uint8_t *target_mac, const uint8_t target_ip[4])
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *a = f + put_eth(f, op == 1 ? bcast : target_mac, 0x0806);

	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, peer_mac, 6);
	memcpy(a + 14, peer_ip4, 4);
	memcpy(a + 18, op == 1 ? (const uint8_t *)"\0\0\0\0\0\0" : target_mac, 6);
	memcpy(a + 24, target_ip, 4);
	return ETH_HLEN + 28;
}

size_t build_ip4(uint8_t *f, const uint8_t src[4], const uint8_t dst[4], uint8_t proto, size_t payload_len)
{
	uint8_t *ip = f + put_eth(f, guest_mac, 0x0800);
	static uint16_t id;

	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(IP4_HLEN + payload_len));
	put16(ip + 4, ++id);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	put16(ip + 10, 0);
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	put16(ip + 10, inet_csum(ip, IP4_HLEN, 0));
	return ETH_HLEN + IP4_HLEN + payload_len;
}

size_t build_ip6(uint8_t *f, const uint8_t src[16], const uint8_t dst[16], uint8_t next, size_t payload_len)
{
	uint8_t *ip = f + put_eth(f, guest_mac, 0x86dd);

	put32(ip, 0x60000000);
	put16(ip + 4, (uint16_t)payload_len);
	ip[6] = next;
	ip[7] = 255; /* neighbour discovery insists on it; harmless elsewhere */
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	return ETH_HLEN + IP6_HLEN + payload_len;
}

static uint8_t *l4_start(uint8_t *f, bool v6) { return f + ETH_HLEN + (v6 ? IP6_HLEN : IP4_HLEN); }

static size_t build_ip(uint8_t *f, bool v6, uint8_t proto, size_t len)
{
	return v6 ? build_ip6(f, peer_ip6, guest_ip6, proto, len) : build_ip4(f, peer_ip4, guest_ip4, proto, len);
}

size_t build_icmp_echo(uint8_t *f, bool v6, uint16_t id, uint16_t seq, const uint8_t *data, size_t len)
{
	uint8_t *m = l4_start(f, v6);
	size_t flen;

	m[0] = v6 ? 128 : 8;
	m[1] = 0;
	put16(m + 2, 0);
	put16(m + 4, id);
	put16(m + 6, seq);
	if (len)
		memcpy(m + 8, data, len);
	flen = build_ip(f, v6, v6 ? 58 : 1, 8 + len);
	put16(m + 2, v6 ? transport_csum(f, true, 58, m, 8 + len) : inet_csum(m, 8 + len, 0));
	return flen;
}

size_t build_udp(uint8_t *f, bool v6, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
	uint8_t *u = l4_start(f, v6);
	size_t flen;

	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + len));
	put16(u + 6, 0);
	if (len)
		memcpy(u + 8, data, len);
	flen = build_ip(f, v6, 17, 8 + len);
	put16(u + 6, transport_csum(f, v6, 17, u, 8 + len));
	return flen;
}

size_t build_syn_from(uint8_t *f, bool v6, const uint8_t *src, uint16_t sport, uint16_t dport, uint32_t seq)
{
	uint8_t *t = l4_start(f, v6);
	size_t flen;

	memset(t, 0, 24);
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	t[12] = 6 << 4;
	t[13] = TCP_SYN;
	put16(t + 14, 65535);
	t[20] = 2; /* MSS 1460 */
	t[21] = 4;
	put16(t + 22, 1460);
	flen = v6 ? build_ip6(f, src, guest_ip6, 6, 24) : build_ip4(f, src, guest_ip4, 6, 24);
	put16(t + 16, transport_csum(f, v6, 6, t, 24));
	return flen;
}

/* NS (type 135) or NA (136) about `target`, with our link-layer address. */
static size_t build_nd(uint8_t *f, uint8_t type, const uint8_t target[16], const uint8_t *dst_ip)
{
	uint8_t *m = l4_start(f, true);
	size_t flen;

	memset(m, 0, 32);
	m[0] = type;
	if (type == 136)
		m[4] = 0x60; /* solicited, override */
	memcpy(m + 8, target, 16);
	m[24] = type == 136 ? 2 : 1; /* target / source link-layer address option */
	m[25] = 1;
	memcpy(m + 26, peer_mac, 6);
	flen = build_ip6(f, peer_ip6, dst_ip, 58, 32);
	put16(m + 2, transport_csum(f, true, 58, m, 32));
	return flen;
}

size_t build_ns(uint8_t *f) { return build_nd(f, 135, guest_ip6, guest_ip6); }

/* ---- parsing what the stack sent ---- */

static void parse_tcp_options(struct pkt *p, const uint8_t *o, size_t len)
{
	for (size_t i = 0; i < len;) {
		if (o[i] == 0)
			break;
		if (o[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len || o[i + 1] < 2 || i + o[i + 1] > len)
			break;
		if (o[i] == 2 && o[i + 1] == 4)
			p->mss = get16(o + i + 2);
		if (o[i] == 3 && o[i + 1] == 3)
			p->wscale = o[i + 2];
		i += o[i + 1];
	}
}

static bool parse_tcp(struct pkt *p)
{
	const uint8_t *t = p->l4;
	size_t hlen;

	if (p->l4_len < 20)
		return false;
	hlen = (size_t)(t[12] >> 4) * 4;
	if (hlen < 20 || hlen > p->l4_len)
		return false;
	p->sport = get16(t);
	p->dport = get16(t + 2);
	p->seq = get32(t + 4);
	p->ack = get32(t + 8);
	p->flags = t[13];
	p->win = get16(t + 14);
	p->data = t + hlen;
	p->data_len = p->l4_len - hlen;
	parse_tcp_options(p, t + 20, hlen - 20);
	return true;
}

bool parse_pkt(const struct frame *f, struct pkt *p)
{
	const uint8_t *ip = f->data + ETH_HLEN;

	memset(p, 0, sizeof(*p));
	p->wscale = -1;
	if (f->len < ETH_HLEN)
		return false;
	p->ethertype = get16(f->data + 12);
	p->l3 = ip;
	if (p->ethertype == 0x0800 && f->len >= ETH_HLEN + IP4_HLEN) {
		size_t ihl = (size_t)(ip[0] & 15) * 4, total = get16(ip + 2);

		if (ihl < IP4_HLEN || total < ihl || ETH_HLEN + total > f->len)
			return false;
		p->proto = ip[9];
		p->l4 = ip + ihl;
		p->l4_len = total - ihl;
		p->csum_ok = inet_csum(ip, ihl, 0) == 0;
	} else if (p->ethertype == 0x86dd && f->len >= ETH_HLEN + IP6_HLEN) {
		p->v6 = true;
		p->proto = ip[6];
		p->l4 = ip + IP6_HLEN;
		p->l4_len = get16(ip + 4);
		if (ETH_HLEN + IP6_HLEN + p->l4_len > f->len)
			return false;
		p->csum_ok = true;
	} else {
		return true;
	}
	if (p->proto == 6 || p->proto == 17 || (p->v6 && p->proto == 58))
		p->csum_ok &= inet_csum(p->l4, p->l4_len, pseudo_sum(ip, p->v6, p->proto, p->l4_len)) == 0;
	else if (p->proto == 1)
		p->csum_ok &= inet_csum(p->l4, p->l4_len, 0) == 0;
	return p->proto != 6 || parse_tcp(p);
}

/* ---- the peer's TCP connections ---- */

static struct peer_conn *peers[MAX_PEERS];
static struct frame *others;
static int nothers;
int wire_errors;

static void wire_error(const char *what)
{
	wire_errors++;
	fprintf(stderr, "wire: %s\n", what);
}

void peer_segment(struct peer_conn *c, uint32_t seq, uint8_t flags, const void *data, size_t len)
{
	uint8_t f[WIRE_FRAME_MAX];
	uint8_t *t = l4_start(f, c->v6);
	size_t hlen = flags & TCP_SYN ? 24 : 20, flen;

	put16(t, c->sport);
	put16(t + 2, c->dport);
	put32(t + 4, seq);
	put32(t + 8, flags & TCP_ACK ? c->rcv_nxt : 0);
	t[12] = (uint8_t)(hlen / 4 << 4);
	t[13] = flags;
	put16(t + 14, c->window);
	put32(t + 16, 0);
	if (flags & TCP_SYN) { /* MSS option */
		t[20] = 2;
		t[21] = 4;
		put16(t + 22, 1460);
	}
	if (len)
		memcpy(t + hlen, data, len);
	flen = build_ip(f, c->v6, 6, hlen + len);
	put16(t + 16, transport_csum(f, c->v6, 6, t, hlen + len));
	wire_feed(f, flen);
}

static void peer_ack(struct peer_conn *c) { peer_segment(c, c->snd_nxt, TCP_ACK, NULL, 0); }

static void rx_append(struct peer_conn *c, const uint8_t *p, size_t n)
{
	if (c->rx_len + n > c->rx_cap) {
		c->rx_cap = (c->rx_len + n) * 2;
		c->rx = realloc(c->rx, c->rx_cap);
	}
	memcpy(c->rx + c->rx_len, p, n);
	c->rx_len += n;
}

static uint32_t guest_acked(const struct peer_conn *c);
static uint32_t acked_by_guest[MAX_PEERS];

static void peer_on_data(struct peer_conn *c, const struct pkt *p, bool *ack)
{
	if (c->drop_next_data) { /* a loss on the wire */
		c->drop_next_data = false;
		return;
	}
	if (p->seq == c->rcv_nxt) {
		rx_append(c, p->data, p->data_len);
		c->rcv_nxt += (uint32_t)p->data_len;
	} else if ((int32_t)(p->seq - c->rcv_nxt) < 0) {
		c->retransmits_seen++;
	}
	*ack = true;
}

static void peer_on_segment(struct peer_conn *c, int slot, const struct pkt *p)
{
	bool ack = false;

	c->segments_seen++;
	if (!p->csum_ok)
		wire_error("bad checksum on a TCP segment from the guest");
	if (p->flags & TCP_RST) {
		c->got_rst = true;
		return;
	}
	if ((p->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
		if (!c->established) {
			c->guest_isn = p->seq;
			c->rcv_nxt = p->seq + 1;
			c->guest_mss = p->mss;
			c->guest_wscale = p->wscale;
			c->established = true;
		}
		ack = true;
	}
	if (p->flags & TCP_ACK) {
		if ((int32_t)(p->ack - acked_by_guest[slot]) > 0 || !acked_by_guest[slot])
			acked_by_guest[slot] = p->ack;
		else if (!p->data_len && p->ack == acked_by_guest[slot] && !(p->flags & (TCP_SYN | TCP_FIN)))
			c->dup_acks_seen++;
		c->guest_wnd = p->win;
	}
	if (p->data_len && !(p->flags & TCP_SYN))
		peer_on_data(c, p, &ack);
	if ((p->flags & TCP_FIN) && p->seq + p->data_len == c->rcv_nxt) {
		c->rcv_nxt++;
		c->got_fin = true;
		ack = true;
	}
	if (ack && c->auto_ack)
		peer_ack(c);
}

static uint32_t guest_acked(const struct peer_conn *c)
{
	for (int i = 0; i < MAX_PEERS; i++)
		if (peers[i] == c)
			return acked_by_guest[i];
	return 0;
}

static int find_peer(const struct pkt *p)
{
	for (int i = 0; i < MAX_PEERS; i++)
		if (peers[i] && peers[i]->v6 == p->v6 && peers[i]->sport == p->dport && peers[i]->dport == p->sport)
			return i;
	return -1;
}

static void keep_other(const struct frame *f)
{
	if (!others)
		others = calloc(MAX_CAPTURED, sizeof(*others));
	if (nothers < MAX_CAPTURED)
		others[nothers++] = *f;
}

/* ARP requests and neighbour solicitations for the peer get answers. */
static bool answer_resolution(const struct frame *f, const struct pkt *p)
{
	uint8_t out[WIRE_FRAME_MAX];

	if (p->ethertype == 0x0806 && f->len >= ETH_HLEN + 28 && get16(f->data + ETH_HLEN + 6) == 1) {
		if (memcmp(f->data + ETH_HLEN + 24, peer_ip4, 4) == 0)
			wire_feed(out, build_arp(out, 2, guest_mac, guest_ip4));
		return true;
	}
	if (p->v6 && p->proto == 58 && p->l4_len >= 24 && p->l4[0] == 135) {
		if (memcmp(p->l4 + 8, peer_ip6, 16) == 0)
			wire_feed(out, build_nd(out, 136, peer_ip6, guest_ip6));
		return true;
	}
	return p->v6 && (p->proto == 0 || (p->proto == 58 && p->l4_len && p->l4[0] >= 130 && p->l4[0] <= 143));
}

static void handle_frame(const struct frame *f)
{
	struct pkt p;
	int slot;

	if (!parse_pkt(f, &p)) {
		wire_error("unparseable frame from the guest");
		return;
	}
	if (answer_resolution(f, &p))
		return;
	if (p.proto == 6 && (slot = find_peer(&p)) >= 0) {
		peer_on_segment(peers[slot], slot, &p);
		return;
	}
	keep_other(f);
}

int pump(void)
{
	static struct frame *batch;
	int handled = 0;

	if (!batch)
		batch = calloc(MAX_CAPTURED, sizeof(*batch));
	while (ncaptured) {
		int n = ncaptured;

		memcpy(batch, captured, (size_t)n * sizeof(*batch));
		ncaptured = 0;
		for (int i = 0; i < n; i++)
			handle_frame(&batch[i]);
		handled += n;
	}
	if (captured_lost) {
		wire_error("frames lost: the capture buffer was full");
		captured_lost = 0;
	}
	return handled;
}

int other_count(void) { return nothers; }
const struct frame *other_frame(int i) { return &others[i]; }
void other_clear(void) { nothers = 0; }

static int register_peer(struct peer_conn *c)
{
	for (int i = 0; i < MAX_PEERS; i++) {
		if (!peers[i]) {
			peers[i] = c;
			acked_by_guest[i] = 0;
			return i;
		}
	}
	return -1;
}

void peer_forget(struct peer_conn *c)
{
	for (int i = 0; i < MAX_PEERS; i++)
		if (peers[i] == c)
			peers[i] = NULL;
	free(c->rx);
	c->rx = NULL;
}

bool peer_connect(struct peer_conn *c, bool v6, uint16_t sport, uint16_t dport)
{
	uint32_t isn = (uint32_t)rand();

	memset(c, 0, sizeof(*c));
	c->v6 = v6;
	c->sport = sport;
	c->dport = dport;
	c->window = 65535;
	c->auto_ack = true;
	c->guest_wscale = -1;
	if (register_peer(c) < 0)
		return false;
	peer_segment(c, isn, TCP_SYN, NULL, 0);
	c->snd_nxt = isn + 1;
	pump();
	return c->established;
}

bool peer_send(struct peer_conn *c, const void *data, size_t len)
{
	const uint8_t *d = data;
	size_t off = 0;
	int stalls = 0;

	while (off < len) {
		uint32_t in_flight = c->snd_nxt - guest_acked(c), room = c->guest_wnd > in_flight ? c->guest_wnd - in_flight : 0;
		size_t n = len - off < 1460 ? len - off : 1460;

		if (c->got_rst)
			return false;
		if (room == 0) {
			if (pump() == 0)
				advance_ms(STEP_MS);
			if (++stalls > 100000)
				return false;
			continue;
		}
		if (n > room)
			n = room;
		peer_segment(c, c->snd_nxt, TCP_ACK | TCP_PSH, d + off, n);
		c->snd_nxt += (uint32_t)n;
		off += n;
		pump();
	}
	return true;
}

void peer_reset(struct peer_conn *c)
{
	/* An ACK makes the guest tell where its receive sequence stands (it may
	 * have taken data we did not send: mutated frames); a RST must hit it exactly. */
	peer_segment(c, c->snd_nxt, TCP_ACK, NULL, 0);
	pump();
	peer_segment(c, guest_acked(c), TCP_RST, NULL, 0);
	pump();
}

void peer_close(struct peer_conn *c)
{
	peer_segment(c, c->snd_nxt, TCP_FIN | TCP_ACK, NULL, 0);
	c->snd_nxt++;
	pump();
}

/* ---- the in-memory disk ---- */

static uint8_t *disk_data;
static bool disk_failing;

static int md_read(void *ctx, uint64_t sector, void *buf, uint32_t n)
{
	struct blockdev *d = ctx;

	if (disk_failing || sector + n > d->sectors)
		return -1;
	memcpy(buf, disk_data + sector * BLOCKDEV_SECTOR, (size_t)n * BLOCKDEV_SECTOR);
	return 0;
}

static int md_write(void *ctx, uint64_t sector, const void *buf, uint32_t n)
{
	struct blockdev *d = ctx;

	if (disk_failing || sector + n > d->sectors)
		return -1;
	memcpy(disk_data + sector * BLOCKDEV_SECTOR, buf, (size_t)n * BLOCKDEV_SECTOR);
	return 0;
}

static int md_flush(void *ctx)
{
	(void)ctx;
	return disk_failing ? -1 : 0;
}

void memdisk_init(struct blockdev *d, uint64_t sectors)
{
	free(disk_data);
	disk_data = calloc(sectors, BLOCKDEV_SECTOR);
	*d = (struct blockdev){ sectors, md_read, md_write, md_flush, d };
}

void memdisk_fail(bool fail) { disk_failing = fail; }
