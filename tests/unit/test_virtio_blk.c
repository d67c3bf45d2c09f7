/*
 * virtio-blk through the virtio-mmio registers, driven the way a guest driver
 * does it: negotiate, set up a queue in guest memory, submit requests against
 * a temporary image file, check the image, guest memory, statuses and the IRQ.
 *
 * No KVM here: the VM is virtio_harness.h's (guest memory, an MMIO bus, an
 * event loop on its own thread where the device completes requests, and the
 * vm_* functions devices call).
 *
 * Like a vCPU, the test holds io_lock for every register access; requests are
 * served by the device's worker thread and completed on the loop thread, so
 * the test waits for the used ring (wait_used) instead of assuming a kick
 * finished the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/file.h"

#include "dev/device.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_mmio.h"
#include "util/evloop.h"
#include "util/sbuf.h"
#include "vm/memory.h"
#include "vm/vm.h"

#define RAM_SIZE (8ULL << 20)
static struct vm vm;
static struct device *dev;
static uint16_t avail_idx, used_seen;
#include "virtio_harness.h"

/* ---- fixture ---- */

#define QSIZE     16
#define DESC      0x10000ULL
#define AVAIL     0x11000ULL
#define USED      0x12000ULL
#define HDR       0x20000ULL
#define DATA      0x30000ULL /* 64 KiB */
#define STATUS    0x50000ULL
#define TABLE     0x60000ULL
#define IMG_BYTES (1024 * 1024 + 100) /* not a sector multiple: 2048 sectors */
#define CAPACITY  2048

#define F(bit) (1ULL << (bit))
#define BLK_FEATURES                                                                        \
	(F(VIRTIO_F_VERSION_1) | F(VIRTIO_BLK_F_SEG_MAX) | F(VIRTIO_BLK_F_BLK_SIZE) |       \
	 F(VIRTIO_BLK_F_FLUSH))

static char img[64];

static int make_image(void)
{
	int fd;

	snprintf(img, sizeof(img), "/tmp/lockstep-blk-test-XXXXXX");
	fd = mkstemp(img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, IMG_BYTES), 0);
	return fd;
}

/* A disk on the image file (the usual backend). */
static int create_on_image(int readonly, struct device **out)
{
	struct blk_backend *be;
	int ret = blk_file_open(img, readonly, &be);

	return ret < 0 ? ret : virtio_blk_create(&vm, be, out);
}

static int setup_common(int readonly)
{
	int fd;

	vm_setup();
	fd = make_image();
	close(fd);
	if (readonly)
		assert_int_equal(chmod(img, 0444), 0);
	assert_int_equal(create_on_image(readonly, &dev), 0);
	return 0;
}

static int setup(void **state) { (void)state; return setup_common(0); }
static int setup_ro(void **state) { (void)state; return setup_common(1); }

/*
 * A backend the test controls: every call waits while the gate is shut
 * (a request stuck in a slow backend), then returns `fail`; reads return
 * GATE_BYTE. It records how many calls it got and on which thread.
 */
#define GATE_BYTE 0x5a
#define GATE_SIZE (1 << 20)

static struct gate_backend {
	struct blk_backend be;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool shut;
	int fail;
	int calls, inside, closes;
	bool on_test_thread;
} gate;
static pthread_t test_thread;

static int gate_pass(void)
{
	int ret;

	pthread_mutex_lock(&gate.lock);
	gate.calls++;
	gate.on_test_thread |= pthread_equal(pthread_self(), test_thread);
	gate.inside++;
	pthread_cond_broadcast(&gate.cond);
	while (gate.shut)
		pthread_cond_wait(&gate.cond, &gate.lock);
	gate.inside--;
	ret = gate.fail;
	pthread_mutex_unlock(&gate.lock);
	return ret;
}

static int gate_preadv(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t off)
{
	int ret = gate_pass();

	(void)be;
	(void)off;
	for (int i = 0; i < iovcnt && ret == 0; i++)
		memset(iov[i].iov_base, GATE_BYTE, iov[i].iov_len);
	return ret;
}

static int gate_pwritev(struct blk_backend *be, struct iovec *iov, int iovcnt, uint64_t off)
{
	(void)be, (void)iov, (void)iovcnt, (void)off;
	return gate_pass();
}

static int gate_flush(struct blk_backend *be) { (void)be; return gate_pass(); }
static uint64_t gate_size(struct blk_backend *be) { (void)be; return GATE_SIZE; }
static void gate_close(struct blk_backend *be) { (void)be; gate.closes++; }

static const struct blk_backend_ops gate_ops = {
	.kind = "gate", .preadv = gate_preadv, .pwritev = gate_pwritev,
	.flush = gate_flush, .size = gate_size, .close = gate_close,
};

static void gate_set(bool shut)
{
	pthread_mutex_lock(&gate.lock);
	gate.shut = shut;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* Waits until `n` calls are inside the backend. */
static void gate_wait_inside(int n)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	struct timespec ts;

	pthread_mutex_lock(&gate.lock);
	while (gate.inside != n && now_ms() < deadline) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&gate.cond, &gate.lock, &ts);
	}
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(gate.inside, n);
}

