/*
 * The only system interface of the network stack, so the same files build
 * freestanding in the guest and as ordinary host code (the host tests feed
 * hostile frames through them). Nothing else in guest/net includes guest.h.
 */
#ifndef GUEST_NET_SYS_H
#define GUEST_NET_SYS_H

#ifdef LOCKSTEP_GUEST
#include "types.h"
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#endif

#endif
