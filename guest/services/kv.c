/*
 * A key-value server on port 6379 speaking RESP, enough of Redis for
 * redis-cli and redis-benchmark (-t ping,set,get,incr):
 *   PING [msg], ECHO msg, SET key value [NX|XX], GET key, DEL key..., EXISTS key...,
 *   INCR/DECR key, INCRBY/DECRBY key n, DBSIZE, FLUSHALL/FLUSHDB, SELECT 0, QUIT,
 * and the handshake commands clients send: COMMAND [DOCS|COUNT], CONFIG GET,
 * HELLO [2], CLIENT SETNAME/SETINFO/GETNAME/ID, INFO.
 *
 * With a disk (kvdisk=1), every write is appended to the log (kv_log.h) and
 * the connection's replies are held until kv_poll() has written and flushed
 * the batch: an acknowledged write is on disk. Reads in the same pipeline
 * wait behind it, so replies stay in order.
 */
#include "services.h"

#include "conn.h"
#include "kv_log.h"
#include "kv_store.h"
#include "resp.h"
#include "strutil.h"

#define KV_PORT 6379

static bool persistent;
static struct resp_cmd cmd; /* one command at a time: connections never interleave */

/* Appends a write to the log (when there is one) and holds c's replies until
 * it is on disk. Returns 0, or the error reply to send instead. */
static const char *log_write(struct conn *c, enum kv_log_op op, const char *key, size_t klen,
			     const void *val, size_t vlen)
{
	int r;

	if (!persistent)
		return NULL;
	r = kv_log_append(op, key, klen, val, vlen);
	if (r == KV_LOG_FULL)
		return "ERR disk full: the append-only log has no room";
	if (r < 0)
		return "ERR the append-only log failed";
	c->out_held = true;
	return NULL;
}

static int reply_ok_or(struct conn *c, const char *err)
{
	return err ? resp_error(&c->out, err) : resp_simple(&c->out, "OK");
}

static bool arg_is(int i, const char *word) { return str_ieq(cmd.argv[i], cmd.argl[i], word); }

/* ---- commands: each appends its reply; -1 only when memory runs out ---- */

static int cmd_ping(struct conn *c)
{
	return cmd.argc > 1 ? resp_bulk(&c->out, cmd.argv[1], cmd.argl[1]) : resp_simple(&c->out, "PONG");
}

static int cmd_echo(struct conn *c) { return resp_bulk(&c->out, cmd.argv[1], cmd.argl[1]); }

static int cmd_get(struct conn *c)
{
	size_t vlen;
	const uint8_t *v = kv_get(cmd.argv[1], cmd.argl[1], &vlen);

	return v ? resp_bulk(&c->out, v, vlen) : resp_null(&c->out);
}

static int cmd_set(struct conn *c)
{
	bool nx = false, xx = false, exists;
	size_t vlen;
	const char *err;

	for (int i = 3; i < cmd.argc; i++) {
		if (arg_is(i, "NX"))
			nx = true;
		else if (arg_is(i, "XX"))
			xx = true;
		else
			return resp_error(&c->out, "ERR syntax error (only NX and XX are supported)");
	}
	exists = kv_get(cmd.argv[1], cmd.argl[1], &vlen) != NULL;
	if ((nx && exists) || (xx && !exists))
		return resp_null(&c->out);
	if (kv_set(cmd.argv[1], cmd.argl[1], cmd.argv[2], cmd.argl[2]) < 0)
		return resp_error(&c->out, "OOM command not allowed when used memory > 'maxmemory'");
	err = log_write(c, KV_LOG_SET, cmd.argv[1], cmd.argl[1], cmd.argv[2], cmd.argl[2]);
	return reply_ok_or(c, err);
}

static int cmd_del(struct conn *c)
{
	int64_t n = 0;
	const char *err = NULL;

	for (int i = 1; i < cmd.argc && !err; i++) {
		if (kv_del(cmd.argv[i], cmd.argl[i])) {
			n++;
			err = log_write(c, KV_LOG_DEL, cmd.argv[i], cmd.argl[i], NULL, 0);
		}
	}
	return err ? resp_error(&c->out, err) : resp_int(&c->out, n);
}

static int cmd_exists(struct conn *c)
{
	int64_t n = 0;
	size_t vlen;

	for (int i = 1; i < cmd.argc; i++)
		n += kv_get(cmd.argv[i], cmd.argl[i], &vlen) != NULL;
	return resp_int(&c->out, n);
}

