/* The part of <stdlib.h> lwIP uses; implemented in guest/lib/malloc.c and string.c. */
#ifndef GUEST_LWIP_LIBC_STDLIB_H
#define GUEST_LWIP_LIBC_STDLIB_H

#include "types.h"

void *malloc(size_t size);
void *calloc(size_t count, size_t size);
void *realloc(void *p, size_t size);
void free(void *p);
int atoi(const char *s);

#endif
