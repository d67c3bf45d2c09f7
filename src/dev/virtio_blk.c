#include "dev/virtio_blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "vm/vm.h"

#define VIRTIO_BLK_STATE_VERSION 1
/* struct virtio_blk_config up to num_queues (virtio 1.2, 5.2.4). */
#define VIRTIO_BLK_CONFIG_SIZE 36

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

_Static_assert(sizeof(struct virtio_blk_req_hdr) == VIRTIO_BLK_HDR_BYTES, "blk header");

static struct virtio_blk *to_blk(struct virtio_mmio *t) { return (struct virtio_blk *)t; }

/* ---- requests ------------------------------------------------------------ */

/* [sector, sector + len) inside the disk, whole sectors, and not absurdly long. */
static bool blk_range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t len)
{
	return len % VIRTIO_BLK_SECTOR_SIZE == 0 && len <= VIRTIO_BLK_MAX_XFER &&
	       sector <= b->capacity && len / VIRTIO_BLK_SECTOR_SIZE <= b->capacity - sector;
}

static void blk_host_error(struct virtio_blk *b, const char *what, int err)
{
	/* Log the first one only: a failing disk would otherwise flood the log. */
	if (b->stats.io_errors++ == 0)
		log_warn("%s: %s failed: %s", b->mmio.name, what, strerror(-err));
}

