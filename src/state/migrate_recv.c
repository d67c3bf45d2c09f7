/* The destination side of a live migration (see migrate.h). Runs on its own thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "colo/colo.h"
#include "state/migrate.h"
#include "state/stream.h"
#include "state/vmstate.h"
#include "util/evloop.h"
#include "vm/vm.h"

struct incoming_result {
	struct migration *m;
	bool ok;
	char error[256];
};

static void deliver_incoming(void *arg)
{
	struct incoming_result *r = arg;

	if (r->m->on_incoming)
		r->m->on_incoming(r->m->incoming_opaque, r->ok, r->error);
	free(r);
}

static void recv_report(struct migration *m, bool ok)
{
	struct incoming_result *r = calloc(1, sizeof(*r));

	migration_set_status(m, ok ? MIGRATE_COMPLETED : MIGRATE_FAILED);
	if (!r)
		return;
	r->m = m;
	r->ok = ok;
	pthread_mutex_lock(&m->lock);
	memcpy(r->error, m->error, sizeof(r->error));
	pthread_mutex_unlock(&m->lock);
	if (evloop_post(m->vm->loop, deliver_incoming, r) < 0)
		free(r);
}

static void recv_answer(int fd, int status)
{
	struct migrate_ack ack = { .magic = MIGRATE_ACK_MAGIC, .status = status };

	if (send(fd, &ack, sizeof(ack), MSG_NOSIGNAL) < 0) {
		/* the source is gone; it recovers on its own */
	}
}

static int recv_accept(struct migration *m)
{
	int fd;

	do {
		fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR && !m->cancel);
	if (fd < 0) {
		migration_fail(m, "accepting the migration connection: %s", strerror(errno));
		return -errno;
	}
	pthread_mutex_lock(&m->lock);
	/* A COLO secondary accepts its network link on the same listener later. */
	if (m->colo_capability && m->colo)
		colo_set_listen_fd(m->colo, m->listen_fd);
	else
		close(m->listen_fd);
	m->listen_fd = -1;
	m->fd = fd;
	if (m->cancel)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&m->lock);
	return fd;
}

/* Stream, machine state, backends: the VM can run once all three are in. */
static int recv_load(struct migration *m, struct vmstate_loader *l, struct stream_in *in)
{
	const char *failed = "?";
	int ret = vmstate_load_stream(l, in);

	if (ret == 0 && l->colo_requested && !(m->colo_capability && m->colo)) {
		migration_fail(m, "the source wants COLO but this destination lacks the x-colo capability");
		ret = -EPROTO;
	}
	if (ret == 0 && !l->colo_requested && m->colo_required) {
		migration_fail(m, "this destination can only become a COLO secondary (a disk with "
				  "replication=secondary): migrate with the x-colo capability");
		ret = -EPROTO;
	}
	/* A COLO secondary leaves the host backends alone until it fails over. */
	if (ret == 0 && (ret = vmstate_apply_machine(l)) == 0 && !l->colo_requested) {
		ret = vm_attach_backends(m->vm, &failed);
		if (ret < 0)
			migration_fail(m, "%s: cannot take the host backend: %s", failed, strerror(-ret));
	}
	if (ret < 0 && l->error[0])
		migration_fail(m, "%s", l->error);
	pthread_mutex_lock(&m->lock);
	m->stats.transferred = in->bytes;
	m->stats.normal_pages = l->ram_pages;
	m->stats.ram_hash = l->ram_hash;
	m->stats.ram_hash_valid = l->ram_hash_checked;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* The loaded VM becomes a COLO secondary: the COLO thread starts it. */
static void recv_enter_colo(struct migration *m, int fd, struct stream_in *in)
{
	int ret;

	/* Status first: a COLO that ends at once must find it (migration_colo_ended). */
	migration_set_status(m, MIGRATE_COLO);
	ret = colo_start_secondary(m->colo, fd, in, false);
	if (ret < 0) {
		migration_fail(m, "cannot start COLO: %s", strerror(-ret));
		stream_in_free(in);
		close(fd);
		recv_report(m, false);
	}
}

void *migration_recv_thread(void *arg)
{
	struct migration *m = arg;
	struct vmstate_loader *l = malloc(sizeof(*l));
	struct stream_in in = { .fd = -1 };
	uint64_t t0;
	bool colo;
	int fd, ret = -ENOMEM;

	if (!l) {
		migration_fail(m, "out of memory");
		recv_report(m, false);
		return NULL;
	}
	fd = recv_accept(m);
	t0 = stream_now_ns();
	if (fd >= 0) {
		migration_set_status(m, MIGRATE_ACTIVE);
		/* Not ram_is_zero: a later round may turn a sent page back to zero. */
		vmstate_loader_init(l, m->vm, 1);
		ret = stream_in_init(&in, fd);
		if (ret == 0)
			ret = recv_load(m, l, &in);
		recv_answer(fd, ret);
		colo = ret == 0 && l->colo_requested;
		vmstate_loader_free(l);
		pthread_mutex_lock(&m->lock);
		m->fd = -1;
		pthread_mutex_unlock(&m->lock);
		if (colo) {
			free(l);
			recv_enter_colo(m, fd, &in);
			return NULL;
		}
		stream_in_free(&in);
		close(fd);
	}
	pthread_mutex_lock(&m->lock);
	m->stats.total_time_ms = (stream_now_ns() - t0) / 1000000;
	pthread_mutex_unlock(&m->lock);
	free(l);
	recv_report(m, ret == 0);
	return NULL;
}
