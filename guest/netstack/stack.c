#include "stack.h"

#include "lwip/init.h"
#include "lwip/ip6_addr.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "syn_guard.h"

static struct netif the_netif;
static int prefix4;

/* Static addresses are ours at once: no duplicate address detection. */
static void add_ip6(struct netif *nif, const ip6_addr_t *addr)
{
	s8_t idx;

	if (netif_add_ip6_address(nif, addr, &idx) == ERR_OK)
		netif_ip6_addr_set_state(nif, idx, IP6_ADDR_PREFERRED);
}

int netstack_init(struct net_link *link, const struct net_config *cfg)
{
	lwip_init();
	if (!netif_add(&the_netif, &cfg->ip4, &cfg->netmask, &cfg->gw, link, netif_link_init, ethernet_input))
		return -1;
	prefix4 = cfg->prefix4;
	netif_set_default(&the_netif);
	netif_create_ip6_linklocal_address(&the_netif, 1);
	netif_ip6_addr_set_state(&the_netif, 0, IP6_ADDR_PREFERRED);
	if (cfg->has_ip6)
		add_ip6(&the_netif, &cfg->ip6);
	netif_set_link_up(&the_netif);
	netif_set_up(&the_netif);
	return 0;
}

void netstack_input(const void *frame, size_t len)
{
	static unsigned frames;

	netif_link_input(&the_netif, frame, len);
	if (++frames % SYN_GUARD_EVERY == 0)
		syn_guard_run();
}

void netstack_poll(void)
{
	syn_guard_run();
	sys_check_timeouts();
}

uint32_t netstack_sleep_ms(uint32_t max_ms)
{
	u32_t ms = sys_timeouts_sleeptime();

	return ms < max_ms ? ms : max_ms;
}

struct netif *netstack_netif(void) { return &the_netif; }

void netstack_describe(char *buf, size_t size)
{
	const u8_t *m = the_netif.hwaddr;
	char text[IPADDR_STRLEN_MAX];
	ip_addr_t a;
	int n;

	ip_addr_copy_from_ip4(a, *netif_ip4_addr(&the_netif));
	addr_to_text(&a, text, sizeof(text));
	n = snprintf(buf, size, "net: up mac=%02x:%02x:%02x:%02x:%02x:%02x ip=%s/%d", m[0], m[1], m[2], m[3],
		     m[4], m[5], text, prefix4);
	for (int i = 1; i < LWIP_IPV6_NUM_ADDRESSES && n > 0 && (size_t)n < size; i++) {
		if (!ip6_addr_isvalid(netif_ip6_addr_state(&the_netif, i)))
			continue;
		ip_addr_copy_from_ip6(a, *netif_ip6_addr(&the_netif, i));
		addr_to_text(&a, text, sizeof(text));
		n += snprintf(buf + n, size - (size_t)n, " ip6=%s/64", text);
	}
}
