#include "stats.h"

#include "lwip/memp.h"
#include "lwip/stats.h"

static void print_proto(const char *name, const struct stats_proto *s)
{
	if (!s->recv && !s->xmit && !s->drop)
		return;
	printf("net: %s rx=%u tx=%u drop=%u chkerr=%u lenerr=%u memerr=%u proterr=%u err=%u\n", name,
	       (unsigned)s->recv, (unsigned)s->xmit, (unsigned)s->drop, (unsigned)s->chkerr,
	       (unsigned)s->lenerr, (unsigned)s->memerr, (unsigned)s->proterr, (unsigned)s->err);
}

/* lwIP names its pools only in debug builds. */
static const char *pool_name(int i)
{
	switch (i) {
	case MEMP_PBUF_POOL: return "PBUF_POOL";
	case MEMP_PBUF: return "PBUF";
	case MEMP_TCP_PCB: return "TCP_PCB";
	case MEMP_TCP_SEG: return "TCP_SEG";
	case MEMP_ARP_QUEUE: return "ARP_QUEUE";
	case MEMP_ND6_QUEUE: return "ND6_QUEUE";
	case MEMP_REASSDATA: return "REASSDATA";
	case MEMP_IP6_REASSDATA: return "IP6_REASSDATA";
	default: return "other";
	}
}

void netstack_print_stats(void)
{
	print_proto("link", &lwip_stats.link);
	print_proto("arp", &lwip_stats.etharp);
	print_proto("ip", &lwip_stats.ip);
	print_proto("ipfrag", &lwip_stats.ip_frag);
	print_proto("icmp", &lwip_stats.icmp);
	print_proto("udp", &lwip_stats.udp);
	print_proto("tcp", &lwip_stats.tcp);
	print_proto("ip6", &lwip_stats.ip6);
	print_proto("ip6frag", &lwip_stats.ip6_frag);
	print_proto("icmp6", &lwip_stats.icmp6);
	print_proto("nd6", &lwip_stats.nd6);
	for (int i = 0; i < MEMP_MAX; i++) {
		const struct stats_mem *m = lwip_stats.memp[i];

		if (m && m->err)
			printf("net: pool %s used=%u max=%u err=%u\n", pool_name(i), (unsigned)m->used, (unsigned)m->max,
			       (unsigned)m->err);
	}
}

uint64_t netstack_rx_frames(void) { return lwip_stats.link.recv; }
