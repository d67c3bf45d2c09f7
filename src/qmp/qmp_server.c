/*
 * The QMP server: its life cycle, the listening UNIX socket, and one client
 * per connection, each moving bytes between a non-blocking socket and its
 * session. This layer stops reading commands from a client that does not
 * read its replies, and drops one whose session output reached
 * QMP_MAX_OUTPUT, so a stuck client can neither stall the event loop nor grow
 * memory without bound. Reading order: clients, accepting, the listening
 * socket, creation and destruction, events.
 */
#include "qmp/qmp_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

/* Stop reading a client's commands while this much of its output is unsent. */
#define QMP_OUTPUT_HIGH_WATER (1u << 20)
/* Bytes read from a client per wake-up; bounds the output one read can cause. */
#define QMP_READ_CHUNK 16384
/* How long qmp_server_destroy tries to deliver pending output, in total. */
#define QMP_FINAL_FLUSH_MS 500
/* Pending connections the kernel holds for us; clients connect rarely. */
#define QMP_LISTEN_BACKLOG 16

struct qmp_client {
	struct qmp_server *server;
	struct qmp_session *sess;
	int fd;
	uint32_t watched; /* epoll events currently requested */
	bool eof;         /* the client stopped sending; close once output is out */
};

/* ---- socket clients ------------------------------------------------------- */

static void client_drop(struct qmp_client *c)
{
	evloop_del(c->server->loop, c->fd);
	close(c->fd);
	qmp_session_destroy(c->sess);
	free(c);
}

/* Writes as much pending output as the socket takes. 0, or -errno if the client is gone. */
static int client_flush(struct qmp_client *c)
{
	size_t len;
	const char *data = qmp_session_output(c->sess, &len);

	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		qmp_session_consume(c->sess, (size_t)n);
		data = qmp_session_output(c->sess, &len);
	}
	return 0;
}

/* Reads while there is room: backpressure on clients that send faster than they read. */
static uint32_t client_wanted_events(const struct qmp_client *c)
{
	uint32_t ev = 0;

	if (!c->eof && c->sess->out.len < QMP_OUTPUT_HIGH_WATER)
		ev |= EPOLLIN;
	if (c->sess->out.len > 0)
		ev |= EPOLLOUT;
	return ev;
}

static void client_update_watch(struct qmp_client *c)
{
	uint32_t ev = client_wanted_events(c);

	if (ev != c->watched && evloop_modify(c->server->loop, c->fd, ev) == 0)
		c->watched = ev;
}

/*
 * Output was queued outside the client's own callback (an event, possibly
 * while one of its commands runs). Freeing the client here could pull it from
 * under that command, so only ask for a write wake-up; a client too far
 * behind is shut down and the callback that follows drops it.
 */
static void client_output_queued(struct qmp_client *c)
{
	if (c->sess->out.overflowed)
		shutdown(c->fd, SHUT_RDWR);
	client_update_watch(c);
}

/* 0 when read something or nothing was ready, 1 on end of input, -errno on error. */
static int client_read(struct qmp_client *c)
{
	char buf[QMP_READ_CHUNK];
	ssize_t n;

	do {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
	if (n == 0)
		return 1;
	return qmp_session_feed(c->sess, buf, (size_t)n);
}

/*
 * Level-triggered, so the event bits are only a hint: try to read if we asked
 * to (or the socket reports a hang-up or error), always try to write pending
 * output, and let the system calls say what really happened.
 */
static void client_on_io(void *opaque, uint32_t events)
{
	struct qmp_client *c = opaque;
	int r = 0;

	if (!c->eof && (c->watched & EPOLLIN) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		r = client_read(c);
		if (r == 1) {
			c->eof = true;
			r = 0;
		}
	}
	if (r == 0)
		r = client_flush(c);
	if (r == 0 && c->sess->out.overflowed) {
		log_warn("qmp: client fd %d does not read its output, disconnecting", c->fd);
		r = -ENOBUFS;
	}
	if (r < 0 || (c->eof && c->sess->out.len == 0)) {
		log_info("qmp: client fd %d disconnected", c->fd);
		client_drop(c);
		return;
	}
	client_update_watch(c);
}

/* ---- accepting ------------------------------------------------------------ */

static void client_accept(struct qmp_server *s, int fd)
{
	struct qmp_client *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;

	if (!c || !(c->sess = qmp_session_create(s)))
		goto fail;
	c->server = s;
	c->fd = fd;
	c->sess->client = c;
	c->watched = client_wanted_events(c);
	r = evloop_add(s->loop, fd, c->watched, client_on_io, c);
	if (r < 0)
		goto fail;
	log_info("qmp: client fd %d connected", fd);
	return;
fail:
	log_warn("qmp: cannot accept a client: %s", strerror(-r));
	if (c)
		qmp_session_destroy(c->sess);
	free(c);
	close(fd);
}

static void server_on_accept(void *opaque, uint32_t events)
{
	struct qmp_server *s = opaque;

	(void)events;
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("qmp: accept: %s", strerror(errno));
			return;
		}
		client_accept(s, fd);
	}
}

