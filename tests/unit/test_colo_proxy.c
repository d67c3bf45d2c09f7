/*
 * The COLO network proxy driven as a network backend, without a NIC or KVM:
 * a fake inner backend stands for the TAP, the test plays the peer at the
 * other end of a real link (loopback TCP, connected the way colo_net_start
 * connects it) and calls the proxy's checkpoint participant hooks as the COLO
 * thread would. Checked: the secondary's mirror queue (order, the barrier at
 * `applied`), the epoch on its output, the primary's comparator between guest
 * and TAP, its epoch rules for the secondary's frames, and both failovers.
 *
 * Like the device, the test holds io_lock around every backend op. Link input
 * is dispatched on the event loop's thread, so the test waits for its effect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "colo/colo_internal.h"
#include "colo/net/proxy_internal.h"
#include "net_frames.h"
#include "util/evloop.h"
#include "vm/vm.h"

#define WAIT_MS 10000
#define MAX_FRAMES 16

/* ---- the TAP the proxy is in front of ---- */

struct fake_frame {
	size_t len;
	uint8_t data[1600];
};

struct fake_inner {
	struct net_backend be;
	int fd; /* an eventfd: "readable" for the device */
	struct fake_frame rx[MAX_FRAMES]; /* frames it will give, in order */
	int rx_len, rx_next;
	struct fake_frame tx[MAX_FRAMES]; /* frames it was given */
	int tx_len;
	int closed;
};

static int fake_send(struct net_backend *be, void *pkt, size_t len)
{
	struct fake_inner *f = (struct fake_inner *)be;

	assert_true(f->tx_len < MAX_FRAMES && len <= sizeof(f->tx[0].data));
	memcpy(f->tx[f->tx_len].data, pkt, len);
	f->tx[f->tx_len++].len = len;
	return 0;
}

static ssize_t fake_recv(struct net_backend *be, void *buf, size_t cap)
{
	struct fake_inner *f = (struct fake_inner *)be;
	struct fake_frame *fr;

	if (f->rx_next == f->rx_len)
		return -EAGAIN;
	fr = &f->rx[f->rx_next++];
	assert_true(fr->len <= cap);
	memcpy(buf, fr->data, fr->len);
	return (ssize_t)fr->len;
}

static int fake_rx_fd(struct net_backend *be) { return ((struct fake_inner *)be)->fd; }
static void fake_close(struct net_backend *be) { ((struct fake_inner *)be)->closed++; }

static const struct net_backend_ops fake_ops = {
	.send = fake_send, .recv = fake_recv, .rx_fd = fake_rx_fd, .close = fake_close,
};

/* ---- the world around the proxy ---- */

static struct vm vm;
static struct colo colo;
static pthread_t loop_thread;
static struct fake_inner inner;
static struct colo_net *proxy;
static const struct colo_participant *hooks;
static int rx_changed_calls;
static const uint8_t guest_mac[6] = { 0x02, 0, 0, 0, 0, 0x42 };
static int peer_fd = -1;   /* the test's end of the link */
static int listen_fd = -1; /* where the secondary side accepts, or the test listens for the primary */
static struct colo_link_reader peer_reader;

