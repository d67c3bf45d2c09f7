/*
 * QMP protocol tests: the stream framing on its own (split points, resync,
 * limits), sessions driven directly (greeting, negotiation, errors, framing,
 * limits, events), then the server on a real UNIX socket.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "qmp/qmp.h"
#include "qmp/qmp_stream.h"
#include "util/evloop.h"

/* ---- fixtures and helpers ------------------------------------------------- */

struct fixture {
	struct qmp_server *server;
	struct qmp_session *sess;
};

static json_t *cmd_test_echo(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "text", QMP_ARG_STRING, true },
		{ "count", QMP_ARG_INT, false },
		{ "ratio", QMP_ARG_NUMBER, false },
		{ "flag", QMP_ARG_BOOL, false },
		{ NULL, QMP_ARG_ANY, false },
	};

	(void)opaque;
	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	return json_pack("{s:O, s:I}", "text", json_object_get(args, "text"),
			 "count", json_integer_value(json_object_get(args, "count")));
}

static json_t *cmd_test_fail(json_t *args, struct qmp_error *err, void *opaque)
{
	(void)opaque;
	if (qmp_args_check(args, err, NULL) < 0)
		return NULL;
	qmp_error_set(err, QMP_ERR_DEVICE_NOT_FOUND, "Device '%s' not found", "disk0");
	/* a result returned with an error must be freed by the dispatcher (valgrind checks) */
	return json_object();
}

/* Emits about "bytes" bytes of events to every session, for the slow-reader test. */
static json_t *cmd_test_flood(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "bytes", QMP_ARG_INT, true },
		{ NULL, QMP_ARG_ANY, false },
	};
	char pad[201];
	json_int_t bytes;

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	memset(pad, 'p', 200);
	pad[200] = '\0';
	bytes = json_integer_value(json_object_get(args, "bytes"));
	for (json_int_t sent = 0; sent < bytes; sent += 300)
		qmp_emit_event(opaque, "TEST_FLOOD", json_pack("{s:s}", "pad", pad));
	return NULL;
}

