/* The <string.h> lwIP includes: the guest's own string functions. */
#ifndef GUEST_LWIP_LIBC_STRING_H
#define GUEST_LWIP_LIBC_STRING_H

#include "guest_string.h"

#endif
