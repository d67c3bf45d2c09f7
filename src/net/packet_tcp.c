/*
 * TCP helpers for parsed frames: checksums (full and incremental), options,
 * and the in-place rewrites the COLO rewriter needs. Every function takes the
 * pkt_info that pkt_parse produced for the same frame, so the offsets it uses
 * are known to be inside the frame.
 */
#include "net/packet.h"

#include <errno.h>
#include <string.h>

#define TCP_CSUM_OFF 16

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t pkt_csum_add(uint32_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t acc = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		acc += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < len)
		acc += (uint32_t)p[i] << 8;
	while (acc >> 32)
		acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

uint16_t pkt_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t pseudo_header_sum(const struct pkt_info *info)
{
	uint8_t ph[40];
	size_t n;

	if (info->l3 == PKT_L3_IPV4) {
		memcpy(ph, info->src, 4);
		memcpy(ph + 4, info->dst, 4);
		ph[8] = 0;
		ph[9] = info->proto;
		ph[10] = (uint8_t)(info->l4_len >> 8);
		ph[11] = (uint8_t)info->l4_len;
		n = 12;
	} else {
		memcpy(ph, info->src, 16);
		memcpy(ph + 16, info->dst, 16);
		put32(ph + 32, info->l4_len);
		ph[36] = ph[37] = ph[38] = 0;
		ph[39] = info->proto;
		n = 40;
	}
	return pkt_csum_add(0, ph, n);
}

static uint16_t tcp_checksum(const uint8_t *frame, const struct pkt_info *info, bool zero_field)
{
	const uint8_t *t = frame + info->l4_off;
	uint32_t sum = pseudo_header_sum(info);

	if (!zero_field)
		return pkt_csum_fold(pkt_csum_add(sum, t, info->l4_len));
	sum = pkt_csum_add(sum, t, TCP_CSUM_OFF);
	sum = pkt_csum_add(sum, t + TCP_CSUM_OFF + 2, info->l4_len - TCP_CSUM_OFF - 2);
	return pkt_csum_fold(sum);
}

int pkt_tcp_checksum_fixup(uint8_t *frame, const struct pkt_info *info)
{
	uint16_t c;

	if (info->l4 != PKT_L4_TCP)
		return -EINVAL;
	c = tcp_checksum(frame, info, true);
	frame[info->l4_off + TCP_CSUM_OFF] = (uint8_t)(c >> 8);
	frame[info->l4_off + TCP_CSUM_OFF + 1] = (uint8_t)c;
	return 0;
}

bool pkt_tcp_checksum_ok(const uint8_t *frame, const struct pkt_info *info)
{
	/* Summing the whole segment, checksum included, gives 0 when it is right. */
	return info->l4 == PKT_L4_TCP && tcp_checksum(frame, info, false) == 0;
}

/* What a 32-bit field adds to the checksum: its two 16-bit halves, folded.
 * At an odd offset in the segment (a SACK block after a single NOP) its bytes
 * straddle the 16-bit words, which adds the same sum byte-swapped. */
