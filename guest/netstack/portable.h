/*
 * The only system interface of guest/netstack and guest/services, so the
 * same files build freestanding in the guest and as ordinary host code (the
 * host test feeds valid and hostile frames through them). Nothing in these
 * directories includes guest.h except the guest-only files that say so.
 */
#ifndef GUEST_NETSTACK_PORTABLE_H
#define GUEST_NETSTACK_PORTABLE_H

#ifdef LOCKSTEP_GUEST
#include "types.h"
#ifndef UINT64_MAX
#define UINT64_MAX 0xffffffffffffffffUL
#define INT64_MAX 0x7fffffffffffffffL
#define UINT32_MAX 0xffffffffU
#define SIZE_MAX 0xffffffffffffffffUL
#endif
#include "guest_string.h"
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *malloc(size_t size);
void *realloc(void *p, size_t size);
void *calloc(size_t count, size_t size);
void free(void *p);
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif

#endif