static void register_test_commands(struct qmp_server *s)
{
	assert_int_equal(qmp_register(s, "test-echo", cmd_test_echo, NULL), 0);
	assert_int_equal(qmp_register(s, "test-fail", cmd_test_fail, NULL), 0);
	assert_int_equal(qmp_register(s, "test-flood", cmd_test_flood, s), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int err = 0;

	f->server = qmp_server_create(NULL, NULL, &err);
	assert_non_null(f->server);
	register_test_commands(f->server);
	f->sess = qmp_session_create(f->server);
	assert_non_null(f->sess);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	qmp_session_destroy(f->sess);
	qmp_server_destroy(f->server);
	free(f);
	return 0;
}

static void feed(struct qmp_session *sess, const char *text)
{
	assert_int_equal(qmp_session_feed(sess, text, strlen(text)), 0);
}

/* Number of complete reply lines waiting. */
static int pending_lines(struct qmp_session *sess)
{
	size_t len;
	const char *out = qmp_session_output(sess, &len);
	int n = 0;

	for (size_t i = 0; i + 1 < len; i++)
		if (out[i] == '\r' && out[i + 1] == '\n')
			n++;
	return n;
}

/* Takes the next reply line off the output and parses it; fails the test if there is none. */
static json_t *next_msg(struct qmp_session *sess)
{
	size_t len;
	const char *out = qmp_session_output(sess, &len);
	const char *end = memmem(out, len, "\r\n", 2);
	json_error_t jerr;
	json_t *msg;

	assert_non_null(end);
	msg = json_loadb(out, (size_t)(end - out), 0, &jerr);
	if (!msg)
		fail_msg("reply is not JSON: %s (%.*s)", jerr.text, (int)(end - out), out);
	qmp_session_consume(sess, (size_t)(end - out) + 2);
	return msg;
}

static void expect_error(struct qmp_session *sess, const char *cls, const char *desc)
{
	json_t *msg = next_msg(sess);
	json_t *e = json_object_get(msg, "error");

	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
	if (desc)
		assert_string_equal(json_string_value(json_object_get(e, "desc")), desc);
	json_decref(msg);
}

/* Checks the error class and that the description starts with prefix. */
static void expect_error_prefix(struct qmp_session *sess, const char *cls, const char *prefix)
{
	json_t *msg = next_msg(sess);
	json_t *e = json_object_get(msg, "error");
	const char *desc;

	assert_non_null(e);
	assert_string_equal(json_string_value(json_object_get(e, "class")), cls);
	desc = json_string_value(json_object_get(e, "desc"));
	assert_non_null(desc);
	if (strncmp(desc, prefix, strlen(prefix)) != 0)
		fail_msg("desc '%s' does not start with '%s'", desc, prefix);
	json_decref(msg);
}

/* Returns the "return" member (new reference). */
static json_t *expect_return(struct qmp_session *sess)
{
	json_t *msg = next_msg(sess);
	json_t *ret = json_object_get(msg, "return");

	if (!ret) {
		char *t = json_dumps(msg, 0);

		fail_msg("expected a return, got %s", t);
	}
	json_incref(ret);
	json_decref(msg);
	return ret;
}

static void expect_empty_return(struct qmp_session *sess)
{
	json_t *ret = expect_return(sess);

	assert_true(json_is_object(ret));
	assert_int_equal(json_object_size(ret), 0);
	json_decref(ret);
}

static void expect_no_output(struct qmp_session *sess)
{
	size_t len;

	qmp_session_output(sess, &len);
	assert_int_equal(len, 0);
}

static void drop_greeting(struct qmp_session *sess)
{
	json_decref(next_msg(sess));
}

static void negotiate(struct qmp_session *sess)
{
	drop_greeting(sess);
	feed(sess, "{\"execute\": \"qmp_capabilities\"}");
	expect_empty_return(sess);
}

static void assert_json_equal_text(json_t *v, const char *text)
{
	json_t *want = json_loads(text, JSON_DECODE_ANY, NULL);

	assert_non_null(want);
	if (!json_equal(v, want)) {
		char *got = json_dumps(v, JSON_ENCODE_ANY);

		fail_msg("got %s, want %s", got, text);
	}
	json_decref(want);
}

/* ---- stream framing tests ------------------------------------------------- */

/*
 * Scans len bytes of input and checks the frames found, in order: a value by
 * its text, an error as "error: " + its text. want ends with NULL.
 */
static void stream_expect(struct qmp_stream *st, const char *input, size_t len, const char *const want[])
{
	size_t used = 0;
	size_t n = 0;
	char got[256];

	while (used < len) {
		struct qmp_frame frame;

		used += qmp_stream_scan(st, input + used, len - used, &frame);
		if (frame.kind == QMP_FRAME_NONE) {
			assert_int_equal(used, len);
			break;
		}
		if (frame.kind == QMP_FRAME_VALUE) {
			snprintf(got, sizeof(got), "%.*s", (int)frame.len, frame.text);
			qmp_stream_value_done(st);
		} else {
			snprintf(got, sizeof(got), "error: %s", frame.error);
		}
		if (!want[n])
			fail_msg("unexpected frame '%s'", got);
		assert_string_equal(got, want[n]);
		n++;
	}
	if (want[n])
		fail_msg("missing frame '%s'", want[n]);
}

static void stream_expect_str(struct qmp_stream *st, const char *input, const char *const want[])
{
	stream_expect(st, input, strlen(input), want);
}

static void test_stream_split_points(void **state)
{
	static const char *const several[] = {
		"{\"a\": \"}\\\"{\"}", "[1,[2]]", "\"s\\\"x\"", "42", "true", "{\"b\":1}", NULL
	};
	static const char *const none[] = { NULL };
	static const char *const null_value[] = { "null", NULL };
	static const char *const scalar[] = { "42", NULL };
	static const char *const object[] = { "{}", NULL };
	const char *cmd = "{\"execute\": \"x\"}";
	struct qmp_stream st = { 0 };
	struct qmp_frame frame;

	(void)state;
	/* brackets and quotes inside strings do not count; "nul" waits for its end */
	stream_expect_str(&st, "{\"a\": \"}\\\"{\"} [1,[2]]\"s\\\"x\" 42 true{\"b\":1}nul", several);
	stream_expect_str(&st, "l\n", null_value);

	/* one byte at a time: nothing until the closing brace */
	for (size_t i = 0; cmd[i]; i++) {
		assert_int_equal(qmp_stream_scan(&st, &cmd[i], 1, &frame), 1);
		assert_int_equal(frame.kind, cmd[i + 1] ? QMP_FRAME_NONE : QMP_FRAME_VALUE);
	}
	assert_int_equal(frame.len, strlen(cmd));
	assert_memory_equal(frame.text, cmd, frame.len);
	qmp_stream_value_done(&st);

	/* a scalar ends at the byte that starts the next value, which is left for it */
	stream_expect_str(&st, "42", none);
	assert_int_equal(qmp_stream_scan(&st, "{}", 2, &frame), 0);
	assert_int_equal(frame.kind, QMP_FRAME_VALUE);
	assert_int_equal(frame.len, 2);
	assert_memory_equal(frame.text, "42", 2);
	qmp_stream_value_done(&st);
	stream_expect_str(&st, "{}", object);
	stream_expect_str(&st, "42 ", scalar);
	qmp_stream_free(&st);
}

static void test_stream_resync_after_garbage(void **state)
{
	static const char *const garbage[] = { "@@@", "}}}", "tru", "{\"a\":1}", NULL };
	static const char *const newline[] = {
		"error: JSON parse error, invalid control character in string", "{\"b\":2}", NULL
	};
	static const char *const reset[] = { "error: JSON parse error, input reset by 0xff byte", "{\"c\":3}", NULL };
	static const char *const idle_ff[] = { "abc", "{}", NULL };
	struct qmp_stream st = { 0 };

	(void)state;
	/* a run of garbage is one value (jansson rejects it later), ended by whitespace or a bracket */
	stream_expect_str(&st, "@@@ }}}\ttru{\"a\":1}", garbage);
	/* an unterminated string ends at the newline, even right after a backslash */
	stream_expect_str(&st, "{\"a\": \"xy\n{\"b\":2}", newline);
	stream_expect_str(&st, "[\"x\\\n{\"b\":2}", newline);
	/* 0xff abandons an unclosed value, and is skipped between values */
	stream_expect_str(&st, "{\"a\": [1, 2\xff{\"c\":3}", reset);
	stream_expect_str(&st, "\xff\xff" "abc\xff{}", idle_ff);
	qmp_stream_free(&st);
}

static void test_stream_nesting_limit(void **state)
{
	static const char *const too_deep[] = { "error: JSON parse error, nesting depth limit exceeded", "{}", NULL };
	const size_t deep = QMP_MAX_NESTING + 1;
	char buf[2 * (QMP_MAX_NESTING + 1) + 2];
	struct qmp_stream st = { 0 };
	struct qmp_frame frame;

	(void)state;
	/* exactly QMP_MAX_NESTING deep is still a value */
	memset(buf, '[', QMP_MAX_NESTING);
	memset(buf + QMP_MAX_NESTING, ']', QMP_MAX_NESTING);
	assert_int_equal(qmp_stream_scan(&st, buf, 2 * QMP_MAX_NESTING, &frame), 2 * QMP_MAX_NESTING);
	assert_int_equal(frame.kind, QMP_FRAME_VALUE);
	assert_int_equal(frame.len, 2 * QMP_MAX_NESTING);
	qmp_stream_value_done(&st);

	/* one level more: one error, the rest of that value skipped */
	memset(buf, '[', deep);
	memset(buf + deep, ']', deep);
	memcpy(buf + 2 * deep, "{}", 2);
	stream_expect(&st, buf, 2 * deep + 2, too_deep);
	/* a value being skipped ends quietly at a resync point: its error was already reported */
	memcpy(buf + deep, "\xff{}", 3);
	stream_expect(&st, buf, deep + 3, too_deep);
	qmp_stream_free(&st);
}

static void test_stream_size_limit(void **state)
{
	static const char *const too_long[] = {
		"error: JSON parse error, input too large without a complete value", "{}", NULL
	};
	const size_t long_len = QMP_MAX_INPUT + 10;
	char *buf = malloc(long_len + 4);
	struct qmp_stream st = { 0 };
	struct qmp_frame frame;

	(void)state;
	/* a value longer than QMP_MAX_INPUT: one error, nothing kept, resync at its end */
	buf[0] = '"';
	memset(buf + 1, 'x', long_len);
	memcpy(buf + 1 + long_len, "\"{}", 3);
	stream_expect(&st, buf, long_len + 4, too_long);

	/* the big buffer of a long value is not kept once the value is done */
	buf[100001] = '"';
	assert_int_equal(qmp_stream_scan(&st, buf, 100002, &frame), 100002);
	assert_int_equal(frame.kind, QMP_FRAME_VALUE);
	qmp_stream_value_done(&st);
	assert_null(st.value);
	qmp_stream_free(&st);
	free(buf);
}

/* ---- session tests -------------------------------------------------------- */

static void test_greeting(void **state)
{
	struct fixture *f = *state;
	size_t len;
	const char *out = qmp_session_output(f->sess, &len);
	json_t *msg;

	/* QEMU's exact layout: spaces after ':' and ',', CRLF line end */
	assert_true(len > 2);
	assert_memory_equal(out + len - 2, "\r\n", 2);
	assert_non_null(strstr(out, "{\"QMP\": {\"version\": "));
	msg = next_msg(f->sess);
	assert_json_equal_text(msg, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 1, "
				    "\"major\": 0}, \"package\": \"lockstep\"}, \"capabilities\": []}}");
	json_decref(msg);
	expect_no_output(f->sess);
	assert_false(qmp_session_negotiated(f->sess));
}

static void test_negotiation(void **state)
{
	struct fixture *f = *state;

	drop_greeting(f->sess);
	feed(f->sess, "{\"execute\": \"query-version\"}");
	expect_error(f->sess, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	/* even an unknown command gets the negotiation error first, as in QEMU */
	feed(f->sess, "{\"execute\": \"no-such\"}");
	expect_error(f->sess, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	/* qmp_capabilities checks its arguments and refuses capabilities we do not have */
	feed(f->sess, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
	expect_error(f->sess, "GenericError", "Capability 'oob' not available");
	feed(f->sess, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"x\": 1}}");
	expect_error(f->sess, "GenericError", "Parameter 'x' is unexpected");
	assert_false(qmp_session_negotiated(f->sess));
	feed(f->sess, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": []}}");
	expect_empty_return(f->sess);
	assert_true(qmp_session_negotiated(f->sess));
	feed(f->sess, "{\"execute\": \"qmp_capabilities\"}");
	expect_error(f->sess, "CommandNotFound", "Capabilities negotiation is already complete, command ignored");
	expect_no_output(f->sess);
}

static void test_query_version(void **state)
{
	struct fixture *f = *state;
	json_t *ret;

	negotiate(f->sess);
	feed(f->sess, "{\"execute\": \"query-version\"}");
	ret = expect_return(f->sess);
	assert_json_equal_text(ret, "{\"qemu\": {\"micro\": 0, \"minor\": 1, \"major\": 0}, \"package\": \"lockstep\"}");
	json_decref(ret);
	feed(f->sess, "{\"execute\": \"query-version\", \"arguments\": {\"verbose\": true}}");
	expect_error(f->sess, "GenericError", "Parameter 'verbose' is unexpected");
}

static void test_query_commands(void **state)
{
	struct fixture *f = *state;
	const char *want[] = { "qmp_capabilities", "query-version", "query-commands",
			       "test-echo", "test-fail", "test-flood" };
	json_t *ret;

	negotiate(f->sess);
	feed(f->sess, "{\"execute\": \"query-commands\"}");
	ret = expect_return(f->sess);
	assert_true(json_is_array(ret));
	assert_int_equal(json_array_size(ret), 6);
	for (size_t i = 0; i < 6; i++) {
		json_t *e = json_array_get(ret, i);

		assert_int_equal(json_object_size(e), 1);
		assert_string_equal(json_string_value(json_object_get(e, "name")), want[i]);
	}
	json_decref(ret);
	assert_int_equal(qmp_register(f->server, "test-echo", cmd_test_echo, NULL), -EEXIST);
}

static void test_arguments(void **state)
{
	struct fixture *f = *state;
	json_t *ret;

	negotiate(f->sess);
	feed(f->sess, "{\"execute\": \"test-echo\"}");
	expect_error(f->sess, "GenericError", "Parameter 'text' is missing");
	feed(f->sess, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"a\", \"bogus\": 1}}");
	expect_error(f->sess, "GenericError", "Parameter 'bogus' is unexpected");
	feed(f->sess, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": 5}}");
	expect_error(f->sess, "GenericError", "Invalid parameter type for 'text', expected: string");
	feed(f->sess, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"a\", \"count\": 1.5}}");
	expect_error(f->sess, "GenericError", "Invalid parameter type for 'count', expected: integer");
	feed(f->sess, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"a\", \"flag\": 1}}");
	expect_error(f->sess, "GenericError", "Invalid parameter type for 'flag', expected: boolean");
	feed(f->sess, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"a\", \"ratio\": \"x\"}}");
	expect_error(f->sess, "GenericError", "Invalid parameter type for 'ratio', expected: number");
	/* an integer is a number */
	feed(f->sess, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"hi\", \"count\": 7, "
		      "\"ratio\": 2, \"flag\": false}}");
	ret = expect_return(f->sess);
	assert_json_equal_text(ret, "{\"text\": \"hi\", \"count\": 7}");
	json_decref(ret);
}

static void test_args_check_direct(void **state)
{
	static const struct qmp_arg_spec spec[] = {
		{ "a", QMP_ARG_OBJECT, true },
		{ "b", QMP_ARG_ARRAY, false },
		{ "c", QMP_ARG_ANY, false },
		{ NULL, QMP_ARG_ANY, false },
	};
	struct qmp_error err = { { 0 }, { 0 } };
	json_t *args;

	(void)state;
	assert_int_equal(qmp_args_check(NULL, &err, NULL), 0);
	assert_false(qmp_error_is_set(&err));
	assert_int_equal(qmp_args_check(NULL, &err, spec), -EINVAL);
	assert_string_equal(err.desc, "Parameter 'a' is missing");
	memset(&err, 0, sizeof(err));
	args = json_pack("{s:{}, s:[], s:n}", "a", "b", "c");
	assert_int_equal(qmp_args_check(args, &err, spec), 0);
	assert_int_equal(qmp_args_check(args, &err, NULL), -EINVAL);
	assert_string_equal(err.cls, "GenericError");
	assert_string_equal(err.desc, "Parameter 'a' is unexpected");
	json_decref(args);
}

static void test_handler_error(void **state)
{
	struct fixture *f = *state;

	negotiate(f->sess);
	feed(f->sess, "{\"execute\": \"test-fail\", \"id\": 3}");
	{
		json_t *msg = next_msg(f->sess);

		assert_json_equal_text(msg, "{\"error\": {\"class\": \"DeviceNotFound\", "
					    "\"desc\": \"Device 'disk0' not found\"}, \"id\": 3}");
		json_decref(msg);
	}
	feed(f->sess, "{\"execute\": \"no-such-command\"}");
	expect_error(f->sess, "CommandNotFound", "The command no-such-command has not been found");
}

/* A description cut in the middle of a multi-byte character still makes valid JSON. */
static void test_long_utf8_description(void **state)
{
	struct fixture *f = *state;
	char cmd[2048] = "{\"execute\": \"";
	json_t *msg;
	const char *desc;

	negotiate(f->sess);
	for (int i = 0; i < 400; i++)
		strcat(cmd, "\xc3\xa9");
	strcat(cmd, "\"}");
	feed(f->sess, cmd);
	msg = next_msg(f->sess);
	desc = json_string_value(json_object_get(json_object_get(msg, "error"), "desc"));
	assert_non_null(desc);
	assert_true(strncmp(desc, "The command \xc3\xa9\xc3\xa9", 16) == 0);
	assert_true(strlen(desc) < sizeof(((struct qmp_error *)0)->desc));
	json_decref(msg);
}

static void test_request_members(void **state)
{
	struct fixture *f = *state;

	negotiate(f->sess);
	feed(f->sess, "{}");
	expect_error(f->sess, "GenericError", "QMP input lacks member 'execute'");
	feed(f->sess, "{\"arguments\": {}}");
	expect_error(f->sess, "GenericError", "QMP input lacks member 'execute'");
	feed(f->sess, "{\"execute\": 1}");
	expect_error(f->sess, "GenericError", "QMP input member 'execute' must be a string");
	feed(f->sess, "{\"execute\": \"query-version\", \"arguments\": []}");
	expect_error(f->sess, "GenericError", "QMP input member 'arguments' must be an object");
	feed(f->sess, "{\"execute\": \"query-version\", \"extra\": 1}");
	expect_error(f->sess, "GenericError", "QMP input member 'extra' is unexpected");
	feed(f->sess, "{\"execute\": \"query-version\", \"execute\": \"query-version\"}");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	expect_no_output(f->sess);
}

static void test_id_echo(void **state)
{
	struct fixture *f = *state;
	json_t *msg;

	drop_greeting(f->sess);
	/* echoed on errors too, including before negotiation */
	feed(f->sess, "{\"execute\": \"query-version\", \"id\": \"early\"}");
	msg = next_msg(f->sess);
	assert_string_equal(json_string_value(json_object_get(msg, "id")), "early");
	json_decref(msg);
	feed(f->sess, "{\"id\": {\"a\": [1, 2]}, \"execute\": \"qmp_capabilities\"}");
	msg = next_msg(f->sess);
	assert_json_equal_text(msg, "{\"return\": {}, \"id\": {\"a\": [1, 2]}}");
	json_decref(msg);
	feed(f->sess, "{\"execute\": \"test-echo\", \"id\": 42}");
	msg = next_msg(f->sess);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 42);
	assert_non_null(json_object_get(msg, "error"));
	json_decref(msg);
	feed(f->sess, "{\"execute\": \"query-version\", \"id\": null}");
	msg = next_msg(f->sess);
	assert_true(json_is_null(json_object_get(msg, "id")));
	json_decref(msg);
	/* no id in, no id out */
	feed(f->sess, "{\"execute\": \"query-version\"}");
	msg = next_msg(f->sess);
	assert_null(json_object_get(msg, "id"));
	json_decref(msg);
}

static void test_split_input(void **state)
{
	struct fixture *f = *state;
	const char *cmd = "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"a}\\\"{\"}, \"id\": [\"x\"]}";
	json_t *msg;

	negotiate(f->sess);
	for (size_t i = 0; cmd[i]; i++) {
		assert_int_equal(qmp_session_feed(f->sess, &cmd[i], 1), 0);
		if (cmd[i + 1])
			expect_no_output(f->sess);
	}
	msg = next_msg(f->sess);
	assert_json_equal_text(msg, "{\"return\": {\"text\": \"a}\\\"{\", \"count\": 0}, \"id\": [\"x\"]}");
	json_decref(msg);
	expect_no_output(f->sess);
}

static void test_several_in_one_feed(void **state)
{
	struct fixture *f = *state;
	json_t *msg;

	drop_greeting(f->sess);
	feed(f->sess, "{\"execute\":\"qmp_capabilities\",\"id\":1}{\"execute\":\"query-version\",\"id\":2}"
		      "\r\n\t {\"execute\": \"query-commands\", \"id\": 3}\n\n{\"execute\":\n\"test-fail\",\n\"id\":4\n}\n");
	assert_int_equal(pending_lines(f->sess), 4);
	for (int id = 1; id <= 4; id++) {
		msg = next_msg(f->sess);
		assert_int_equal(json_integer_value(json_object_get(msg, "id")), id);
		assert_non_null(json_object_get(msg, id == 4 ? "error" : "return"));
		json_decref(msg);
	}
	expect_no_output(f->sess);
}

static void test_malformed_then_valid(void **state)
{
	struct fixture *f = *state;
	json_t *ret;

	negotiate(f->sess);
	/* a syntax error inside a balanced object */
	feed(f->sess, "{\"execute\": query-version}\n{\"execute\": \"query-version\"}\n");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	json_decref(expect_return(f->sess));
	/* mismatched brackets, stray closers and garbage words */
	feed(f->sess, "{\"execute\": \"x\"]\n}}} ]] @@@ nul tru\n{\"execute\": \"query-version\"}");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	json_decref(expect_return(f->sess));
	/* an unterminated string ends at the newline; the next line is parsed afresh */
	feed(f->sess, "{\"execute\": \"query-vers\n{\"execute\": \"query-version\", \"id\": 9}\n");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	ret = next_msg(f->sess);
	assert_int_equal(json_integer_value(json_object_get(ret, "id")), 9);
	json_decref(ret);
	/* also right after a backslash */
	feed(f->sess, "{\"execute\": \"x\\\n{\"execute\": \"query-version\", \"id\": 11}\n");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	ret = next_msg(f->sess);
	assert_int_equal(json_integer_value(json_object_get(ret, "id")), 11);
	json_decref(ret);
	/* an unclosed object is abandoned by a 0xff byte, as QEMU clients do to resync */
	feed(f->sess, "{\"execute\": {\"a\": [1, 2\xff{\"execute\": \"query-version\", \"id\": 10}");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	ret = next_msg(f->sess);
	assert_int_equal(json_integer_value(json_object_get(ret, "id")), 10);
	json_decref(ret);
	/* invalid UTF-8 in a string */
	feed(f->sess, "{\"execute\": \"\xc3\x28\"}");
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, ");
	expect_no_output(f->sess);
}

static void test_non_object(void **state)
{
	struct fixture *f = *state;
	const char *inputs[] = { "[1, 2]", "42 ", "\"str\"", "null ", "true\n", "[]" };

	negotiate(f->sess);
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		feed(f->sess, inputs[i]);
		expect_error(f->sess, "GenericError", "QMP input must be a JSON object");
		expect_no_output(f->sess);
	}
	/* a scalar ends where the next value starts */
	feed(f->sess, "7{\"execute\": \"query-version\"}");
	expect_error(f->sess, "GenericError", "QMP input must be a JSON object");
	json_decref(expect_return(f->sess));
}

static void test_huge_input(void **state)
{
	struct fixture *f = *state;
	const size_t big = QMP_MAX_INPUT + QMP_MAX_INPUT / 2;
	char *chunk = malloc(65536);
	json_t *msg;

	negotiate(f->sess);
	memset(chunk, 'x', 65536);
	feed(f->sess, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"");
	for (size_t done = 0; done < big; done += 65536)
		assert_int_equal(qmp_session_feed(f->sess, chunk, 65536), 0);
	/* one error as soon as the limit is passed, none for the rest of that value */
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, input too large");
	expect_no_output(f->sess);
	feed(f->sess, "\"}}\n{\"execute\": \"query-version\", \"id\": 1}");
	msg = next_msg(f->sess);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 1);
	assert_non_null(json_object_get(msg, "return"));
	json_decref(msg);
	expect_no_output(f->sess);

	/* a huge run of garbage without a value in it */
	for (size_t done = 0; done < big; done += 65536)
		assert_int_equal(qmp_session_feed(f->sess, chunk, 65536), 0);
	expect_error_prefix(f->sess, "GenericError", "JSON parse error, input too large");
	feed(f->sess, "\n{\"execute\": \"query-version\", \"id\": 2}");
	msg = next_msg(f->sess);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 2);
	json_decref(msg);

	/* nesting deeper than the limit */
	memset(chunk, '[', QMP_MAX_NESTING + 10);
	assert_int_equal(qmp_session_feed(f->sess, chunk, QMP_MAX_NESTING + 10), 0);
	memset(chunk, ']', QMP_MAX_NESTING + 10);
	assert_int_equal(qmp_session_feed(f->sess, chunk, QMP_MAX_NESTING + 10), 0);
	expect_error(f->sess, "GenericError", "JSON parse error, nesting depth limit exceeded");
	feed(f->sess, "{\"execute\": \"query-version\", \"id\": 3}");
	msg = next_msg(f->sess);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 3);
	json_decref(msg);
	expect_no_output(f->sess);
	free(chunk);
}

