/*
 * `lockstep failover --qmp SOCKET`: the takeover decision for a secondary
 * (x-colo-lost-heartbeat), and `lockstep status --qmp SOCKET`: the VM's and
 * COLO's state, one JSON object. A small QMP client over the UNIX socket.
 */
#include "cli/monitor_client.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

struct monitor {
	int fd;
	char buf[65536];
	size_t len;
};

static int monitor_connect(struct monitor *m, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	m->len = 0;
	m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0)
		return -errno;
	if (connect(m->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int ret = -errno;

		close(m->fd);
		return ret;
	}
	return 0;
}

/* The next JSON message on the socket; NULL if it closed or sent garbage. */
static json_t *monitor_read(struct monitor *m)
{
	for (;;) {
		char *nl = memchr(m->buf, '\n', m->len);

		if (nl) {
			json_t *msg = json_loadb(m->buf, nl - m->buf, 0, NULL);

			m->len -= nl + 1 - m->buf;
			memmove(m->buf, nl + 1, m->len);
			return msg;
		}
		if (m->len == sizeof(m->buf))
			return NULL;
		ssize_t n = read(m->fd, m->buf + m->len, sizeof(m->buf) - m->len);

		if (n <= 0)
			return NULL;
		m->len += n;
	}
}

/* Sends one command and returns its reply (events are skipped). */
static json_t *monitor_execute(struct monitor *m, const char *command)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "{\"execute\": \"%s\"}\n", command);

	if (write(m->fd, line, n) != n)
		return NULL;
	for (;;) {
		json_t *msg = monitor_read(m);

		if (!msg || !json_object_get(msg, "event"))
			return msg;
		json_decref(msg);
	}
}

/* The reply's "return", or NULL with the error printed. */
static json_t *reply_value(json_t *reply, const char *command)
{
	json_t *err = json_object_get(reply, "error");

	if (!reply) {
		log_error("%s: the monitor closed the connection", command);
		return NULL;
	}
	if (err) {
		log_error("%s: %s", command, json_string_value(json_object_get(err, "desc")));
		return NULL;
	}
	return json_object_get(reply, "return");
}

static int run_commands(struct monitor *m, const char *what)
{
	json_t *status, *colo;
	int ret = 1;

	if (strcmp(what, "failover") == 0) {
		json_t *r = monitor_execute(m, "x-colo-lost-heartbeat");

		if (reply_value(r, "x-colo-lost-heartbeat")) {
			puts("failover: decided; this side takes over the guest");
			ret = 0;
		}
		json_decref(r);
		return ret;
	}
	status = monitor_execute(m, "query-status");
	colo = monitor_execute(m, "query-colo-status");
	if (reply_value(status, "query-status") && reply_value(colo, "query-colo-status")) {
		json_t *out = json_pack("{s:O, s:O}", "vm", reply_value(status, "query-status"), "colo",
					reply_value(colo, "query-colo-status"));
		char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);

		puts(text ? text : "{}");
		free(text);
		json_decref(out);
		ret = 0;
	}
	json_decref(status);
	json_decref(colo);
	return ret;
}

int cmd_monitor(int argc, char **argv)
{
	struct monitor m;
	json_t *greeting, *caps;
	int ret;

	if (argc != 3 || strcmp(argv[1], "--qmp") != 0) {
		log_error("usage: lockstep %s --qmp SOCKETPATH", argv[0]);
		return 2;
	}
	if ((ret = monitor_connect(&m, argv[2])) < 0) {
		log_error("--qmp %s: %s", argv[2], strerror(-ret));
		return 1;
	}
	greeting = monitor_read(&m);
	caps = greeting ? monitor_execute(&m, "qmp_capabilities") : NULL;
	if (!greeting || !json_object_get(greeting, "QMP") || !reply_value(caps, "qmp_capabilities")) {
		log_error("--qmp %s: not a QMP monitor", argv[2]);
		ret = 1;
	} else {
		ret = run_commands(&m, argv[0]);
	}
	json_decref(greeting);
	json_decref(caps);
	close(m.fd);
	return ret;
}
