/*
 * virtio-blk: each request is a chain of header (device-readable), data
 * (readable for writes, writable for reads) and a one-byte status (writable).
 * We wait for completion on the device's interrupt, sleeping in the idle call
 * between interrupts rather than spinning on the used ring.
 */
#include "drivers/virtio_blk.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

#define BLK_QUEUE_SIZE 128
#define BLK_CONFIG_CAPACITY 0
#define IDLE_SLICE_US 10000
#define REQUEST_TIMEOUT_MS 10000
#define STATUS_UNSET 0xff

int virtio_blk_init(struct virtio_blk *b)
{
	uint64_t wanted = 1UL << VIRTIO_BLK_F_RO | 1UL << VIRTIO_BLK_F_FLUSH |
			  1UL << VIRTIO_BLK_F_BLK_SIZE | 1UL << VIRTIO_BLK_F_SEG_MAX;
	uint8_t *page;

	*b = (struct virtio_blk){ 0 };
	if (virtio_find(VIRTIO_ID_BLK, &b->dev) < 0 || virtio_negotiate(&b->dev, wanted) < 0)
		return -1;
	if (virtio_setup_vq(&b->dev, &b->vq, 0, BLK_QUEUE_SIZE) < 0) {
		virtio_fail(&b->dev);
		return -1;
	}
	b->capacity = virtio_config_read64(&b->dev, BLK_CONFIG_CAPACITY);
	b->readonly = virtio_has(&b->dev, VIRTIO_BLK_F_RO);
	page = page_alloc(1);
	b->hdr = (struct virtio_blk_req_hdr *)page;
	b->status = page + sizeof(*b->hdr);
	if (irq_enable(b->dev.gsi) < 0) {
		virtio_fail(&b->dev);
		return -1;
	}
	virtio_driver_ok(&b->dev);
	return 0;
}

/* Sleeps until the interrupt says our chain is back (or the deadline passes). */
static int wait_for_completion(struct virtio_blk *b)
{
	uint32_t start = guest_clock_ms();

	for (;;) {
		virtio_irq_ack(&b->dev); /* lower the line first: the next completion is a new edge */
		if (vq_get_used(&b->vq, NULL))
			return 0;
		if (guest_clock_ms() - start > REQUEST_TIMEOUT_MS)
			return -1;
		if (b->while_waiting)
			b->while_waiting(b);
		if (!irq_take(b->dev.gsi))
			guest_idle(IDLE_SLICE_US);
	}
}

/* Runs one request: header, optional data segment, status byte. */
static int blk_request(struct virtio_blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len,
		       bool data_in)
{
	struct vq_seg segs[3];
	int n = 0, n_out;

	if (b->broken)
		return -1;
	*b->hdr = (struct virtio_blk_req_hdr){ .type = type, .sector = sector };
	*b->status = STATUS_UNSET;
	segs[n++] = (struct vq_seg){ b->hdr, sizeof(*b->hdr) };
	if (len && !data_in)
		segs[n++] = (struct vq_seg){ data, len };
	n_out = n;
	if (len && data_in)
		segs[n++] = (struct vq_seg){ data, len };
	segs[n++] = (struct vq_seg){ (void *)b->status, 1 };
	if (vq_add_chain(&b->vq, segs, n_out, n - n_out, b) < 0)
		return -1;
	vq_kick(&b->vq);
	if (wait_for_completion(b) < 0) {
		b->broken = true;
		virtio_fail(&b->dev);
		return -1;
	}
	return *b->status == STATUS_UNSET ? -1 : *b->status;
}

int virtio_blk_read(struct virtio_blk *b, uint64_t sector, void *buf, uint32_t nsectors)
{
	return blk_request(b, VIRTIO_BLK_T_IN, sector, buf, nsectors * VIRTIO_BLK_SECTOR_SIZE, true);
}

int virtio_blk_write(struct virtio_blk *b, uint64_t sector, const void *buf, uint32_t nsectors)
{
	return blk_request(b, VIRTIO_BLK_T_OUT, sector, (void *)buf, nsectors * VIRTIO_BLK_SECTOR_SIZE,
			   false);
}

int virtio_blk_flush(struct virtio_blk *b) { return blk_request(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false); }

int virtio_blk_get_id(struct virtio_blk *b, char *id)
{
	int st;

	memset(id, 0, VIRTIO_BLK_ID_BYTES + 1);
	st = blk_request(b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES, true);
	id[VIRTIO_BLK_ID_BYTES] = '\0';
	return st;
}
