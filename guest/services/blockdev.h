/* A disk as the services see it (virtio-blk in the guest, memory in the host test). */
#ifndef GUEST_SERVICES_BLOCKDEV_H
#define GUEST_SERVICES_BLOCKDEV_H

#include "portable.h"

#define BLOCKDEV_SECTOR 512

struct blockdev {
	uint64_t sectors;
	/* Each returns 0, or -1 on an I/O error. Data is on stable storage only after flush. */
	int (*read)(void *ctx, uint64_t sector, void *buf, uint32_t nsectors);
	int (*write)(void *ctx, uint64_t sector, const void *buf, uint32_t nsectors);
	int (*flush)(void *ctx);
	void *ctx;
};

#endif
