#include "netif.h"

#include "eth.h"

static const char *const drop_names[DROP_REASONS] = {
	[DROP_ETH_SHORT] = "eth_short",     [DROP_ETH_NOT_OURS] = "eth_not_ours",
	[DROP_ETH_TYPE] = "eth_type",       [DROP_ARP_SHORT] = "arp_short",
	[DROP_ARP_FORMAT] = "arp_format",   [DROP_ARP_IGNORED] = "arp_ignored",
	[DROP_IP_SHORT] = "ip_short",       [DROP_IP_VERSION] = "ip_version",
	[DROP_IP_IHL] = "ip_ihl",           [DROP_IP_LEN] = "ip_len",
	[DROP_IP_CSUM] = "ip_csum",         [DROP_IP_FRAG] = "ip_frag",
	[DROP_IP_SRC] = "ip_src",           [DROP_IP_NOT_OURS] = "ip_not_ours",
	[DROP_IP_PROTO] = "ip_proto",       [DROP_ICMP_SHORT] = "icmp_short",
	[DROP_ICMP_CSUM] = "icmp_csum",     [DROP_ICMP_TYPE] = "icmp_type",
	[DROP_UDP_SHORT] = "udp_short",     [DROP_UDP_LEN] = "udp_len",
	[DROP_UDP_CSUM] = "udp_csum",       [DROP_UDP_PORT] = "udp_port",
	[DROP_TX_SIZE] = "tx_size",         [DROP_TX_FAIL] = "tx_fail",
};

void net_if_init(struct net_if *nif, const uint8_t mac[6], uint32_t ip, int prefix_len,
		 int (*output)(void *ctx, const uint8_t *frame, size_t len), void *output_ctx)
{
	memset(nif, 0, sizeof(*nif));
	memcpy(nif->mac, mac, 6);
	nif->ip = ip;
	nif->prefix_len = prefix_len;
	nif->output = output;
	nif->output_ctx = output_ctx;
}

void net_input(struct net_if *nif, const uint8_t *frame, size_t len)
{
	nif->stats.rx_frames++;
	eth_input(nif, frame, len);
}

uint64_t net_drops_total(const struct net_if *nif)
{
	uint64_t n = 0;

	for (int i = 0; i < DROP_REASONS; i++)
		n += nif->stats.drops[i];
	return n;
}

const char *net_drop_name(enum net_drop why)
{
	return (unsigned)why < DROP_REASONS ? drop_names[why] : "?";
}
