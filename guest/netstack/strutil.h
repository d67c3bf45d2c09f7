/* Number parsing and formatting on length-delimited strings (protocol fields
 * are not NUL-terminated), and case-insensitive comparison. */
#ifndef GUEST_NETSTACK_STRUTIL_H
#define GUEST_NETSTACK_STRUTIL_H

#include "portable.h"

/* All of s[0..len) as a decimal number; 0, or -1 when empty, not digits, or too big. */
int str_to_u64(const char *s, size_t len, uint64_t *out);
/* Same with an optional leading '-', within the int64_t range. */
int str_to_i64(const char *s, size_t len, int64_t *out);
/* Decimal text of v into buf (at least 21 bytes), NUL-terminated; returns its length. */
size_t i64_to_str(int64_t v, char *buf);
/* 1 when s[0..len) equals the NUL-terminated word, ignoring ASCII case. */
bool str_ieq(const char *s, size_t len, const char *word);
/* The first occurrence of needle in s[0..len), or NULL. */
const char *mem_find(const char *s, size_t len, const char *needle, size_t nlen);

#endif
