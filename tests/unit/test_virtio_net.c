/*
 * virtio-net through the virtio-mmio registers on a fake network backend
 * (net/backend.h): TX reaches the backend's send; RX is pulled from its recv
 * only while the guest has buffers posted (on the event loop when its rx_fd
 * is readable, or at once when it calls its port's rx_changed); a wrapper put
 * in front gets the frames, the port and the handover, and gives them back.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "dev/device.h"
#include "dev/virtio_mmio.h"
#include "dev/virtio_net.h"
#include "dev/virtq.h"
#include "util/evloop.h"
#include "vm/memory.h"
#include "vm/vm.h"

#define RAM_SIZE (8ULL << 20)
static struct vm vm;
static struct device *dev;
static uint16_t avail_idx, used_seen; /* the harness's; this test keeps them per queue */
#include "virtio_harness.h"

#define QSIZE 16
#define RING(q)  (0x10000ULL + 0x4000ULL * (q)) /* desc; avail +0x1000; used +0x2000 */
#define BUF(q, i) (0x40000ULL + 0x10000ULL * (q) + 0x800ULL * (i))
#define BUF_LEN 0x800
#define VNET_HDR 12

/* ---- the backend ---- */

struct fake_backend {
	struct net_backend be;
	int fd;                          /* eventfd, readable while frames wait; -1: none */
	uint8_t rx[8][64];
	size_t rx_len[8];
	int rx_n, rx_next, recv_calls;
	uint8_t tx[8][BUF_LEN];
	size_t tx_len[8];
	int tx_n, attached, detached, closed;
};

static struct fake_backend tap, wrapper;

static int fake_send(struct net_backend *be, void *pkt, size_t len)
{
	struct fake_backend *f = (struct fake_backend *)be;

	if (f->be.inner) /* a wrapper: counts, then passes on */
		f->tx_n++;
	else {
		memcpy(f->tx[f->tx_n], pkt, len);
		f->tx_len[f->tx_n++] = len;
	}
	return f->be.inner ? net_backend_send(f->be.inner, pkt, len) : 0;
}

static ssize_t fake_recv(struct net_backend *be, void *buf, size_t cap)
{
	struct fake_backend *f = (struct fake_backend *)be;
	uint64_t count;

	f->recv_calls++;
	if (f->be.inner)
		return net_backend_recv(f->be.inner, buf, cap);
	if (f->rx_next == f->rx_n)
		return -EAGAIN;
	memcpy(buf, f->rx[f->rx_next], f->rx_len[f->rx_next]);
	if (++f->rx_next == f->rx_n && f->fd >= 0)
		assert_int_equal(read(f->fd, &count, sizeof(count)), sizeof(count));
	return (ssize_t)f->rx_len[f->rx_next - 1];
}

static int fake_rx_fd(struct net_backend *be)
{
	struct fake_backend *f = (struct fake_backend *)be;

	return f->be.inner ? net_backend_rx_fd(f->be.inner) : f->fd;
}

static int fake_attach(struct net_backend *be)
{
	struct fake_backend *f = (struct fake_backend *)be;

	f->attached++;
	return f->be.inner ? net_backend_attach(f->be.inner) : 0;
}

static void fake_detach(struct net_backend *be)
{
	struct fake_backend *f = (struct fake_backend *)be;

	f->detached++;
	if (f->be.inner)
		net_backend_detach(f->be.inner);
}

static void fake_close(struct net_backend *be)
{
	struct fake_backend *f = (struct fake_backend *)be;

	f->closed++;
	net_backend_close(net_backend_unwrap(be));
}

static const struct net_backend_ops fake_ops = {
	.send = fake_send, .recv = fake_recv, .rx_fd = fake_rx_fd,
	.attach = fake_attach, .detach = fake_detach, .close = fake_close,
};

/* A frame for the guest: a vnet header, then `tag` repeated. */
static void backend_has_frame(uint8_t tag, size_t len)
{
	uint64_t one = 1;

	vm_io_lock(&vm);
	memset(tap.rx[tap.rx_n], 0, VNET_HDR);
	memset(tap.rx[tap.rx_n] + VNET_HDR, tag, len - VNET_HDR);
	tap.rx_len[tap.rx_n++] = len;
	if (tap.fd >= 0)
		assert_int_equal(write(tap.fd, &one, sizeof(one)), sizeof(one));
	vm_io_unlock(&vm);
}

