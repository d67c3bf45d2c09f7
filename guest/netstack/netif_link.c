#include "netif_link.h"

#include "lwip/ethip6.h"
#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "nd_filter.h"
#include "netif/ethernet.h"

#define LINK_MTU 1500
#define ETH_FRAME_MAX (LINK_MTU + SIZEOF_ETH_HDR)
#define ETH_FRAME_MIN 60 /* without the FCS, which the TAP neither gives nor wants */

/* Frames are flattened here before the link copies them out (one thread). */
static uint8_t tx_frame[ETH_FRAME_MAX];

static err_t link_output(struct netif *netif, struct pbuf *p)
{
	struct net_link *link = netif->state;
	size_t len = p->tot_len;

	if (len > sizeof(tx_frame)) {
		LINK_STATS_INC(link.lenerr);
		return ERR_BUF;
	}
	pbuf_copy_partial(p, tx_frame, p->tot_len, 0);
	if (len < ETH_FRAME_MIN) { /* pad like a NIC would: bridges may drop runts */
		memset(tx_frame + len, 0, ETH_FRAME_MIN - len);
		len = ETH_FRAME_MIN;
	}
	if (link->send(link->ctx, tx_frame, len) < 0) {
		LINK_STATS_INC(link.drop);
		return ERR_IF;
	}
	LINK_STATS_INC(link.xmit);
	return ERR_OK;
}

err_t netif_link_init(struct netif *netif)
{
	struct net_link *link = netif->state;

	netif->name[0] = 'e';
	netif->name[1] = 'n';
	netif->mtu = LINK_MTU;
	netif->mtu6 = LINK_MTU;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, link->mac, ETH_HWADDR_LEN);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6;
	netif->output = etharp_output;
	netif->output_ip6 = ethip6_output;
	netif->linkoutput = link_output;
	return ERR_OK;
}

void netif_link_input(struct netif *netif, const void *frame, size_t len)
{
	struct pbuf *p;

	if (len == 0 || len > 0xffff) {
		LINK_STATS_INC(link.lenerr);
		LINK_STATS_INC(link.drop);
		return;
	}
	if (nd_option_malformed(frame, len)) {
		ND6_STATS_INC(nd6.proterr);
		ND6_STATS_INC(nd6.drop);
		return;
	}
	p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
	if (!p) { /* every buffer holds data the stack has not let go of yet */
		LINK_STATS_INC(link.memerr);
		LINK_STATS_INC(link.drop);
		return;
	}
	pbuf_take(p, frame, (u16_t)len);
	LINK_STATS_INC(link.recv);
	if (netif->input(p, netif) != ERR_OK)
		pbuf_free(p);
}
