/* Migration bookkeeping shared by both directions: status, events, parameters. */
#include "state/migrate.h"
#include "colo/colo.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/evloop.h"
#include "vm/vm.h"

void migration_init(struct migration *m, struct vm *vm, migrate_status_fn on_status, void *opaque)
{
	memset(m, 0, sizeof(*m));
	m->vm = vm;
	m->fd = m->listen_fd = -1;
	m->on_status = on_status;
	m->opaque = opaque;
	m->params.downtime_limit_ms = MIGRATE_DEFAULT_DOWNTIME_MS;
	pthread_mutex_init(&m->lock, NULL);
}

/* COLO has ended with this VM running alone: the migration that began it is
 * over, and the VM may be protected again (`migrate` with x-colo). */
static void migration_colo_ended(void *opaque)
{
	struct migration *m = opaque;
	bool was_colo;

	pthread_mutex_lock(&m->lock);
	was_colo = m->status == MIGRATE_COLO;
	m->incoming = false;
	pthread_mutex_unlock(&m->lock);
	if (was_colo)
		migration_set_status(m, MIGRATE_COMPLETED);
}

int migration_attach_colo(struct migration *m, struct colo *c)
{
	m->colo = c;
	return colo_add_participant(c, &(struct colo_participant){
		.name = "migration", .opaque = m, .failover = migration_colo_ended });
}

void migration_destroy(struct migration *m)
{
	migration_cancel(m);
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	m->thread_started = false;
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	m->listen_fd = -1;
	pthread_mutex_destroy(&m->lock);
}

const char *migrate_status_name(enum migrate_status st)
{
	static const char *const names[] = {
		[MIGRATE_NONE] = "none",		[MIGRATE_SETUP] = "setup",
		[MIGRATE_ACTIVE] = "active",		[MIGRATE_COMPLETED] = "completed",
		[MIGRATE_FAILED] = "failed",		[MIGRATE_CANCELLING] = "cancelling",
		[MIGRATE_CANCELLED] = "cancelled",	[MIGRATE_COLO] = "colo",
	};

	return st <= MIGRATE_COLO ? names[st] : "unknown";
}

struct status_event {
	struct migration *m;
	enum migrate_status st;
};

static void deliver_status(void *arg)
{
	struct status_event *e = arg;

	if (e->m->on_status)
		e->m->on_status(e->m->opaque, e->st);
	free(e);
}

void migration_set_status(struct migration *m, enum migrate_status st)
{
	struct status_event *e = malloc(sizeof(*e));

	pthread_mutex_lock(&m->lock);
	m->status = st;
	pthread_mutex_unlock(&m->lock);
	if (!e)
		return;
	*e = (struct status_event){ m, st };
	if (!m->vm->loop || evloop_post(m->vm->loop, deliver_status, e) < 0)
		free(e);
}

void migration_fail(struct migration *m, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	if (!m->error[0]) {
		va_start(ap, fmt);
		vsnprintf(m->error, sizeof(m->error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&m->lock);
}

static bool migration_busy(struct migration *m)
{
	return m->status == MIGRATE_SETUP || m->status == MIGRATE_ACTIVE ||
	       m->status == MIGRATE_CANCELLING || m->status == MIGRATE_COLO;
}

int migration_start(struct migration *m, const char *uri, char *err, size_t errlen)
{
	struct netaddr addr;
	int ret = netaddr_parse_tcp(uri, &addr, err, errlen);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&m->lock);
	if (migration_busy(m) || m->incoming) {
		pthread_mutex_unlock(&m->lock);
		snprintf(err, errlen, m->incoming ? "this VM is waiting for an incoming migration"
						  : "a migration is already in progress");
		return -EBUSY;
	}
	pthread_mutex_unlock(&m->lock);
	if (m->thread_started)
		pthread_join(m->thread, NULL); /* the previous one has finished */
	m->thread_started = false;
	memset(&m->stats, 0, sizeof(m->stats));
	m->error[0] = '\0';
	m->cancel = 0;
	m->committing = false;
	if (m->colo)
		colo_set_peer_uri(m->colo, uri);
	/* Connected here, so a wrong address is the command's error, not a later event. */
	m->fd = netaddr_connect(&addr);
	if (m->fd < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", uri, strerror(-m->fd));
		return m->fd;
	}
	migration_set_status(m, MIGRATE_SETUP);
	ret = pthread_create(&m->thread, NULL, migration_send_thread, m);
	if (ret) {
		close(m->fd);
		m->fd = -1;
		migration_set_status(m, MIGRATE_FAILED);
		snprintf(err, errlen, "cannot start the migration thread: %s", strerror(ret));
		return -ret;
	}
	m->thread_started = true;
	return 0;
}

int migration_cancel(struct migration *m)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (m->incoming) {
		/* Shutting the sockets down wakes the receiving thread in accept or read. */
		m->cancel = 1;
		if (m->listen_fd >= 0)
			shutdown(m->listen_fd, SHUT_RDWR);
		if (m->fd >= 0)
			shutdown(m->fd, SHUT_RDWR);
	}
	/* Once END is out the destination may already run the guest: cancelling
	 * then could leave two copies running, so it is refused. */
	if (migration_busy(m) && !m->incoming && m->committing) {
		ret = -EBUSY;
	} else if (migration_busy(m) && !m->incoming) {
		m->cancel = 1;
		/* Unblocks a send or the wait for the answer. */
		if (m->fd >= 0)
			shutdown(m->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int migration_listen(struct migration *m, const char *uri, migrate_incoming_fn done,
		     void *done_opaque, char *err, size_t errlen)
{
	struct netaddr addr;
	int ret = netaddr_parse_tcp(uri, &addr, err, errlen);

	if (ret < 0)
		return ret;
	m->listen_fd = netaddr_listen(&addr);
	if (m->listen_fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", uri, strerror(-m->listen_fd));
		return m->listen_fd;
	}
	m->incoming = true;
	m->on_incoming = done;
	m->incoming_opaque = done_opaque;
	ret = pthread_create(&m->thread, NULL, migration_recv_thread, m);
	if (ret) {
		snprintf(err, errlen, "cannot start the incoming migration thread: %s", strerror(ret));
		return -ret;
	}
	m->thread_started = true;
	return 0;
}

void migration_query(struct migration *m, enum migrate_status *st, struct migrate_stats *stats,
		     char *error, size_t errlen)
{
	pthread_mutex_lock(&m->lock);
	*st = m->status;
	*stats = m->stats;
	snprintf(error, errlen, "%s", m->error);
	pthread_mutex_unlock(&m->lock);
}

void migration_get_params(struct migration *m, struct migrate_params *p)
{
	pthread_mutex_lock(&m->lock);
	*p = m->params;
	pthread_mutex_unlock(&m->lock);
}

void migration_set_params(struct migration *m, const struct migrate_params *p)
{
	pthread_mutex_lock(&m->lock);
	m->params = *p;
	pthread_mutex_unlock(&m->lock);
}
