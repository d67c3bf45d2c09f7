/* The COLO network proxy: wiring, link, and the checkpoint and failover hooks (proxy.h). */
#include "colo/net/proxy.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "colo/net/proxy_internal.h"
#include "colo/colo.h"
#include "colo/peer.h"
#include "dev/virtio_net.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "vm/vm.h"

void colo_net_default_config(struct colo_net_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->compare.compare_timeout_ms = COLO_NET_DEFAULT_COMPARE_TIMEOUT_MS;
	cfg->compare.max_queue_size = COLO_NET_DEFAULT_MAX_QUEUE;
	cfg->compare.max_connections = COLO_NET_DEFAULT_MAX_CONNECTIONS;
	cfg->compare.idle_timeout_ms = COLO_COMPARE_DEFAULT_IDLE_MS;
	cfg->scan_period_ms = COLO_NET_DEFAULT_SCAN_MS;
}

uint64_t colo_net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void colo_net_on_link(void *opaque, uint32_t events);

/* The link failed (reader or writer): COLO ends by the failover rules, never silently. */
static void colo_net_link_failed(struct colo_net *n, const char *why)
{
	pthread_mutex_lock(&n->lock);
	if (!n->link.error[0])
		snprintf(n->link.error, sizeof(n->link.error), "%s", why);
	pthread_mutex_unlock(&n->lock);
	log_warn("COLO network link: %s", why);
	colo_link_failed(n->colo, why);
}

/* From the writer's thread. */
static void colo_net_writer_failed(void *opaque, int err)
{
	struct colo_net *n = opaque;
	char why[96];

	if (err == -ETIMEDOUT)
		snprintf(why, sizeof(why), "peer silent: it took nothing for %u ms", n->peer_timeout_ms);
	else
		snprintf(why, sizeof(why), "sending: %s", strerror(-err));
	colo_net_link_failed(n, why);
}

/* COLO is starting: bring the link up and take the role. */
static int colo_net_start(void *opaque, const struct colo_peer *peer)
{
	struct colo_net *n = opaque;
	int fd = peer->mode == COLO_MODE_PRIMARY ? colo_peer_connect(peer, COLO_LINK_MAGIC) : colo_peer_accept(peer, COLO_LINK_MAGIC);
	int ret;

	if (fd < 0)
		return fd;
	ret = colo_link_writer_start(&n->writer, fd, COLO_LINK_QUEUE_LIMIT, peer->timeout_ms,
				     colo_net_writer_failed, n);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	vm_io_lock(n->vm); /* the guest's frames change course: lock order io, then ours */
	pthread_mutex_lock(&n->lock);
	n->link_fd = fd;
	n->epoch = 0;
	n->mirror_seq = 0;
	n->barrier = 0;
	n->role = peer->mode;
	n->peer_timeout_ms = peer->timeout_ms;
	colo_link_reader_reset(&n->reader);
	memset(&n->link, 0, sizeof(n->link));
	n->link.up = n->link_seen = true;
	ret = n->role == COLO_MODE_PRIMARY ? colo_net_primary_start(n) : colo_net_secondary_start(n);
	pthread_mutex_unlock(&n->lock);
	net_backend_rx_changed(&n->be); /* a secondary's guest now reads the mirror */
	vm_io_unlock(n->vm);
	if (ret == 0)
		ret = evloop_add(n->vm->loop, fd, EPOLLIN, colo_net_on_link, n);
	return ret;
}

/* Frames from the peer; the link dies with the first impossible header or a closed socket. */
static void colo_net_on_link(void *opaque, uint32_t events)
{
	struct colo_net *n = opaque;
	uint8_t buf[65536];
	ssize_t r = recv(n->link_fd, buf, sizeof(buf), MSG_DONTWAIT);
	char why[96];

	(void)events;
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r > 0 && colo_link_feed(&n->reader, buf, (size_t)r,
				    n->role == COLO_MODE_PRIMARY ? colo_net_primary_from_link
								 : colo_net_secondary_from_link,
				    n) == 0)
		return;
	evloop_del(n->vm->loop, n->link_fd);
	snprintf(why, sizeof(why), "%s", r > 0 ? "malformed frame header from the peer"
				  : r == 0 ? "closed by the peer" : strerror(errno));
	colo_net_link_failed(n, why);
}

