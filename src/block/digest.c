#include "block/digest.h"

#include <stdlib.h>
#include <xxhash.h>

#define DIGEST_CHUNK (1u << 20)

int blk_backend_digest(struct blk_backend *be, uint64_t *digest)
{
	uint64_t size = blk_backend_size(be);
	XXH3_state_t *h = XXH3_createState();
	uint8_t *buf = malloc(DIGEST_CHUNK);
	int ret = h && buf ? 0 : -ENOMEM;

	if (ret == 0)
		XXH3_64bits_reset(h);
	for (uint64_t off = 0; ret == 0 && off < size; off += DIGEST_CHUNK) {
		size_t n = size - off < DIGEST_CHUNK ? (size_t)(size - off) : DIGEST_CHUNK;
		struct iovec iov = { buf, n };

		if ((ret = blk_backend_preadv(be, &iov, 1, off)) == 0)
			XXH3_64bits_update(h, buf, n);
	}
	if (ret == 0)
		*digest = XXH3_64bits_digest(h);
	free(buf);
	XXH3_freeState(h);
	return ret;
}
