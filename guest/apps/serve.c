/*
 * app=serve: the guest as a network host running lwIP (guest/netstack) and
 * the services of guest/services. app=net is the same app with only the echo
 * service by default: ARP, ICMP echo (IPv4 and IPv6) and UDP echo on port 7.
 *
 * Command line (commas or spaces between items):
 *   ip=A.B.C.D/NN        IPv4 address (default 10.0.2.15/24)
 *   ip6=ADDR/64          an IPv6 address besides the link-local one (optional)
 *   gw=A.B.C.D           IPv4 default gateway (optional)
 *   services=A+B...      echo, kv, http, discard, stream (guest/services/services.h);
 *                        app=serve: echo+kv+http by default, app=net: echo
 *   kvdisk=1             the KV store logs every write to the virtio-blk disk and
 *                        replays the log at boot (needs --disk)
 *   connect=HOST:PORT    where the stream service connects ([V6ADDR]:PORT for IPv6)
 *   bytes=N              how much the stream service sends (default 1048576)
 *   stats=SECONDS        print lwIP's counters that often, when they changed
 * e.g. app=serve,ip=10.0.2.15/24,ip6=fd00::15/64,services=echo+kv+http
 *
 * Prints "net: up mac=... ip=A.B.C.D/NN[ ip6=...]" once up. Polled: sleeps in
 * the idle call (a received frame ends it) until the next lwIP timer.
 */
#include "app.h"
#include "clock.h"
#include "drivers/virtio_blk.h"
#include "drivers/virtio_net.h"
#include "guest.h"
#include "lwip/sys.h"
#include "services.h"
#include "stack.h"
#include "stats.h"

#define DEFAULT_IP "10.0.2.15/24"
#define DEFAULT_STREAM_BYTES (1024 * 1024)
#define RX_BATCH 64      /* frames per pass before timers and the commit run */
#define MAX_SLEEP_MS 1000

static struct virtio_net nic;
static struct virtio_blk blk;
static struct net_link link;
static struct blockdev disk;

/* ---- the devices, as the stack and the services see them ---- */

static int nic_send(void *ctx, const void *frame, size_t len) { return virtio_net_queue(ctx, frame, len); }

static int disk_read(void *ctx, uint64_t sector, void *buf, uint32_t n)
{
	return virtio_blk_read(ctx, sector, buf, n) == VIRTIO_BLK_S_OK ? 0 : -1;
}

static int disk_write(void *ctx, uint64_t sector, const void *buf, uint32_t n)
{
	return virtio_blk_write(ctx, sector, buf, n) == VIRTIO_BLK_S_OK ? 0 : -1;
}

static int disk_flush(void *ctx) { return virtio_blk_flush(ctx) == VIRTIO_BLK_S_OK ? 0 : -1; }

static const struct blockdev *open_disk(void)
{
	if (virtio_blk_init(&blk) < 0 || blk.readonly)
		panic("serve: kvdisk=1 needs a writable virtio-blk disk");
	disk = (struct blockdev){ blk.capacity, disk_read, disk_write, disk_flush, &blk };
	return &disk;
}

/* ---- the command line ---- */

static void parse_addresses(struct net_config *nc)
{
	char buf[80];
	const char *ip = cmdline_get("ip", buf, sizeof(buf));

	*nc = (struct net_config){ 0 };
	if (net_config_set_ip4(nc, ip ? ip : DEFAULT_IP) < 0)
		panic("serve: bad ip=%s (want A.B.C.D/NN)", ip);
	if (cmdline_get("ip6", buf, sizeof(buf)) && net_config_set_ip6(nc, buf) < 0)
		panic("serve: bad ip6=%s (want an IPv6 address/64)", buf);
	if (cmdline_get("gw", buf, sizeof(buf)) && net_config_set_gw(nc, buf) < 0)
		panic("serve: bad gw=%s (want A.B.C.D)", buf);
}

static void parse_services(struct services_config *sc, const char *def)
{
	char buf[80];
	const char *list = cmdline_get("services", buf, sizeof(buf)), *bad;

	*sc = (struct services_config){ 0 };
	if (services_parse(list ? list : def, &sc->set, &bad) < 0)
		panic("serve: unknown service in services=%s (known: echo, kv, http, discard, stream)", bad);
	if ((sc->set & SERVICE_KV) && cmdline_get_u64("kvdisk", 0))
		sc->kv_disk = open_disk();
	if (sc->set & SERVICE_STREAM) {
		if (!cmdline_get("connect", buf, sizeof(buf)) ||
		    parse_endpoint(buf, &sc->stream_addr, &sc->stream_port) < 0)
			panic("serve: the stream service needs connect=HOST:PORT (or [V6ADDR]:PORT)");
		sc->stream_bytes = cmdline_get_u64("bytes", DEFAULT_STREAM_BYTES);
	}
}

/* ---- the loop ---- */

/* Counters every period_ms when frames arrived since last time (sys_now is the TSC: no exit). */
static void maybe_print_stats(uint32_t period_ms)
{
	static uint32_t last_ms;
	static uint64_t last_rx;

	if (!period_ms || sys_now() - last_ms < period_ms)
		return;
	last_ms = sys_now();
	if (netstack_rx_frames() != last_rx)
		netstack_print_stats();
	last_rx = netstack_rx_frames();
}

static void run(uint32_t stats_ms)
{
	for (;;) {
		const uint8_t *frame;
		size_t len;
		int n = 0;

		while (n < RX_BATCH && (frame = virtio_net_poll_rx(&nic, &len)) != NULL) {
			netstack_input(frame, len);
			n++;
		}
		netstack_poll();
		services_poll();
		virtio_net_kick_tx(&nic); /* one exit for everything this pass sent */
		maybe_print_stats(stats_ms);
		if (n < RX_BATCH)
			virtio_net_idle(&nic, netstack_sleep_ms(MAX_SLEEP_MS) * 1000);
	}
}

static int serve(const char *default_services)
{
	struct net_config nc;
	struct services_config sc;
	char line[160];
	uint32_t stats_ms = (uint32_t)cmdline_get_u64("stats", 0) * 1000;

	parse_addresses(&nc);
	clock_init();
	if (virtio_net_init(&nic) < 0)
		panic("serve: no usable virtio-net device");
	memcpy(link.mac, nic.mac, 6);
	link.send = nic_send;
	link.ctx = &nic;
	if (netstack_init(&link, &nc) < 0)
		panic("serve: the network stack did not start");
	parse_services(&sc, default_services);
	if (services_start(&sc) < 0)
		panic("serve: services did not start");
	netstack_describe(line, sizeof(line));
	printf("%s\n", line);
	run(stats_ms);
	return 0;
}

static int serve_main(void) { return serve("echo+kv+http"); }
static int net_main(void) { return serve("echo"); }

GUEST_APP("serve", serve_main);
GUEST_APP("net", net_main);
