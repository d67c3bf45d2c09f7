/*
 * The COLO network link's frame reassembly (src/colo/net/link.c) fed hostile
 * bytes cut at arbitrary points: every frame handed out must lie inside the
 * reader's buffer with a length the format allows, and a bad header must stop
 * the stream, never overrun.
 */
#include <stdint.h>
#include <string.h>

#include "colo/net/link.h"

static void on_frame(void *opaque, const struct colo_link_hdr *h, uint8_t *frame)
{
	size_t *seen = opaque;

	if (h->len < 12 || h->len > COLO_LINK_MAX_FRAME)
		__builtin_trap();
	/* Touch the whole frame: ASan checks it lies in the buffer. */
	*seen += frame[0] + frame[h->len - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct colo_link_reader r;
	size_t seen = 0, pos = 0;

	if (size < 1 || colo_link_reader_init(&r) < 0)
		return 0;
	/* The first byte chooses how the stream is cut into reads. */
	for (size_t step = (size_t)data[0] % 97 + 1; pos + 1 < size; pos += step) {
		size_t n = size - 1 - pos < step ? size - 1 - pos : step;

		if (colo_link_feed(&r, data + 1 + pos, n, on_frame, &seen) < 0)
			break;
	}
	colo_link_reader_free(&r);
	return 0;
}