/* INCR, DECR, INCRBY, DECRBY: the value as a decimal int64, stored back as text. */
static int incr_by(struct conn *c, int64_t by)
{
	size_t vlen;
	const uint8_t *v = kv_get(cmd.argv[1], cmd.argl[1], &vlen);
	int64_t n = 0;
	char text[24];
	size_t tlen;
	const char *err;

	if (v && str_to_i64((const char *)v, vlen, &n) < 0)
		return resp_error(&c->out, "ERR value is not an integer or out of range");
	if ((by > 0 && n > INT64_MAX - by) || (by < 0 && n < -INT64_MAX - 1 - by))
		return resp_error(&c->out, "ERR increment or decrement would overflow");
	n += by;
	tlen = i64_to_str(n, text);
	if (kv_set(cmd.argv[1], cmd.argl[1], text, tlen) < 0)
		return resp_error(&c->out, "OOM command not allowed when used memory > 'maxmemory'");
	err = log_write(c, KV_LOG_SET, cmd.argv[1], cmd.argl[1], text, tlen);
	return err ? resp_error(&c->out, err) : resp_int(&c->out, n);
}

static int incr_by_arg(struct conn *c, int sign)
{
	int64_t by;

	if (str_to_i64(cmd.argv[2], cmd.argl[2], &by) < 0 || by == -INT64_MAX - 1)
		return resp_error(&c->out, "ERR value is not an integer or out of range");
	return incr_by(c, sign * by);
}

static int cmd_incr(struct conn *c) { return incr_by(c, 1); }
static int cmd_decr(struct conn *c) { return incr_by(c, -1); }
static int cmd_incrby(struct conn *c) { return incr_by_arg(c, 1); }
static int cmd_decrby(struct conn *c) { return incr_by_arg(c, -1); }

static int cmd_dbsize(struct conn *c) { return resp_int(&c->out, (int64_t)kv_count()); }

static int cmd_flushall(struct conn *c)
{
	kv_clear();
	return reply_ok_or(c, log_write(c, KV_LOG_FLUSHALL, NULL, 0, NULL, 0));
}

static int cmd_select(struct conn *c)
{
	return cmd.argl[1] == 1 && cmd.argv[1][0] == '0' ? resp_simple(&c->out, "OK")
							  : resp_error(&c->out, "ERR DB index is out of range");
}

static int cmd_quit(struct conn *c)
{
	c->close_wanted = true;
	return resp_simple(&c->out, "OK");
}

/* No command table to describe: clients take an empty answer and carry on. */
static int cmd_command(struct conn *c)
{
	if (cmd.argc > 1 && arg_is(1, "COUNT"))
		return resp_int(&c->out, 0);
	return resp_array(&c->out, 0);
}

/* A two-element array of bulk strings. */
static int reply_pair(struct conn *c, const char *a, const char *b)
{
	return resp_array(&c->out, 2) < 0 || resp_bulk_str(&c->out, a) < 0 || resp_bulk_str(&c->out, b) < 0 ? -1
														: 0;
}

/* CONFIG GET: redis-benchmark asks for "save" and "appendonly". */
static int cmd_config(struct conn *c)
{
	if (!arg_is(1, "GET"))
		return resp_simple(&c->out, "OK"); /* CONFIG SET/RESETSTAT: accepted, ignored */
	if (cmd.argc < 3)
		return resp_error(&c->out, "ERR wrong number of arguments for 'config|get' command");
	if (arg_is(2, "save"))
		return reply_pair(c, "save", "");
	if (arg_is(2, "appendonly"))
		return reply_pair(c, "appendonly", persistent ? "yes" : "no");
	return resp_array(&c->out, 0);
}

static int reply_pair_flat(struct conn *c, const char *name, const char *value)
{
	return resp_bulk_str(&c->out, name) < 0 || resp_bulk_str(&c->out, value) < 0 ? -1 : 0;
}

static int cmd_hello(struct conn *c)
{
	if (cmd.argc > 1 && !(cmd.argl[1] == 1 && cmd.argv[1][0] == '2'))
		return resp_error(&c->out, "NOPROTO unsupported protocol version");
	/* A map as RESP2 has it: a flat array of names and values. */
	if (resp_array(&c->out, 14) < 0 || reply_pair_flat(c, "server", "redis") < 0 ||
	    reply_pair_flat(c, "version", "7.0.0") < 0 || resp_bulk_str(&c->out, "proto") < 0 ||
	    resp_int(&c->out, 2) < 0 || resp_bulk_str(&c->out, "id") < 0 || resp_int(&c->out, 1) < 0 ||
	    reply_pair_flat(c, "mode", "standalone") < 0 || reply_pair_flat(c, "role", "master") < 0 ||
	    resp_bulk_str(&c->out, "modules") < 0 || resp_array(&c->out, 0) < 0)
		return -1;
	return 0;
}

static int cmd_client(struct conn *c)
{
	if (arg_is(1, "GETNAME"))
		return resp_null(&c->out);
	if (arg_is(1, "ID"))
		return resp_int(&c->out, 1);
	return resp_simple(&c->out, "OK"); /* SETNAME, SETINFO, NO-EVICT, ... */
}

