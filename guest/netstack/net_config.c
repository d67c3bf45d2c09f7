#include "net_config.h"

#include "strutil.h"

#define ADDR_TEXT_MAX 64

/* Splits "ADDR/NN" into a NUL-terminated ADDR in buf and NN (or def). */
static int split_prefix(const char *text, char *buf, int def, int max, int *prefix)
{
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	uint64_t nn = (uint64_t)def;

	if (alen == 0 || alen >= ADDR_TEXT_MAX)
		return -1;
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	if (slash && (str_to_u64(slash + 1, strlen(slash + 1), &nn) < 0 || nn > (uint64_t)max))
		return -1;
	*prefix = (int)nn;
	return 0;
}

int net_config_set_ip4(struct net_config *c, const char *cidr)
{
	char buf[ADDR_TEXT_MAX];
	int prefix;

	if (split_prefix(cidr, buf, 24, 32, &prefix) < 0 || !ip4addr_aton(buf, &c->ip4))
		return -1;
	c->prefix4 = prefix;
	ip4_addr_set_u32(&c->netmask, prefix ? lwip_htonl(~0u << (32 - prefix)) : 0);
	return 0;
}

int net_config_set_ip6(struct net_config *c, const char *cidr)
{
	char buf[ADDR_TEXT_MAX];
	int prefix;

	if (split_prefix(cidr, buf, 64, 128, &prefix) < 0 || prefix != 64 || !ip6addr_aton(buf, &c->ip6))
		return -1;
	c->has_ip6 = true;
	return 0;
}

int net_config_set_gw(struct net_config *c, const char *addr)
{
	return ip4addr_aton(addr, &c->gw) ? 0 : -1;
}

int parse_endpoint(const char *s, ip_addr_t *addr, uint16_t *port)
{
	char buf[ADDR_TEXT_MAX];
	const char *host = s, *colon;
	size_t hlen;
	uint64_t p;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strchr(s, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(buf))
		return -1;
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';
	if (str_to_u64(colon + 1, strlen(colon + 1), &p) < 0 || p == 0 || p > 65535)
		return -1;
	if (!ipaddr_aton(buf, addr))
		return -1;
	*port = (uint16_t)p;
	return 0;
}

void addr_to_text(const ip_addr_t *addr, char *buf, size_t size)
{
	ipaddr_ntoa_r(addr, buf, (int)size);
	for (; *buf; buf++) /* lwIP writes IPv6 hex digits in upper case */
		if (*buf >= 'A' && *buf <= 'F')
			*buf = (char)(*buf - 'A' + 'a');
}
