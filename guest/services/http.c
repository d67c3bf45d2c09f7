/*
 * An HTTP/1.1 server on port 80, enough for curl, wrk and ab:
 *   GET|HEAD /            a short text body
 *   GET|HEAD /tsc         "tsc=N": the time-stamp counter, different on every copy of
 *                         the guest (a COLO pair's two guests answer differently)
 *   GET|HEAD /bytes/N     N bytes (up to 256 MiB) of the pattern stream (pattern.h), with
 *                         "X-Checksum: crc32=XXXXXXXX", the CRC-32 (crc32.h,
 *                         as zlib.crc32) of the body in 8 lower-case hex digits
 * Keep-alive as the version says (HTTP/1.1 unless "Connection: close";
 * HTTP/1.0 only with "Connection: keep-alive"); pipelined requests are
 * answered in order; request bodies (Content-Length) are read and dropped.
 * Bodies are generated as the send buffer drains, so a 10 MB body costs
 * no more memory than a small one.
 */
#include "services.h"

#include "conn.h"
#include "crc32.h"
#include "pattern.h"
#include "strutil.h"

#define HTTP_PORT 80
#define HEADER_MAX (16 * 1024)
#define BODY_MAX (256ULL << 20) /* its checksum is computed up front: ~0.5 s for 256 MiB */
#define CHUNK (64 * 1024)
#define CRC_CACHE 8

struct http_state {
	uint64_t body_off, body_len; /* the pattern body being sent */
	uint64_t discard;            /* request body bytes still to drop */
	bool close_after;            /* close once this response is out */
};

static uint8_t chunk[CHUNK]; /* one thread: shared by all connections */

static struct {
	uint64_t len;
	uint32_t crc;
} crc_cache[CRC_CACHE];
static unsigned crc_next;

/* CRC-32 of the first len pattern bytes (remembered: clients ask for the same sizes). */
static uint32_t body_crc(uint64_t len)
{
	uint32_t crc = 0;

	for (unsigned i = 0; i < CRC_CACHE; i++)
		if (crc_cache[i].len == len && (len || crc_cache[i].crc == 0))
			return crc_cache[i].crc;
	for (uint64_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? (size_t)(len - off) : CHUNK;

		pattern_fill(chunk, off, n);
		crc = crc32_update(crc, chunk, n);
	}
	crc_cache[crc_next].len = len;
	crc_cache[crc_next].crc = crc;
	crc_next = (crc_next + 1) % CRC_CACHE;
	return crc;
}

/* ---- request parsing ---- */

struct request {
	const char *method, *target;
	size_t method_len, target_len;
	bool http10, keep_alive, conn_close;
	uint64_t content_length;
};

static const char *skip_token(const char *p, const char *end, size_t *len)
{
	const char *start = p;

	while (p < end && *p != ' ')
		p++;
	*len = (size_t)(p - start);
	return p < end ? p + 1 : p;
}

/* Lower-cases nothing: compares a header name case-insensitively and returns its value. */
static bool header_value(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || !str_ieq(line, n, name))
		return false;
	*val = line + n + 1;
	*vlen = len - n - 1;
	while (*vlen && (**val == ' ' || **val == '\t'))
		(*val)++, (*vlen)--;
	while (*vlen && ((*val)[*vlen - 1] == ' ' || (*val)[*vlen - 1] == '\r'))
		(*vlen)--;
	return true;
}

static bool contains_word(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= len; i++)
		if (str_ieq(s + i, n, word))
			return true;
	return false;
}

static int parse_headers(const char *p, const char *end, struct request *r)
{
	while (p < end) {
		const char *nl = mem_find(p, (size_t)(end - p), "\n", 1), *val;
		size_t len = (size_t)((nl ? nl : end) - p), vlen;

		if (header_value(p, len, "connection", &val, &vlen)) {
			r->keep_alive |= contains_word(val, vlen, "keep-alive");
			r->conn_close |= contains_word(val, vlen, "close");
		} else if (header_value(p, len, "content-length", &val, &vlen)) {
			if (str_to_u64(val, vlen, &r->content_length) < 0)
				return -1;
		}
		p += len + 1;
	}
	return 0;
}

/* The request line and headers in p[0..len) (the blank line excluded); 0 or -1. */
static int parse_request(const char *p, size_t len, struct request *r)
{
	const char *end = p + len, *nl = mem_find(p, len, "\n", 1), *version;
	size_t line_len = (size_t)((nl ? nl : end) - p), vlen;

	*r = (struct request){ 0 };
	if (line_len && p[line_len - 1] == '\r')
		line_len--;
	version = skip_token(skip_token(p, p + line_len, &r->method_len), p + line_len, &r->target_len);
	r->method = p;
	r->target = p + r->method_len + 1;
	vlen = (size_t)(p + line_len - version);
	if (!r->method_len || !r->target_len || r->target[0] != '/' || vlen != 8 || memcmp(version, "HTTP/1.", 7))
		return -1;
	r->http10 = version[7] == '0';
	return nl ? parse_headers(nl + 1, end, r) : 0;
}

/* ---- responses ---- */

