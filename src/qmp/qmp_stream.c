/*
 * JSON stream framing; see qmp_stream.h. The stream is a small state machine
 * fed one byte at a time: IDLE between values, VALUE inside a bracketed value
 * or top-level string, BARE inside a top-level scalar or garbage.
 */
#include "qmp/qmp_stream.h"

#include <stdlib.h>

#include "qmp/qmp.h"

/*
 * A value buffer grown past this is released once its value is done, so one
 * huge command does not pin up to QMP_MAX_INPUT bytes for the session's life.
 */
#define QMP_KEEP_INPUT_CAP 65536

/* What one byte did to the stream. */
enum byte_result {
	BYTE_MORE,           /* byte consumed, no value finished */
	BYTE_VALUE,          /* byte consumed, st->value holds a complete value */
	BYTE_VALUE_PUSHBACK, /* st->value holds a complete value; byte not consumed */
	BYTE_ERROR,          /* byte consumed, input dropped; *why set */
};

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Bytes that cannot continue a bare scalar and may start the next value. */
static bool ends_bare_token(char c)
{
	return is_json_space(c) || c == '{' || c == '[' || c == '"' || (unsigned char)c == 0xff;
}

static void stream_drop_buffer(struct qmp_stream *st)
{
	free(st->value);
	st->value = NULL;
	st->cap = 0;
	st->len = 0;
}

static void stream_reset(struct qmp_stream *st)
{
	st->mode = QMP_STREAM_IDLE;
	st->in_string = false;
	st->escaped = false;
	st->discarding = false;
	st->depth = 0;
	st->len = 0;
	if (st->cap > QMP_KEEP_INPUT_CAP)
		stream_drop_buffer(st);
}

/* The value broke a limit: report it now, once, and skip to its end keeping nothing. */
static enum byte_result stream_start_discarding(struct qmp_stream *st, const char *error, const char **why)
{
	st->discarding = true;
	stream_drop_buffer(st);
	*why = error;
	return BYTE_ERROR;
}

/*
 * A resynchronisation point inside a value: drop the value and start afresh.
 * A value already being discarded had its error reported, so stay quiet.
 */
static enum byte_result stream_abandon(struct qmp_stream *st, const char *error, const char **why)
{
	bool reported = st->discarding;

	stream_reset(st);
	if (reported)
		return BYTE_MORE;
	*why = error;
	return BYTE_ERROR;
}

/* Returns BYTE_MORE, or BYTE_ERROR when the value just outgrew what we keep. */
static enum byte_result stream_store(struct qmp_stream *st, char c, const char **why)
{
	if (st->discarding)
		return BYTE_MORE;
	if (st->len >= QMP_MAX_INPUT)
		return stream_start_discarding(st, "JSON parse error, input too large without a complete value", why);
	if (st->len == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 256;
		char *p = realloc(st->value, cap);

		if (!p)
			return stream_start_discarding(st, "JSON parse error, out of memory", why);
		st->value = p;
		st->cap = cap;
	}
	st->value[st->len++] = c;
	return BYTE_MORE;
}

/*
 * The byte just stored (result "stored") ended the value: hand the value
 * over, or forget it if it was being discarded. Storing that last byte may
 * itself have started the discarding, and then its error is still due.
 */
static enum byte_result stream_value_ended(struct qmp_stream *st, enum byte_result stored)
{
	if (!st->discarding)
		return BYTE_VALUE;
	stream_reset(st);
	return stored;
}

static enum byte_result stream_idle_byte(struct qmp_stream *st, char c, const char **why)
{
	/* a 0xff between values is a client resetting a parser that is already reset */
	if (is_json_space(c) || (unsigned char)c == 0xff)
		return BYTE_MORE;
	if (c == '{' || c == '[') {
		st->mode = QMP_STREAM_VALUE;
		st->depth = 1;
	} else if (c == '"') {
		st->mode = QMP_STREAM_VALUE;
		st->in_string = true;
	} else {
		st->mode = QMP_STREAM_BARE;
	}
	return stream_store(st, c, why);
}

static enum byte_result stream_string_byte(struct qmp_stream *st, char c, const char **why)
{
	enum byte_result r;

	if ((unsigned char)c < 0x20)
		return stream_abandon(st, "JSON parse error, invalid control character in string", why);
	if (st->escaped)
		st->escaped = false;
	else if (c == '\\')
		st->escaped = true;
	else if (c == '"')
		st->in_string = false;
	r = stream_store(st, c, why);
	if (!st->in_string && st->depth == 0)
		return stream_value_ended(st, r);
	return r;
}

static enum byte_result stream_value_byte(struct qmp_stream *st, char c, const char **why)
{
	enum byte_result r;

	if ((unsigned char)c == 0xff)
		return stream_abandon(st, "JSON parse error, input reset by 0xff byte", why);
	if (st->in_string)
		return stream_string_byte(st, c, why);
	if (c == '"') {
		st->in_string = true;
	} else if (c == '{' || c == '[') {
		if (++st->depth > QMP_MAX_NESTING && !st->discarding)
			return stream_start_discarding(st, "JSON parse error, nesting depth limit exceeded", why);
	} else if (c == '}' || c == ']') {
		st->depth--;
	}
	r = stream_store(st, c, why);
	if (st->depth == 0)
		return stream_value_ended(st, r);
	return r;
}

/* A bare token ends where the next value or whitespace begins; that byte is not part of it. */
static enum byte_result stream_bare_byte(struct qmp_stream *st, char c, const char **why)
{
	if (!ends_bare_token(c))
		return stream_store(st, c, why);
	if (!st->discarding)
		return BYTE_VALUE_PUSHBACK;
	/* nothing to hand over, so the byte can start the next value right away */
	stream_reset(st);
	return stream_idle_byte(st, c, why);
}

static enum byte_result stream_push(struct qmp_stream *st, char c, const char **why)
{
	switch (st->mode) {
	case QMP_STREAM_IDLE:
		return stream_idle_byte(st, c, why);
	case QMP_STREAM_VALUE:
		return stream_value_byte(st, c, why);
	case QMP_STREAM_BARE:
		return stream_bare_byte(st, c, why);
	}
	return BYTE_MORE;
}

size_t qmp_stream_scan(struct qmp_stream *st, const char *buf, size_t len, struct qmp_frame *frame)
{
	size_t used = 0;

	*frame = (struct qmp_frame){ .kind = QMP_FRAME_NONE };
	while (used < len) {
		const char *why = NULL;
		enum byte_result r = stream_push(st, buf[used], &why);

		if (r != BYTE_VALUE_PUSHBACK)
			used++;
		if (r == BYTE_ERROR) {
			frame->kind = QMP_FRAME_ERROR;
			frame->error = why;
			break;
		}
		if (r == BYTE_VALUE || r == BYTE_VALUE_PUSHBACK) {
			frame->kind = QMP_FRAME_VALUE;
			frame->text = st->value;
			frame->len = st->len;
			break;
		}
	}
	return used;
}

void qmp_stream_value_done(struct qmp_stream *st)
{
	stream_reset(st);
}

void qmp_stream_free(struct qmp_stream *st)
{
	stream_drop_buffer(st);
	stream_reset(st);
}