static uint16_t field_sum(uint32_t v, bool odd)
{
	uint32_t s = (v >> 16) + (v & 0xffff);
	uint16_t folded = (uint16_t)((s & 0xffff) + (s >> 16));

	return odd ? (uint16_t)(folded << 8 | folded >> 8) : folded;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
static void csum_replace32(uint8_t *csum, uint32_t old, uint32_t new, bool odd)
{
	uint32_t sum = (uint16_t)~(csum[0] << 8 | csum[1]);
	uint16_t c;

	sum += (uint16_t)~field_sum(old, odd);
	sum += field_sum(new, odd);
	c = pkt_csum_fold(sum);
	csum[0] = (uint8_t)(c >> 8);
	csum[1] = (uint8_t)c;
}

/* Writes a 32-bit field of the TCP segment and updates the checksum. */
static void tcp_replace32(uint8_t *frame, const struct pkt_info *info, uint32_t off, uint32_t v)
{
	uint32_t old = get32(frame + off);

	if (old == v)
		return;
	put32(frame + off, v);
	csum_replace32(frame + info->l4_off + TCP_CSUM_OFF, old, v, ((off - info->l4_off) & 1) != 0);
}

void pkt_tcp_set_seq(uint8_t *frame, const struct pkt_info *info, uint32_t seq)
{
	tcp_replace32(frame, info, info->l4_off + 4, seq);
}

void pkt_tcp_set_ack(uint8_t *frame, const struct pkt_info *info, uint32_t ack)
{
	tcp_replace32(frame, info, info->l4_off + 8, ack);
}

/*
 * Calls fn for each well-formed option. The walk ends at EOL, at the end of
 * the options area, or at a malformed option (length < 2 or past the end):
 * nothing after a malformed option can be located reliably.
 */
static int walk_options(const uint8_t *frame, const struct pkt_info *info,
			int (*fn)(uint32_t off, uint8_t kind, uint32_t len, void *arg), void *arg)
{
	uint32_t off = info->tcp_opt_off, end = info->tcp_opt_off + info->tcp_opt_len;

	while (off < end) {
		uint8_t kind = frame[off];
		uint32_t len;
		int r;

		if (kind == TCP_OPT_EOL)
			break;
		if (kind == TCP_OPT_NOP) {
			off++;
			continue;
		}
		if (end - off < 2)
			break;
		len = frame[off + 1];
		if (len < 2 || len > end - off)
			break;
		r = fn(off, kind, len, arg);
		if (r != 0)
			return r;
		off += len;
	}
	return 0;
}

struct find_arg {
	uint8_t kind;
	uint32_t off, len;
};

static int find_cb(uint32_t off, uint8_t kind, uint32_t len, void *arg)
{
	struct find_arg *a = arg;

	if (kind != a->kind)
		return 0;
	a->off = off;
	a->len = len;
	return 1;
}

int pkt_tcp_find_option(const uint8_t *frame, const struct pkt_info *info, uint8_t kind,
			uint32_t *off, uint32_t *len)
{
	struct find_arg a = { .kind = kind };

	if (info->l4 != PKT_L4_TCP || walk_options(frame, info, find_cb, &a) != 1)
		return -ENOENT;
	*off = a.off;
	*len = a.len;
	return 0;
}

uint16_t pkt_tcp_mss(const uint8_t *frame, const struct pkt_info *info)
{
	uint32_t off, len;

	if (pkt_tcp_find_option(frame, info, TCP_OPT_MSS, &off, &len) < 0 || len != 4)
		return 0;
	return (uint16_t)(frame[off + 2] << 8 | frame[off + 3]);
}

struct sack_arg {
	uint8_t *frame;
	const struct pkt_info *info;
	uint32_t delta;
	int blocks;
};

static int sack_cb(uint32_t off, uint8_t kind, uint32_t len, void *arg)
{
	struct sack_arg *a = arg;

	/* A SACK option is 2 + 8n bytes; another length is not one we can read. */
	if (kind != TCP_OPT_SACK || (len - 2) % 8 != 0)
		return 0;
	for (uint32_t b = off + 2; b + 8 <= off + len; b += 8) {
		tcp_replace32(a->frame, a->info, b, get32(a->frame + b) + a->delta);
		tcp_replace32(a->frame, a->info, b + 4, get32(a->frame + b + 4) + a->delta);
		a->blocks++;
	}
	return 0;
}

int pkt_tcp_sack_shift(uint8_t *frame, const struct pkt_info *info, uint32_t delta)
{
	struct sack_arg a = { frame, info, delta, 0 };

	if (info->l4 != PKT_L4_TCP || delta == 0)
		return 0;
	walk_options(frame, info, sack_cb, &a);
	return a.blocks;
}