static int cmd_info(struct conn *c)
{
	char text[256];
	int n = snprintf(text, sizeof(text),
			 "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nos:lockstep test guest\r\n"
			 "# Persistence\r\naof_enabled:%d\r\n# Keyspace\r\ndb0:keys=%lu,expires=0,avg_ttl=0\r\n",
			 persistent, (unsigned long)kv_count());

	return resp_bulk(&c->out, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

struct command {
	const char *name;
	int min_args, max_args; /* argc bounds, the name included; -1: no upper bound */
	int (*run)(struct conn *c);
};

static const struct command commands[] = {
	{ "GET", 2, 2, cmd_get },	    { "SET", 3, 5, cmd_set },	      { "INCR", 2, 2, cmd_incr },
	{ "PING", 1, 2, cmd_ping },	    { "ECHO", 2, 2, cmd_echo },	      { "DEL", 2, -1, cmd_del },
	{ "EXISTS", 2, -1, cmd_exists },    { "DECR", 2, 2, cmd_decr },	      { "INCRBY", 3, 3, cmd_incrby },
	{ "DECRBY", 3, 3, cmd_decrby },	    { "DBSIZE", 1, 1, cmd_dbsize },   { "FLUSHALL", 1, 2, cmd_flushall },
	{ "FLUSHDB", 1, 2, cmd_flushall },  { "SELECT", 2, 2, cmd_select },   { "QUIT", 1, 1, cmd_quit },
	{ "COMMAND", 1, -1, cmd_command },  { "CONFIG", 2, -1, cmd_config },  { "HELLO", 1, -1, cmd_hello },
	{ "CLIENT", 2, -1, cmd_client },    { "INFO", 1, -1, cmd_info },
};

static int execute(struct conn *c)
{
	char msg[96], name[41];
	size_t nlen = cmd.argl[0] < sizeof(name) ? cmd.argl[0] : sizeof(name) - 1;

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *k = &commands[i];

		if (!arg_is(0, k->name))
			continue;
		if (cmd.argc < k->min_args || (k->max_args >= 0 && cmd.argc > k->max_args)) {
			snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command", k->name);
			return resp_error(&c->out, msg);
		}
		return k->run(c);
	}
	memcpy(name, cmd.argv[0], nlen);
	name[nlen] = '\0';
	snprintf(msg, sizeof(msg), "ERR unknown command '%s'", name);
	return resp_error(&c->out, msg);
}

static int kv_process(struct conn *c)
{
	const char *err;
	long n = resp_parse((const char *)buf_head(&c->in), buf_used(&c->in), &cmd, &err);

	if (n < 0) { /* like Redis: say why, then close */
		char msg[96];

		snprintf(msg, sizeof(msg), "ERR %s", err);
		buf_consume(&c->in, buf_used(&c->in));
		c->close_wanted = true;
		return resp_error(&c->out, msg);
	}
	if (n == 0)
		return 0;
	if (cmd.argc > 0 && execute(c) < 0)
		return -1;
	buf_consume(&c->in, (size_t)n);
	return 0;
}

static const struct conn_ops kv_ops = {
	.name = "kv",
	.process = kv_process,
	.out_high = 256 * 1024,
	.in_max = RESP_MAX_BULK + 64 * 1024,
};

static int replay_one(enum kv_log_op op, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	switch (op) {
	case KV_LOG_SET:
		return kv_set(key, klen, val, vlen);
	case KV_LOG_DEL:
		kv_del(key, klen);
		return 0;
	case KV_LOG_FLUSHALL:
		kv_clear();
		return 0;
	}
	return 0; /* an op from a newer version: skipped */
}

long kv_load(const struct blockdev *disk)
{
	long n = kv_log_open(disk, replay_one);

	if (n < 0) {
		printf("kv: cannot open the log on the disk\n");
		return -1;
	}
	persistent = true;
	printf("kv: log replayed: %ld records, %lu keys, %lu bytes\n", n, (unsigned long)kv_count(),
	       (unsigned long)kv_log_bytes());
	return n;
}

int kv_start(const struct blockdev *disk)
{
	if (disk && kv_load(disk) < 0)
		return -1;
	return conn_listen(KV_PORT, &kv_ops);
}

/* Releases the replies of every connection that waited for the commit. */
static void release_held(struct conn *c, void *arg)
{
	bool committed = *(bool *)arg;

	if (c->ops != &kv_ops || !c->out_held)
		return;
	c->out_held = false;
	if (committed)
		conn_run(c);
	else
		conn_abort(c); /* the writes are not durable: no acknowledgement */
}

void kv_poll(void)
{
	bool committed;

	if (!persistent || !kv_log_pending())
		return;
	committed = kv_log_commit() == 0;
	if (!committed)
		printf("kv: log write failed; unacknowledged writes dropped, connections reset\n");
	conn_foreach(release_held, &committed);
}
