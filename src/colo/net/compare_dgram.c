/*
 * Datagram comparison: UDP, ICMP/ICMPv6, other IP protocols and IP fragments
 * are compared from the transport header (the IP payload) to the end of the
 * IP datagram, so IP header fields that legitimately differ between the
 * guests (ID, TTL, checksum) do not count; fragments must also agree on their
 * offset and MF flag. Non-IP frames (ARP, LLDP, ...) are compared whole.
 * Per flow, FIFO: the oldest held primary datagram pairs with the oldest
 * secondary one.
 */
#include <string.h>

#include "colo/net/compare_internal.h"

struct dgram_region {
	uint32_t off, len, frag;
};

static struct dgram_region region_of(const struct pkt_info *info)
{
	struct dgram_region r = { 0, info->frame_len, 0 };

	if (info->l3 == PKT_L3_NONE)
		return r;
	r.off = info->l4_off;
	r.len = info->l4_len;
	if (info->fragment)
		r.frag = 1u << 31 | (uint32_t)info->frag_offset << 1 | info->more_fragments;
	return r;
}

static bool same_datagram(const struct held_frame *f, const uint8_t *frame,
			  const struct dgram_region *r)
{
	return f->dgram.len == r->len && f->dgram.frag == r->frag &&
	       memcmp(f->data + f->dgram.off, frame + r->off, r->len) == 0;
}

static void drop_secondary_head(struct colo_compare *c, struct colo_conn *conn)
{
	struct held_frame *f = conn->secondary.head;

	queue_remove(&conn->secondary, f);
	note_secondary_held(c, -1, -(int64_t)f->len);
	frame_free(c, f);
}

void compare_dgram_primary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			   size_t len, const struct pkt_info *info)
{
	struct dgram_region r = region_of(info);
	struct held_frame *f;

	/* Only the oldest datagram of each side may pair, so a held primary
	 * (diverged, or waiting) keeps later ones behind it. */
	if (!conn->diverged && conn->primary.count == 0 && conn->secondary.head) {
		struct held_frame *s = conn->secondary.head;

		if (same_datagram(s, frame, &r)) {
			drop_secondary_head(c, conn);
			c->stats.cls[conn->cls].matched++;
			output_frame(c, frame, len);
			return;
		}
		report_mismatch(c, conn, frame, len, s->data, s->len);
	}
	f = hold_primary(c, conn, frame, len, conn->cls);
	if (f) {
		f->dgram.off = r.off;
		f->dgram.len = r.len;
		f->dgram.frag = r.frag;
	}
}

static void hold_secondary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			   size_t len, const struct dgram_region *r)
{
	struct held_frame *f = NULL;

	if (conn->secondary.count < c->cfg.max_queue_size)
		f = frame_alloc(c, frame, len);
	if (!f) {
		/* A lost secondary datagram would shift the pairing: stop
		 * comparing this flow until the checkpoint. */
		c->stats.cls[conn->cls].secondary_dropped++;
		conn->diverged = true;
		request_checkpoint(c, COLO_CKPT_QUEUE_FULL);
		return;
	}
	f->conn = conn;
	f->cls = conn->cls;
	f->arrival_ms = c->now_ms;
	f->dgram.off = r->off;
	f->dgram.len = r->len;
	f->dgram.frag = r->frag;
	queue_append(&conn->secondary, f);
	note_secondary_held(c, 1, (int64_t)len);
	if (conn->secondary.count >= c->cfg.max_queue_size)
		request_checkpoint(c, COLO_CKPT_QUEUE_FULL);
}

void compare_dgram_secondary(struct colo_compare *c, struct colo_conn *conn, const uint8_t *frame,
			     size_t len, const struct pkt_info *info)
{
	struct dgram_region r = region_of(info);
	struct held_frame *p = conn->primary.head;

	if (conn->diverged) {
		c->stats.cls[conn->cls].secondary_dropped++;
		return;
	}
	if (!p) {
		hold_secondary(c, conn, frame, len, &r);
		return;
	}
	if (same_datagram(p, frame, &r))
		release_held(c, p);
	else
		report_mismatch(c, conn, p->data, p->len, frame, len);
}
