#include "pattern.h"

static uint8_t pattern_byte(uint64_t at) { return (uint8_t)((at >> 3) >> (8 * (at & 7))); }

void pattern_fill(uint8_t *dst, uint64_t offset, size_t len)
{
	size_t i = 0;

	for (; i < len && ((offset + i) & 7); i++) /* up to a counter boundary */
		dst[i] = pattern_byte(offset + i);
	for (; i + 8 <= len; i += 8) { /* whole counters (x86 is little-endian) */
		uint64_t counter = (offset + i) >> 3;

		memcpy(dst + i, &counter, 8);
	}
	for (; i < len; i++)
		dst[i] = pattern_byte(offset + i);
}
