/*
 * app=net,ip=A.B.C.D/NN: a host on the virtio-net link that answers ARP for
 * its address, ICMP echo requests and UDP echo (port 7). Polled; sleeps in
 * the idle call (which a received frame ends) when there is nothing to do.
 * Prints "net: up mac=... ip=A.B.C.D/NN" once and nothing per packet (the
 * console is slow); with stats=SECONDS it prints its counters that often
 * when they changed. Never returns once up.
 */
#include "app.h"
#include "drivers/virtio_net.h"
#include "guest.h"
#include "net/netif.h"
#include "net/ipv4.h"

#define DEFAULT_IP "10.0.2.15/24"
#define IDLE_US 100000

static struct virtio_net nic;
static struct net_if nif;

static int nic_output(void *ctx, const uint8_t *frame, size_t len)
{
	return virtio_net_send(ctx, frame, len);
}

static void print_stats(void)
{
	const struct net_stats *s = &nif.stats;

	printf("net: rx=%lu tx=%lu arp=%lu icmp=%lu udp=%lu drops=%lu\n", s->rx_frames, nic.stats.tx_frames,
	       s->arp_replies, s->icmp_replies, s->udp_replies, net_drops_total(&nif));
	for (int i = 0; i < DROP_REASONS; i++)
		if (s->drops[i])
			printf("net:   drop %s=%lu\n", net_drop_name(i), s->drops[i]);
}

/* Prints the counters every `period_ms` if anything arrived since last time. */
static void maybe_print_stats(uint32_t period_ms)
{
	static uint32_t last_ms;
	static uint64_t last_rx;

	if (!period_ms || guest_clock_ms() - last_ms < period_ms)
		return;
	last_ms = guest_clock_ms();
	if (nif.stats.rx_frames != last_rx)
		print_stats();
	last_rx = nif.stats.rx_frames;
}

static int net_main(void)
{
	char ipbuf[32], statsbuf[16];
	const char *ip_arg = cmdline_get("ip", ipbuf, sizeof(ipbuf));
	uint64_t stats_s = 0;
	uint32_t ip;
	int prefix;

	if (!ip_arg)
		ip_arg = DEFAULT_IP;
	if (ipv4_parse_cidr(ip_arg, &ip, &prefix) < 0)
		panic("net: bad ip=%s (want A.B.C.D/NN)", ip_arg);
	if (cmdline_get("stats", statsbuf, sizeof(statsbuf)))
		parse_u64(statsbuf, strlen(statsbuf), &stats_s);
	if (virtio_net_init(&nic) < 0)
		panic("net: no usable virtio-net device");
	net_if_init(&nif, nic.mac, ip, prefix, nic_output, &nic);
	printf("net: up mac=%02x:%02x:%02x:%02x:%02x:%02x ip=%u.%u.%u.%u/%d\n", nic.mac[0], nic.mac[1],
	       nic.mac[2], nic.mac[3], nic.mac[4], nic.mac[5], ip >> 24, ip >> 16 & 0xff, ip >> 8 & 0xff,
	       ip & 0xff, prefix);
	for (;;) {
		const uint8_t *frame;
		size_t len;

		while ((frame = virtio_net_poll_rx(&nic, &len)) != NULL)
			net_input(&nif, frame, len);
		maybe_print_stats((uint32_t)stats_s * 1000);
		virtio_net_idle(&nic, IDLE_US);
	}
	return 0;
}
GUEST_APP("net", net_main);
