/* Shared by proxy.c, proxy_backend.c, proxy_primary.c and proxy_secondary.c. */
#ifndef LOCKSTEP_COLO_NET_PROXY_INTERNAL_H
#define LOCKSTEP_COLO_NET_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "net/announce.h"
#include "net/backend.h"
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
#define COLO_NET_RXQ_MAX 512
#define COLO_NET_EARLY_MAX 256
#define VNET_HDR_LEN NET_VNET_HDR_BYTES

/* A mirrored frame on its way to the secondary's guest. */
struct colo_net_mirrored {
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
 * Lock order: vm->io_lock, then lock. The backend ops arrive with io_lock
 * held; link input and timers take only lock; COLO hooks that change the
 * role take both. Every call into the inner backend is made under lock, so
 * its attach/detach (forwarded under lock) never races a send.
 */
struct colo_net {
	struct net_backend be; /* first: the backend ops find us through it; be.inner is the TAP */
	struct vm *vm;
	struct virtio_net *nic; /* the NIC we are in front of, or NULL (tests wrap by hand) */
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
	struct guest_addrs addrs;
	/* Connections from an earlier takeover (this VM was a secondary): their
	 * translation stays between guest and TAP in every role but secondary. */
	struct colo_rewriter *rw;

	/* Primary */
	struct colo_compare *cmp;
	struct pcap_writer *pcap;
	struct colo_net_early early[COLO_NET_EARLY_MAX];
	int nearly;

	/* Secondary: the guest's receive queue is the mirror. */
	uint64_t barrier;    /* mirrored frames up to here are in the last checkpoint */
	bool failed_over;
	int rx_event;        /* eventfd, readable while rxq holds frames: our rx_fd */
	struct colo_net_mirrored rxq[COLO_NET_RXQ_MAX];
	int rxq_head, rxq_len;
};

uint64_t colo_net_now_ms(void);

/* The backend in front of the NIC (proxy_backend.c). */
extern const struct net_backend_ops colo_net_backend_ops;

/* By role, with lock held: a frame from the guest, the next frame for it. */
int colo_net_primary_send(struct colo_net *n, uint8_t *pkt, size_t len);
ssize_t colo_net_primary_recv(struct colo_net *n, uint8_t *buf, size_t cap);
int colo_net_secondary_send(struct colo_net *n, uint8_t *pkt, size_t len);
ssize_t colo_net_rxq_pop(struct colo_net *n, uint8_t *buf, size_t cap);

/* Called with lock held, from colo_net_start. */
int colo_net_primary_start(struct colo_net *n);
int colo_net_secondary_start(struct colo_net *n);
/* Link input (no lock held). */
void colo_net_primary_from_link(void *opaque, const struct colo_link_hdr *h, uint8_t *frame);
void colo_net_secondary_from_link(void *opaque, const struct colo_link_hdr *h, uint8_t *frame);
/* COLO hooks (no lock held). */
void colo_net_primary_committed(struct colo_net *n);
void colo_net_secondary_applied(struct colo_net *n, uint64_t position);
/* Failover, with io_lock and lock held: the role becomes NONE. */
void colo_net_primary_failover(struct colo_net *n);
void colo_net_secondary_failover(struct colo_net *n);
void colo_net_primary_free(struct colo_net *n);
void colo_net_secondary_free(struct colo_net *n);

#endif