static void test_events(void **state)
{
	struct fixture *f = *state;
	struct qmp_session *other = qmp_session_create(f->server);
	struct timeval before;
	json_t *msg;
	json_t *ts;

	drop_greeting(f->sess);
	drop_greeting(other);
	/* not negotiated yet: no events */
	qmp_emit_event(f->server, "STOP", NULL);
	expect_no_output(f->sess);
	feed(f->sess, "{\"execute\": \"qmp_capabilities\"}");
	expect_empty_return(f->sess);

	gettimeofday(&before, NULL);
	qmp_emit_event(f->server, "SHUTDOWN", json_pack("{s:b, s:s}", "guest", 0, "reason", "host-qmp-quit"));
	msg = next_msg(f->sess);
	assert_string_equal(json_string_value(json_object_get(msg, "event")), "SHUTDOWN");
	assert_json_equal_text(json_object_get(msg, "data"), "{\"guest\": false, \"reason\": \"host-qmp-quit\"}");
	ts = json_object_get(msg, "timestamp");
	assert_int_equal(json_object_size(ts), 2);
	assert_true(json_integer_value(json_object_get(ts, "seconds")) >= before.tv_sec);
	assert_true(json_integer_value(json_object_get(ts, "seconds")) <= before.tv_sec + 5);
	assert_true(json_integer_value(json_object_get(ts, "microseconds")) >= 0);
	assert_true(json_integer_value(json_object_get(ts, "microseconds")) < 1000000);
	assert_int_equal(json_object_size(msg), 3);
	json_decref(msg);

	/* no data: the member is left out, as in QEMU's STOP */
	qmp_emit_event(f->server, "STOP", NULL);
	msg = next_msg(f->sess);
	assert_string_equal(json_string_value(json_object_get(msg, "event")), "STOP");
	assert_null(json_object_get(msg, "data"));
	json_decref(msg);
	expect_no_output(f->sess);
	expect_no_output(other);
	qmp_session_destroy(other);
}

