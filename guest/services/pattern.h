/*
 * The deterministic byte stream of the HTTP bodies and of the guest's own
 * client stream: the concatenation of the 64-bit little-endian counters
 * 0, 1, 2, ..., cut to the wanted length. Byte i is byte (i % 8) of the
 * little-endian encoding of i / 8. In Python:
 *   b"".join(struct.pack("<Q", k) for k in range(n // 8 + 1))[:n]
 * A lost, duplicated or reordered chunk anywhere shows.
 */
#ifndef GUEST_SERVICES_PATTERN_H
#define GUEST_SERVICES_PATTERN_H

#include "portable.h"

/* Writes stream bytes [offset, offset + len) to dst. */
void pattern_fill(uint8_t *dst, uint64_t offset, size_t len);

#endif
