/*
 * JSON stream framing for QMP: cuts a byte stream into top-level JSON values
 * without parsing them. A client may split a value across reads, send several
 * in one, or send garbage; the stream says where each value ends so the
 * session can hand exactly those bytes to jansson, and it recovers from
 * garbage instead of waiting forever for a value that never closes.
 *
 * It only tracks enough syntax to find the end of a value (strings, escapes,
 * bracket depth). Top-level text that does not start an object, array or
 * string (a scalar, or garbage) is gathered up to the next whitespace or
 * opening bracket and returned whole, so a run of garbage costs the client one
 * error reply, not one per byte. Whether a value is valid JSON is jansson's
 * call, not the stream's.
 *
 * Resynchronisation points after garbage: the end of a bracketed value, a raw
 * control character inside a string (never valid JSON, and clients end lines
 * with newlines), and the byte 0xff (never valid UTF-8; QEMU clients send it
 * to reset the parser).
 *
 * Limits (from qmp.h): a value longer than QMP_MAX_INPUT bytes or nested
 * deeper than QMP_MAX_NESTING is reported once as an error, then skipped up to
 * its end without being stored.
 */
#ifndef LOCKSTEP_QMP_QMP_STREAM_H
#define LOCKSTEP_QMP_QMP_STREAM_H

#include <stdbool.h>
#include <stddef.h>

enum qmp_stream_mode {
	QMP_STREAM_IDLE,  /* between values */
	QMP_STREAM_VALUE, /* inside an object, array or top-level string */
	QMP_STREAM_BARE,  /* inside a top-level scalar or garbage */
};

/* A zeroed struct qmp_stream is an empty stream, ready to scan. */
struct qmp_stream {
	enum qmp_stream_mode mode;
	bool in_string;
	bool escaped;        /* the previous byte was a backslash inside a string */
	bool discarding;     /* value over a limit: find its end but keep nothing */
	unsigned long depth; /* bracket nesting; keeps counting while discarding */
	char *value;         /* bytes of the value collected so far */
	size_t len;
	size_t cap;
};

enum qmp_frame_kind {
	QMP_FRAME_NONE,  /* all bytes consumed, no value finished yet */
	QMP_FRAME_VALUE, /* one complete top-level value */
	QMP_FRAME_ERROR, /* input was dropped; one error reply is due */
};

/* What one qmp_stream_scan call found. */
struct qmp_frame {
	enum qmp_frame_kind kind;
	const char *text;  /* QMP_FRAME_VALUE: the value's bytes, not NUL-terminated */
	size_t len;
	const char *error; /* QMP_FRAME_ERROR: static text, "JSON parse error, ..." */
};

/*
 * Consumes bytes of buf until a value is complete, input had to be dropped,
 * or buf is used up, and returns how many bytes it consumed. The byte that
 * ends a bare scalar is not part of it and is left unconsumed, so the count
 * can be 0. After a QMP_FRAME_VALUE the caller must call qmp_stream_value_done
 * before scanning on; frame->text stays valid until then.
 */
size_t qmp_stream_scan(struct qmp_stream *st, const char *buf, size_t len, struct qmp_frame *frame);
/* Forgets the value just returned and gets ready for the next one. */
void qmp_stream_value_done(struct qmp_stream *st);
/* Releases the stream's memory and leaves it empty, as if zeroed. */
void qmp_stream_free(struct qmp_stream *st);

#endif