/* ---- listening socket ----------------------------------------------------- */

/*
 * A socket file left by a process that died is removed; a live server there
 * (connect succeeds) or a file that is not a socket is left alone.
 */
static int remove_stale_socket(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd;
	int live;

	if (lstat(addr->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
	close(fd);
	if (live)
		return -EADDRINUSE;
	if (unlink(addr->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Returns the listening fd or -errno. */
static int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;
	int r;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	r = remove_stale_socket(&addr);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, QMP_LISTEN_BACKLOG) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int server_listen(struct qmp_server *s, struct evloop *loop, const char *path)
{
	int fd;
	int r;

	s->socket_path = strdup(path);
	if (!s->socket_path)
		return -ENOMEM;
	fd = listen_unix(path);
	if (fd == -EEXIST) {
		log_error("qmp: cannot listen on %s: the file exists and is not a socket", path);
		return fd;
	}
	if (fd < 0) {
		log_error("qmp: cannot listen on %s: %s", path, strerror(-fd));
		return fd;
	}
	s->listen_fd = fd;
	s->loop = loop;
	r = evloop_add(loop, fd, EPOLLIN, server_on_accept, s);
	if (r < 0)
		log_error("qmp: cannot watch %s: %s", path, strerror(-r));
	return r;
}

/* Closes the listening socket, if any, and removes its file: only we created it. */
static void server_stop_listening(struct qmp_server *s)
{
	if (s->listen_fd >= 0) {
		evloop_del(s->loop, s->listen_fd);
		close(s->listen_fd);
		unlink(s->socket_path);
	}
	free(s->socket_path);
}

/* ---- creation and destruction --------------------------------------------- */

struct qmp_server *qmp_server_create(struct evloop *loop, const char *socket_path, int *err)
{
	struct qmp_server *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (!s)
		goto fail;
	s->listen_fd = -1;
	r = qmp_register_builtins(s);
	if (r == 0 && (loop || socket_path))
		r = (loop && socket_path) ? server_listen(s, loop, socket_path) : -EINVAL;
	if (r < 0)
		goto fail;
	return s;
fail:
	qmp_server_destroy(s);
	if (err)
		*err = r;
	return NULL;
}

static struct timespec deadline_after_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += ms * 1000000L;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

static long ms_until(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Last chance for a client to get its output (the reply to "quit", a SHUTDOWN event). */
static void client_flush_final(struct qmp_client *c, const struct timespec *deadline)
{
	while (c->sess->out.len > 0 && client_flush(c) == 0 && c->sess->out.len > 0) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		long ms = ms_until(deadline);

		if (ms <= 0 || poll(&p, 1, (int)ms) <= 0)
			return;
	}
}

void qmp_server_destroy(struct qmp_server *s)
{
	struct timespec deadline;

	if (!s)
		return;
	/* one deadline for all clients, so many slow ones cannot add up */
	deadline = deadline_after_ms(QMP_FINAL_FLUSH_MS);
	while (s->sessions) {
		struct qmp_session *sess = s->sessions;

		if (sess->client) {
			client_flush_final(sess->client, &deadline);
			client_drop(sess->client);
		} else {
			qmp_session_detach(sess);
		}
	}
	server_stop_listening(s);
	qmp_commands_free(s);
	free(s);
}

/* ---- events --------------------------------------------------------------- */

void qmp_emit_event(struct qmp_server *s, const char *name, json_t *data)
{
	/* one object, one timestamp, shared by every session */
	json_t *ev = qmp_event_json(name, data);

	json_decref(data);
	if (!ev) {
		log_warn("qmp: out of memory building event %s", name);
		return;
	}
	for (struct qmp_session *sess = s->sessions; sess; sess = sess->next) {
		/* as in QEMU, a client gets events only once it finished negotiation */
		if (!sess->negotiated)
			continue;
		qmp_session_queue(sess, json_incref(ev));
		if (sess->client)
			client_output_queued(sess->client);
	}
	json_decref(ev);
}
