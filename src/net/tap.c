#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int net_tap_open(struct net_backend *be, const char *ifname)
{
	struct ifreq ifr;
	int hdr_size = NET_VNET_HDR_BYTES;
	int err;

	net_none_open(be);
	if (strlen(ifname) == 0 || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	be->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (be->fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	/* The header size must be set before any packet flows; offloads stay off
	 * because we offer none to the guest. */
	if (ioctl(be->fd, TUNSETIFF, &ifr) < 0 ||
	    ioctl(be->fd, TUNSETVNETHDRSZ, &hdr_size) < 0 ||
	    ioctl(be->fd, TUNSETOFFLOAD, 0UL) < 0) {
		err = -errno;
		net_backend_close(be);
		return err;
	}
	memcpy(be->ifname, ifr.ifr_name, sizeof(be->ifname));
	be->ifname[IFNAMSIZ - 1] = '\0';
	return 0;
}

void net_none_open(struct net_backend *be)
{
	be->fd = -1;
	be->ifname[0] = '\0';
}

void net_backend_close(struct net_backend *be)
{
	if (be->fd >= 0)
		close(be->fd);
	net_none_open(be);
}

int net_backend_fd(const struct net_backend *be) { return be->fd; }

int net_backend_send(struct net_backend *be, const void *pkt, size_t len)
{
	ssize_t n;

	if (be->fd < 0)
		return -ENOTCONN;
	do
		n = write(be->fd, pkt, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

ssize_t net_backend_recv(struct net_backend *be, void *buf, size_t cap)
{
	ssize_t n;

	if (be->fd < 0)
		return -EAGAIN;
	do
		n = read(be->fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	/* A NIC address must be unicast (group bit clear) and not all zero. */
	if ((m[0] & 1) || !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}
