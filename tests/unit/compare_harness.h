/*
 * A comparator under test: records released frames, checkpoint requests and
 * mismatching pairs, and keeps the test's clock.
 */
#ifndef LOCKSTEP_TESTS_COMPARE_HARNESS_H
#define LOCKSTEP_TESTS_COMPARE_HARNESS_H

#include <stdlib.h>
#include <string.h>

#include "colo/net/compare.h"
#include "net/packet.h"

#define H_MAX_OUT 4096

struct harness {
	struct colo_compare *c;
	uint64_t now;
	uint8_t *out[H_MAX_OUT];
	size_t out_len[H_MAX_OUT];
	int n_out;
	int n_ckpt;
	enum colo_checkpoint_reason last_reason;
	int n_mismatch;
	bool mismatch_had_primary, mismatch_had_secondary;
	void (*on_mismatch)(struct harness *h, const uint8_t *p, size_t pl, const uint8_t *s, size_t sl);
	void *user;
};

static inline void h_output(void *opaque, const uint8_t *frame, size_t len)
{
	struct harness *h = opaque;

	if (h->n_out >= H_MAX_OUT)
		abort();
	h->out[h->n_out] = malloc(len ? len : 1);
	memcpy(h->out[h->n_out], frame, len);
	h->out_len[h->n_out++] = len;
}

static inline void h_checkpoint(void *opaque, enum colo_checkpoint_reason reason)
{
	struct harness *h = opaque;

	h->n_ckpt++;
	h->last_reason = reason;
}

static inline void h_mismatch(void *opaque, const uint8_t *p, size_t pl, const uint8_t *s, size_t sl)
{
	struct harness *h = opaque;

	h->n_mismatch++;
	h->mismatch_had_primary = p != NULL;
	h->mismatch_had_secondary = s != NULL;
	if (h->on_mismatch)
		h->on_mismatch(h, p, pl, s, sl);
}

static inline void h_init(struct harness *h, uint32_t timeout, uint32_t queue, uint32_t conns)
{
	struct colo_compare_config cfg = { timeout, queue, conns, 0 };
	static const struct colo_compare_ops ops = { h_output, h_checkpoint, h_mismatch };

	memset(h, 0, sizeof(*h));
	h->now = 1000;
	h->c = colo_compare_create(&cfg, &ops, h);
}

static inline void h_clear_out(struct harness *h)
{
	for (int i = 0; i < h->n_out; i++)
		free(h->out[i]);
	h->n_out = 0;
}

static inline void h_fini(struct harness *h)
{
	colo_compare_destroy(h->c);
	h_clear_out(h);
}

static inline void h_p(struct harness *h, const uint8_t *f, size_t n)
{
	colo_compare_primary(h->c, f, n, h->now);
}

static inline void h_s(struct harness *h, const uint8_t *f, size_t n)
{
	colo_compare_secondary(h->c, f, n, h->now);
}

/* The released frame i, parsed. */
static inline struct pkt_info h_out_info(const struct harness *h, int i)
{
	struct pkt_info in;

	memset(&in, 0, sizeof(in));
	if (pkt_parse(h->out[i], h->out_len[i], &in) < 0)
		in.l3 = PKT_L3_NONE;
	return in;
}

static inline struct colo_compare_stats h_stats(const struct harness *h)
{
	struct colo_compare_stats s;

	colo_compare_get_stats(h->c, &s);
	return s;
}

#endif