/* A session the test forgets to destroy before the server must not break anything. */
static void test_session_outlives_server(void **state)
{
	int err = 0;
	struct qmp_server *s = qmp_server_create(NULL, NULL, &err);
	struct qmp_session *sess = qmp_session_create(s);

	(void)state;
	qmp_server_destroy(s);
	assert_int_equal(qmp_session_feed(sess, "{}", 2), -EPIPE);
	qmp_session_destroy(sess);
	s = qmp_server_create(NULL, "/tmp/x", &err);
	assert_null(s);
	assert_int_equal(err, -EINVAL);
}

/* ---- socket tests --------------------------------------------------------- */

struct sock_fixture {
	char dir[32];
	char path[128];
	struct evloop *loop;
	struct qmp_server *server;
	pthread_t thread;
};

static void *loop_thread(void *opaque)
{
	struct sock_fixture *sf = opaque;

	evloop_run(sf->loop);
	return NULL;
}

static int sock_setup(void **state)
{
	struct sock_fixture *sf = calloc(1, sizeof(*sf));
	int err = 0;

	snprintf(sf->dir, sizeof(sf->dir), "/tmp/test_qmp.XXXXXX");
	assert_non_null(mkdtemp(sf->dir));
	snprintf(sf->path, sizeof(sf->path), "%s/qmp.sock", sf->dir);
	sf->loop = evloop_create();
	assert_non_null(sf->loop);
	sf->server = qmp_server_create(sf->loop, sf->path, &err);
	assert_non_null(sf->server);
	register_test_commands(sf->server);
	assert_int_equal(pthread_create(&sf->thread, NULL, loop_thread, sf), 0);
	*state = sf;
	return 0;
}

