/*
 * QMP protocol and server. Reading order: errors and argument checks, the
 * output buffer, the framer that cuts the input stream into JSON values, the
 * dispatcher that turns one value into one reply, the built-in commands,
 * sessions and events, and last the socket layer that moves bytes between
 * clients and sessions.
 */
#include "qmp/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

/* Stop reading a client's commands while this much of its output is unsent. */
#define QMP_OUTPUT_HIGH_WATER (1u << 20)
/* Bytes read from a client per wake-up; bounds the output one read can cause. */
#define QMP_READ_CHUNK 16384
/* A collected value buffer larger than this is released once the value is done. */
#define QMP_KEEP_INPUT_CAP 65536
/* How long qmp_server_destroy tries to deliver pending output, in total. */
#define QMP_FINAL_FLUSH_MS 500

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

/* Same order as QEMU: declared parameters first (missing, then type), unknown ones last. */
int qmp_args_check(json_t *args, struct qmp_error *err, const struct qmp_arg_spec *spec)
{
	const char *key;
	json_t *v;

	for (const struct qmp_arg_spec *a = spec; a && a->name; a++) {
		v = args ? json_object_get(args, a->name) : NULL;
		if (!v) {
			if (a->required) {
				qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is missing", a->name);
				return -EINVAL;
			}
			continue;
		}
		if (!arg_type_matches(a->type, v)) {
			qmp_error_set(err, QMP_ERR_GENERIC, "Invalid parameter type for '%s', expected: %s",
				      a->name, arg_type_name(a->type));
			return -EINVAL;
		}
	}
	if (!args)
		return 0;
	json_object_foreach(args, key, v) {
		if (!arg_spec_find(spec, key)) {
			qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- output buffer -------------------------------------------------------- */

/* Bytes waiting to be sent: data[head .. head+len). */
struct qmp_outbuf {
	char *data;
	size_t head;
	size_t len;
	size_t cap;
	bool overflowed; /* more than QMP_MAX_OUTPUT was pending; later output is dropped */
};

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

static void outbuf_consume(struct qmp_outbuf *o, size_t n)
{
	if (n > o->len)
		n = o->len;
	o->head += n;
	o->len -= n;
	if (o->len == 0)
		o->head = 0;
}

/* Serialises msg (stolen) as one line in QEMU's layout: {"a": 1, "b": 2}\r\n. */
static int outbuf_put_json(struct qmp_outbuf *o, json_t *msg)
{
	char *text;
	int r;

	if (!msg)
		return -ENOMEM;
	text = json_dumps(msg, JSON_ENSURE_ASCII);
	json_decref(msg);
	if (!text)
		return -ENOMEM;
	r = outbuf_append(o, text, strlen(text));
	if (r == 0)
		r = outbuf_append(o, "\r\n", 2);
	free(text);
	return r;
}

/* ---- framer: cuts the byte stream into JSON values ------------------------ */

/*
 * The framer only tracks enough syntax to know where a value ends (strings,
 * escapes, bracket depth); jansson then parses the collected bytes. Top-level
 * text that does not start an object, array or string is gathered up to the
 * next whitespace or opening bracket and handed over whole, so a run of
 * garbage costs one error reply, not one per byte.
 *
 * Resynchronisation points after garbage: the end of a bracketed value, a raw
 * control character inside a string (never valid JSON, and clients end lines
 * with newlines), and the byte 0xff (never valid UTF-8; QEMU clients send it
 * to reset the parser).
 */
enum frame_mode {
	FRAME_IDLE,  /* between values */
	FRAME_VALUE, /* inside an object, array or top-level string */
	FRAME_BARE,  /* a top-level scalar or garbage */
};

struct qmp_framer {
	enum frame_mode mode;
	bool in_string;
	bool escaped;
	bool discarding;     /* value over a limit: find its end but keep nothing */
	unsigned long depth; /* bracket nesting; keeps counting while discarding */
	char *buf;
	size_t len;
	size_t cap;
};

enum frame_result {
	FRAME_MORE,          /* byte consumed, no value finished */
	FRAME_DONE,          /* byte consumed, buf holds a complete value */
	FRAME_DONE_PUSHBACK, /* buf holds a complete value; byte not consumed */
	FRAME_ERROR,         /* byte consumed, input dropped; error text set */
};

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void framer_reset(struct qmp_framer *f)
{
	f->mode = FRAME_IDLE;
	f->in_string = false;
	f->escaped = false;
	f->discarding = false;
	f->depth = 0;
	f->len = 0;
	if (f->cap > QMP_KEEP_INPUT_CAP) {
		free(f->buf);
		f->buf = NULL;
		f->cap = 0;
	}
}

static void framer_free(struct qmp_framer *f)
{
	free(f->buf);
	f->buf = NULL;
	f->cap = 0;
	f->len = 0;
}

/* Switches to discarding the current value and releases what was collected. */
static enum frame_result framer_overflow(struct qmp_framer *f, const char **why, const char *text)
{
	f->discarding = true;
	f->len = 0;
	free(f->buf);
	f->buf = NULL;
	f->cap = 0;
	*why = text;
	return FRAME_ERROR;
}

static enum frame_result framer_store(struct qmp_framer *f, char c, const char **why)
{
	if (f->discarding)
		return FRAME_MORE;
	if (f->len >= QMP_MAX_INPUT)
		return framer_overflow(f, why, "JSON parse error, input too large without a complete value");
	if (f->len == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		char *p = realloc(f->buf, cap);

		if (!p)
			return framer_overflow(f, why, "JSON parse error, out of memory");
		f->buf = p;
		f->cap = cap;
	}
	f->buf[f->len++] = c;
	return FRAME_MORE;
}

/* The byte just taken ended the value: hand it over, or forget it if it was being discarded. */
static enum frame_result framer_ended(struct qmp_framer *f, enum frame_result stored)
{
	bool discarding = f->discarding;

	if (stored == FRAME_ERROR || discarding) {
		/* an error on the last byte is reported once; either way we are between values */
		framer_reset(f);
		return discarding && stored != FRAME_ERROR ? FRAME_MORE : stored;
	}
	return FRAME_DONE;
}

static enum frame_result framer_idle(struct qmp_framer *f, char c, const char **why)
{
	if (is_json_space(c) || (unsigned char)c == 0xff)
		return FRAME_MORE;
	if (c == '{' || c == '[') {
		f->mode = FRAME_VALUE;
		f->depth = 1;
	} else if (c == '"') {
		f->mode = FRAME_VALUE;
		f->in_string = true;
	} else {
		f->mode = FRAME_BARE;
	}
	return framer_store(f, c, why);
}

static enum frame_result framer_string_byte(struct qmp_framer *f, char c, const char **why)
{
	enum frame_result r;

	if ((unsigned char)c < 0x20) {
		bool reported = f->discarding;

		framer_reset(f);
		if (reported)
			return FRAME_MORE;
		*why = "JSON parse error, invalid control character in string";
		return FRAME_ERROR;
	}
	if (f->escaped)
		f->escaped = false;
	else if (c == '\\')
		f->escaped = true;
	else if (c == '"')
		f->in_string = false;
	r = framer_store(f, c, why);
	if (!f->in_string && f->depth == 0)
		return framer_ended(f, r);
	return r;
}

static enum frame_result framer_value_byte(struct qmp_framer *f, char c, const char **why)
{
	enum frame_result r;

	if (f->in_string)
		return framer_string_byte(f, c, why);
	if (c == '"') {
		f->in_string = true;
	} else if (c == '{' || c == '[') {
		if (++f->depth > QMP_MAX_NESTING && !f->discarding)
			return framer_overflow(f, why, "JSON parse error, nesting depth limit exceeded");
	} else if (c == '}' || c == ']') {
		f->depth--;
	}
	r = framer_store(f, c, why);
	if (f->depth == 0)
		return framer_ended(f, r);
	return r;
}

/* A bare token ends where the next value or whitespace begins; that byte is not part of it. */
static enum frame_result framer_bare_byte(struct qmp_framer *f, char c, const char **why)
{
	if (!is_json_space(c) && c != '{' && c != '[' && c != '"' && (unsigned char)c != 0xff)
		return framer_store(f, c, why);
	if (!f->discarding)
		return FRAME_DONE_PUSHBACK;
	framer_reset(f);
	return framer_idle(f, c, why);
}

/* Feeds one byte; on FRAME_ERROR *why says what went wrong. */
static enum frame_result framer_push(struct qmp_framer *f, char c, const char **why)
{
	switch (f->mode) {
	case FRAME_IDLE:
		return framer_idle(f, c, why);
	case FRAME_VALUE:
		if ((unsigned char)c == 0xff) {
			bool reported = f->discarding;

			framer_reset(f);
			if (reported)
				return FRAME_MORE;
			*why = "JSON parse error, input reset by 0xff byte";
			return FRAME_ERROR;
		}
		return framer_value_byte(f, c, why);
	case FRAME_BARE:
		return framer_bare_byte(f, c, why);
	}
	return FRAME_MORE;
}

/* ---- server, sessions, commands ------------------------------------------- */

struct qmp_command {
	char *name;
	qmp_handler fn;
	void *opaque;
};

struct qmp_client;

struct qmp_session {
	struct qmp_server *server; /* NULL once the server is gone */
	struct qmp_session *prev, *next;
	struct qmp_client *client; /* NULL when driven directly */
	bool negotiated;
	struct qmp_framer in;
	struct qmp_outbuf out;
};

struct qmp_client {
	struct qmp_server *server;
	struct qmp_session *sess;
	int fd;
	uint32_t watched; /* epoll events currently requested */
	bool eof;         /* the client stopped sending; close once output is out */
};

struct qmp_server {
	struct evloop *loop;
	int listen_fd;
	char *socket_path;
	struct qmp_command *cmds;
	size_t ncmds;
	size_t cmds_cap;
	struct qmp_session *sessions;
};

static const struct qmp_command *server_find_command(struct qmp_server *s, const char *name)
{
	for (size_t i = 0; i < s->ncmds; i++)
		if (strcmp(s->cmds[i].name, name) == 0)
			return &s->cmds[i];
	return NULL;
}

int qmp_register(struct qmp_server *s, const char *name, qmp_handler fn, void *opaque)
{
	struct qmp_command *c;

	if (server_find_command(s, name))
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

static int reply_error(struct qmp_session *sess, json_t *id, const char *cls, const char *desc)
{
	json_t *msg = json_pack("{s:o}", "error", error_body(cls, desc));

	if (msg && id)
		json_object_set(msg, "id", id);
	return outbuf_put_json(&sess->out, msg);
}

static int reply_return(struct qmp_session *sess, json_t *id, json_t *result)
{
	json_t *msg = json_pack("{s:o}", "return", result ? result : json_object());

	if (msg && id)
		json_object_set(msg, "id", id);
	return outbuf_put_json(&sess->out, msg);
}

/* QEMU's checks of a request's members; returns the command name or NULL with err set. */
static const char *request_check(json_t *req, struct qmp_error *err)
{
	const char *key;
	json_t *v;
	json_t *exec;

	json_object_foreach(req, key, v) {
		if (strcmp(key, "execute") == 0) {
			if (!json_is_string(v)) {
				qmp_error_set(err, QMP_ERR_GENERIC, "QMP input member 'execute' must be a string");
				return NULL;
			}
		} else if (strcmp(key, "arguments") == 0) {
			if (!json_is_object(v)) {
				qmp_error_set(err, QMP_ERR_GENERIC, "QMP input member 'arguments' must be an object");
				return NULL;
			}
		} else if (strcmp(key, "id") != 0) {
			qmp_error_set(err, QMP_ERR_GENERIC, "QMP input member '%s' is unexpected", key);
			return NULL;
		}
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
	const struct qmp_command *cmd = server_find_command(sess->server, name);
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
	name = request_check(req, &err);
	if (!name || !negotiation_allows(sess, name, &err))
		return reply_error(sess, id, err.cls, err.desc);
	result = run_command(sess, name, json_object_get(req, "arguments"), &err);
	if (qmp_error_is_set(&err))
		return reply_error(sess, id, err.cls, err.desc);
	if (strcmp(name, "qmp_capabilities") == 0)
		sess->negotiated = true;
	return reply_return(sess, id, result);
}

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
	size_t i = 0;
	int ret = 0;

	if (!sess->server)
		return -EPIPE;
	while (i < len) {
		const char *why = NULL;
		enum frame_result fr = framer_push(&sess->in, buf[i], &why);
		int r = 0;

		if (fr != FRAME_DONE_PUSHBACK)
			i++;
		if (fr == FRAME_ERROR) {
			r = reply_error(sess, NULL, QMP_ERR_GENERIC, why);
		} else if (fr == FRAME_DONE || fr == FRAME_DONE_PUSHBACK) {
			r = session_handle_value(sess, sess->in.buf, sess->in.len);
			framer_reset(&sess->in);
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

/* We offer no optional capabilities (no out-of-band execution), so "enable" must be empty. */
static json_t *cmd_qmp_capabilities(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "enable", QMP_ARG_ARRAY, false },
		{ NULL, QMP_ARG_ANY, false },
	};
	json_t *enable;
	json_t *cap;
	size_t i;

	(void)opaque;
	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	enable = json_object_get(args, "enable");
	json_array_foreach(enable, i, cap) {
		if (!json_is_string(cap))
			qmp_error_set(err, QMP_ERR_GENERIC, "Invalid parameter type for 'enable', expected: string");
		else
			qmp_error_set(err, QMP_ERR_GENERIC, "Capability '%s' not available", json_string_value(cap));
		return NULL;
	}
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

static int register_builtins(struct qmp_server *s)
{
	int r = qmp_register(s, "qmp_capabilities", cmd_qmp_capabilities, s);

	if (r == 0)
		r = qmp_register(s, "query-version", cmd_query_version, s);
	if (r == 0)
		r = qmp_register(s, "query-commands", cmd_query_commands, s);
	return r;
}

/* ---- sessions and events -------------------------------------------------- */

static void session_link(struct qmp_server *s, struct qmp_session *sess)
{
	sess->server = s;
	sess->prev = NULL;
	sess->next = s->sessions;
	if (s->sessions)
		s->sessions->prev = sess;
	s->sessions = sess;
}

static void session_unlink(struct qmp_session *sess)
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
	if (outbuf_put_json(&sess->out, greeting_json()) < 0) {
		free(sess->out.data);
		free(sess);
		return NULL;
	}
	session_link(s, sess);
	return sess;
}

void qmp_session_destroy(struct qmp_session *sess)
{
	if (!sess)
		return;
	session_unlink(sess);
	framer_free(&sess->in);
	free(sess->out.data);
	free(sess);
}

const char *qmp_session_output(const struct qmp_session *sess, size_t *len)
{
	*len = sess->out.len;
	return sess->out.data ? sess->out.data + sess->out.head : "";
}

void qmp_session_consume(struct qmp_session *sess, size_t n)
{
	outbuf_consume(&sess->out, n);
}

bool qmp_session_negotiated(const struct qmp_session *sess)
{
	return sess->negotiated;
}

static json_t *event_json(const char *name, json_t *data)
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

static void client_output_queued(struct qmp_client *c);

void qmp_emit_event(struct qmp_server *s, const char *name, json_t *data)
{
	json_t *ev = event_json(name, data);

	json_decref(data);
	if (!ev) {
		log_warn("qmp: out of memory building event %s", name);
		return;
	}
	for (struct qmp_session *sess = s->sessions; sess; sess = sess->next) {
		if (!sess->negotiated)
			continue;
		outbuf_put_json(&sess->out, json_incref(ev));
		if (sess->client)
			client_output_queued(sess->client);
	}
	json_decref(ev);
}

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
	struct qmp_outbuf *o = &c->sess->out;

	while (o->len > 0) {
		ssize_t n = send(c->fd, o->data + o->head, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		outbuf_consume(o, (size_t)n);
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
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
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

struct qmp_server *qmp_server_create(struct evloop *loop, const char *socket_path, int *err)
{
	struct qmp_server *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (!s)
		goto fail;
	s->listen_fd = -1;
	r = register_builtins(s);
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

/* Last chance for a client to get its output (the reply to "quit", a SHUTDOWN event). */
static void client_flush_final(struct qmp_client *c, const struct timespec *deadline)
{
	struct timespec now;

	while (c->sess->out.len > 0 && client_flush(c) == 0 && c->sess->out.len > 0) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0 || poll(&p, 1, (int)ms) <= 0)
			return;
	}
}

void qmp_server_destroy(struct qmp_server *s)
{
	struct timespec deadline;

	if (!s)
		return;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += QMP_FINAL_FLUSH_MS * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	while (s->sessions) {
		struct qmp_session *sess = s->sessions;

		if (sess->client) {
			client_flush_final(sess->client, &deadline);
			client_drop(sess->client);
		} else {
			session_unlink(sess);
		}
	}
	if (s->listen_fd >= 0) {
		evloop_del(s->loop, s->listen_fd);
		close(s->listen_fd);
		unlink(s->socket_path);
	}
	free(s->socket_path);
	for (size_t i = 0; i < s->ncmds; i++)
		free(s->cmds[i].name);
	free(s->cmds);
	free(s);
}
