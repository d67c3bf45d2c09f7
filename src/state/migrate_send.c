/* The source side of a live migration (see migrate.h). Runs on its own thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "colo/colo.h"
#include "state/migrate.h"
#include "state/stream.h"
#include "state/vmstate.h"
#include "vm/dirty.h"
#include "vm/vm.h"

struct send_ctx {
	struct migration *m;
	struct vm *vm;
	struct stream_out out;
	struct migrate_params params;
	uint64_t *bitmap;
	uint64_t words;
	uint64_t t_start, t_round;
	bool paused_by_us, detached;
	bool colo; /* enter COLO instead of completing */
};

static uint64_t ms_since(uint64_t t_ns) { return (stream_now_ns() - t_ns) / 1000000; }

static void send_account(struct send_ctx *c, const struct vmstate_ram_stats *rs)
{
	pthread_mutex_lock(&c->m->lock);
	c->m->stats.transferred = c->out.bytes;
	c->m->stats.normal_pages += rs->pages - rs->zero_pages;
	c->m->stats.zero_pages += rs->zero_pages;
	pthread_mutex_unlock(&c->m->lock);
}

static int send_ram(struct send_ctx *c, const uint64_t *bitmap)
{
	struct vmstate_ram_stats rs = { 0 };
	int ret = vmstate_write_ram(&c->out, c->vm, bitmap, &rs);

	send_account(c, &rs);
	return ret;
}

/* Pages dirtied since the last harvest, into c->bitmap (cleared first). */
static int64_t send_harvest(struct send_ctx *c)
{
	memset(c->bitmap, 0, c->words * sizeof(uint64_t));
	return dirty_harvest(c->vm, c->bitmap);
}

/* Adds what was dirtied since the last harvest to the pages still to send. */
static int64_t send_harvest_more(struct send_ctx *c)
{
	int64_t ret = dirty_harvest(c->vm, c->bitmap);

	return ret < 0 ? ret : (int64_t)dirty_count(c->bitmap, c->words);
}

/*
 * Iterates until the dirty set fits the downtime limit at the measured
 * bandwidth. Returns 0 when it is time to stop the VM, with the pages still
 * to send in c->bitmap.
 */
static int send_converge(struct send_ctx *c)
{
	for (uint64_t round = 0;; round++) {
		uint64_t bytes_before = c->out.bytes, t0 = stream_now_ns(), elapsed_ns;
		int64_t dirty = send_harvest(c);
		double bw;

		if (dirty < 0)
			return (int)dirty;
		elapsed_ns = t0 - c->t_round;
		c->t_round = t0;
		pthread_mutex_lock(&c->m->lock);
		c->m->stats.remaining = (uint64_t)dirty * GMEM_PAGE_SIZE;
		c->m->stats.dirty_pages_rate = elapsed_ns ? (uint64_t)dirty * 1000000000ULL / elapsed_ns : 0;
		bw = c->m->stats.mbps * 1e6 / 8;
		pthread_mutex_unlock(&c->m->lock);
		if (dirty == 0 || round >= MIGRATE_MAX_ROUNDS ||
		    (bw > 0 && (double)dirty * GMEM_PAGE_SIZE / bw * 1000 <= (double)c->params.downtime_limit_ms))
			return 0;
		if (c->m->cancel)
			return -ECANCELED;
		if (send_ram(c, c->bitmap) < 0 || stream_out_flush(&c->out) < 0)
			return c->out.error;
		pthread_mutex_lock(&c->m->lock);
		c->m->stats.rounds = round + 1;
		elapsed_ns = stream_now_ns() - t0;
		if (elapsed_ns)
			c->m->stats.mbps = (double)(c->out.bytes - bytes_before) * 8 * 1e3 / (double)elapsed_ns;
		pthread_mutex_unlock(&c->m->lock);
	}
}

/*
 * Exactly the answer's bytes: a COLO secondary's first message may follow at
 * once on the same socket, and it belongs to the COLO thread.
 */
static int recv_exactly(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (uint8_t *)p + got, n - got, 0);

		if (r == 0)
			return -EPIPE;
		if (r < 0 && errno != EINTR)
			return -errno;
		got += r > 0 ? (size_t)r : 0;
	}
	return 0;
}