static int put_head(struct conn *c, const char *status, const char *type, uint64_t len, const char *extra)
{
	struct http_state *s = c->state;
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nServer: lockstep-guest\r\nContent-Type: %s\r\nContent-Length: %lu\r\n"
			 "%sConnection: %s\r\n\r\n",
			 status, type, (unsigned long)len, extra, s->close_after ? "close" : "keep-alive");

	return buf_append(&c->out, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
}

static int put_text(struct conn *c, const char *status, const char *body, bool head_only)
{
	size_t len = strlen(body);

	if (put_head(c, status, "text/plain", len, "") < 0)
		return -1;
	return head_only ? 0 : buf_append(&c->out, body, len);
}

/* "/bytes/N" (a query string ignored): N, or -1. */
static int64_t bytes_target(const char *t, size_t len)
{
	static const char prefix[] = "/bytes/";
	const char *q = mem_find(t, len, "?", 1);
	uint64_t n;

	if (q)
		len = (size_t)(q - t);
	if (len <= sizeof(prefix) - 1 || memcmp(t, prefix, sizeof(prefix) - 1) ||
	    str_to_u64(t + sizeof(prefix) - 1, len - (sizeof(prefix) - 1), &n) < 0 || n > BODY_MAX)
		return -1;
	return (int64_t)n;
}

static int respond(struct conn *c, const struct request *r)
{
	struct http_state *s = c->state;
	bool get = str_ieq(r->method, r->method_len, "GET"), head = str_ieq(r->method, r->method_len, "HEAD");
	int64_t n;
	char extra[64];

	s->close_after = r->conn_close || (r->http10 && !r->keep_alive);
	if (!get && !head)
		return put_text(c, "405 Method Not Allowed", "method not allowed\n", false);
	if (r->target_len == 1)
		return put_text(c, "200 OK", "lockstep test guest\n", head);
	if (r->target_len == 4 && memcmp(r->target, "/tsc", 4) == 0) {
		char body[32];

		snprintf(body, sizeof(body), "tsc=%lu\n", (unsigned long)__builtin_ia32_rdtsc());
		return put_text(c, "200 OK", body, head);
	}
	n = bytes_target(r->target, r->target_len);
	if (n < 0)
		return put_text(c, "404 Not Found", "not found\n", head);
	snprintf(extra, sizeof(extra), "X-Checksum: crc32=%08x\r\n", body_crc((uint64_t)n));
	if (put_head(c, "200 OK", "application/octet-stream", (uint64_t)n, extra) < 0)
		return -1;
	s->body_off = 0;
	s->body_len = head ? 0 : (uint64_t)n;
	return 0;
}

/* Appends the next piece of the body, as much as the output may hold. */
static int produce_body(struct conn *c)
{
	struct http_state *s = c->state;
	uint64_t left = s->body_len - s->body_off;
	size_t room = c->ops->out_high - buf_used(&c->out), n = left < room ? (size_t)left : room;
	uint8_t *dst = buf_reserve(&c->out, n);

	if (!dst)
		return -1;
	pattern_fill(dst, s->body_off, n);
	buf_commit(&c->out, n);
	s->body_off += n;
	return 0;
}

/* The end of the header block in in[0..len): the bytes it takes, or 0. */
static size_t header_end(const char *in, size_t len, size_t *blank)
{
	const char *crlf = mem_find(in, len, "\r\n\r\n", 4), *lf = mem_find(in, len, "\n\n", 2);

	if (crlf && (!lf || crlf < lf)) {
		*blank = 4;
		return (size_t)(crlf - in) + 4;
	}
	if (lf) {
		*blank = 2;
		return (size_t)(lf - in) + 2;
	}
	return 0;
}

static int http_process(struct conn *c)
{
	struct http_state *s = c->state;
	const char *in = (const char *)buf_head(&c->in);
	size_t used = buf_used(&c->in), taken, blank;
	struct request r;

	if (s->body_off < s->body_len)
		return produce_body(c);
	if (s->discard) {
		size_t n = s->discard < used ? (size_t)s->discard : used;

		buf_consume(&c->in, n);
		s->discard -= n;
		return 0;
	}
	if (s->close_after) {
		c->close_wanted = true;
		return 0;
	}
	taken = header_end(in, used, &blank);
	if (!taken) {
		if (used <= HEADER_MAX)
			return 0;
		s->close_after = true;
		buf_consume(&c->in, used);
		return put_text(c, "431 Request Header Fields Too Large", "request too large\n", false);
	}
	if (parse_request(in, taken - blank, &r) < 0) {
		s->close_after = true;
		buf_consume(&c->in, used);
		return put_text(c, "400 Bad Request", "bad request\n", false);
	}
	buf_consume(&c->in, taken); /* r points into it, but nothing overwrites it before respond() */
	s->discard = r.content_length;
	return respond(c, &r);
}

static int http_open(struct conn *c)
{
	c->state = calloc(1, sizeof(struct http_state));
	return c->state ? 0 : -1;
}

static void http_release(struct conn *c) { free(c->state); }

static const struct conn_ops http_ops = {
	.name = "http",
	.open = http_open,
	.process = http_process,
	.release = http_release,
	.out_high = 256 * 1024,
	.in_max = 1024 * 1024, /* pipelined requests wait while a big body goes out */
};

int http_start(void) { return conn_listen(HTTP_PORT, &http_ops); }
