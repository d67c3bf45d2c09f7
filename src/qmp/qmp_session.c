/*
 * The QMP protocol of one client, without I/O: bytes in through
 * qmp_session_feed, reply lines out through qmp_session_output. Reading
 * order: errors and argument checks, the output buffer, the command table,
 * dispatch (one JSON value in, one reply out), the built-in commands, and the
 * session's life cycle and event formatting.
 */
#include "qmp/qmp_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ---- errors and argument checking ---------------------------------------- */

/* Length of the valid UTF-8 sequence at s (strict: no overlongs or surrogates), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * Replaces every byte that is not part of valid UTF-8 with '?': descriptions
 * can end in a sequence cut by truncation, and jansson only takes valid UTF-8.
 */
static void utf8_sanitize(char *str)
{
	unsigned char *s = (unsigned char *)str;

	while (*s) {
		size_t n = utf8_seq_len(s);

		if (n == 0) {
			*s++ = '?';
			continue;
		}
		s += n;
	}
}

void qmp_error_set(struct qmp_error *err, const char *cls, const char *fmt, ...)
{
	va_list ap;

	snprintf(err->cls, sizeof(err->cls), "%s", cls);
	va_start(ap, fmt);
	vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
	va_end(ap);
}

static const char *arg_type_name(enum qmp_arg_type t)
{
	switch (t) {
	case QMP_ARG_STRING: return "string";
	case QMP_ARG_INT: return "integer";
	case QMP_ARG_NUMBER: return "number";
	case QMP_ARG_BOOL: return "boolean";
	case QMP_ARG_OBJECT: return "object";
	case QMP_ARG_ARRAY: return "array";
	case QMP_ARG_ANY: break;
	}
	return "any";
}

static bool arg_type_matches(enum qmp_arg_type t, json_t *v)
{
	switch (t) {
	case QMP_ARG_STRING: return json_is_string(v);
	case QMP_ARG_INT: return json_is_integer(v);
	case QMP_ARG_NUMBER: return json_is_number(v);
	case QMP_ARG_BOOL: return json_is_boolean(v);
	case QMP_ARG_OBJECT: return json_is_object(v);
	case QMP_ARG_ARRAY: return json_is_array(v);
	case QMP_ARG_ANY: break;
	}
	return true;
}

static const struct qmp_arg_spec *arg_spec_find(const struct qmp_arg_spec *spec, const char *name)
{
	for (; spec && spec->name; spec++)
		if (strcmp(spec->name, name) == 0)
			return spec;
	return NULL;
}

/* Each declared parameter in turn: present if required, then of the declared type. */
static int args_check_declared(json_t *args, struct qmp_error *err, const struct qmp_arg_spec *spec)
{
	for (const struct qmp_arg_spec *a = spec; a && a->name; a++) {
		json_t *v = args ? json_object_get(args, a->name) : NULL;

		if (!v && a->required) {
			qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is missing", a->name);
			return -EINVAL;
		}
		if (v && !arg_type_matches(a->type, v)) {
			qmp_error_set(err, QMP_ERR_GENERIC, "Invalid parameter type for '%s', expected: %s",
				      a->name, arg_type_name(a->type));
			return -EINVAL;
		}
	}
	return 0;
}

static int args_check_unexpected(json_t *args, struct qmp_error *err, const struct qmp_arg_spec *spec)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		if (!arg_spec_find(spec, key)) {
			qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
			return -EINVAL;
		}
	}
	return 0;
}

/* Same order as QEMU: declared parameters first, unknown ones last. */
int qmp_args_check(json_t *args, struct qmp_error *err, const struct qmp_arg_spec *spec)
{
	int r = args_check_declared(args, err, spec);

	if (r == 0 && args)
		r = args_check_unexpected(args, err, spec);
	return r;
}

/* ---- output buffer -------------------------------------------------------- */

/* Makes room for extra bytes after the pending ones, first by moving those to the front. */
static int outbuf_reserve(struct qmp_outbuf *o, size_t extra)
{
	size_t want = o->len + extra;
	size_t cap;
	char *p;

	if (o->head + want <= o->cap)
		return 0;
	if (o->head > 0) {
		memmove(o->data, o->data + o->head, o->len);
		o->head = 0;
		if (want <= o->cap)
			return 0;
	}
	cap = o->cap ? o->cap : 1024;
	while (cap < want)
		cap *= 2;
	p = realloc(o->data, cap);
	if (!p)
		return -ENOMEM;
	o->data = p;
	o->cap = cap;
	return 0;
}