static uint8_t blk_read(struct virtio_blk *b, const struct virtq_chain *c, uint64_t sector,
			uint64_t len)
{
	int n, ret;

	if (!blk_range_ok(b, sector, len)) {
		b->stats.io_errors++;
		return VIRTIO_BLK_S_IOERR;
	}
	n = virtq_chain_iov(c, true, 0, len, b->iov, VIRTQ_MAX_SEGS);
	ret = n < 0 ? n : blk_file_preadv(&b->file, b->iov, n, sector * VIRTIO_BLK_SECTOR_SIZE);
	virtq_chain_written(c, 0, len);
	if (ret < 0) {
		blk_host_error(b, "read", ret);
		return VIRTIO_BLK_S_IOERR;
	}
	b->stats.reads++;
	b->stats.read_bytes += len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_write(struct virtio_blk *b, const struct virtq_chain *c, uint64_t sector,
			 uint64_t len)
{
	int n, ret;

	if (b->file.readonly || !blk_range_ok(b, sector, len)) {
		b->stats.io_errors++;
		return VIRTIO_BLK_S_IOERR;
	}
	n = virtq_chain_iov(c, false, VIRTIO_BLK_HDR_BYTES, len, b->iov, VIRTQ_MAX_SEGS);
	ret = n < 0 ? n : blk_file_pwritev(&b->file, b->iov, n, sector * VIRTIO_BLK_SECTOR_SIZE);
	if (ret < 0) {
		blk_host_error(b, "write", ret);
		return VIRTIO_BLK_S_IOERR;
	}
	b->stats.writes++;
	b->stats.write_bytes += len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_flush(struct virtio_blk *b)
{
	int ret = blk_file_flush(&b->file);

	if (ret < 0) {
		blk_host_error(b, "flush", ret);
		return VIRTIO_BLK_S_IOERR;
	}
	b->stats.flushes++;
	return VIRTIO_BLK_S_OK;
}

/* The serial, NUL-padded to 20 bytes, cut to the room the driver gave. */
static uint8_t blk_get_id(struct virtio_blk *b, const struct virtq_chain *c, uint64_t room,
			  uint64_t *written)
{
	char id[VIRTIO_BLK_ID_BYTES] = { 0 };

	memcpy(id, b->serial, strnlen(b->serial, sizeof(id)));
	*written = room < sizeof(id) ? room : sizeof(id);
	virtq_chain_write(c, 0, id, *written);
	b->stats.get_ids++;
	return VIRTIO_BLK_S_OK;
}

/*
 * One request: a 16-byte header in the readable part, data (readable for OUT,
 * writable for IN/GET_ID), and the status in the last writable byte. A chain
 * without room for both header and status is not a request: -EINVAL, and the
 * caller marks the device broken (we have nowhere to put a status).
 * Returns the used length: data bytes written plus the status byte.
 */
static int blk_serve(struct virtio_blk *b, const struct virtq_chain *c, uint32_t *used_len)
{
	struct virtio_blk_req_hdr hdr;
	uint64_t data_out, data_in, written = 0;
	uint8_t status;

	if (c->readable_len < sizeof(hdr) || c->writable_len < 1 ||
	    virtq_chain_read(c, 0, &hdr, sizeof(hdr)))
		return -EINVAL;
	data_out = c->readable_len - sizeof(hdr);
	data_in = c->writable_len - 1;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		status = blk_read(b, c, hdr.sector, data_in);
		if (status == VIRTIO_BLK_S_OK)
			written = data_in;
		break;
	case VIRTIO_BLK_T_OUT:
		status = blk_write(b, c, hdr.sector, data_out);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = blk_flush(b);
		break;
	case VIRTIO_BLK_T_GET_ID:
		status = blk_get_id(b, c, data_in, &written);
		break;
	default:
		b->stats.unsupported++;
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (virtq_chain_write(c, c->writable_len - 1, &status, 1))
		return -EINVAL;
	*used_len = (uint32_t)written + 1;
	return 0;
}

/* Serves every request the driver has made available. Returns why the queue
 * is broken, or NULL. */
static const char *blk_drain_queue(struct virtio_blk *b, bool *pushed)
{
	struct virtq *q = &b->mmio.queues[0];
	uint32_t used_len;
	int ret;

	do {
		while ((ret = virtq_pop_avail(q, &b->chain)) > 0) {
			if (blk_serve(b, &b->chain, &used_len) < 0)
				return "malformed request (header under 16 bytes or no status byte)";
			if (virtq_push_used(q, b->chain.head, used_len) < 0)
				return "used ring not writable";
			*pushed = true;
		}
		if (ret < 0)
			return "malformed descriptor chain or avail ring";
	} while (virtq_enable_notify(q));
	return NULL;
}

/* ---- virtio device ops --------------------------------------------------- */

static void blk_notify(struct virtio_mmio *t, uint16_t qi)
{
	struct virtio_blk *b = to_blk(t);
	bool pushed = false;
	const char *broken;

	if (qi != 0)
		return;
	broken = blk_drain_queue(b, &pushed);
	if (pushed)
		virtio_mmio_notify_used(t, 0);
	if (broken)
		virtio_mmio_device_error(t, broken);
}

static int blk_activate(struct virtio_mmio *t) { return t->queues[0].ready ? 0 : -EINVAL; }

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void blk_config_read(struct virtio_mmio *t, uint32_t off, void *data, uint32_t len)
{
	struct virtio_blk *b = to_blk(t);
	uint8_t cfg[VIRTIO_BLK_CONFIG_SIZE] = { 0 };

	put_le32(cfg + 0, (uint32_t)b->capacity); /* capacity, u64 */
	put_le32(cfg + 4, (uint32_t)(b->capacity >> 32));
	put_le32(cfg + 12, VIRTIO_BLK_SEG_MAX);   /* seg_max */
	put_le32(cfg + 20, VIRTIO_BLK_SECTOR_SIZE); /* blk_size */
	memcpy(data, cfg + off, len);
}

/* Device record: u32 version, u64 capacity, u8 readonly. Nothing in it changes
 * at run time; the loader only checks that the disk it was given matches. */
static int blk_save(struct virtio_mmio *t, struct sbuf *out)
{
	struct virtio_blk *b = to_blk(t);

	sbuf_put_u32(out, VIRTIO_BLK_STATE_VERSION);
	sbuf_put_u64(out, b->capacity);
	sbuf_put_u8(out, (uint8_t)b->file.readonly);
	return 0;
}

static int blk_load(struct virtio_mmio *t, struct sbuf_reader *in)
{
	struct virtio_blk *b = to_blk(t);
	uint32_t version = sbuf_get_u32(in);
	uint64_t capacity = sbuf_get_u64(in);
	uint8_t readonly = sbuf_get_u8(in);

	if (sbuf_reader_error(in) || sbuf_remaining(in) || version != VIRTIO_BLK_STATE_VERSION)
		return -EINVAL;
	if (capacity != b->capacity || readonly != !!b->file.readonly) {
		log_error("%s: saved disk has %llu sectors%s, this one %llu%s", t->name,
			  (unsigned long long)capacity, readonly ? " (read-only)" : "",
			  (unsigned long long)b->capacity, b->file.readonly ? " (read-only)" : "");
		return -EINVAL;
	}
	return 0;
}

static void blk_destroy(struct virtio_mmio *t)
{
	struct virtio_blk *b = to_blk(t);

	blk_file_close(&b->file);
	free(b);
}

static const struct virtio_dev_ops virtio_blk_ops = {
	.kind = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.config_read = blk_config_read,
	.activate = blk_activate,
	.notify = blk_notify,
	.save = blk_save,
	.load = blk_load,
	.destroy = blk_destroy,
};

int virtio_blk_create(struct vm *vm, const char *path, int readonly, struct device **out)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	uint64_t features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
			    1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
			    1ULL << VIRTIO_RING_F_EVENT_IDX;
	int ret;

	if (!b)
		return -ENOMEM;
	ret = blk_file_open(&b->file, path, readonly);
	if (ret < 0) {
		free(b);
		return ret;
	}
	b->capacity = blk_file_size(&b->file) / VIRTIO_BLK_SECTOR_SIZE;
	if (blk_file_size(&b->file) % VIRTIO_BLK_SECTOR_SIZE)
		log_warn("disk %s: size is not a multiple of 512; the last %llu bytes are not visible",
			 path, (unsigned long long)(blk_file_size(&b->file) % VIRTIO_BLK_SECTOR_SIZE));
	if (readonly)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	virtio_mmio_init(&b->mmio, vm, &virtio_blk_ops, features);
	snprintf(b->serial, sizeof(b->serial), "lockstep-disk%d", b->mmio.index);
	ret = virtio_mmio_attach(&b->mmio);
	if (ret < 0) {
		blk_destroy(&b->mmio);
		return ret;
	}
	*out = &b->mmio.dev;
	return 0;
}
