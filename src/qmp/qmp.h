/*
 * QMP-compatible monitor: JSON commands and events over a UNIX socket, with
 * the wire behaviour of QEMU's QMP (greeting, capabilities negotiation,
 * "return"/"error" replies with "id" echo, timestamped events), so existing
 * QMP tools can drive lockstep.
 *
 * Two layers:
 *  - struct qmp_session: the protocol state machine of ONE client. It is fed
 *    bytes and produces reply bytes, and does no I/O itself, so tests and the
 *    fuzzer drive it directly.
 *  - struct qmp_server: the command table, the list of sessions (events go to
 *    all of them) and, optionally, the listening socket and its clients on an
 *    event loop.
 *
 * Threads: everything here runs on the event-loop thread.
 */
#ifndef LOCKSTEP_QMP_QMP_H
#define LOCKSTEP_QMP_QMP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct evloop;
struct qmp_server;
struct qmp_session;

/* The version reported in the greeting and by query-version. */
#define QMP_VERSION_MAJOR 0
#define QMP_VERSION_MINOR 1
#define QMP_VERSION_MICRO 0
#define QMP_PACKAGE "lockstep"

/* Error classes QEMU clients know. */
#define QMP_ERR_GENERIC "GenericError"
#define QMP_ERR_COMMAND_NOT_FOUND "CommandNotFound"
#define QMP_ERR_DEVICE_NOT_FOUND "DeviceNotFound"
#define QMP_ERR_DEVICE_NOT_ACTIVE "DeviceNotActive"

/* Input without a complete JSON value is dropped beyond this many bytes. */
#define QMP_MAX_INPUT (1u << 20)
/* Deeper nesting than this is rejected (and would only serve to exhaust the stack). */
#define QMP_MAX_NESTING 1024
/* A socket client whose unread output grows past this is disconnected. */
#define QMP_MAX_OUTPUT (4u << 20)

/* What a command handler reports on failure: class + human-readable description. */
struct qmp_error {
	char cls[32];   /* empty while no error is set */
	char desc[512]; /* truncated if longer */
};

void qmp_error_set(struct qmp_error *err, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline bool qmp_error_is_set(const struct qmp_error *err) { return err->cls[0] != '\0'; }

/*
 * A command. args is borrowed and always an object (empty when the client
 * sent none). Returns the result, a new reference the caller steals (NULL
 * means {}), or fills err; a result returned together with an error is freed.
 */
typedef json_t *(*qmp_handler)(json_t *args, struct qmp_error *err, void *opaque);

/* Argument checking shared by all handlers, with QEMU's error wording. */
enum qmp_arg_type {
	QMP_ARG_ANY,
	QMP_ARG_STRING,
	QMP_ARG_INT,
	QMP_ARG_NUMBER, /* integer or real */
	QMP_ARG_BOOL,
	QMP_ARG_OBJECT,
	QMP_ARG_ARRAY,
};

struct qmp_arg_spec {
	const char *name; /* NULL ends the list */
	enum qmp_arg_type type;
	bool required;
};

/*
 * Checks args (may be NULL = none) against spec (may be NULL = no arguments
 * accepted): every required one present, each of the right type, nothing
 * else. Returns 0, or -EINVAL with err filled (class GenericError).
 */
int qmp_args_check(json_t *args, struct qmp_error *err, const struct qmp_arg_spec *spec);

/*
 * Creates a server with the built-in commands (qmp_capabilities, query-version,
 * query-commands). With a loop and a socket_path it also listens on that UNIX
 * socket (a stale socket file there is replaced; a live one is -EADDRINUSE).
 * With loop == NULL and socket_path == NULL it has no socket: sessions are
 * then driven by qmp_session_feed (tests, fuzzing).
 * Returns NULL with *err = -errno on failure.
 */
struct qmp_server *qmp_server_create(struct evloop *loop, const char *socket_path, int *err);
/*
 * Writes what can still be written to each client (waiting up to about half a
 * second in total, so a "quit" reply reaches its client), closes every client
 * and the socket, and removes the socket file. Sessions created with
 * qmp_session_create should be destroyed first; any left are detached (they
 * then only accept qmp_session_destroy).
 */
void qmp_server_destroy(struct qmp_server *s);

/* Adds a command; name is copied. -EEXIST if already there, -ENOMEM. */
int qmp_register(struct qmp_server *s, const char *name, qmp_handler fn, void *opaque);

struct qmp_command_def {
	const char *name;
	qmp_handler fn;
};
/* qmp_register for each of the n commands, all with opaque; stops at the first error. */
int qmp_register_all(struct qmp_server *s, const struct qmp_command_def *cmds, size_t n, void *opaque);
#define QMP_NCOMMANDS(cmds) (sizeof(cmds) / sizeof((cmds)[0]))

/*
 * Sends {"event": name, "data": data, "timestamp": {...}} to every session
 * that finished capabilities negotiation. data is stolen; when NULL the "data"
 * member is left out, as QEMU does for events without data.
 */
void qmp_emit_event(struct qmp_server *s, const char *name, json_t *data);

/* A session without a socket; the greeting is already queued in its output. */
struct qmp_session *qmp_session_create(struct qmp_server *s);
void qmp_session_destroy(struct qmp_session *sess);
/*
 * Parses and executes every complete JSON value in buf (values may be split
 * across calls), queueing one reply line per value. Returns 0, -ENOMEM, or
 * -EPIPE if the server is gone.
 */
int qmp_session_feed(struct qmp_session *sess, const char *buf, size_t len);
/* Output not yet consumed: replies and events, each a JSON object + "\r\n". */
const char *qmp_session_output(const struct qmp_session *sess, size_t *len);
void qmp_session_consume(struct qmp_session *sess, size_t n);
bool qmp_session_negotiated(const struct qmp_session *sess);

#endif