/*
 * Once a client falls QMP_MAX_OUTPUT behind, everything after is dropped
 * (the socket layer disconnects it): a partial line would corrupt the stream.
 */
static int outbuf_append(struct qmp_outbuf *o, const char *p, size_t n)
{
	if (o->overflowed)
		return -ENOBUFS;
	if (o->len + n > QMP_MAX_OUTPUT) {
		o->overflowed = true;
		return -ENOBUFS;
	}
	if (outbuf_reserve(o, n) < 0)
		return -ENOMEM;
	memcpy(o->data + o->head + o->len, p, n);
	o->len += n;
	return 0;
}

/* Serialises msg as one line in QEMU's layout: {"a": 1, "b": 2}\r\n. */
int qmp_session_queue(struct qmp_session *sess, json_t *msg)
{
	char *text;
	int r;

	if (!msg)
		return -ENOMEM;
	text = json_dumps(msg, JSON_ENSURE_ASCII);
	json_decref(msg);
	if (!text)
		return -ENOMEM;
	r = outbuf_append(&sess->out, text, strlen(text));
	if (r == 0)
		r = outbuf_append(&sess->out, "\r\n", 2);
	free(text);
	return r;
}

const char *qmp_session_output(const struct qmp_session *sess, size_t *len)
{
	*len = sess->out.len;
	return sess->out.data ? sess->out.data + sess->out.head : "";
}

void qmp_session_consume(struct qmp_session *sess, size_t n)
{
	struct qmp_outbuf *o = &sess->out;

	if (n > o->len)
		n = o->len;
	o->head += n;
	o->len -= n;
	if (o->len == 0)
		o->head = 0;
}

/* ---- command table -------------------------------------------------------- */

static const struct qmp_command *command_find(struct qmp_server *s, const char *name)
{
	for (size_t i = 0; i < s->ncmds; i++)
		if (strcmp(s->cmds[i].name, name) == 0)
			return &s->cmds[i];
	return NULL;
}

int qmp_register(struct qmp_server *s, const char *name, qmp_handler fn, void *opaque)
{
	struct qmp_command *c;

	if (command_find(s, name))
		return -EEXIST;
	if (s->ncmds == s->cmds_cap) {
		size_t cap = s->cmds_cap ? s->cmds_cap * 2 : 16;

		c = realloc(s->cmds, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		s->cmds = c;
		s->cmds_cap = cap;
	}
	c = &s->cmds[s->ncmds];
	c->name = strdup(name);
	if (!c->name)
		return -ENOMEM;
	c->fn = fn;
	c->opaque = opaque;
	s->ncmds++;
	return 0;
}

int qmp_register_all(struct qmp_server *s, const struct qmp_command_def *cmds, size_t n, void *opaque)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = qmp_register(s, cmds[i].name, cmds[i].fn, opaque);
	return ret;
}

void qmp_commands_free(struct qmp_server *s)
{
	for (size_t i = 0; i < s->ncmds; i++)
		free(s->cmds[i].name);
	free(s->cmds);
	s->cmds = NULL;
	s->ncmds = s->cmds_cap = 0;
}

/* ---- dispatch: one JSON value in, one reply out --------------------------- */

static json_t *error_body(const char *cls, const char *desc)
{
	char *text = strdup(desc);
	json_t *body;

	if (!text)
		return NULL;
	utf8_sanitize(text);
	body = json_pack("{s:s, s:s}", "class", cls, "desc", text);
	free(text);
	return body;
}

/* Queues a reply (msg stolen) carrying the request's id, if it had one, as QEMU does. */
static int reply_send(struct qmp_session *sess, json_t *msg, json_t *id)
{
	if (msg && id)
		json_object_set(msg, "id", id);
	return qmp_session_queue(sess, msg);
}

static int reply_error(struct qmp_session *sess, json_t *id, const char *cls, const char *desc)
{
	return reply_send(sess, json_pack("{s:o}", "error", error_body(cls, desc)), id);
}

static int reply_return(struct qmp_session *sess, json_t *id, json_t *result)
{
	return reply_send(sess, json_pack("{s:o}", "return", result ? result : json_object()), id);
}

