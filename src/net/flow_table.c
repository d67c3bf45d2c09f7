/* Bounded flow hash table with an LRU list (see flow_table.h). */
#include "net/flow_table.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

static uint64_t random_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* weaker, but never fails */
	return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
}

int flow_table_init(struct flow_table *t, uint32_t limit)
{
	uint32_t n = 16;

	while (n < limit && n < (1u << 24))
		n <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->mask = n - 1;
	t->count = 0;
	t->limit = limit ? limit : 1;
	t->seed = random_seed();
	t->lru.lru_next = t->lru.lru_prev = &t->lru;
	return 0;
}

void flow_table_destroy(struct flow_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
}

uint32_t flow_table_hash(const struct flow_table *t, const struct flow_key *key)
{
	return flow_key_hash(key, t->seed);
}

struct flow_entry *flow_table_find(const struct flow_table *t, const struct flow_key *key,
				   uint32_t hash)
{
	for (struct flow_entry *e = t->buckets[hash & t->mask]; e; e = e->chain)
		if (e->hash == hash && flow_key_equal(&e->key, key))
			return e;
	return NULL;
}

static void lru_unlink(struct flow_entry *e)
{
	e->lru_prev->lru_next = e->lru_next;
	e->lru_next->lru_prev = e->lru_prev;
}

static void lru_append(struct flow_table *t, struct flow_entry *e)
{
	e->lru_prev = t->lru.lru_prev;
	e->lru_next = &t->lru;
	t->lru.lru_prev->lru_next = e;
	t->lru.lru_prev = e;
}

void flow_table_insert(struct flow_table *t, struct flow_entry *e)
{
	struct flow_entry **b = &t->buckets[e->hash & t->mask];

	e->chain = *b;
	*b = e;
	lru_append(t, e);
	t->count++;
}

void flow_table_remove(struct flow_table *t, struct flow_entry *e)
{
	struct flow_entry **p = &t->buckets[e->hash & t->mask];

	while (*p && *p != e)
		p = &(*p)->chain;
	if (*p)
		*p = e->chain;
	lru_unlink(e);
	t->count--;
}

void flow_table_touch(struct flow_table *t, struct flow_entry *e)
{
	if (t->lru.lru_prev == e)
		return;
	lru_unlink(e);
	lru_append(t, e);
}

struct flow_entry *flow_table_oldest(const struct flow_table *t)
{
	return t->lru.lru_next == &t->lru ? NULL : t->lru.lru_next;
}

struct flow_entry *flow_table_newer(const struct flow_table *t, const struct flow_entry *e)
{
	return e->lru_next == &t->lru ? NULL : e->lru_next;
}