static int backend_recv_calls(void)
{
	int n;

	vm_io_lock(&vm);
	n = tap.recv_calls;
	vm_io_unlock(&vm);
	return n;
}

/* ---- the driver: queue 0 receives, queue 1 transmits ---- */

static uint16_t q_avail[2], q_used[2];

static void post(int q, int i, uint32_t len, bool writable)
{
	uint64_t gpa = BUF(q, i);
	uint16_t flags = writable ? VIRTQ_DESC_F_WRITE : 0, next = 0, head = (uint16_t)i;
	uint8_t d[16];

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	vm_io_lock(&vm); /* the loop thread reads the rings under it */
	gmem_write(&vm.mem, RING(q) + 16ULL * i, d, 16);
	gmem_write(&vm.mem, RING(q) + 0x1000 + 4 + 2ULL * (q_avail[q] % QSIZE), &head, 2);
	q_avail[q]++;
	gmem_write(&vm.mem, RING(q) + 0x1000 + 2, &q_avail[q], 2);
	vm_io_unlock(&vm);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, (uint32_t)q);
}

static uint16_t used_idx(int q)
{
	uint16_t v;

	vm_io_lock(&vm);
	gmem_read(&vm.mem, RING(q) + 0x2000 + 2, &v, 2);
	vm_io_unlock(&vm);
	return v;
}

/* The next used element of queue q (waiting for the loop up to WAIT_MS): its length. */
static uint32_t next_used(int q, uint16_t head)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	uint32_t elem[2];

	while (used_idx(q) == q_used[q] && now_ms() < deadline)
		usleep(1000);
	assert_int_not_equal(used_idx(q), q_used[q]);
	gmem_read(&vm.mem, RING(q) + 0x2000 + 4 + 8ULL * (q_used[q]++ % QSIZE), elem, 8);
	assert_int_equal(elem[0], head);
	return elem[1];
}

static void nothing_used(int q)
{
	usleep(50 * 1000);
	assert_int_equal(used_idx(q), q_used[q]);
}

static struct virtio_net *nic(void) { return (struct virtio_net *)dev; }

