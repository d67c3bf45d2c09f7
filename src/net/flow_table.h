/*
 * A bounded hash table of flows keyed by struct flow_key, with an LRU list,
 * shared by the comparator and the rewriter. Intrusive: callers embed a
 * struct flow_entry in their connection record and own its memory. The bucket
 * array is sized once for the limit, so nothing is allocated per lookup.
 */
#ifndef LOCKSTEP_NET_FLOW_TABLE_H
#define LOCKSTEP_NET_FLOW_TABLE_H

#include <stdint.h>

#include "net/packet.h"

struct flow_entry {
	struct flow_key key;
	uint32_t hash;
	struct flow_entry *chain;
	struct flow_entry *lru_prev, *lru_next;
};

struct flow_table {
	struct flow_entry **buckets;
	uint32_t mask;
	uint32_t count, limit;
	uint64_t seed;
	struct flow_entry lru; /* sentinel: lru.lru_next is the least recently used */
};

/* -ENOMEM, or 0. limit >= 1. The hash seed is random so that a peer cannot
 * aim many flows at one bucket. */
int flow_table_init(struct flow_table *t, uint32_t limit);
/* Frees the buckets; the entries belong to the caller. */
void flow_table_destroy(struct flow_table *t);
uint32_t flow_table_hash(const struct flow_table *t, const struct flow_key *key);
struct flow_entry *flow_table_find(const struct flow_table *t, const struct flow_key *key,
				   uint32_t hash);
/* e->key and e->hash set by the caller; the table must not be full. Most recent. */
void flow_table_insert(struct flow_table *t, struct flow_entry *e);
void flow_table_remove(struct flow_table *t, struct flow_entry *e);
/* Marks e the most recently used. */
void flow_table_touch(struct flow_table *t, struct flow_entry *e);
static inline int flow_table_full(const struct flow_table *t) { return t->count >= t->limit; }
/* LRU iteration: oldest first; NULL at the end. */
struct flow_entry *flow_table_oldest(const struct flow_table *t);
struct flow_entry *flow_table_newer(const struct flow_table *t, const struct flow_entry *e);

#endif
