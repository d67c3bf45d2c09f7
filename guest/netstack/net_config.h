/*
 * Addresses of the guest's interface, from command-line text:
 *   ip=A.B.C.D/NN   (NN defaults to 24)
 *   ip6=ADDR/64     (lwIP treats static IPv6 addresses as /64 on-link)
 *   gw=A.B.C.D      (optional IPv4 default gateway)
 * and endpoints "A.B.C.D:PORT" or "[V6ADDR]:PORT".
 */
#ifndef GUEST_NETSTACK_NET_CONFIG_H
#define GUEST_NETSTACK_NET_CONFIG_H

#include "lwip/ip_addr.h"
#include "portable.h"

struct net_config {
	ip4_addr_t ip4, netmask, gw;
	int prefix4;
	bool has_ip6;
	ip6_addr_t ip6;
};

/* Each returns 0, or -1 when the text is not what the comment above says. */
int net_config_set_ip4(struct net_config *c, const char *cidr);
int net_config_set_ip6(struct net_config *c, const char *cidr);
int net_config_set_gw(struct net_config *c, const char *addr);
int parse_endpoint(const char *s, ip_addr_t *addr, uint16_t *port);
/* The address as text, IPv6 in lower case (as Linux prints it); buf holds IPADDR_STRLEN_MAX. */
void addr_to_text(const ip_addr_t *addr, char *buf, size_t size);

#endif