static int setup_with(int fd)
{
	vm_setup();
	memset(&tap, 0, sizeof(tap));
	memset(&wrapper, 0, sizeof(wrapper));
	tap.be.ops = wrapper.be.ops = &fake_ops;
	tap.fd = fd;
	wrapper.fd = -1;
	memset(q_avail, 0, sizeof(q_avail));
	memset(q_used, 0, sizeof(q_used));
	assert_int_equal(virtio_net_create(&vm, &tap.be, NULL, &dev), 0);
	memset(gmem_ptr(&vm.mem, RING(0), 0x8000), 0, 0x8000);
	assert_true(negotiate(1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_NET_F_MAC));
	setup_queue(VIRTIO_NET_RXQ, RING(0), RING(0) + 0x1000, RING(0) + 0x2000, QSIZE);
	setup_queue(VIRTIO_NET_TXQ, RING(1), RING(1) + 0x1000, RING(1) + 0x2000, QSIZE);
	driver_ok();
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_with(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

/* A backend without an fd: it only says when it has frames. */
static int setup_no_fd(void **state)
{
	(void)state;
	return setup_with(-1);
}

static int teardown(void **state)
{
	(void)state;
	vm_teardown();
	assert_int_equal(tap.closed, 1);
	if (tap.fd >= 0)
		close(tap.fd);
	return 0;
}

/* ---- tests ---- */

static void test_tx_reaches_the_backend(void **state)
{
	uint8_t *pkt = gmem_ptr(&vm.mem, BUF(1, 0), 60);

	(void)state;
	memset(pkt, 0, VNET_HDR);
	memset(pkt + VNET_HDR, 0xab, 48);
	post(VIRTIO_NET_TXQ, 0, 60, false);
	assert_int_equal(next_used(VIRTIO_NET_TXQ, 0), 0);
	assert_int_equal(tap.tx_n, 1);
	assert_int_equal(tap.tx_len[0], 60);
	assert_memory_equal(tap.tx[0], pkt, 60);
	assert_int_equal(nic()->stats.tx_frames, 1);
	assert_int_equal(nic()->stats.tx_bytes, 48);
}

static void test_rx_pulled_only_into_posted_buffers(void **state)
{
	uint8_t *buf = gmem_ptr(&vm.mem, BUF(0, 0), BUF_LEN);

	(void)state;
	backend_has_frame(0x11, 40);
	backend_has_frame(0x22, 50);
	nothing_used(VIRTIO_NET_RXQ);
	assert_int_equal(backend_recv_calls(), 0); /* no buffer: the frames wait in the backend */
	post(VIRTIO_NET_RXQ, 0, BUF_LEN, true);
	assert_int_equal(next_used(VIRTIO_NET_RXQ, 0), 40);
	assert_int_equal(buf[VNET_HDR], 0x11);
	assert_int_equal(buf[10], 1); /* num_buffers */
	nothing_used(VIRTIO_NET_RXQ);
	assert_int_equal(tap.rx_next, 1); /* the second one is still the backend's */
	post(VIRTIO_NET_RXQ, 1, BUF_LEN, true);
	assert_int_equal(next_used(VIRTIO_NET_RXQ, 1), 50);
	assert_int_equal(((uint8_t *)gmem_ptr(&vm.mem, BUF(0, 1), BUF_LEN))[VNET_HDR], 0x22);
	assert_int_equal(nic()->stats.rx_frames, 2);
}

static void test_rx_changed_without_an_fd(void **state)
{
	(void)state;
	post(VIRTIO_NET_RXQ, 0, BUF_LEN, true);
	backend_has_frame(0x33, 30);
	nothing_used(VIRTIO_NET_RXQ); /* nothing to watch: the backend must say so */
	vm_io_lock(&vm);
	net_backend_rx_changed(&tap.be);
	vm_io_unlock(&vm);
	assert_int_equal(used_idx(VIRTIO_NET_RXQ), 1); /* at once, on the caller's thread */
	assert_int_equal(next_used(VIRTIO_NET_RXQ, 0), 30);
}

static void test_wrapper_in_front_and_back(void **state)
{
	uint8_t *pkt = gmem_ptr(&vm.mem, BUF(1, 0), 40);

	(void)state;
	vm_io_lock(&vm);
	virtio_net_wrap_backend(nic(), &wrapper.be);
	vm_io_unlock(&vm);
	assert_ptr_equal(wrapper.be.inner, &tap.be);
	assert_memory_equal(wrapper.be.port.mac, nic()->mac, 6);
	/* Both ways through the wrapper. */
	memset(pkt, 0, 40);
	post(VIRTIO_NET_TXQ, 0, 40, false);
	next_used(VIRTIO_NET_TXQ, 0);
	assert_int_equal(wrapper.tx_n, 1);
	assert_int_equal(tap.tx_n, 1);
	backend_has_frame(0x44, 30);
	post(VIRTIO_NET_RXQ, 0, BUF_LEN, true);
	assert_int_equal(next_used(VIRTIO_NET_RXQ, 0), 30);
	assert_true(wrapper.recv_calls >= 1);
	/* The migration handover reaches the wrapper, which forwards it. */
	dev->ops->detach_backend(dev);
	assert_int_equal(wrapper.detached, 1);
	assert_int_equal(tap.detached, 1);
	assert_int_equal(dev->ops->attach_backend(dev), 0);
	assert_int_equal(wrapper.attached, 1);
	assert_int_equal(tap.attached, 1);
	/* Out again: the device talks to the TAP, the wrapper is the caller's. */
	vm_io_lock(&vm);
	assert_ptr_equal(virtio_net_unwrap_backend(nic()), &wrapper.be);
	assert_null(virtio_net_unwrap_backend(nic())); /* nothing in front any more */
	vm_io_unlock(&vm);
	assert_null(wrapper.be.inner);
	assert_ptr_equal(tap.be.port.opaque, nic());
	post(VIRTIO_NET_TXQ, 1, 40, false);
	next_used(VIRTIO_NET_TXQ, 1);
	assert_int_equal(wrapper.tx_n, 1);
	assert_int_equal(tap.tx_n, 2);
	assert_int_equal(wrapper.closed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tx_reaches_the_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_pulled_only_into_posted_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_changed_without_an_fd, setup_no_fd, teardown),
		cmocka_unit_test_setup_teardown(test_wrapper_in_front_and_back, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
