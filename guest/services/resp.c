#include "resp.h"

#include "strutil.h"

/* The length of the line at p (without CRLF), or -1 when no CRLF within max. */
static long line_len(const char *p, size_t len, size_t max)
{
	const char *cr = mem_find(p, len < max + 2 ? len : max + 2, "\r\n", 2);

	return cr ? cr - p : -1;
}

/* "<prefix><decimal>\r\n" at p: the number and the bytes taken; 0 = incomplete, -1 = bad. */
static long parse_header(const char *p, size_t len, char prefix, int64_t *n)
{
	long l;

	if (len < 1)
		return 0;
	if (p[0] != prefix)
		return -1;
	l = line_len(p, len, 24);
	if (l < 0)
		return len >= 26 ? -1 : 0;
	if (str_to_i64(p + 1, (size_t)l - 1, n) < 0)
		return -1;
	return l + 2;
}

static long parse_multibulk(const char *data, size_t len, struct resp_cmd *cmd, const char **err)
{
	int64_t count, blen;
	long h = parse_header(data, len, '*', &count);
	size_t at;

	if (h <= 0) {
		*err = "Protocol error: invalid multibulk length";
		return h;
	}
	if (count > RESP_MAX_ARGS) {
		*err = "Protocol error: too many arguments";
		return -1;
	}
	cmd->argc = 0;
	for (at = (size_t)h; cmd->argc < count; cmd->argc++) {
		h = parse_header(data + at, len - at, '$', &blen);
		if (h <= 0) {
			*err = "Protocol error: expected '$' and a bulk length";
			return h;
		}
		if (blen < 0 || blen > RESP_MAX_BULK) {
			*err = "Protocol error: invalid bulk length";
			return -1;
		}
		at += (size_t)h;
		if (len - at < (size_t)blen + 2)
			return 0;
		if (data[at + blen] != '\r' || data[at + blen + 1] != '\n') {
			*err = "Protocol error: bulk string not followed by CRLF";
			return -1;
		}
		cmd->argv[cmd->argc] = data + at;
		cmd->argl[cmd->argc] = (size_t)blen;
		at += (size_t)blen + 2;
	}
	return (long)at;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* An inline command: words separated by blanks, up to LF (CR before it dropped). */
static long parse_inline(const char *data, size_t len, struct resp_cmd *cmd, const char **err)
{
	const char *nl = mem_find(data, len < RESP_MAX_INLINE ? len : RESP_MAX_INLINE, "\n", 1);
	size_t end, i = 0;

	if (!nl) {
		*err = "Protocol error: too big inline request";
		return len >= RESP_MAX_INLINE ? -1 : 0;
	}
	end = (size_t)(nl - data);
	if (end && data[end - 1] == '\r')
		end--;
	cmd->argc = 0;
	while (i < end) {
		size_t start;

		while (i < end && is_blank(data[i]))
			i++;
		if (i == end)
			break;
		if (cmd->argc == RESP_MAX_ARGS) {
			*err = "Protocol error: too many arguments";
			return -1;
		}
		for (start = i; i < end && !is_blank(data[i]); i++)
			;
		cmd->argv[cmd->argc] = data + start;
		cmd->argl[cmd->argc++] = i - start;
	}
	return nl - data + 1;
}

long resp_parse(const char *data, size_t len, struct resp_cmd *cmd, const char **err)
{
	*err = NULL;
	cmd->argc = 0;
	if (len == 0)
		return 0;
	return data[0] == '*' ? parse_multibulk(data, len, cmd, err) : parse_inline(data, len, cmd, err);
}

/* ---- replies ---- */

static int put_line(struct buf *out, char type, const char *s, size_t n)
{
	uint8_t *p = buf_reserve(out, n + 3);

	if (!p)
		return -1;
	p[0] = (uint8_t)type;
	memcpy(p + 1, s, n);
	p[n + 1] = '\r';
	p[n + 2] = '\n';
	buf_commit(out, n + 3);
	return 0;
}

static int put_number(struct buf *out, char type, int64_t v)
{
	char num[24];

	return put_line(out, type, num, i64_to_str(v, num));
}

int resp_simple(struct buf *out, const char *s) { return put_line(out, '+', s, strlen(s)); }
int resp_error(struct buf *out, const char *s) { return put_line(out, '-', s, strlen(s)); }
int resp_int(struct buf *out, int64_t v) { return put_number(out, ':', v); }
int resp_null(struct buf *out) { return put_line(out, '$', "-1", 2); }
int resp_array(struct buf *out, size_t n) { return put_number(out, '*', (int64_t)n); }

int resp_bulk(struct buf *out, const void *p, size_t len)
{
	if (put_number(out, '$', (int64_t)len) < 0 || buf_append(out, p, len) < 0 ||
	    buf_append(out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

int resp_bulk_str(struct buf *out, const char *s) { return resp_bulk(out, s, strlen(s)); }
