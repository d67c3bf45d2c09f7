/* Shared by colo_net.c, colo_net_primary.c and colo_net_secondary.c. */
#ifndef LOCKSTEP_COLO_NET_PROXY_INTERNAL_H
#define LOCKSTEP_COLO_NET_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "dev/virtio_net.h"
#include "net/announce.h"
#include "colo/net/compare.h"
#include "colo/net/link.h"
#include "colo/net/proxy.h"
#include "colo/net/rewriter.h"
#include "net/pcap.h"
#include "colo/colo.h"

#define COLO_NET_DEFAULT_COMPARE_TIMEOUT_MS 100
#define COLO_NET_DEFAULT_SCAN_MS 10
#define COLO_NET_DEFAULT_MAX_QUEUE 1024
#define COLO_NET_DEFAULT_MAX_CONNECTIONS 4096
#define COLO_NET_PENDING_MAX 512
#define COLO_NET_EARLY_MAX 256
#define VNET_HDR_LEN 12

/* A mirrored frame the secondary guest could not take yet. */
struct colo_net_pending {
	uint64_t seq;
	size_t len;
	uint8_t *frame; /* with its vnet header */
};

/* A secondary frame of the next epoch, there before our vmstate-received. */
struct colo_net_early {
	size_t len;
	uint8_t *frame; /* without the vnet header */
};

/*
 * Lock order: vm->io_lock, then lock. The guest side (TX, RX space) arrives
 * with io_lock held; link input, timers and COLO hooks take both themselves.
 */
struct colo_net {
	struct vm *vm;
	struct virtio_net *nic;
	struct colo *colo;
	uint32_t peer_timeout_ms; /* of the COLO session the link belongs to */
	struct colo_net_config cfg;
	pthread_mutex_t lock;
	enum colo_mode role; /* NONE when COLO is not running */
	int link_fd;
	struct colo_link_writer writer; /* running while link_fd >= 0 */
	struct colo_net_link_stats link; /* writer part: a copy taken when the link went down */
	bool link_seen;                  /* a link was up at least once (stats to show) */
	struct colo_link_reader reader;
	int timer_fd;
	uint32_t epoch;      /* checkpoints since COLO started */
	uint64_t mirror_seq; /* primary: frames mirrored so far */
	struct virtio_net_filter filter;
	struct guest_addrs addrs;

	/* Primary */
	struct colo_compare *cmp;
	struct pcap_writer *pcap;
	struct colo_net_early early[COLO_NET_EARLY_MAX];
	int nearly;

	/* Secondary */
	struct colo_rewriter *rw;
	uint64_t barrier;    /* mirrored frames up to here are in the last checkpoint */
	bool failed_over;
	struct colo_net_pending pending[COLO_NET_PENDING_MAX];
	int npending;
};

uint64_t colo_net_now_ms(void);

/* Called with lock held, from colo_net_start. */
int colo_net_primary_start(struct colo_net *n);
int colo_net_secondary_start(struct colo_net *n);
/* Link input (no lock held). */
void colo_net_primary_from_link(void *opaque, const struct colo_link_hdr *h, uint8_t *frame);
void colo_net_secondary_from_link(void *opaque, const struct colo_link_hdr *h, uint8_t *frame);
/* COLO hooks (no lock held). */
void colo_net_primary_committed(struct colo_net *n);
void colo_net_secondary_applied(struct colo_net *n, uint64_t position);
void colo_net_primary_failover(struct colo_net *n);
void colo_net_secondary_failover(struct colo_net *n);
void colo_net_primary_free(struct colo_net *n);
void colo_net_translate_only(struct colo_net *n);
void colo_net_secondary_free(struct colo_net *n);

#endif