static int sock_teardown(void **state)
{
	struct sock_fixture *sf = *state;
	struct stat st;

	evloop_stop(sf->loop);
	pthread_join(sf->thread, NULL);
	qmp_server_destroy(sf->server);
	assert_int_equal(stat(sf->path, &st), -1);
	evloop_destroy(sf->loop);
	rmdir(sf->dir);
	free(sf);
	return 0;
}

struct client {
	int fd;
	char buf[1 << 16];
	size_t len;
};

static void client_open(struct client *c, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	c->len = 0;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
}

static void client_send(struct client *c, const char *text)
{
	assert_int_equal(send(c->fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* Reads one line (5 s timeout); NULL on end of stream. */
static json_t *client_recv(struct client *c)
{
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n", 2);
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		if (end) {
			size_t line = (size_t)(end - c->buf);
			json_t *msg = json_loadb(c->buf, line, 0, NULL);

			assert_non_null(msg);
			memmove(c->buf, end + 2, c->len - line - 2);
			c->len -= line + 2;
			return msg;
		}
		assert_true(c->len < sizeof(c->buf));
		if (poll(&p, 1, 5000) != 1)
			fail_msg("timed out waiting for a reply");
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static void client_expect_key(struct client *c, const char *key)
{
	json_t *msg = client_recv(c);

	assert_non_null(msg);
	if (!json_object_get(msg, key)) {
		char *t = json_dumps(msg, 0);

		fail_msg("expected '%s' in %s", key, t);
	}
	json_decref(msg);
}

static void client_negotiate(struct client *c)
{
	client_expect_key(c, "QMP");
	client_send(c, "{\"execute\": \"qmp_capabilities\"}\n");
	client_expect_key(c, "return");
}

static void test_socket_basic(void **state)
{
	struct sock_fixture *sf = *state;
	struct client a, b;
	json_t *msg;

	client_open(&a, sf->path);
	client_negotiate(&a);
	client_send(&a, "{\"execute\": \"query-version\", \"id\": \"v\"}\r\n");
	msg = client_recv(&a);
	assert_string_equal(json_string_value(json_object_get(msg, "id")), "v");
	assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "return"), "package")),
			    "lockstep");
	json_decref(msg);
	/* leave in the middle of a command */
	client_send(&a, "{\"execute\": \"query-ver");
	close(a.fd);

	/* the next client in a row is served the same way */
	client_open(&b, sf->path);
	client_negotiate(&b);
	client_send(&b, "{\"execute\": \"test-echo\", \"arguments\": {\"text\": \"hi\"}, \"id\": 1}");
	msg = client_recv(&b);
	assert_json_equal_text(msg, "{\"return\": {\"text\": \"hi\", \"count\": 0}, \"id\": 1}");
	json_decref(msg);
	close(b.fd);
}