static void *loop_main(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static void on_rx_changed(void *opaque)
{
	(void)opaque;
	rx_changed_calls++;
}

static int listen_local(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_local(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int setup(void **state)
{
	struct colo_net_config cfg;

	(void)state;
	memset(&vm, 0, sizeof(vm));
	pthread_mutex_init(&vm.io_lock, NULL);
	vm.loop = evloop_create();
	assert_non_null(vm.loop);
	assert_int_equal(pthread_create(&loop_thread, NULL, loop_main, vm.loop), 0);
	colo_init(&colo, &vm);
	colo_net_default_config(&cfg);
	cfg.compare.compare_timeout_ms = 60000; /* nothing goes stale during a test */
	proxy = colo_net_create(&vm, NULL, &colo, &cfg);
	assert_non_null(proxy);
	assert_int_equal(colo.n_participants, 1);
	hooks = &colo.participants[0];

	memset(&inner, 0, sizeof(inner));
	inner.be.ops = &fake_ops;
	inner.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(inner.fd >= 0);
	net_backend_wrap(&proxy->be, &inner.be);
	proxy->be.port = (struct net_port){ .rx_changed = on_rx_changed, .mac = guest_mac };
	rx_changed_calls = 0;
	assert_int_equal(colo_link_reader_init(&peer_reader), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	colo_net_destroy(proxy);
	assert_int_equal(inner.closed, 1); /* the wrapper owned it */
	close(inner.fd);
	if (peer_fd >= 0)
		close(peer_fd);
	if (listen_fd >= 0)
		close(listen_fd);
	peer_fd = listen_fd = -1;
	colo_link_reader_free(&peer_reader);
	colo_destroy(&colo);
	evloop_stop(vm.loop);
	pthread_join(loop_thread, NULL);
	evloop_destroy(vm.loop);
	return 0;
}

/* The link opens with its magic (colo/peer.c sends it for the proxy). */
static void expect_link_magic(int fd)
{
	char magic[COLO_LINK_MAGIC_LEN];

	assert_int_equal(recv(fd, magic, sizeof(magic), MSG_WAITALL), sizeof(magic));
	assert_memory_equal(magic, COLO_LINK_MAGIC, sizeof(magic));
}

/* COLO starts with the proxy as secondary: the test is the primary at the link's other end. */
static void start_secondary(void)
{
	uint16_t port;

	listen_fd = listen_local(&port);
	peer_fd = connect_local(port);
	assert_int_equal(send(peer_fd, COLO_LINK_MAGIC, COLO_LINK_MAGIC_LEN, 0), COLO_LINK_MAGIC_LEN);
	assert_int_equal(hooks->start(hooks->opaque, &(struct colo_peer){ .mode = COLO_MODE_SECONDARY,
									   .listen_fd = listen_fd,
									   .timeout_ms = WAIT_MS }),
			 0);
}

/* COLO starts with the proxy as primary: it connects to the test, its secondary. */
static void start_primary(void)
{
	char uri[64];
	uint16_t port;

	listen_fd = listen_local(&port);
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%u", port);
	assert_int_equal(hooks->start(hooks->opaque, &(struct colo_peer){ .mode = COLO_MODE_PRIMARY,
									   .uri = uri,
									   .timeout_ms = WAIT_MS }),
			 0);
	peer_fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(peer_fd >= 0);
	expect_link_magic(peer_fd);
}

/* ---- frames ---- */

/* A UDP frame with a vnet header, from the guest (10.0.0.2) or to it; tag tells frames apart. */
static size_t udp_frame(uint8_t *pkt, bool from_guest, uint32_t tag)
{
	struct nf_flow f = nf_flow4();
	uint8_t payload[8] = { 0 };

	memset(pkt, 0, VNET_HDR_LEN);
	nf_put32(payload, tag);
	return VNET_HDR_LEN + nf_udp(pkt + VNET_HDR_LEN, &f, from_guest, payload, sizeof(payload));
}

static size_t guest_frame(uint8_t *pkt, uint32_t tag) { return udp_frame(pkt, true, tag); }
static size_t peer_frame(uint8_t *pkt, uint32_t tag) { return udp_frame(pkt, false, tag); }

/* The tag of a frame built above (its UDP payload's first word). */
static uint32_t frame_tag(const uint8_t *pkt, size_t len)
{
	assert_true(len >= 4);
	return nf_get32(pkt + len - 8);
}

static void peer_send(uint32_t epoch, uint64_t seq, const uint8_t *pkt, size_t len)
{
	uint8_t hdr[COLO_LINK_HDR_LEN]; /* little-endian: u32 length, u32 epoch, u64 seq */

	for (int i = 0; i < 4; i++) {
		hdr[i] = (uint8_t)(len >> (8 * i));
		hdr[4 + i] = (uint8_t)(epoch >> (8 * i));
	}
	for (int i = 0; i < 8; i++)
		hdr[8 + i] = (uint8_t)(seq >> (8 * i));
	assert_int_equal(send(peer_fd, hdr, sizeof(hdr), MSG_NOSIGNAL), (ssize_t)sizeof(hdr));
	assert_int_equal(send(peer_fd, pkt, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* What the peer reads from the link: the next frame's header and tag. */
static struct colo_link_hdr got_hdr;
static uint32_t got_tag;
static int got_frames;

static void on_peer_frame(void *opaque, const struct colo_link_hdr *h, uint8_t *frame)
{
	(void)opaque;
	got_hdr = *h;
	got_tag = frame_tag(frame, h->len);
	got_frames++;
}

static void peer_expect(uint32_t epoch, uint64_t seq, uint32_t tag)
{
	int before = got_frames;
	uint8_t byte;

	while (got_frames == before) { /* one byte at a time: never past this frame */
		struct pollfd p = { .fd = peer_fd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		assert_int_equal(recv(peer_fd, &byte, 1, 0), 1);
		assert_int_equal(colo_link_feed(&peer_reader, &byte, 1, on_peer_frame, NULL), 0);
	}
	assert_int_equal(got_hdr.epoch, epoch);
	assert_int_equal(got_hdr.seq, seq);
	assert_int_equal(got_tag, tag);
}

/* The proxy closed its end of the link, with nothing more sent on it. */
static void peer_expect_closed(void)
{
	struct pollfd p = { .fd = peer_fd, .events = POLLIN };
	uint8_t byte;

	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(recv(peer_fd, &byte, 1, 0), 0);
}

/* ---- the backend ops, as the device calls them ---- */

static int guest_send(uint32_t tag)
{
	uint8_t pkt[1600];
	size_t len = guest_frame(pkt, tag);
	int ret;

	vm_io_lock(&vm);
	ret = net_backend_send(&proxy->be, pkt, len);
	vm_io_unlock(&vm);
	return ret;
}

/* The next frame for the guest: its tag, or -1 when there is none. */
static int64_t guest_recv(void)
{
	uint8_t buf[NET_MAX_PACKET];
	ssize_t len;

	vm_io_lock(&vm);
	len = net_backend_recv(&proxy->be, buf, sizeof(buf));
	vm_io_unlock(&vm);
	if (len == -EAGAIN)
		return -1;
	assert_true(len > VNET_HDR_LEN);
	return frame_tag(buf, (size_t)len);
}

static int rx_fd(void)
{
	int fd;

	vm_io_lock(&vm);
	fd = net_backend_rx_fd(&proxy->be);
	vm_io_unlock(&vm);
	return fd;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static void inner_will_receive(uint32_t tag)
{
	struct fake_frame *fr = &inner.rx[inner.rx_len++];

	fr->len = peer_frame(fr->data, tag);
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits until the secondary's mirror queue holds n frames (link input is async). */
static void wait_queued(int n)
{
	uint64_t until = ms_now() + WAIT_MS;
	int len;

	do {
		pthread_mutex_lock(&proxy->lock);
		len = proxy->rxq_len;
		pthread_mutex_unlock(&proxy->lock);
		if (len == n)
			return;
		usleep(1000);
	} while (ms_now() < until);
	fail_msg("mirror queue holds %d frames, not %d", len, n);
}

static struct colo_net_link_stats link_stats(struct colo_compare_stats *cmp)
{
	struct colo_compare_stats c;
	struct colo_rewriter_stats rw;
	struct colo_net_link_stats l;
	int has_cmp, has_rw, has_link;

	colo_net_get_stats(proxy, cmp ? cmp : &c, &has_cmp, &rw, &has_rw, &l, &has_link);
	assert_true(has_link);
	return l;
}

/* Waits until the fake TAP has been given n frames (released by link input). */
static void wait_inner_sent(int n)
{
	uint64_t until = ms_now() + WAIT_MS;
	int got;

	do {
		vm_io_lock(&vm);
		pthread_mutex_lock(&proxy->lock);
		got = inner.tx_len;
		pthread_mutex_unlock(&proxy->lock);
		vm_io_unlock(&vm);
		if (got == n)
			return;
		usleep(1000);
	} while (ms_now() < until);
	fail_msg("the TAP got %d frames, not %d", got, n);
}

/* ---- before COLO ---- */

static void test_no_colo_passes_through(void **state)
{
	(void)state;
	assert_int_equal(rx_fd(), inner.fd);
	assert_int_equal(guest_send(7), 0);
	assert_int_equal(inner.tx_len, 1);
	assert_int_equal(frame_tag(inner.tx[0].data, inner.tx[0].len), 7);
	inner_will_receive(8);
	assert_int_equal(guest_recv(), 8);
	assert_int_equal(guest_recv(), -1);
}

/* ---- secondary ---- */

static void test_secondary_mirror_reaches_recv_in_order(void **state)
{
	uint8_t pkt[1600];
	int fd;

	(void)state;
	start_secondary();
	fd = rx_fd();
	assert_int_not_equal(fd, inner.fd); /* the mirror, not the (absent) TAP */
	assert_true(rx_changed_calls >= 1);
	assert_false(readable(fd, 0));
	for (uint32_t i = 1; i <= 3; i++)
		peer_send(0, i, pkt, peer_frame(pkt, 100 + i));
	assert_true(readable(fd, WAIT_MS));
	wait_queued(3);
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(guest_recv(), 100 + i);
	assert_int_equal(guest_recv(), -1);
	assert_false(readable(fd, 0));
	assert_int_equal(inner.rx_next, 0); /* the TAP was never read */
}

static void test_secondary_barrier_drops_checkpointed_frames(void **state)
{
	uint8_t pkt[1600];

	(void)state;
	start_secondary();
	for (uint32_t i = 1; i <= 5; i++)
		peer_send(0, i, pkt, peer_frame(pkt, 100 + i));
	wait_queued(5);
	/* The checkpoint contains the primary's guest as of mirror frame 3. */
	assert_int_equal(hooks->applied(hooks->opaque, 3), 0);
	assert_int_equal(guest_recv(), 104);
	/* Late copies of frames up to the barrier never reach the guest. */
	peer_send(0, 2, pkt, peer_frame(pkt, 102));
	peer_send(0, 3, pkt, peer_frame(pkt, 103));
	peer_send(0, 6, pkt, peer_frame(pkt, 106));
	wait_queued(2);
	assert_int_equal(guest_recv(), 105);
	assert_int_equal(guest_recv(), 106);
	assert_int_equal(guest_recv(), -1);
	/* Everything queued is in the next checkpoint: the queue empties, the fd goes quiet. */
	peer_send(0, 7, pkt, peer_frame(pkt, 107));
	wait_queued(1);
	assert_int_equal(hooks->applied(hooks->opaque, 7), 0);
	assert_false(readable(rx_fd(), 0));
	assert_int_equal(guest_recv(), -1);
	assert_int_equal(link_stats(NULL).mirror_dropped, 0);
}

static void test_secondary_output_carries_the_epoch(void **state)
{
	(void)state;
	start_secondary();
	assert_int_equal(guest_send(1), 0);
	peer_expect(0, 0, 1);
	assert_int_equal(hooks->applied(hooks->opaque, 0), 0);
	assert_int_equal(guest_send(2), 0);
	peer_expect(1, 0, 2);
	assert_int_equal(hooks->applied(hooks->opaque, 0), 0);
	assert_int_equal(guest_send(3), 0);
	peer_expect(2, 0, 3);
	assert_int_equal(inner.tx_len, 0); /* never to the TAP while secondary */
}

static void test_secondary_failover_takes_the_tap(void **state)
{
	uint8_t pkt[1600];
	int calls;

	(void)state;
	start_secondary();
	assert_int_equal(guest_send(1), 0); /* teaches the guest's address: 10.0.0.2 */
	peer_expect(0, 0, 1);
	peer_send(0, 1, pkt, peer_frame(pkt, 101));
	peer_send(0, 2, pkt, peer_frame(pkt, 102));
	wait_queued(2);
	assert_int_equal(guest_recv(), 101);
	calls = rx_changed_calls;
	hooks->failover(hooks->opaque);
	assert_int_equal(rx_changed_calls, calls + 1);
	/* The LAN learns where the guest is: a gratuitous ARP with its MAC, through the TAP. */
	assert_int_equal(inner.tx_len, 1);
	assert_memory_equal(inner.tx[0].data + VNET_HDR_LEN + 6, guest_mac, 6);
	assert_int_equal(nf_get32(inner.tx[0].data + VNET_HDR_LEN + 12) >> 16, 0x0806);
	/* The mirrored frame still queued comes first, then the TAP's. */
	assert_int_not_equal(rx_fd(), inner.fd);
	assert_int_equal(guest_recv(), 102);
	assert_int_equal(rx_fd(), inner.fd);
	inner_will_receive(200);
	assert_int_equal(guest_recv(), 200);
	assert_int_equal(guest_recv(), -1);
	/* The guest's frames go to the TAP. */
	assert_int_equal(guest_send(2), 0);
	assert_int_equal(inner.tx_len, 2);
	assert_int_equal(frame_tag(inner.tx[1].data, inner.tx[1].len), 2);
	peer_expect_closed();
}

/* ---- primary ---- */

static void test_primary_holds_guest_frames_until_the_twin(void **state)
{
	struct colo_compare_stats cmp;
	uint8_t pkt[1600];

	(void)state;
	start_primary();
	assert_int_equal(rx_fd(), inner.fd);
	assert_int_equal(guest_send(1), 0);
	assert_int_equal(inner.tx_len, 0); /* held by the comparator */
	peer_send(0, 0, pkt, guest_frame(pkt, 1));
	wait_inner_sent(1);
	assert_int_equal(frame_tag(inner.tx[0].data, inner.tx[0].len), 1);
	link_stats(&cmp);
	assert_int_equal(cmp.cls[COLO_CLASS_UDP].matched, 1);
}

static void test_primary_mirrors_what_the_guest_receives(void **state)
{
	(void)state;
	start_primary();
	inner_will_receive(10);
	inner_will_receive(11);
	assert_int_equal(guest_recv(), 10);
	assert_int_equal(guest_recv(), 11);
	assert_int_equal(guest_recv(), -1);
	peer_expect(0, 1, 10);
	peer_expect(0, 2, 11);
	assert_int_equal(hooks->mark(hooks->opaque), 2);
	assert_int_equal(hooks->committed(hooks->opaque), 0);
	inner_will_receive(12);
	assert_int_equal(guest_recv(), 12);
	peer_expect(1, 3, 12);
}

static void test_primary_epochs_of_secondary_frames(void **state)
{
	struct colo_compare_stats cmp;
	struct colo_net_link_stats l;
	uint8_t pkt[1600];
	uint64_t until = ms_now() + WAIT_MS;

	(void)state;
	start_primary();
	assert_int_equal(guest_send(1), 0);
	/* The secondary resumed after the checkpoint before our COLO thread read
	 * vmstate-received: its frame of epoch 1 waits for that. */
	peer_send(1, 0, pkt, guest_frame(pkt, 2));
	do
		l = link_stats(NULL);
	while (l.early_held == 0 && ms_now() < until && !usleep(1000));
	assert_int_equal(l.early_held, 1);
	assert_int_equal(inner.tx_len, 0); /* not compared with frame 1 */
	/* vmstate-received: frame 1 is released by the checkpoint, the early one compared. */
	assert_int_equal(hooks->committed(hooks->opaque), 0);
	assert_int_equal(inner.tx_len, 1);
	assert_int_equal(frame_tag(inner.tx[0].data, inner.tx[0].len), 1);
	assert_int_equal(guest_send(2), 0); /* its twin was waiting: released at once */
	assert_int_equal(inner.tx_len, 2);
	assert_int_equal(frame_tag(inner.tx[1].data, inner.tx[1].len), 2);
	/* A frame of the old epoch is stale: dropped and counted, never compared. */
	peer_send(0, 0, pkt, guest_frame(pkt, 3));
	until = ms_now() + WAIT_MS;
	do
		l = link_stats(&cmp);
	while (l.stale_dropped == 0 && ms_now() < until && !usleep(1000));
	assert_int_equal(l.stale_dropped, 1);
	assert_int_equal(l.early_dropped, 0);
	assert_int_equal(cmp.cls[COLO_CLASS_UDP].secondary_frames, 1);
	assert_int_equal(cmp.cls[COLO_CLASS_UDP].matched, 1);
}

static void test_primary_failover_flushes_and_passes_through(void **state)
{
	(void)state;
	start_primary();
	assert_int_equal(guest_send(1), 0);
	assert_int_equal(guest_send(2), 0);
	assert_int_equal(inner.tx_len, 0);
	hooks->failover(hooks->opaque);
	assert_int_equal(inner.tx_len, 2); /* released, in order */
	assert_int_equal(frame_tag(inner.tx[0].data, inner.tx[0].len), 1);
	assert_int_equal(frame_tag(inner.tx[1].data, inner.tx[1].len), 2);
	assert_int_equal(guest_send(3), 0);
	assert_int_equal(inner.tx_len, 3);
	inner_will_receive(9);
	assert_int_equal(guest_recv(), 9);
	assert_false(link_stats(NULL).up);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_colo_passes_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_mirror_reaches_recv_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_barrier_drops_checkpointed_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_output_carries_the_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secondary_failover_takes_the_tap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_holds_guest_frames_until_the_twin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_mirrors_what_the_guest_receives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_epochs_of_secondary_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_primary_failover_flushes_and_passes_through, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