static void colo_net_on_timer(void *opaque, uint32_t events)
{
	struct colo_net *n = opaque;
	uint64_t ticks;

	(void)events;
	if (read(n->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->cmp)
		colo_compare_tick(n->cmp, colo_net_now_ms());
	pthread_mutex_unlock(&n->lock);
}

/* The role is fixed while COLO runs; hooks only fire while it does. */
static int colo_net_committed(void *opaque)
{
	struct colo_net *n = opaque;

	if (n->role == COLO_MODE_PRIMARY)
		colo_net_primary_committed(n);
	return 0;
}

static int colo_net_applied(void *opaque, uint64_t mirror_position)
{
	struct colo_net *n = opaque;

	if (n->role == COLO_MODE_SECONDARY)
		colo_net_secondary_applied(n, mirror_position);
	return 0;
}

/* The link goes down: first its reader, then its senders (link_fd < 0 under
 * our lock), then its writer thread; then the fd closes. */
static void colo_net_link_down(struct colo_net *n)
{
	int fd = __atomic_load_n(&n->link_fd, __ATOMIC_ACQUIRE);

	if (fd < 0)
		return;
	evloop_del_sync(n->vm->loop, fd);
	pthread_mutex_lock(&n->lock);
	n->link_fd = -1;
	pthread_mutex_unlock(&n->lock);
	colo_link_writer_stop(&n->writer);
	close(fd);
	pthread_mutex_lock(&n->lock);
	n->link.writer = n->writer.stats; /* the thread is gone: no lock needed */
	n->link.up = false;
	pthread_mutex_unlock(&n->lock);
}

/* The VM runs alone: the guest's frames go straight between it and the TAP. */
static void colo_net_failover(void *opaque)
{
	struct colo_net *n = opaque;

	vm_io_lock(n->vm);
	pthread_mutex_lock(&n->lock);
	if (n->role == COLO_MODE_PRIMARY)
		colo_net_primary_failover(n);
	else if (n->role == COLO_MODE_SECONDARY)
		colo_net_secondary_failover(n);
	pthread_mutex_unlock(&n->lock);
	net_backend_rx_changed(&n->be); /* a secondary's guest now reads the TAP */
	vm_io_unlock(n->vm);
	colo_net_link_down(n);
}

static uint64_t colo_net_position(void *opaque)
{
	struct colo_net *n = opaque;

	return __atomic_load_n(&n->mirror_seq, __ATOMIC_ACQUIRE);
}

struct colo_net *colo_net_create(struct vm *vm, struct virtio_net *nic, struct colo *c,
				 const struct colo_net_config *cfg)
{
	struct colo_net *n = calloc(1, sizeof(*n));
	struct itimerspec every = { .it_interval = { 0, (long)cfg->scan_period_ms * 1000000 },
				    .it_value = { 0, (long)cfg->scan_period_ms * 1000000 } };

	if (!n || colo_link_reader_init(&n->reader) < 0) {
		free(n);
		return NULL;
	}
	n->be.ops = &colo_net_backend_ops;
	n->vm = vm;
	n->colo = c;
	n->cfg = *cfg;
	n->link_fd = -1;
	pthread_mutex_init(&n->lock, NULL);
	n->rx_event = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->rx_event < 0) {
		colo_link_reader_free(&n->reader);
		pthread_mutex_destroy(&n->lock);
		free(n);
		return NULL;
	}
	n->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (n->timer_fd >= 0 && vm->loop) {
		timerfd_settime(n->timer_fd, 0, &every, NULL);
		evloop_add(vm->loop, n->timer_fd, EPOLLIN, colo_net_on_timer, n);
	}
	if (colo_add_participant(c, &(struct colo_participant){
		    .name = "network proxy", .opaque = n, .start = colo_net_start,
		    .committed = colo_net_committed, .applied = colo_net_applied,
		    .mark = colo_net_position, .failover = colo_net_failover }) < 0) {
		colo_net_destroy(n);
		return NULL;
	}
	if (nic) {
		vm_io_lock(vm);
		virtio_net_wrap_backend(nic, &n->be);
		n->nic = nic;
		snprintf(n->be.name, sizeof(n->be.name), "%s", n->be.inner->name);
		vm_io_unlock(vm);
	}
	return n;
}

void colo_net_destroy(struct colo_net *n)
{
	if (!n)
		return;
	if (n->timer_fd >= 0) {
		evloop_del(n->vm->loop, n->timer_fd);
		close(n->timer_fd);
	}
	colo_net_link_down(n); /* first: link input may release frames to the TAP */
	if (n->nic) {
		vm_io_lock(n->vm);
		virtio_net_unwrap_backend(n->nic);
		vm_io_unlock(n->vm);
	}
	net_backend_close(&n->be); /* the inner backend, if still ours */
	colo_net_primary_free(n);
	colo_net_secondary_free(n);
	if (n->rw)
		colo_rewriter_destroy(n->rw);
	close(n->rx_event);
	colo_link_reader_free(&n->reader);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

void colo_net_get_stats(struct colo_net *n, struct colo_compare_stats *cmp, int *has_cmp,
			struct colo_rewriter_stats *rw, int *has_rw, struct colo_net_link_stats *link,
			int *has_link)
{
	pthread_mutex_lock(&n->lock);
	*has_link = n->link_seen;
	*link = n->link;
	if (n->link_fd >= 0)
		colo_link_writer_get_stats(&n->writer, &link->writer);
	*has_cmp = n->cmp != NULL;
	if (n->cmp)
		colo_compare_get_stats(n->cmp, cmp);
	*has_rw = n->rw != NULL;
	if (n->rw)
		colo_rewriter_get_stats(n->rw, rw);
	pthread_mutex_unlock(&n->lock);
}
