/* The Internet checksum (RFC 1071): one's-complement sum of 16-bit words. */
#ifndef GUEST_NET_CSUM_H
#define GUEST_NET_CSUM_H

#include "net_sys.h"

/* Adds len bytes at p to a running sum; an odd tail byte is padded with zero,
 * so only the last chunk of a message may have an odd length. */
uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len);
/* Folds the carries and complements: the value to store in a header, or 0
 * when verifying a message that includes its checksum field and is intact. */
uint16_t csum_fold(uint32_t sum);
/* The TCP/UDP pseudo-header (RFC 768) as a running sum. */
uint32_t csum_pseudo(uint32_t src_ip, uint32_t dst_ip, uint8_t proto, uint16_t len);

#endif
