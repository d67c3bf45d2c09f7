/*
 * RFC 4861 (sections 6.1 and 7.1) says a node MUST silently discard a
 * neighbour discovery message that carries an option of length zero; lwIP
 * 2.1 does not check it for solicitations and advertisements (a "@todo" in
 * nd6.c), so received frames are checked here before the stack sees them.
 */
#ifndef GUEST_NETSTACK_ND_FILTER_H
#define GUEST_NETSTACK_ND_FILTER_H

#include "portable.h"

/* True when frame is an ND message (ICMPv6 133-137) with a zero-length option. */
bool nd_option_malformed(const uint8_t *frame, size_t len);

#endif