static int setup_gate(void **state)
{
	(void)state;
	vm_setup();
	img[0] = '\0';
	memset(&gate, 0, sizeof(gate));
	gate.be.ops = &gate_ops;
	pthread_mutex_init(&gate.lock, NULL);
	pthread_cond_init(&gate.cond, NULL);
	test_thread = pthread_self();
	assert_int_equal(virtio_blk_create(&vm, &gate.be, &dev), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vm_teardown();
	if (img[0])
		unlink(img);
	return 0;
}

/* ---- the guest driver ---- */

static int dev_save(struct device *d, struct sbuf *b)
{
	int ret;

	vm_io_lock(&vm);
	ret = d->ops->save(d, b);
	vm_io_unlock(&vm);
	return ret;
}

static int dev_load(struct device *d, struct sbuf_reader *r)
{
	int ret;

	vm_io_lock(&vm);
	ret = d->ops->load(d, r);
	vm_io_unlock(&vm);
	return ret;
}

/* What vm_pause_devices / vm_resume do: the op under io_lock. */
static void dev_pause(void)
{
	vm_io_lock(&vm);
	dev->ops->pause(dev);
	vm_io_unlock(&vm);
}

static void dev_resume(void)
{
	vm_io_lock(&vm);
	dev->ops->resume(dev);
	vm_io_unlock(&vm);
}

static void driver_init(uint64_t features)
{
	/* Fresh rings: a reset device starts again at index 0. */
	memset(gmem_ptr(&vm.mem, DESC, 0x3000), 0, 0x3000);
	avail_idx = used_seen = 0;
	assert_true(negotiate(features));
	setup_queue(0, DESC, AVAIL, USED, QSIZE);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 1);
	driver_ok();
	assert_int_equal(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	int writable;
};

static void put_desc(uint64_t table, uint16_t i, const struct seg *s, uint16_t flags,
		     uint16_t next)
{
	uint8_t d[16];

	flags |= s->writable ? VIRTQ_DESC_F_WRITE : 0;
	memcpy(d, &s->gpa, 8);
	memcpy(d + 8, &s->len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	assert_int_equal(gmem_write(&vm.mem, table + 16ULL * i, d, 16), 0);
}

/* Makes the chain at head available, without telling the device. */
static void make_avail(uint16_t head)
{
	uint16_t v = head;

	gmem_write(&vm.mem, AVAIL + 4 + 2ULL * (avail_idx % QSIZE), &v, 2);
	avail_idx++;
	gmem_write(&vm.mem, AVAIL + 2, &avail_idx, 2);
}

static void kick(uint16_t head)
{
	make_avail(head);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* Lays the chain out in descriptors 0..n-1 and makes it available. */
static void submit(const struct seg *segs, int n)
{
	for (int i = 0; i < n; i++)
		put_desc(DESC, (uint16_t)i, &segs[i], i + 1 < n ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	kick(0);
}

static uint16_t used_idx_unlocked(void)
{
	uint16_t v;

	gmem_read(&vm.mem, USED + 2, &v, 2);
	return v;
}

/* Read under io_lock: once the completion that moved it is seen, that
 * completion (interrupt included) is over. */
static uint16_t used_idx(void)
{
	uint16_t v;

	vm_io_lock(&vm);
	v = used_idx_unlocked();
	vm_io_unlock(&vm);
	return v;
}

/* Waits (up to WAIT_MS) until the device has completed at least `n` chains in all. */
static void wait_used_at_least(uint16_t n)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	while ((int16_t)(used_idx() - n) < 0 && now_ms() < deadline)
		usleep(1000);
	assert_true((int16_t)(used_idx() - n) >= 0);
}

/* Waits until exactly `n` chains have completed; they count as seen. */
static void wait_used_idx(uint16_t n)
{
	wait_used_at_least(n);
	assert_int_equal(used_idx(), n);
	used_seen = n;
}

/* The next used element, once the device completed it; returns its length
 * and checks its head. */
static uint32_t wait_used_head(uint16_t head)
{
	uint32_t elem[2];

	wait_used_at_least((uint16_t)(used_seen + 1));
	gmem_read(&vm.mem, USED + 4 + 8ULL * (used_seen % QSIZE), elem, 8);
	used_seen++;
	assert_int_equal(elem[0], head);
	return elem[1];
}

static uint32_t wait_used(void) { return wait_used_head(0); }

static uint8_t status_byte(void)
{
	uint8_t s;

	gmem_read(&vm.mem, STATUS, &s, 1);
	return s;
}

static void put_hdr(uint32_t type, uint64_t sector)
{
	uint8_t h[16] = { 0 };

	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	gmem_write(&vm.mem, HDR, h, 16);
	gmem_write(&vm.mem, STATUS, &(uint8_t){ 0xee }, 1);
}

/* A standard 3-descriptor request; returns the used length. */
static uint32_t request(uint32_t type, uint64_t sector, uint32_t data_len, int data_writable)
{
	struct seg segs[3] = {
		{ HDR, 16, 0 },
		{ DATA, data_len, data_writable },
		{ STATUS, 1, 1 },
	};

	put_hdr(type, sector);
	if (data_len) {
		submit(segs, 3);
	} else {
		segs[1] = segs[2];
		submit(segs, 2);
	}
	return wait_used();
}

static void fill_data(uint8_t seed, uint32_t len)
{
	uint8_t *p = gmem_ptr(&vm.mem, DATA, len);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static int page_dirty(uint64_t gpa)
{
	int64_t p = gmem_page_index(&vm.mem, gpa);

	return (vm.mem.vmm_dirty[p / 64] >> (p % 64)) & 1;
}

static void clear_dirty(void)
{
	memset(vm.mem.vmm_dirty, 0, (gmem_page_count(&vm.mem) + 63) / 64 * sizeof(uint64_t));
}

static void ack_interrupts(void)
{
	wr(VIRTIO_MMIO_INTERRUPT_ACK, rd(VIRTIO_MMIO_INTERRUPT_STATUS));
}

/* Request k of a batch (k < QSIZE / 3): descriptors 3k..3k+2, its own
 * header, 512-byte data buffer and status byte; made available, not kicked. */
#define BATCH_HDR(k)    (HDR + 16ULL * (k))
#define BATCH_DATA(k)   (DATA + 512ULL * (k))
#define BATCH_STATUS(k) (STATUS + (uint64_t)(k))

static void batch_put(int k, uint32_t type, uint64_t sector)
{
	struct seg segs[3] = {
		{ BATCH_HDR(k), 16, 0 },
		{ BATCH_DATA(k), 512, type == VIRTIO_BLK_T_IN },
		{ BATCH_STATUS(k), 1, 1 },
	};
	uint8_t h[16] = { 0 };

	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	gmem_write(&vm.mem, BATCH_HDR(k), h, 16);
	gmem_write(&vm.mem, BATCH_STATUS(k), &(uint8_t){ 0xee }, 1);
	for (int i = 0; i < 3; i++)
		put_desc(DESC, (uint16_t)(3 * k + i), &segs[i], i < 2 ? VIRTQ_DESC_F_NEXT : 0,
			 (uint16_t)(3 * k + i + 1));
	make_avail((uint16_t)(3 * k));
}

static uint8_t batch_status(int k)
{
	uint8_t st;

	gmem_read(&vm.mem, BATCH_STATUS(k), &st, 1);
	return st;
}

static struct virtio_blk *blk(void) { return virtio_blk_of(dev); }

static uint32_t in_flight(void)
{
	uint32_t n;

	vm_io_lock(&vm);
	n = blk()->in_flight;
	vm_io_unlock(&vm);
	return n;
}

/* Runs fn on another thread after ms milliseconds. */
struct later {
	pthread_t thread;
	unsigned ms;
	void (*fn)(void);
};

static void *later_main(void *arg)
{
	struct later *l = arg;

	usleep(l->ms * 1000);
	l->fn();
	return NULL;
}

static void later_start(struct later *l, unsigned ms, void (*fn)(void))
{
	l->ms = ms;
	l->fn = fn;
	assert_int_equal(pthread_create(&l->thread, NULL, later_main, l), 0);
}

static void gate_open(void) { gate_set(false); }

/* ---- tests ---- */

static void test_identity_and_config(void **state)
{
	uint64_t cap;
	uint32_t v;

	(void)state;
	assert_string_equal(dev->name, "virtio-blk0");
	assert_int_equal(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	assert_int_equal(rd(VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(offered_features(), BLK_FEATURES | F(VIRTIO_RING_F_INDIRECT_DESC) |
						     F(VIRTIO_RING_F_EVENT_IDX));
	io_read(VIRTIO_MMIO_CONFIG, &cap, 8);
	assert_int_equal(cap, CAPACITY);
	assert_int_equal(rd(VIRTIO_MMIO_CONFIG + 12), VIRTIO_BLK_SEG_MAX);
	assert_int_equal(rd(VIRTIO_MMIO_CONFIG + 20), 512);
	io_read(VIRTIO_MMIO_CONFIG + 1, &v, 2); /* odd widths are fine */
	assert_int_equal(v & 0xffff, CAPACITY >> 8);
	assert_int_equal(rd(VIRTIO_MMIO_CONFIG + 0x200), 0); /* past the config */
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BLK_QUEUE_SIZE);
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	/* Registers are 32-bit: a byte read gives nothing. */
	v = 0xffffffff;
	io_read(VIRTIO_MMIO_MAGIC_VALUE, &v, 1);
	assert_int_equal(v, 0xffffff00);
	assert_string_equal(vm.devices[0]->name, "virtio-blk0");
	assert_int_equal(vm.nvirtio, 1);
}

static void test_feature_negotiation(void **state)
{
	(void)state;
	assert_false(negotiate(BLK_FEATURES & ~F(VIRTIO_F_VERSION_1)));
	assert_false(negotiate(BLK_FEATURES | F(VIRTIO_BLK_F_RO))); /* not offered */
	assert_false(negotiate(BLK_FEATURES | F(40)));
	assert_true(negotiate(F(VIRTIO_F_VERSION_1)));
	assert_true(negotiate(BLK_FEATURES));
	/* Frozen after FEATURES_OK. */
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
	setup_queue(0, DESC, AVAIL, USED, QSIZE);
	driver_ok();
	assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	assert_false(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void test_status_rules(void **state)
{
	(void)state;
	/* DRIVER_OK before FEATURES_OK, or bits out of order: ignored. */
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(rd(VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
	/* The driver cannot set NEEDS_RESET. */
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(rd(VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
	/* Queue registers are closed before FEATURES_OK. */
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM), VIRTIO_BLK_QUEUE_SIZE);
	driver_init(BLK_FEATURES);
	/* ... and after DRIVER_OK. */
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1234);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM), QSIZE);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_DESC_LOW), DESC);
	/* Bits go away only through reset. */
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	wr(VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM), VIRTIO_BLK_QUEUE_SIZE);
}

static void test_bad_queue_setup(void **state)
{
	(void)state;
	assert_true(negotiate(BLK_FEATURES));
	/* Not a power of two, rings outside RAM, misaligned: QueueReady stays 0. */
	setup_queue(0, DESC, AVAIL, USED, 12);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	setup_queue(0, DESC, AVAIL, RAM_SIZE - 8, QSIZE);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	setup_queue(0, DESC + 8, AVAIL, USED, QSIZE);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	setup_queue(0, DESC, AVAIL, 0x100000000ULL + USED, QSIZE);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, VIRTIO_BLK_QUEUE_SIZE * 2); /* above max: ignored */
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM), QSIZE);
	/* DRIVER_OK without a ready queue: the device refuses and needs reset. */
	driver_ok();
	assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(irq_level, 1);
	wr(VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(irq_level, 0);
	driver_init(BLK_FEATURES);
}

static void test_write_then_read(void **state)
{
	uint8_t buf[1024], want[1024];
	int fd;

	(void)state;
	driver_init(BLK_FEATURES);
	fill_data(3, sizeof(want));
	memcpy(want, gmem_ptr(&vm.mem, DATA, sizeof(want)), sizeof(want));
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 10, 1024, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	ack_interrupts();
	assert_int_equal(irq_level, 0);
	assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	fd = open(img, O_RDONLY);
	assert_int_equal(pread(fd, buf, sizeof(buf), 10 * 512), sizeof(buf));
	close(fd);
	assert_memory_equal(buf, want, sizeof(want));

	memset(gmem_ptr(&vm.mem, DATA, sizeof(buf)), 0, sizeof(buf));
	clear_dirty();
	assert_int_equal(request(VIRTIO_BLK_T_IN, 10, 1024, 1), 1024 + 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	assert_memory_equal(gmem_ptr(&vm.mem, DATA, sizeof(want)), want, sizeof(want));
	/* Every page the device wrote is in the VMM dirty bitmap. */
	assert_true(page_dirty(DATA) && page_dirty(DATA + 1023) && page_dirty(USED));
	assert_false(page_dirty(TABLE));
	assert_int_equal(irq_raises, 2);

	/* Last sector of the disk, and zero-length transfers at the very end. */
	assert_int_equal(request(VIRTIO_BLK_T_IN, CAPACITY - 1, 512, 1), 513);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	assert_int_equal(request(VIRTIO_BLK_T_IN, CAPACITY, 0, 1), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
}

static void test_scattered_request(void **state)
{
	/* Header split in two, data in three pieces, status alone. */
	struct seg segs[] = {
		{ HDR, 4, 0 },          { HDR + 4, 12, 0 },     { DATA, 100, 1 },
		{ DATA + 0x1000, 412, 1 }, { DATA + 0x2000, 512, 1 }, { STATUS, 1, 1 },
	};
	uint8_t file_data[1024], *p;
	int fd;

	(void)state;
	for (int i = 0; i < 1024; i++)
		file_data[i] = (uint8_t)(i * 13 + 1);
	fd = open(img, O_WRONLY);
	assert_int_equal(pwrite(fd, file_data, 1024, 512 * 7), 1024);
	close(fd);
	driver_init(BLK_FEATURES);
	put_hdr(VIRTIO_BLK_T_IN, 7);
	submit(segs, 6);
	assert_int_equal(wait_used(), 1025);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	p = gmem_ptr(&vm.mem, DATA, 0x3000);
	assert_memory_equal(p, file_data, 100);
	assert_memory_equal(p + 0x1000, file_data + 100, 412);
	assert_memory_equal(p + 0x2000, file_data + 512, 512);
}

static void test_flush_and_get_id(void **state)
{
	char id[VIRTIO_BLK_ID_BYTES];

	(void)state;
	driver_init(BLK_FEATURES);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	memset(gmem_ptr(&vm.mem, DATA, 64), 0x55, 64);
	assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, 1), 21);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	memcpy(id, gmem_ptr(&vm.mem, DATA, sizeof(id)), sizeof(id));
	assert_string_equal(id, "lockstep-disk0");
	assert_int_equal(id[19], 0); /* NUL-padded */
	/* A short buffer gets what fits. */
	memset(gmem_ptr(&vm.mem, DATA, 64), 0x55, 64);
	assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, 8, 1), 9);
	assert_memory_equal(gmem_ptr(&vm.mem, DATA, 8), "lockstep", 8);
	assert_int_equal(*(uint8_t *)gmem_ptr(&vm.mem, DATA + 8, 1), 0x55);
}

