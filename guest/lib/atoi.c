/* atoi, for lwIP's netif_find() (netif names like "en0"). */
#include "guest.h"

int atoi(const char *s)
{
	int sign = 1, v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '-' || *s == '+')
		sign = *s++ == '-' ? -1 : 1;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return sign * v;
}
