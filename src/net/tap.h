/*
 * The host-side network backends (net/backend.h): a TAP interface, or "none".
 *
 * The TAP is opened with IFF_VNET_HDR and a header size of 12, so the header
 * passes between guest buffers and the TAP unchanged. No offloads are enabled
 * (TUNSETOFFLOAD 0), so the TAP only ever hands us complete, checksummed frames.
 *
 * "none": frames sent by the guest are dropped, nothing is ever received.
 */
#ifndef LOCKSTEP_NET_TAP_H
#define LOCKSTEP_NET_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/backend.h"

/* A backend on TAP interface ifname (created if missing), opened now, or only
 * at attach when open_now is false (a VM waiting for an incoming migration:
 * the source still owns the TAP). -errno on failure; -EINVAL for a name
 * longer than IFNAMSIZ - 1. Detached, it keeps the name and drops what the
 * guest sends. */
int net_tap_create(const char *ifname, bool open_now, struct net_backend **out);
/* The none backend. -ENOMEM. */
int net_none_create(struct net_backend **out);

/* "52:54:00:12:34:56" -> mac. -EINVAL unless six hex pairs separated by ':'
 * naming a unicast, non-zero address. */
int net_parse_mac(const char *s, uint8_t mac[6]);

#endif