/* QEMU's rules for a request's members: only these three, each of its type. */
static bool request_member_valid(const char *key, json_t *v, struct qmp_error *err)
{
	if (strcmp(key, "execute") == 0) {
		if (!json_is_string(v))
			qmp_error_set(err, QMP_ERR_GENERIC, "QMP input member 'execute' must be a string");
		return json_is_string(v);
	}
	if (strcmp(key, "arguments") == 0) {
		if (!json_is_object(v))
			qmp_error_set(err, QMP_ERR_GENERIC, "QMP input member 'arguments' must be an object");
		return json_is_object(v);
	}
	if (strcmp(key, "id") == 0)
		return true;
	qmp_error_set(err, QMP_ERR_GENERIC, "QMP input member '%s' is unexpected", key);
	return false;
}

/* Returns the name of the command req asks for, or NULL with err set. */
static const char *request_command_name(json_t *req, struct qmp_error *err)
{
	const char *key;
	json_t *v;
	json_t *exec;

	json_object_foreach(req, key, v) {
		if (!request_member_valid(key, v, err))
			return NULL;
	}
	exec = json_object_get(req, "execute");
	if (!exec) {
		qmp_error_set(err, QMP_ERR_GENERIC, "QMP input lacks member 'execute'");
		return NULL;
	}
	return json_string_value(exec);
}

/* Capabilities negotiation: only qmp_capabilities before it, never after. */
static bool negotiation_allows(struct qmp_session *sess, const char *name, struct qmp_error *err)
{
	bool is_caps = strcmp(name, "qmp_capabilities") == 0;

	if (!sess->negotiated && !is_caps) {
		qmp_error_set(err, QMP_ERR_COMMAND_NOT_FOUND,
			      "Expecting capabilities negotiation with 'qmp_capabilities'");
		return false;
	}
	if (sess->negotiated && is_caps) {
		qmp_error_set(err, QMP_ERR_COMMAND_NOT_FOUND,
			      "Capabilities negotiation is already complete, command ignored");
		return false;
	}
	return true;
}

/* Runs the named command; the handler is copied out first because it may register more. */
static json_t *run_command(struct qmp_session *sess, const char *name, json_t *args,
			   struct qmp_error *err)
{
	const struct qmp_command *cmd = command_find(sess->server, name);
	qmp_handler fn;
	void *opaque;
	json_t *empty = NULL;
	json_t *result;

	if (!cmd) {
		qmp_error_set(err, QMP_ERR_COMMAND_NOT_FOUND, "The command %s has not been found", name);
		return NULL;
	}
	fn = cmd->fn;
	opaque = cmd->opaque;
	if (!args)
		args = empty = json_object();
	if (!args) {
		qmp_error_set(err, QMP_ERR_GENERIC, "Out of memory");
		return NULL;
	}
	result = fn(args, err, opaque);
	json_decref(empty);
	if (qmp_error_is_set(err)) {
		json_decref(result);
		return NULL;
	}
	return result;
}

static int session_execute(struct qmp_session *sess, json_t *req)
{
	struct qmp_error err = { { 0 }, { 0 } };
	json_t *id;
	json_t *result;
	const char *name;

	if (!json_is_object(req))
		return reply_error(sess, NULL, QMP_ERR_GENERIC, "QMP input must be a JSON object");
	id = json_object_get(req, "id");
	name = request_command_name(req, &err);
	if (!name || !negotiation_allows(sess, name, &err))
		return reply_error(sess, id, err.cls, err.desc);
	result = run_command(sess, name, json_object_get(req, "arguments"), &err);
	if (qmp_error_is_set(&err))
		return reply_error(sess, id, err.cls, err.desc);
	if (strcmp(name, "qmp_capabilities") == 0)
		sess->negotiated = true;
	return reply_return(sess, id, result);
}

/* text is one whole JSON value as cut by the stream, not yet known to be valid. */
static int session_handle_value(struct qmp_session *sess, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	char desc[sizeof(jerr.text) + 32];
	int r;

	if (!req) {
		snprintf(desc, sizeof(desc), "JSON parse error, %s", jerr.text);
		return reply_error(sess, NULL, QMP_ERR_GENERIC, desc);
	}
	r = session_execute(sess, req);
	json_decref(req);
	return r;
}

