#include "state/stream.h"
#include "util/sbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t stream_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int stream_out_init(struct stream_out *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->buf = malloc(STREAM_BUF_SIZE);
	return s->buf ? 0 : -ENOMEM;
}

int stream_out_init_capture(struct stream_out *s, struct sbuf *b)
{
	int ret = stream_out_init(s, -1);

	s->capture = b;
	return ret;
}

void stream_out_free(struct stream_out *s)
{
	free(s->buf);
	s->buf = NULL;
}

void stream_out_set_bandwidth(struct stream_out *s, uint64_t bytes_per_s)
{
	s->max_bw = bytes_per_s;
	s->bw_start_ns = stream_now_ns();
	s->bw_start_bytes = s->bytes;
}

/* Sleeps until the bytes sent since the limit was set fit the bandwidth. */
static void stream_out_throttle(struct stream_out *s)
{
	uint64_t sent, due_ns, now;

	if (!s->max_bw)
		return;
	sent = s->bytes - s->bw_start_bytes;
	due_ns = s->bw_start_ns + (uint64_t)((double)sent * 1e9 / (double)s->max_bw);
	now = stream_now_ns();
	if (due_ns > now) {
		struct timespec ts = { .tv_sec = (time_t)((due_ns - now) / 1000000000ULL),
				       .tv_nsec = (long)((due_ns - now) % 1000000000ULL) };

		nanosleep(&ts, NULL);
	}
}

static int stream_write_all(struct stream_out *s, const uint8_t *p, size_t n)
{
	if (s->capture) {
		sbuf_put(s->capture, p, n);
		s->bytes += n;
		return s->error = s->capture->error;
	}
	while (n) {
		ssize_t w = write(s->fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return s->error = -errno;
		}
		p += w;
		n -= (size_t)w;
		s->bytes += (uint64_t)w;
	}
	stream_out_throttle(s);
	return 0;
}

int stream_out_flush(struct stream_out *s)
{
	if (s->error)
		return s->error;
	if (s->len && stream_write_all(s, s->buf, s->len) < 0)
		return s->error;
	s->len = 0;
	return 0;
}

int stream_out_write(struct stream_out *s, const void *p, size_t n)
{
	const uint8_t *src = p;

	if (s->error)
		return s->error;
	while (n) {
		size_t room = STREAM_BUF_SIZE - s->len, chunk = n < room ? n : room;

		memcpy(s->buf + s->len, src, chunk);
		s->len += chunk;
		src += chunk;
		n -= chunk;
		if (s->len == STREAM_BUF_SIZE && stream_out_flush(s) < 0)
			return s->error;
	}
	return 0;
}

uint8_t *stream_out_reserve(struct stream_out *s, size_t n)
{
	if (s->error || n > STREAM_BUF_SIZE)
		return NULL;
	if (STREAM_BUF_SIZE - s->len < n && stream_out_flush(s) < 0)
		return NULL;
	return s->buf + s->len;
}

void stream_out_commit(struct stream_out *s, size_t n)
{
	s->len += n;
	if (s->len == STREAM_BUF_SIZE)
		stream_out_flush(s);
}

int stream_in_init(struct stream_in *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->buf = malloc(STREAM_BUF_SIZE);
	return s->buf ? 0 : -ENOMEM;
}

/* In memory: the whole input is the buffer, and reading past it is the end. */
void stream_in_init_mem(struct stream_in *s, const void *data, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->buf = (uint8_t *)data;
	s->len = len;
	s->in_memory = 1;
}

size_t stream_in_buffered(const struct stream_in *s) { return s->len - s->pos; }

void stream_in_free(struct stream_in *s)
{
	if (!s->in_memory)
		free(s->buf);
	s->buf = NULL;
}

static int stream_in_fill(struct stream_in *s)
{
	ssize_t r;

	if (s->in_memory)
		return s->error = -EPIPE;
	do {
		r = read(s->fd, s->buf, STREAM_BUF_SIZE);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return s->error = -errno;
	if (r == 0)
		return s->error = -EPIPE;
	s->pos = 0;
	s->len = (size_t)r;
	return 0;
}

int stream_in_read(struct stream_in *s, void *p, size_t n)
{
	uint8_t *dst = p;

	while (n) {
		size_t chunk;

		if (s->error)
			return s->error;
		if (s->pos == s->len && stream_in_fill(s) < 0)
			return s->error;
		chunk = s->len - s->pos < n ? s->len - s->pos : n;
		if (dst) {
			memcpy(dst, s->buf + s->pos, chunk);
			dst += chunk;
		}
		s->pos += chunk;
		s->bytes += chunk;
		n -= chunk;
	}
	return 0;
}

int stream_in_skip(struct stream_in *s, uint64_t n)
{
	while (n) {
		size_t chunk = n > STREAM_BUF_SIZE ? STREAM_BUF_SIZE : (size_t)n;
		int ret = stream_in_read(s, NULL, chunk);

		if (ret < 0)
			return ret;
		n -= chunk;
	}
	return 0;
}
