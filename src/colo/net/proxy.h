/*
 * The COLO network path inside the VMM (DESIGN.md §6), set up from --tap alone.
 *
 * The proxy is the NIC's network backend (net/backend.h), put in front of the
 * TAP when it is created and staying there; what it does with a frame
 * depends on the role COLO gives this VM (proxy_backend.c):
 *
 * Primary: frames from the TAP reach the guest and are mirrored to the
 * secondary over the link; frames the guest sends go to the comparator, never
 * straight to the TAP; the secondary's frames (after its rewriter) come back
 * over the link to the comparator; released frames go to the TAP. Held frames
 * are released when the secondary has received a checkpoint (the
 * participant's committed step).
 *
 * Secondary: its guest's input is the mirror (TCP ACK numbers shifted by the
 * rewriter); its output goes through the rewriter to the primary. It owns no
 * TAP until failover, when it attaches its own and announces the guest's MAC
 * (gratuitous ARP, unsolicited neighbour advertisement).
 *
 * Neither (before COLO, after a failover): frames pass between guest and TAP,
 * translated for connections that survived an earlier takeover.
 */
#ifndef LOCKSTEP_COLO_NET_PROXY_H
#define LOCKSTEP_COLO_NET_PROXY_H

#include <stdint.h>

#include "colo/net/compare.h"
#include "colo/net/link.h"
#include "colo/net/rewriter.h"

struct colo;
struct evloop;
struct virtio_net;
struct vm;

struct colo_net_config {
	struct colo_compare_config compare;
	uint32_t scan_period_ms; /* how often held frames are checked for staleness */
	const char *pcap_path;   /* mismatching frame pairs, or NULL */
};

struct colo_net;

/* Registers with c: the proxy starts and stops with COLO. It goes in front of
 * nic's backend now and leaves it at colo_net_destroy, which must come before
 * the VM's devices go. (nic NULL: the caller puts it in front of a backend, as
 * the unit tests do.) */
struct colo_net *colo_net_create(struct vm *vm, struct virtio_net *nic, struct colo *c,
				 const struct colo_net_config *cfg);
void colo_net_destroy(struct colo_net *n);
/* The link to the peer: what this side sent (primary: the mirror; secondary:
 * its guest's output), as of now or of when the link went down. */
struct colo_net_link_stats {
	bool up;                  /* COLO runs over it */
	struct colo_link_writer_stats writer;
	uint64_t mirror_dropped;  /* secondary: mirrored frames its guest could not take */
	/* Primary: secondary frames by epoch. Those of the next checkpoint that come
	 * before its vmstate-received are held until then (early), unless too many
	 * (early_dropped); those of an older one are dropped (stale). */
	uint64_t early_held, early_dropped, stale_dropped;
	char error[128];          /* why it failed, or "" */
};

/* Comparator, rewriter and link statistics, for QMP (has_* false when not in that role). */
void colo_net_get_stats(struct colo_net *n, struct colo_compare_stats *cmp, int *has_cmp,
			struct colo_rewriter_stats *rw, int *has_rw, struct colo_net_link_stats *link,
			int *has_link);
void colo_net_default_config(struct colo_net_config *cfg);

#endif
