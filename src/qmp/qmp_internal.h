/*
 * What the QMP files share and nothing outside src/qmp may use:
 *  - qmp_stream.c  cuts the input byte stream into JSON values;
 *  - qmp_session.c the protocol of one client: negotiation, the command table
 *                  and dispatch, argument checks, replies, event formatting;
 *  - qmp_server.c  the server's life cycle, the UNIX socket and its clients,
 *                  and sending events to every session.
 */
#ifndef LOCKSTEP_QMP_QMP_INTERNAL_H
#define LOCKSTEP_QMP_QMP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "qmp/qmp.h"
#include "qmp/qmp_stream.h"

/* A session's unsent output: data[head .. head+len). */
struct qmp_outbuf {
	char *data;
	size_t head;
	size_t len;
	size_t cap;
	bool overflowed; /* more than QMP_MAX_OUTPUT was pending; later output is dropped */
};

struct qmp_command {
	char *name;
	qmp_handler fn;
	void *opaque;
};

struct qmp_client; /* a socket connection; private to qmp_server.c */

struct qmp_session {
	struct qmp_server *server; /* NULL once the server is gone */
	struct qmp_session *prev, *next;
	struct qmp_client *client; /* NULL when driven directly */
	bool negotiated;
	struct qmp_stream in;
	struct qmp_outbuf out;
};

struct qmp_server {
	struct evloop *loop;  /* NULL without a socket */
	int listen_fd;        /* -1 without a socket */
	char *socket_path;
	struct qmp_command *cmds;
	size_t ncmds;
	size_t cmds_cap;
	struct qmp_session *sessions; /* every live session, socket-driven or not */
};

/* -- qmp_session.c -- */

/* Registers qmp_capabilities, query-version and query-commands. 0 or -errno. */
int qmp_register_builtins(struct qmp_server *s);
void qmp_commands_free(struct qmp_server *s);
/* Takes the session off its server's list; it then only accepts qmp_session_destroy. */
void qmp_session_detach(struct qmp_session *sess);
/* {"event": name, "data": data, "timestamp": now}; data is borrowed and may be NULL. */
json_t *qmp_event_json(const char *name, json_t *data);
/* Queues msg (stolen; NULL counts as out of memory) as one output line. 0 or -errno. */
int qmp_session_queue(struct qmp_session *sess, json_t *msg);

#endif
