#include "kv_store.h"

#define MIN_BUCKETS 1024

struct entry {
	struct entry *next;
	uint64_t hash;
	size_t klen, vlen;
	uint8_t data[]; /* key, then value */
};

static struct entry **buckets;
static size_t nbuckets, count;

/* FNV-1a, 64-bit. */
static uint64_t hash_key(const uint8_t *k, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--)
		h = (h ^ *k++) * 0x100000001b3ULL;
	return h;
}

static struct entry **find_slot(const void *key, size_t klen, uint64_t h)
{
	struct entry **e;

	if (!buckets)
		return NULL;
	for (e = &buckets[h & (nbuckets - 1)]; *e; e = &(*e)->next)
		if ((*e)->hash == h && (*e)->klen == klen && memcmp((*e)->data, key, klen) == 0)
			return e;
	return e;
}

/* Doubles the table (or makes the first one); on no memory keeps the old one. */
static void grow(void)
{
	size_t n = nbuckets ? nbuckets * 2 : MIN_BUCKETS;
	struct entry **nb = malloc(n * sizeof(*nb));

	if (!nb)
		return;
	memset(nb, 0, n * sizeof(*nb));
	for (size_t i = 0; i < nbuckets; i++) {
		struct entry *e = buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(buckets);
	buckets = nb;
	nbuckets = n;
}

const uint8_t *kv_get(const void *key, size_t klen, size_t *vlen)
{
	struct entry **slot = find_slot(key, klen, hash_key(key, klen));

	if (!slot || !*slot)
		return NULL;
	*vlen = (*slot)->vlen;
	return (*slot)->data + klen;
}

int kv_set(const void *key, size_t klen, const void *val, size_t vlen)
{
	uint64_t h = hash_key(key, klen);
	struct entry **slot, *e;

	if (count >= nbuckets)
		grow();
	slot = find_slot(key, klen, h);
	if (!slot)
		return -1;
	e = malloc(sizeof(*e) + klen + vlen);
	if (!e)
		return -1;
	e->hash = h;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->data, key, klen);
	if (vlen)
		memcpy(e->data + klen, val, vlen);
	if (*slot) { /* replace */
		e->next = (*slot)->next;
		free(*slot);
	} else {
		e->next = NULL;
		count++;
	}
	*slot = e;
	return 0;
}

int kv_del(const void *key, size_t klen)
{
	struct entry **slot = find_slot(key, klen, hash_key(key, klen)), *e;

	if (!slot || !*slot)
		return 0;
	e = *slot;
	*slot = e->next;
	free(e);
	count--;
	return 1;
}

size_t kv_count(void) { return count; }

void kv_clear(void)
{
	for (size_t i = 0; i < nbuckets; i++) {
		struct entry *e = buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
		buckets[i] = NULL;
	}
	count = 0;
}