/* The destination's answer once it has loaded everything and taken the backends. */
static int send_wait_ack(struct send_ctx *c)
{
	struct timeval tv = { .tv_sec = MIGRATE_ACK_TIMEOUT_S };
	struct migrate_ack ack;
	int ret;

	setsockopt(c->out.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ret = recv_exactly(c->out.fd, &ack, sizeof(ack));
	if (ret < 0) {
		migration_fail(c->m, "no answer from the destination: %s",
			       ret == -EPIPE ? "connection closed" : strerror(-ret));
		return ret;
	}
	if (ack.magic != MIGRATE_ACK_MAGIC) {
		migration_fail(c->m, "the destination sent a malformed answer");
		return -EPROTO;
	}
	if (ack.status != 0) {
		migration_fail(c->m, "the destination refused the VM: %s", strerror(-ack.status));
		return ack.status < 0 ? ack.status : -EIO;
	}
	return 0;
}

/* Stop-and-copy: everything left, while the guest is stopped. */
static int send_final(struct send_ctx *c)
{
	uint64_t t_stop;
	int64_t dirty;
	int ret;

	c->paused_by_us = vm_get_state(c->vm) == VM_STATE_RUNNING;
	if ((ret = vm_pause(c->vm)) < 0)
		return ret;
	t_stop = stream_now_ns();
	dirty = send_harvest_more(c);
	if (dirty < 0)
		return (int)dirty;
	if ((ret = send_ram(c, c->bitmap)))
		return ret;
	if (c->params.check_ram) {
		uint64_t hash = vmstate_ram_hash(c->vm);

		pthread_mutex_lock(&c->m->lock);
		c->m->stats.ram_hash = hash;
		c->m->stats.ram_hash_valid = true;
		pthread_mutex_unlock(&c->m->lock);
		if ((ret = vmstate_write_ram_hash(&c->out, hash)))
			return ret;
	}
	if ((ret = vmstate_write_machine(&c->out, c->vm)))
		return ret;
	pthread_mutex_lock(&c->m->lock);
	if (c->m->cancel) {
		pthread_mutex_unlock(&c->m->lock);
		return -ECANCELED;
	}
	c->m->committing = true;
	pthread_mutex_unlock(&c->m->lock);
	if ((ret = vmstate_write_end(&c->out)))
		return ret;
	/* One owner per TAP: let go before the destination takes it. A COLO
	 * primary keeps its backends: the secondary never owns them while COLO runs. */
	if (!c->colo) {
		vm_detach_backends(c->vm);
		c->detached = true;
	}
	ret = send_wait_ack(c);
	pthread_mutex_lock(&c->m->lock);
	c->m->stats.downtime_ms = ms_since(t_stop);
	c->m->stats.transferred = c->out.bytes;
	c->m->stats.remaining = 0;
	pthread_mutex_unlock(&c->m->lock);
	return ret;
}

static int send_all(struct send_ctx *c)
{
	int ret;

	if ((ret = vmstate_write_header(&c->out)) || (ret = vmstate_write_config(&c->out, c->vm)))
		return ret;
	if (c->colo && (ret = vmstate_write_colo(&c->out)))
		return ret;
	c->bitmap = calloc(c->words, sizeof(uint64_t));
	if (!c->bitmap)
		return -ENOMEM;
	/* Start a tracking period: what is dirtied from now on is sent again. */
	if ((ret = (int)send_harvest(c)) < 0)
		return ret;
	pthread_mutex_lock(&c->m->lock);
	c->m->stats.setup_time_ms = ms_since(c->t_start);
	pthread_mutex_unlock(&c->m->lock);
	migration_set_status(c->m, MIGRATE_ACTIVE);
	c->t_round = stream_now_ns();
	if ((ret = send_ram(c, NULL)) || (ret = stream_out_flush(&c->out)))
		return ret;
	pthread_mutex_lock(&c->m->lock);
	c->m->stats.mbps = (double)c->out.bytes * 8 * 1e3 / (double)(stream_now_ns() - c->t_round + 1);
	pthread_mutex_unlock(&c->m->lock);
	if ((ret = send_converge(c)))
		return ret;
	if (c->m->cancel)
		return -ECANCELED;
	return send_final(c);
}

/* After a failure the source is the VM's only copy: take everything back and run on. */
static void send_recover(struct send_ctx *c)
{
	if (c->detached) {
		const char *failed = NULL;
		int ret = vm_attach_backends(c->vm, &failed);

		if (ret < 0)
			migration_fail(c->m, "taking back %s: %s", failed, strerror(-ret));
	}
	if (c->paused_by_us)
		vm_resume(c->vm);
}

/* Success with x-colo: the socket and the stopped VM go to the COLO primary. */
static int send_enter_colo(struct send_ctx *c, int fd)
{
	struct migrate_params now;
	int ret;

	/* The parameters as they are now: x-check-ram may have changed since the start. */
	migration_get_params(c->m, &now);
	/* Status first: a COLO that ends at once must find it (migration_colo_ended). */
	migration_set_status(c->m, MIGRATE_COLO);
	ret = colo_start_primary(c->m->colo, fd, c->paused_by_us, now.check_ram);
	if (ret < 0) {
		close(fd);
		migration_fail(c->m, "cannot start COLO: %s", strerror(-ret));
	}
	return ret;
}

static void send_finish(struct send_ctx *c, int ret)
{
	struct migration *m = c->m;
	int fd;

	pthread_mutex_lock(&m->lock);
	m->stats.total_time_ms = ms_since(c->t_start);
	fd = m->fd;
	m->fd = -1;
	pthread_mutex_unlock(&m->lock);
	if (ret == 0 && c->colo) {
		ret = send_enter_colo(c, fd); /* closes fd if COLO cannot start */
		if (ret == 0)
			return;
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	if (ret == 0) {
		vm_set_state(c->vm, VM_STATE_PAUSED, VM_STATE_POSTMIGRATE);
		migration_set_status(m, MIGRATE_COMPLETED);
		return;
	}
	if (!m->error[0])
		migration_fail(m, "%s", m->cancel ? "cancelled" : strerror(-ret));
	send_recover(c);
	migration_set_status(m, m->cancel ? MIGRATE_CANCELLED : MIGRATE_FAILED);
}

void *migration_send_thread(void *arg)
{
	struct migration *m = arg;
	struct send_ctx c = { .m = m, .vm = m->vm, .t_start = stream_now_ns() };
	int ret;

	migration_get_params(m, &c.params);
	c.colo = m->colo_capability && m->colo;
	c.words = dirty_bitmap_words(m->vm);
	pthread_mutex_lock(&m->lock);
	m->stats.ram_total = m->vm->mem.size;
	pthread_mutex_unlock(&m->lock);
	ret = stream_out_init(&c.out, m->fd);
	if (ret == 0) {
		stream_out_set_bandwidth(&c.out, c.params.max_bandwidth);
		ret = send_all(&c);
		if (ret == 0 && m->cancel && !c.detached)
			ret = -ECANCELED;
	}
	send_finish(&c, ret);
	stream_out_free(&c.out);
	free(c.bitmap);
	return NULL;
}
