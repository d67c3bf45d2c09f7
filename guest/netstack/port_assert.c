/* What lwIP does when one of its assertions fails: stop, loudly. */
#include "portable.h"

#ifdef LOCKSTEP_GUEST
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#endif

void lockstep_lwip_assert(const char *msg, const char *file, int line) __attribute__((noreturn));

void lockstep_lwip_assert(const char *msg, const char *file, int line)
{
#ifdef LOCKSTEP_GUEST
	panic("lwIP assertion \"%s\" failed at %s:%d", msg, file, line);
#else
	fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", msg, file, line);
	abort();
#endif
}