static void test_socket_concurrent_and_events(void **state)
{
	struct sock_fixture *sf = *state;
	struct client a, b, c;

	client_open(&a, sf->path);
	client_open(&b, sf->path);
	client_open(&c, sf->path);
	client_negotiate(&a);
	client_negotiate(&b);
	client_expect_key(&c, "QMP"); /* c does not negotiate: it gets no events */
	/* an event emitted on the loop thread by a command reaches every negotiated client */
	client_send(&a, "{\"execute\": \"test-flood\", \"arguments\": {\"bytes\": 1}}");
	client_expect_key(&a, "event");
	client_expect_key(&a, "return");
	client_expect_key(&b, "event");
	client_send(&c, "{\"execute\": \"query-version\"}");
	client_expect_key(&c, "error");
	close(a.fd);
	close(b.fd);
	close(c.fd);
}

/* A client that never reads is cut off; the others and the server carry on. */
static void test_socket_slow_reader(void **state)
{
	struct sock_fixture *sf = *state;
	struct client slow, fast;
	json_t *msg;
	char sink[65536];

	client_open(&slow, sf->path);
	client_negotiate(&slow);
	client_open(&fast, sf->path);
	client_negotiate(&fast);
	for (int round = 0; round < 8; round++) {
		client_send(&fast, "{\"execute\": \"test-flood\", \"arguments\": {\"bytes\": 1000000}}");
		while ((msg = client_recv(&fast)) && json_object_get(msg, "event"))
			json_decref(msg);
		assert_non_null(msg);
		assert_non_null(json_object_get(msg, "return"));
		json_decref(msg);
	}
	/* slow got what fit in its socket and then end of stream */
	for (;;) {
		struct pollfd p = { .fd = slow.fd, .events = POLLIN };
		ssize_t n;

		assert_int_equal(poll(&p, 1, 5000), 1);
		n = recv(slow.fd, sink, sizeof(sink), 0);
		if (n <= 0)
			break;
	}
	close(slow.fd);
	client_send(&fast, "{\"execute\": \"query-version\", \"id\": 5}");
	msg = client_recv(&fast);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 5);
	json_decref(msg);
	close(fast.fd);
}