int qmp_session_feed(struct qmp_session *sess, const char *buf, size_t len)
{
	size_t used = 0;
	int ret = 0;

	if (!sess->server)
		return -EPIPE;
	while (used < len) {
		struct qmp_frame frame;
		int r = 0;

		used += qmp_stream_scan(&sess->in, buf + used, len - used, &frame);
		if (frame.kind == QMP_FRAME_ERROR) {
			r = reply_error(sess, NULL, QMP_ERR_GENERIC, frame.error);
		} else if (frame.kind == QMP_FRAME_VALUE) {
			r = session_handle_value(sess, frame.text, frame.len);
			qmp_stream_value_done(&sess->in);
		}
		/* a full output buffer is the socket layer's business, not an error here */
		if (r == -ENOMEM)
			ret = r;
	}
	return ret;
}

/* ---- built-in commands ---------------------------------------------------- */

static json_t *version_json(void)
{
	return json_pack("{s:{s:i, s:i, s:i}, s:s}", "qemu",
			 "micro", QMP_VERSION_MICRO, "minor", QMP_VERSION_MINOR, "major", QMP_VERSION_MAJOR,
			 "package", QMP_PACKAGE);
}

static json_t *greeting_json(void)
{
	return json_pack("{s:{s:o, s:[]}}", "QMP", "version", version_json(), "capabilities");
}

/*
 * We offer no optional capabilities (no out-of-band execution), so "enable"
 * must be empty; like QEMU, only its first entry is complained about.
 */
static json_t *cmd_qmp_capabilities(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "enable", QMP_ARG_ARRAY, false },
		{ NULL, QMP_ARG_ANY, false },
	};
	json_t *cap;

	(void)opaque;
	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	cap = json_array_get(json_object_get(args, "enable"), 0);
	if (!cap)
		return NULL;
	if (!json_is_string(cap))
		qmp_error_set(err, QMP_ERR_GENERIC, "Invalid parameter type for 'enable', expected: string");
	else
		qmp_error_set(err, QMP_ERR_GENERIC, "Capability '%s' not available", json_string_value(cap));
	return NULL;
}

static json_t *cmd_query_version(json_t *args, struct qmp_error *err, void *opaque)
{
	(void)opaque;
	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	return version_json();
}

static json_t *cmd_query_commands(json_t *args, struct qmp_error *err, void *opaque)
{
	struct qmp_server *s = opaque;
	json_t *list;

	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	list = json_array();
	for (size_t i = 0; list && i < s->ncmds; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", s->cmds[i].name));
	return list;
}

int qmp_register_builtins(struct qmp_server *s)
{
	int r = qmp_register(s, "qmp_capabilities", cmd_qmp_capabilities, s);

	if (r == 0)
		r = qmp_register(s, "query-version", cmd_query_version, s);
	if (r == 0)
		r = qmp_register(s, "query-commands", cmd_query_commands, s);
	return r;
}

/* ---- session life cycle and events ---------------------------------------- */

static void session_attach(struct qmp_server *s, struct qmp_session *sess)
{
	sess->server = s;
	sess->prev = NULL;
	sess->next = s->sessions;
	if (s->sessions)
		s->sessions->prev = sess;
	s->sessions = sess;
}

void qmp_session_detach(struct qmp_session *sess)
{
	if (!sess->server)
		return;
	if (sess->prev)
		sess->prev->next = sess->next;
	else
		sess->server->sessions = sess->next;
	if (sess->next)
		sess->next->prev = sess->prev;
	sess->server = NULL;
	sess->prev = sess->next = NULL;
}

struct qmp_session *qmp_session_create(struct qmp_server *s)
{
	struct qmp_session *sess = calloc(1, sizeof(*sess));

	if (!sess)
		return NULL;
	if (qmp_session_queue(sess, greeting_json()) < 0) {
		free(sess->out.data);
		free(sess);
		return NULL;
	}
	session_attach(s, sess);
	return sess;
}

void qmp_session_destroy(struct qmp_session *sess)
{
	if (!sess)
		return;
	qmp_session_detach(sess);
	qmp_stream_free(&sess->in);
	free(sess->out.data);
	free(sess);
}

bool qmp_session_negotiated(const struct qmp_session *sess)
{
	return sess->negotiated;
}

json_t *qmp_event_json(const char *name, json_t *data)
{
	struct timeval tv;
	json_t *ev;

	gettimeofday(&tv, NULL);
	ev = json_pack("{s:s}", "event", name);
	if (ev && data)
		json_object_set(ev, "data", data);
	if (ev)
		json_object_set_new(ev, "timestamp",
				    json_pack("{s:I, s:I}", "seconds", (json_int_t)tv.tv_sec,
					      "microseconds", (json_int_t)tv.tv_usec));
	return ev;
}
