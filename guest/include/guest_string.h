/* The guest's string functions (guest/lib/string.c): one declaration for
 * guest.h, the portable netstack and lwIP's <string.h>. */
#ifndef GUEST_STRING_H
#define GUEST_STRING_H

#include "types.h"

void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

#endif
