#include "nd_filter.h"

#define ETH_HLEN 14
#define IP6_HLEN 40
#define ETHERTYPE_IPV6 0x86dd
#define NEXT_ICMPV6 58

/* The fixed part of each ND message before its options (RFC 4861 section 4). */
static size_t nd_header_len(uint8_t type)
{
	switch (type) {
	case 133: return 8;  /* router solicitation */
	case 134: return 16; /* router advertisement */
	case 135:            /* neighbour solicitation */
	case 136: return 24; /* neighbour advertisement */
	case 137: return 40; /* redirect */
	default: return 0;
	}
}

bool nd_option_malformed(const uint8_t *frame, size_t len)
{
	const uint8_t *ip = frame + ETH_HLEN, *msg = ip + IP6_HLEN;
	size_t mlen, off;

	if (len < ETH_HLEN + IP6_HLEN + 4 || (frame[12] << 8 | frame[13]) != ETHERTYPE_IPV6 ||
	    ip[6] != NEXT_ICMPV6)
		return false;
	mlen = (size_t)(ip[4] << 8 | ip[5]);
	if (mlen > len - ETH_HLEN - IP6_HLEN)
		mlen = len - ETH_HLEN - IP6_HLEN;
	off = nd_header_len(msg[0]);
	if (!off)
		return false;
	for (; off + 2 <= mlen; off += (size_t)msg[off + 1] * 8)
		if (msg[off + 1] == 0)
			return true;
	return false;
}