/* A client that stops sending still gets every reply before the server closes. */
static void test_socket_half_close(void **state)
{
	struct sock_fixture *sf = *state;
	struct client a;
	int replies = 0;
	json_t *msg;

	client_open(&a, sf->path);
	client_send(&a, "{\"execute\": \"qmp_capabilities\"}\n");
	for (int i = 0; i < 200; i++)
		client_send(&a, "{\"execute\": \"query-commands\"}\n");
	shutdown(a.fd, SHUT_WR);
	client_expect_key(&a, "QMP");
	while ((msg = client_recv(&a))) {
		assert_non_null(json_object_get(msg, "return"));
		json_decref(msg);
		replies++;
	}
	assert_int_equal(replies, 201);
	close(a.fd);
}

static void test_socket_errors(void **state)
{
	struct sock_fixture *sf = *state;
	struct evloop *loop = evloop_create();
	char longpath[200];
	char other[100];
	int err = 0;
	struct qmp_server *s;
	FILE *fp;

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_null(qmp_server_create(loop, longpath, &err));
	assert_int_equal(err, -ENAMETOOLONG);
	/* a live server's socket is not taken over */
	assert_null(qmp_server_create(loop, sf->path, &err));
	assert_int_equal(err, -EADDRINUSE);
	/* a regular file is not removed */
	snprintf(other, sizeof(other), "%s/file", sf->dir);
	fp = fopen(other, "w");
	fclose(fp);
	assert_null(qmp_server_create(loop, other, &err));
	assert_int_equal(err, -EEXIST);
	unlink(other);
	/* a stale socket (nobody listening) is replaced */
	snprintf(other, sizeof(other), "%s/stale.sock", sf->dir);
	{
		struct sockaddr_un addr = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", other);
		assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
		close(fd);
	}
	s = qmp_server_create(loop, other, &err);
	assert_non_null(s);
	qmp_server_destroy(s);
	assert_int_equal(access(other, F_OK), -1);
	snprintf(other, sizeof(other), "%s/no/such/dir/q.sock", sf->dir);
	assert_null(qmp_server_create(loop, other, &err));
	assert_int_equal(err, -ENOENT);
	evloop_destroy(loop);
}

