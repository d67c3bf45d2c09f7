/*
 * Network backends for virtio-net: a TAP interface, or "none".
 *
 * Frames cross this interface with the 12-byte virtio_net_hdr_v1 in front:
 * the TAP is opened with IFF_VNET_HDR and a header size of 12, so the header
 * passes between guest buffers and the TAP unchanged. No offloads are enabled
 * (TUNSETOFFLOAD 0), so the TAP only ever hands us complete, checksummed frames.
 *
 * "none": frames sent by the guest are dropped, nothing is ever received.
 */
#ifndef LOCKSTEP_NET_TAP_H
#define LOCKSTEP_NET_TAP_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NET_VNET_HDR_BYTES 12
/* Largest frame we pass either way, header included. */
#define NET_MAX_PACKET 65550

struct net_backend {
	int fd;                  /* TAP fd (non-blocking), -1 for none */
	char ifname[IFNAMSIZ];   /* "" for none */
};

/* Attaches to (or creates) TAP interface ifname. -errno on failure; -EINVAL
 * for a name longer than IFNAMSIZ - 1. */
int net_tap_open(struct net_backend *be, const char *ifname);
void net_none_open(struct net_backend *be);
void net_backend_close(struct net_backend *be);
/* The fd to watch for received frames, or -1. */
int net_backend_fd(const struct net_backend *be);

/* Sends one packet (header + frame). 0, or -errno (-ENOTCONN for none,
 * -EAGAIN when the TAP cannot take it now). */
int net_backend_send(struct net_backend *be, const void *pkt, size_t len);
/* Receives one packet into buf. Its length, -EAGAIN when nothing is pending,
 * or another -errno (a packet that did not fit is lost). */
ssize_t net_backend_recv(struct net_backend *be, void *buf, size_t cap);

/* "52:54:00:12:34:56" -> mac. -EINVAL unless six hex pairs separated by ':'
 * naming a unicast, non-zero address. */
int net_parse_mac(const char *s, uint8_t mac[6]);

#endif
