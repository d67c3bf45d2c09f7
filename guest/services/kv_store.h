/* The key-value map of the KV service: binary-safe keys and values in a
 * chained hash table that doubles as it fills. */
#ifndef GUEST_SERVICES_KV_STORE_H
#define GUEST_SERVICES_KV_STORE_H

#include "portable.h"

/* The value of key, or NULL; *vlen set. Valid until the next change. */
const uint8_t *kv_get(const void *key, size_t klen, size_t *vlen);
/* 0, or -1 when memory runs out (the old value, if any, stays). */
int kv_set(const void *key, size_t klen, const void *val, size_t vlen);
/* 1 when the key existed. */
int kv_del(const void *key, size_t klen);
size_t kv_count(void);
void kv_clear(void);

#endif
