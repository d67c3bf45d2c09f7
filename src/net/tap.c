#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct net_tap {
	struct net_backend be; /* first: the ops get us through it */
	int fd;                /* non-blocking; -1 while detached */
	char ifname[IFNAMSIZ];
};

static struct net_tap *to_tap(struct net_backend *be) { return (struct net_tap *)be; }

static void tap_close_fd(struct net_tap *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static int tap_open_fd(struct net_tap *t)
{
	struct ifreq ifr;
	int hdr_size = NET_VNET_HDR_BYTES;
	int err;

	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, t->ifname, strlen(t->ifname));
	/* The header size must be set before any packet flows; offloads stay off
	 * because we offer none to the guest. */
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0 || ioctl(t->fd, TUNSETVNETHDRSZ, &hdr_size) < 0 ||
	    ioctl(t->fd, TUNSETOFFLOAD, 0UL) < 0) {
		err = -errno;
		tap_close_fd(t);
		return err;
	}
	return 0;
}

static int tap_send(struct net_backend *be, void *pkt, size_t len)
{
	struct net_tap *t = to_tap(be);
	ssize_t n;

	if (t->fd < 0)
		return -ENOTCONN;
	do
		n = write(t->fd, pkt, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static ssize_t tap_recv(struct net_backend *be, void *buf, size_t cap)
{
	struct net_tap *t = to_tap(be);
	ssize_t n;

	if (t->fd < 0)
		return -EAGAIN;
	do
		n = read(t->fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static int tap_rx_fd(struct net_backend *be) { return to_tap(be)->fd; }

static int tap_attach(struct net_backend *be)
{
	struct net_tap *t = to_tap(be);

	return t->fd >= 0 ? 0 : tap_open_fd(t);
}

static void tap_detach(struct net_backend *be) { tap_close_fd(to_tap(be)); }

static void tap_close(struct net_backend *be)
{
	tap_close_fd(to_tap(be));
	free(be);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.rx_fd = tap_rx_fd,
	.attach = tap_attach,
	.detach = tap_detach,
	.close = tap_close,
};

int net_tap_create(const char *ifname, bool open_now, struct net_backend **out)
{
	struct net_tap *t;
	int ret;

	if (strlen(ifname) == 0 || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->be.ops = &tap_ops;
	t->fd = -1;
	strcpy(t->ifname, ifname);
	snprintf(t->be.name, sizeof(t->be.name), "%s", ifname);
	if (open_now && (ret = tap_open_fd(t)) < 0) {
		free(t);
		return ret;
	}
	*out = &t->be;
	return 0;
}

static int none_send(struct net_backend *be, void *pkt, size_t len)
{
	(void)be, (void)pkt, (void)len;
	return -ENOTCONN;
}

static ssize_t none_recv(struct net_backend *be, void *buf, size_t cap)
{
	(void)be, (void)buf, (void)cap;
	return -EAGAIN;
}

static void none_close(struct net_backend *be) { free(be); }

static const struct net_backend_ops none_ops = {
	.send = none_send,
	.recv = none_recv,
	.close = none_close,
};

int net_none_create(struct net_backend **out)
{
	struct net_backend *be = calloc(1, sizeof(*be));

	if (!be)
		return -ENOMEM;
	be->ops = &none_ops;
	strcpy(be->name, "none");
	*out = be;
	return 0;
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