static void test_out_of_range(void **state)
{
	(void)state;
	driver_init(BLK_FEATURES);
	assert_int_equal(request(VIRTIO_BLK_T_IN, CAPACITY - 1, 1024, 1), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, CAPACITY, 512, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_IN, UINT64_MAX, 512, 1), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	/* sector * 512 overflows 64 bits onto a small offset */
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 1ULL << 55, 512, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	/* not whole sectors */
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 100, 1), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	/* The tail of the image past the last whole sector is not reachable. */
	assert_int_equal(request(VIRTIO_BLK_T_IN, CAPACITY, 512, 1), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
}

static void test_unsupported(void **state)
{
	(void)state;
	driver_init(BLK_FEATURES);
	assert_int_equal(request(11 /* DISCARD */, 0, 16, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(request(0x12345678, 0, 0, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_UNSUPP);
}

static void test_readonly(void **state)
{
	uint8_t buf[512], zero[512] = { 0 };
	int fd;

	(void)state;
	assert_true(offered_features() & F(VIRTIO_BLK_F_RO));
	driver_init(BLK_FEATURES | F(VIRTIO_BLK_F_RO));
	fill_data(9, 512);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, 512, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	fd = open(img, O_RDONLY);
	assert_int_equal(pread(fd, buf, 512, 0), 512);
	close(fd);
	assert_memory_equal(buf, zero, 512);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512, 1), 513);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
}

static void expect_broken(void)
{
	uint16_t before = used_idx();

	assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(irq_level, 1);
	assert_int_equal(status_byte(), 0xee); /* untouched */
	/* Kicks are ignored until reset. */
	put_hdr(VIRTIO_BLK_T_FLUSH, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(used_idx(), before);
	/* Reset brings it back. */
	wr(VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(irq_level, 0);
	driver_init(BLK_FEATURES);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
}

static void test_short_header(void **state)
{
	struct seg segs[] = { { HDR, 8, 0 }, { STATUS, 1, 1 } };

	(void)state;
	driver_init(BLK_FEATURES);
	put_hdr(VIRTIO_BLK_T_FLUSH, 0);
	submit(segs, 2);
	assert_int_equal(used_idx(), 0);
	expect_broken();
}

static void test_missing_status(void **state)
{
	struct seg segs[] = { { HDR, 16, 0 }, { DATA, 512, 0 } };

	(void)state;
	driver_init(BLK_FEATURES);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	submit(segs, 2);
	assert_int_equal(used_idx(), 0);
	expect_broken();
}

static void test_malformed_chain(void **state)
{
	struct seg s = { HDR, 16, 0 };

	(void)state;
	driver_init(BLK_FEATURES);
	put_hdr(VIRTIO_BLK_T_FLUSH, 0);
	put_desc(DESC, 0, &s, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC, 1, &s, VIRTQ_DESC_F_NEXT, 0); /* loop */
	kick(0);
	expect_broken();
}

static void test_indirect_request(void **state)
{
	struct seg table[] = { { HDR, 16, 0 }, { DATA, 512, 1 }, { STATUS, 1, 1 } };
	struct seg ind = { TABLE, sizeof(table) / sizeof(table[0]) * 16, 0 };

	(void)state;
	driver_init(BLK_FEATURES | F(VIRTIO_RING_F_INDIRECT_DESC));
	for (uint16_t i = 0; i < 3; i++)
		put_desc(TABLE, i, &table[i], i < 2 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	put_hdr(VIRTIO_BLK_T_GET_ID, 0);
	put_desc(DESC, 0, &ind, VIRTQ_DESC_F_INDIRECT, 0);
	kick(0);
	assert_int_equal(wait_used(), 21);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	assert_string_equal((char *)gmem_ptr(&vm.mem, DATA, 20), "lockstep-disk0");

	/* Without the feature the same chain breaks the device. */
	wr(VIRTIO_MMIO_STATUS, 0);
	driver_init(BLK_FEATURES);
	put_hdr(VIRTIO_BLK_T_GET_ID, 0);
	kick(0);
	expect_broken();
}

static void test_no_interrupt_still_wakes(void **state)
{
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;

	(void)state;
	driver_init(BLK_FEATURES);
	gmem_write(&vm.mem, AVAIL, &flags, 2);
	idle_wakes = 0;
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(irq_level, 0);
	assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_true(idle_wakes > 0);
}

static void test_event_idx(void **state)
{
	uint16_t used_event = 5, avail_event;

	(void)state;
	driver_init(BLK_FEATURES | F(VIRTIO_RING_F_EVENT_IDX));
	gmem_write(&vm.mem, AVAIL + 4 + 2 * QSIZE, &used_event, 2);
	for (int i = 0; i < 5; i++) { /* used 0..5: no interrupt until 5 -> 6 */
		assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
		assert_int_equal(irq_level, 0);
	}
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(irq_level, 1);
	/* Going idle, the device asked to be kicked for the next chain. */
	gmem_read(&vm.mem, USED + 4 + 8 * QSIZE, &avail_event, 2);
	assert_int_equal(avail_event, 6);
}

static void test_kick_before_driver_ok(void **state)
{
	(void)state;
	assert_true(negotiate(BLK_FEATURES));
	setup_queue(0, DESC, AVAIL, USED, QSIZE);
	put_hdr(VIRTIO_BLK_T_FLUSH, 0);
	submit((struct seg[]){ { HDR, 16, 0 }, { STATUS, 1, 1 } }, 2);
	assert_int_equal(used_idx(), 0); /* not live yet */
	driver_ok();
	assert_int_equal(wait_used(), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
}

static void save_state(struct sbuf *b)
{
	sbuf_init(b);
	assert_int_equal(dev_save(dev, b), 0);
}

static void test_save_load(void **state)
{
	struct sbuf b, b2, bad;
	struct sbuf_reader r;

	(void)state;
	driver_init(BLK_FEATURES | F(VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(irq_level, 1); /* not acknowledged: saved as pending */
	save_state(&b);

	/* Reset, then load: the device is back where it was, interrupt included. */
	wr(VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(irq_level, 0);
	sbuf_reader_init(&r, b.data, b.len);
	assert_int_equal(dev_load(dev, &r), 0);
	assert_int_equal(sbuf_remaining(&r), 0);
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM), QSIZE);
	assert_int_equal(rd(VIRTIO_MMIO_QUEUE_DEVICE_LOW), USED);
	save_state(&b2);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);
	ack_interrupts();
	/* And it keeps serving at the right ring positions. */
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(used_idx(), 3);

	/* Every corrupted record is rejected and changes nothing. */
	sbuf_free(&b2);
	save_state(&b2);
	for (size_t off = 0; off < b.len; off++) {
		static const uint8_t flips[] = { 0x01, 0x80, 0xff };

		for (size_t k = 0; k < sizeof(flips); k++) {
			struct sbuf after;
			int ret;

			sbuf_init(&bad);
			sbuf_put(&bad, b.data, b.len);
			bad.data[off] ^= flips[k];
			sbuf_reader_init(&r, bad.data, bad.len);
			ret = dev_load(dev, &r);
			if (ret != 0) {
				save_state(&after);
				assert_int_equal(after.len, b2.len);
				assert_memory_equal(after.data, b2.data, b2.len);
				sbuf_free(&after);
			} else {
				/* Some fields take any value (selects, indexes, generation):
				 * put the good state back. */
				sbuf_reader_init(&r, b2.data, b2.len);
				assert_int_equal(dev_load(dev, &r), 0);
			}
			sbuf_free(&bad);
		}
	}
	/* Truncated anywhere. */
	for (size_t len = 0; len < b.len; len++) {
		sbuf_reader_init(&r, b.data, len);
		assert_int_equal(dev_load(dev, &r), -EINVAL);
	}
	sbuf_free(&b);
	sbuf_free(&b2);
}

static void test_load_rejects_other_disk(void **state)
{
	struct sbuf b;
	struct sbuf_reader r;
	struct device *dev0 = dev;
	struct device *dev1;
	char img2[64];
	int fd;

	(void)state;
	driver_init(BLK_FEATURES);
	save_state(&b);
	/* A second disk of another size: same device type, different capacity. */
	snprintf(img2, sizeof(img2), "/tmp/lockstep-blk-test2-XXXXXX");
	fd = mkstemp(img2);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	close(fd);
	{
		struct blk_backend *be;

		assert_int_equal(blk_file_open(img2, false, &be), 0);
		assert_int_equal(virtio_blk_create(&vm, be, &dev1), 0);
	}
	assert_string_equal(dev1->name, "virtio-blk1");
	assert_int_equal(vm.nvirtio, 2);
	sbuf_reader_init(&r, b.data, b.len);
	assert_int_equal(dev_load(dev1, &r), -EINVAL);
	/* ... while the disk it came from takes it. */
	sbuf_reader_init(&r, b.data, b.len);
	assert_int_equal(dev_load(dev0, &r), 0);
	unlink(img2);
	sbuf_free(&b);
}

static void test_create_errors(void **state)
{
	struct device *d = NULL;
	struct blk_backend *be = NULL;
	struct evloop *loop = vm.loop;

	(void)state;
	assert_int_equal(blk_file_open("/nonexistent/disk.img", false, &be), -ENOENT);
	assert_int_equal(blk_file_open("/tmp", true, &be), -EISDIR);
	assert_int_equal(blk_file_open("/tmp", false, &be), -EISDIR);
	assert_int_equal(blk_file_open("/dev/null", true, &be), -EINVAL); /* a character device */
	if (geteuid() != 0) { /* root may write anything */
		assert_int_equal(chmod(img, 0444), 0);
		assert_int_equal(blk_file_open(img, false, &be), -EACCES);
	}
	assert_null(be);
	/* Without an event loop there is nowhere to complete requests. */
	vm.loop = NULL;
	assert_int_equal(blk_file_open(img, true, &be), 0);
	assert_int_equal(virtio_blk_create(&vm, be, &d), -EINVAL);
	vm.loop = loop;
	assert_null(d);
	assert_int_equal(vm.ndevices, 1);
	assert_int_equal(vm.nvirtio, 1);
}


/* ---- requests on the worker ---- */

/* The kick only hands the request over: it returns while the backend still
 * has it, and the completion comes later, from the worker and event loop. */
static void test_kick_returns_before_io(void **state)
{
	(void)state;
	driver_init(BLK_FEATURES);
	gate_set(true);
	batch_put(0, VIRTIO_BLK_T_IN, 3);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* returned: the vCPU is free */
	gate_wait_inside(1);
	assert_int_equal(used_idx(), 0);
	assert_int_equal(in_flight(), 1);
	assert_int_equal(irq_level, 0);
	assert_int_equal(batch_status(0), 0xee);
	gate_set(false);
	assert_int_equal(wait_used(), 513);
	assert_int_equal(batch_status(0), VIRTIO_BLK_S_OK);
	assert_int_equal(*(uint8_t *)gmem_ptr(&vm.mem, BATCH_DATA(0) + 511, 1), GATE_BYTE);
	assert_int_equal(irq_level, 1);
	assert_int_equal(in_flight(), 0);
	assert_int_equal(blk()->stats.reads, 1);
	assert_int_equal(gate.calls, 1);
	assert_false(gate.on_test_thread); /* the backend was called on the worker */
}

/* Several requests out at once all come back, each exactly once. */
static void test_requests_in_flight_together(void **state)
{
	(void)state;
	driver_init(BLK_FEATURES);
	gate_set(true);
	for (int k = 0; k < 5; k++)
		batch_put(k, k % 2 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, (uint64_t)k);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	gate_wait_inside(1);
	assert_int_equal(in_flight(), 5);
	gate_set(false);
	for (int k = 0; k < 5; k++)
		wait_used_head((uint16_t)(3 * k)); /* in order: one worker */
	for (int k = 0; k < 5; k++)
		assert_int_equal(batch_status(k), VIRTIO_BLK_S_OK);
	usleep(20000);
	assert_int_equal(used_idx(), 5);
	assert_int_equal(gate.calls, 5);
	assert_int_equal(blk()->stats.reads, 3);
	assert_int_equal(blk()->stats.writes, 2);
}

/* Host errors are answered IOERR, counted, and leave the device working. */
static void test_backend_errors_reported(void **state)
{
	char id[VIRTIO_BLK_ID_BYTES];

	(void)state;
	driver_init(BLK_FEATURES);
	gate.fail = -EIO;
	memset(gmem_ptr(&vm.mem, DATA, 512), 0, 512);
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512, 1), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_OUT, 0, 512, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	/* Out of range never reaches the backend, and is an error too. */
	assert_int_equal(request(VIRTIO_BLK_T_IN, GATE_SIZE / 512, 512, 1), 1);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_IOERR);
	assert_int_equal(gate.calls, 3);
	assert_int_equal(blk()->stats.io_errors, 4);
	assert_int_equal(blk()->stats.reads + blk()->stats.writes + blk()->stats.flushes, 0);
	/* GET_ID needs no backend; the device is not broken. */
	assert_int_equal(request(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, 1), 21);
	memcpy(id, gmem_ptr(&vm.mem, DATA, sizeof(id)), sizeof(id));
	assert_string_equal(id, "lockstep-disk0");
	assert_false(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	gate.fail = 0;
	assert_int_equal(request(VIRTIO_BLK_T_IN, 0, 512, 1), 513);
	assert_int_equal(status_byte(), VIRTIO_BLK_S_OK);
	assert_int_equal(blk()->stats.reads, 1);
}

/* ---- pause, save, reset, destroy with requests out ---- */

static void *pause_main(void *arg)
{
	(void)arg;
	dev_pause();
	return NULL;
}

/*
 * Pause (io_lock held, as vm_pause_devices calls it) returns only once every
 * request handed to the worker is done and in the used ring; kicks made while
 * paused wait for resume.
 */
static void test_pause_drains_in_flight(void **state)
{
	struct sbuf b;
	pthread_t pauser;

	(void)state;
	driver_init(BLK_FEATURES);
	gate_set(true);
	for (int k = 0; k < 3; k++)
		batch_put(k, VIRTIO_BLK_T_OUT, (uint64_t)k);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	gate_wait_inside(1);
	assert_int_equal(pthread_create(&pauser, NULL, pause_main, NULL), 0);
	usleep(100000);
	/* Still waiting on the backend (and holding io_lock: no used_idx() here). */
	assert_int_equal(used_idx_unlocked(), 0);
	gate_set(false);
	pthread_join(pauser, NULL);
	/* Nothing left to wait for: everything completed before pause returned. */
	assert_int_equal(used_idx_unlocked(), 3);
	for (int k = 0; k < 3; k++)
		assert_int_equal(batch_status(k), VIRTIO_BLK_S_OK);
	assert_int_equal(in_flight(), 0);
	assert_int_equal(irq_level, 1);
	save_state(&b); /* nothing in flight: the state can be saved */
	sbuf_free(&b);
	/* Paused: a kick is taken note of, not served. */
	batch_put(3, VIRTIO_BLK_T_FLUSH, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	usleep(50000);
	assert_int_equal(gate.calls, 3);
	assert_int_equal(in_flight(), 0);
	assert_int_equal(used_idx(), 3);
	/* Resume serves what the guest queued meanwhile. */
	dev_resume();
	wait_used_idx(4);
	assert_int_equal(batch_status(3), VIRTIO_BLK_S_OK);
	assert_int_equal(gate.calls, 4);
}

/* Pause with nothing in flight, or with a backend that fails: same promise. */
static void test_pause_with_failing_request(void **state)
{
	(void)state;
	driver_init(BLK_FEATURES);
	gate_set(true);
	gate.fail = -EIO;
	batch_put(0, VIRTIO_BLK_T_IN, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	gate_wait_inside(1);
	gate_set(false);
	dev_pause();
	assert_int_equal(batch_status(0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(in_flight(), 0);
	assert_int_equal(blk()->stats.io_errors, 1);
	dev_pause(); /* idempotent */
	dev_resume();
	dev_resume();
	gate.fail = 0;
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
}

/* A state saved or loaded with a request in flight would lose or repeat it. */
static void test_save_refused_while_in_flight(void **state)
{
	struct sbuf b, during;
	struct sbuf_reader r;

	(void)state;
	driver_init(BLK_FEATURES);
	save_state(&b);
	gate_set(true);
	batch_put(0, VIRTIO_BLK_T_FLUSH, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	gate_wait_inside(1);
	sbuf_init(&during);
	assert_int_equal(dev_save(dev, &during), -EBUSY);
	sbuf_free(&during);
	sbuf_reader_init(&r, b.data, b.len);
	assert_int_equal(dev_load(dev, &r), -EBUSY);
	gate_set(false);
	wait_used_idx(1);
	sbuf_reader_init(&r, b.data, b.len);
	assert_int_equal(dev_load(dev, &r), 0);
	sbuf_free(&b);
}

/* Reset drops requests not started, waits for the one in the backend, and
 * completes nothing into the rings the driver gave up. */
static void test_reset_with_requests_pending(void **state)
{
	struct later l;

	(void)state;
	driver_init(BLK_FEATURES);
	gate_set(true);
	for (int k = 0; k < 3; k++)
		batch_put(k, VIRTIO_BLK_T_OUT, (uint64_t)k);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	gate_wait_inside(1);
	later_start(&l, 100, gate_open);
	wr(VIRTIO_MMIO_STATUS, 0); /* returns once the backend let go */
	pthread_join(l.thread, NULL);
	assert_int_equal(gate.calls, 1);
	assert_int_equal(in_flight(), 0);
	usleep(50000);
	assert_int_equal(used_idx(), 0);
	assert_int_equal(batch_status(0), 0xee);
	/* Every request is back in the pool: the device serves as before. */
	driver_init(BLK_FEATURES);
	assert_int_equal(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0), 1);
	assert_int_equal(gate.calls, 2);
}

/* Destroy with requests out: the one in the backend finishes, queued ones
 * are dropped, the backend is closed once, nothing is left running. */
static void test_destroy_with_requests_pending(void **state)
{
	struct later l;

	(void)state;
	driver_init(BLK_FEATURES);
	gate_set(true);
	for (int k = 0; k < 4; k++)
		batch_put(k, VIRTIO_BLK_T_IN, (uint64_t)k);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	gate_wait_inside(1);
	later_start(&l, 100, gate_open);
	dev->ops->destroy(dev);
	vm.ndevices = 0;
	pthread_join(l.thread, NULL);
	assert_int_equal(gate.calls, 1);
	assert_int_equal(gate.closes, 1);
}

/* The test delay (x-blk-test) makes a request slow without blocking the
 * kick, and a destroy cuts it short instead of waiting it out. */
static void test_test_delay(void **state)
{
	uint64_t t0;

	(void)state;
	driver_init(BLK_FEATURES);
	virtio_blk_set_test_delay(blk(), 200);
	t0 = now_ms();
	batch_put(0, VIRTIO_BLK_T_FLUSH, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(now_ms() - t0 < 150);
	wait_used_idx(1);
	assert_true(now_ms() - t0 >= 200);
	virtio_blk_set_test_delay(blk(), 60000);
	batch_put(1, VIRTIO_BLK_T_FLUSH, 0);
	batch_put(2, VIRTIO_BLK_T_FLUSH, 0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	usleep(20000);
	t0 = now_ms();
	dev->ops->destroy(dev);
	vm.ndevices = 0;
	assert_true(now_ms() - t0 < 5000);
	assert_int_equal(gate.calls, 2); /* the interrupted one still ran; the queued one did not */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_identity_and_config),
		T(test_feature_negotiation),
		T(test_status_rules),
		T(test_bad_queue_setup),
		T(test_write_then_read),
		T(test_scattered_request),
		T(test_flush_and_get_id),
		T(test_out_of_range),
		T(test_unsupported),
		cmocka_unit_test_setup_teardown(test_readonly, setup_ro, teardown),
		T(test_short_header),
		T(test_missing_status),
		T(test_malformed_chain),
		T(test_indirect_request),
		T(test_no_interrupt_still_wakes),
		T(test_event_idx),
		T(test_kick_before_driver_ok),
		T(test_save_load),
		T(test_load_rejects_other_disk),
		T(test_create_errors),
#undef T
#define G(fn) cmocka_unit_test_setup_teardown(fn, setup_gate, teardown)
		G(test_kick_returns_before_io),
		G(test_requests_in_flight_together),
		G(test_backend_errors_reported),
		G(test_pause_drains_in_flight),
		G(test_pause_with_failing_request),
		G(test_save_refused_while_in_flight),
		G(test_reset_with_requests_pending),
		G(test_destroy_with_requests_pending),
		G(test_test_delay),
#undef G
	};

	return cmocka_run_group_tests_name("virtio_blk", tests, NULL, NULL);
}
