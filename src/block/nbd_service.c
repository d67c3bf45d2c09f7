#include "block/nbd_service.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

struct nbd_client_conn {
	struct nbd_service *svc;
	int fd;             /* -1: slot free */
	bool done;          /* its thread returned: join it */
	pthread_t thread;
	struct nbd_export exps[NBD_SERVICE_MAX_EXPORTS]; /* as offered when it connected */
	int nexps;
};

struct nbd_service {
	int listen_fd;
	char unix_path[108]; /* removed at stop ("" for TCP) */
	int stop_pipe[2];   /* written by nbd_service_stop: the accept loop ends */
	pthread_t acceptor;
	pthread_mutex_t lock; /* guards exports and clients */
	struct nbd_export exports[NBD_SERVICE_MAX_EXPORTS];
	char names[NBD_SERVICE_MAX_EXPORTS][NBD_SERVICE_NAME_MAX + 1]; /* exports[i].name */
	int nexports;
	struct nbd_client_conn clients[NBD_SERVICE_MAX_CLIENTS];
};

static void *serve_client(void *arg)
{
	struct nbd_client_conn *c = arg;
	char err[256];
	int ret = nbd_server_serve_fd_exports(c->fd, c->exps, c->nexps, err, sizeof(err));

	if (ret < 0 && ret != -ECONNRESET)
		log_warn("NBD client: %s", err);
	pthread_mutex_lock(&c->svc->lock);
	c->done = true;
	pthread_mutex_unlock(&c->svc->lock);
	return NULL;
}

/* Slots whose thread ended are joined and freed (lock held). */
static void reap_clients(struct nbd_service *s)
{
	for (int i = 0; i < NBD_SERVICE_MAX_CLIENTS; i++) {
		struct nbd_client_conn *c = &s->clients[i];

		if (c->fd >= 0 && c->done) {
			pthread_join(c->thread, NULL);
			close(c->fd);
			c->fd = -1;
		}
	}
}

/* A thread for the new client, with the exports offered now (lock held). */
static void start_client(struct nbd_service *s, int fd)
{
	reap_clients(s);
	for (int i = 0; i < NBD_SERVICE_MAX_CLIENTS; i++) {
		struct nbd_client_conn *c = &s->clients[i];

		if (c->fd >= 0)
			continue;
		if (s->nexports == 0)
			break;
		*c = (struct nbd_client_conn){ .svc = s, .fd = fd, .nexps = s->nexports };
		memcpy(c->exps, s->exports, sizeof(c->exps));
		if (pthread_create(&c->thread, NULL, serve_client, c) == 0)
			return;
		c->fd = -1;
		break;
	}
	log_warn("NBD server: a client refused (%s)", s->nexports ? "too many clients" : "no export yet");
	close(fd);
}

static void *accept_clients(void *arg)
{
	struct nbd_service *s = arg;
	struct pollfd p[2] = { { s->listen_fd, POLLIN, 0 }, { s->stop_pipe[0], POLLIN, 0 } };

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		start_client(s, fd);
		pthread_mutex_unlock(&s->lock);
	}
}

struct nbd_service *nbd_service_start(const char *addr, char *err, size_t errlen)
{
	struct nbd_service *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		snprintf(err, errlen, "no memory for an NBD server");
		return NULL;
	}
	for (int i = 0; i < NBD_SERVICE_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = nbd_server_listen(addr, err, errlen);
	if (s->listen_fd < 0)
		goto fail;
	if (strncmp(addr, "unix:", 5) == 0)
		snprintf(s->unix_path, sizeof(s->unix_path), "%s", addr + 5);
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail_listen;
	}
	if ((ret = pthread_create(&s->acceptor, NULL, accept_clients, s)) == 0)
		return s;
	snprintf(err, errlen, "cannot start the NBD server's thread: %s", strerror(ret));
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
fail_listen:
	close(s->listen_fd);
	if (s->unix_path[0])
		unlink(s->unix_path);
fail:
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}

bool nbd_service_has_export(struct nbd_service *s, const char *name)
{
	bool found = false;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->nexports; i++)
		found |= strcmp(s->exports[i].name, name) == 0;
	pthread_mutex_unlock(&s->lock);
	return found;
}

int nbd_service_add_export(struct nbd_service *s, const struct nbd_export *exp)
{
	int ret = 0;

	if (strlen(exp->name) > NBD_SERVICE_NAME_MAX)
		return -ENAMETOOLONG;
	if (nbd_service_has_export(s, exp->name))
		return -EEXIST;
	pthread_mutex_lock(&s->lock);
	if (s->nexports == NBD_SERVICE_MAX_EXPORTS) {
		ret = -ENOSPC;
	} else {
		strcpy(s->names[s->nexports], exp->name);
		s->exports[s->nexports] = *exp;
		s->exports[s->nexports].name = s->names[s->nexports];
		s->nexports++;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void nbd_service_stop(struct nbd_service *s)
{
	if (!s)
		return;
	(void)!write(s->stop_pipe[1], "x", 1);
	pthread_join(s->acceptor, NULL);
	close(s->listen_fd);
	if (s->unix_path[0])
		unlink(s->unix_path);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	for (int i = 0; i < NBD_SERVICE_MAX_CLIENTS; i++) {
		struct nbd_client_conn *c = &s->clients[i];

		if (c->fd < 0)
			continue;
		nbd_server_stop(c->fd);
		pthread_join(c->thread, NULL);
		close(c->fd);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}
