/*
 * lwIP's platform header. In the guest (LOCKSTEP_GUEST) there is no libc:
 * types come from guest/include/types.h and the few C library functions lwIP
 * calls are declared by guest/lwip_port/libc/. On the host (the host test) the
 * system headers serve.
 */
#ifndef GUEST_LWIP_ARCH_CC_H
#define GUEST_LWIP_ARCH_CC_H

#ifdef LOCKSTEP_GUEST
#include "types.h"

#define LWIP_NO_STDDEF_H 1
#define LWIP_NO_STDINT_H 1
#define LWIP_NO_INTTYPES_H 1
#define LWIP_NO_LIMITS_H 1
#define LWIP_NO_UNISTD_H 1
#define LWIP_NO_CTYPE_H 1

typedef uint8_t u8_t;
typedef int8_t s8_t;
typedef uint16_t u16_t;
typedef int16_t s16_t;
typedef uint32_t u32_t;
typedef int32_t s32_t;
typedef uint64_t u64_t;
typedef int64_t s64_t;
typedef uintptr_t mem_ptr_t;
typedef long ptrdiff_t;
#define LWIP_HAVE_INT64 1

#define INT_MAX 0x7fffffff
#define SSIZE_MAX 0x7fffffffffffffffL /* types.h has ssize_t */

/* printf formats of lwIP's debug messages (compiled out, but must parse). */
#define X8_F "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "lu"

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#else
#include <stdio.h>
#include <stdlib.h>
#endif

#define lwip_htons(x) __builtin_bswap16(x)
#define lwip_htonl(x) __builtin_bswap32(x)

void lockstep_lwip_assert(const char *msg, const char *file, int line) __attribute__((noreturn));
unsigned int lockstep_rand(void);

#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) lockstep_lwip_assert(x, __FILE__, __LINE__)
#define LWIP_RAND() lockstep_rand()

#endif
