/*
 * libFuzzer target for the QMP protocol: the input is fed into a fresh
 * session, cut into chunks so values arrive split, with capabilities
 * negotiation already done or not. The first byte picks both:
 *   bit 0     negotiate first
 *   bits 1-7  chunk size (0 = everything at once)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "qmp/qmp.h"

static json_t *fuzz_cmd_echo(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "text", QMP_ARG_STRING, true },
		{ "n", QMP_ARG_INT, false },
		{ "x", QMP_ARG_NUMBER, false },
		{ "b", QMP_ARG_BOOL, false },
		{ "o", QMP_ARG_OBJECT, false },
		{ "a", QMP_ARG_ARRAY, false },
		{ NULL, QMP_ARG_ANY, false },
	};

	(void)opaque;
	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	return json_deep_copy(args);
}

/* Fails after emitting an event, so events interleave with replies. */
static json_t *fuzz_cmd_fail(json_t *args, struct qmp_error *err, void *opaque)
{
	static const struct qmp_arg_spec spec[] = {
		{ "any", QMP_ARG_ANY, false },
		{ NULL, QMP_ARG_ANY, false },
	};

	if (qmp_args_check(args, err, spec) < 0)
		return NULL;
	qmp_emit_event(opaque, "FUZZ", json_incref(json_object_get(args, "any")));
	qmp_error_set(err, QMP_ERR_GENERIC, "failed on purpose: %s", "\xc3\xa9\xc3\xa9");
	return json_object();
}

/* Takes the output away as a socket client would. */
static void drain(struct qmp_session *sess)
{
	size_t len;
	const char *out = qmp_session_output(sess, &len);
	volatile char sink = 0;

	for (size_t i = 0; i < len; i++)
		sink ^= out[i];
	(void)sink;
	qmp_session_consume(sess, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char caps[] = "{\"execute\": \"qmp_capabilities\"}";
	struct qmp_server *s;
	struct qmp_session *sess;
	size_t chunk;
	int err;

	if (size < 1)
		return 0;
	s = qmp_server_create(NULL, NULL, &err);
	if (!s)
		abort();
	if (qmp_register(s, "echo", fuzz_cmd_echo, s) < 0 || qmp_register(s, "fail", fuzz_cmd_fail, s) < 0)
		abort();
	sess = qmp_session_create(s);
	if (!sess)
		abort();
	if (data[0] & 1) {
		qmp_session_feed(sess, caps, sizeof(caps) - 1);
		if (!qmp_session_negotiated(sess))
			abort();
	}
	chunk = data[0] >> 1;
	data++;
	size--;
	if (chunk == 0)
		chunk = size ? size : 1;
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		qmp_session_feed(sess, (const char *)data + off, n);
		drain(sess);
	}
	qmp_emit_event(s, "DONE", NULL);
	drain(sess);
	qmp_session_destroy(sess);
	qmp_server_destroy(s);
	return 0;
}