/* qmp_server_destroy delivers pending output (the "quit" reply case). */
static void test_socket_final_flush(void **state)
{
	struct sock_fixture *sf = *state;
	struct client a;

	client_open(&a, sf->path);
	client_negotiate(&a);
	/* stop the loop, then make output that only the final flush can deliver */
	evloop_stop(sf->loop);
	pthread_join(sf->thread, NULL);
	qmp_emit_event(sf->server, "SHUTDOWN", json_pack("{s:b, s:s}", "guest", 0, "reason", "host-qmp-quit"));
	qmp_server_destroy(sf->server);
	sf->server = NULL;
	client_expect_key(&a, "event");
	assert_null(client_recv(&a));
	close(a.fd);
	/* let the teardown find a stopped loop and nothing to destroy */
	assert_int_equal(pthread_create(&sf->thread, NULL, loop_thread, sf), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_split_points),
		cmocka_unit_test(test_stream_resync_after_garbage),
		cmocka_unit_test(test_stream_nesting_limit),
		cmocka_unit_test(test_stream_size_limit),
		cmocka_unit_test_setup_teardown(test_greeting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negotiation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
		cmocka_unit_test(test_args_check_direct),
		cmocka_unit_test_setup_teardown(test_handler_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_utf8_description, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_members, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_in_one_feed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_then_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test(test_session_outlives_server),
		cmocka_unit_test_setup_teardown(test_socket_basic, sock_setup, sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_concurrent_and_events, sock_setup, sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_slow_reader, sock_setup, sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_half_close, sock_setup, sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_errors, sock_setup, sock_teardown),
		cmocka_unit_test_setup_teardown(test_socket_final_flush, sock_setup, sock_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
