#include "colo/net/link.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int colo_link_reader_init(struct colo_link_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->buf = malloc(COLO_LINK_MAX_FRAME);
	return r->buf ? 0 : -ENOMEM;
}

void colo_link_reader_reset(struct colo_link_reader *r)
{
	r->hdr_got = 0;
	r->got = 0;
}

void colo_link_reader_free(struct colo_link_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

static void decode_hdr(struct colo_link_reader *r)
{
	memcpy(&r->h.len, r->hdr, 4);
	memcpy(&r->h.epoch, r->hdr + 4, 4);
	memcpy(&r->h.seq, r->hdr + 8, 8);
}

int colo_link_feed(struct colo_link_reader *r, const uint8_t *data, size_t len, colo_link_frame_fn fn,
		   void *opaque)
{
	while (len) {
		size_t n;

		if (r->hdr_got < COLO_LINK_HDR_LEN) {
			n = COLO_LINK_HDR_LEN - r->hdr_got < len ? COLO_LINK_HDR_LEN - r->hdr_got : len;
			memcpy(r->hdr + r->hdr_got, data, n);
			r->hdr_got += n;
			data += n;
			len -= n;
			if (r->hdr_got < COLO_LINK_HDR_LEN)
				break;
			decode_hdr(r);
			if (r->h.len < 12 || r->h.len > COLO_LINK_MAX_FRAME)
				return -EPROTO;
			r->got = 0;
		}
		n = r->h.len - r->got < len ? r->h.len - r->got : len;
		memcpy(r->buf + r->got, data, n);
		r->got += n;
		data += n;
		len -= n;
		if (r->got == r->h.len) {
			fn(opaque, &r->h, r->buf);
			r->hdr_got = 0;
		}
	}
	return 0;
}

struct colo_link_chunk {
	struct colo_link_chunk *next;
	size_t len, off;
	uint8_t data[];
};

#define STALL_POLL_MS 20 /* how often a waiting writer thread looks at `stopping` */

/* Sends what the socket takes now; bytes sent, or -errno (-EAGAIN: nothing). */
static ssize_t send_now(int fd, struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	ssize_t r;

	do {
		r = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -(errno == EWOULDBLOCK ? EAGAIN : errno) : r;
}

/* Waits (without the lock) until the socket takes part of c: bytes sent or -errno. */
static ssize_t send_chunk(struct colo_link_writer *w, struct colo_link_chunk *c)
{
	unsigned waited = 0;

	for (;;) {
		struct iovec iov = { c->data + c->off, c->len - c->off };
		struct pollfd p = { .fd = w->fd, .events = POLLOUT };
		ssize_t r = send_now(w->fd, &iov, 1);

		if (r != -EAGAIN)
			return r;
		if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE))
			return -ECANCELED;
		if (waited >= w->stall_ms)
			return -ETIMEDOUT; /* the peer reads nothing: silent */
		if (poll(&p, 1, STALL_POLL_MS) == 0)
			waited += STALL_POLL_MS;
	}
}

static void chunk_pop(struct colo_link_writer *w)
{
	struct colo_link_chunk *c = w->head;

	w->head = c->next;
	if (!w->head)
		w->tail = NULL;
	w->stats.queued_bytes -= c->len;
	free(c);
}

static void *writer_thread(void *arg)
{
	struct colo_link_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stopping) {
		struct colo_link_chunk *c = w->head;
		ssize_t r;

		if (w->stats.error && !w->error_reported) {
			int err = w->stats.error;

			w->error_reported = true;
			pthread_mutex_unlock(&w->lock);
			w->failed(w->opaque, err);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (!c || w->stats.error) {
			pthread_cond_wait(&w->wake, &w->lock);
			continue;
		}
		/* Only this thread sends or frees queued chunks; senders only append. */
		pthread_mutex_unlock(&w->lock);
		r = send_chunk(w, c);
		pthread_mutex_lock(&w->lock);
		if (r == -ECANCELED)
			break;
		if (r < 0 && !w->stats.error)
			w->stats.error = (int)r;
		if (r > 0 && (c->off += (size_t)r) == c->len)
			chunk_pop(w);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int colo_link_writer_start(struct colo_link_writer *w, int fd, size_t limit, unsigned stall_ms,
			   void (*failed)(void *opaque, int err), void *opaque)
{
	int ret;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->stall_ms = stall_ms;
	w->failed = failed;
	w->opaque = opaque;
	w->stats.limit = limit;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	ret = -pthread_create(&w->thread, NULL, writer_thread, w);
	if (ret < 0) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
	}
	return ret;
}

void colo_link_writer_stop(struct colo_link_writer *w)
{
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&w->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	while (w->head)
		chunk_pop(w);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
}

/* Queues iov from byte `skip` on; a frame already begun on the wire is never refused. */
static int queue_frame(struct colo_link_writer *w, const struct iovec *iov, size_t total, size_t skip)
{
	struct colo_link_chunk *c;
	size_t at = 0;

	if (skip == 0 && w->stats.queued_bytes + total > w->stats.limit) {
		w->stats.dropped++;
		return -ENOBUFS;
	}
	c = malloc(sizeof(*c) + total - skip);
	if (!c)
		return skip ? (w->stats.error = -ENOMEM) : (w->stats.dropped++, -ENOBUFS);
	for (int i = 0; i < 2; i++) {
		size_t from = skip > iov[i].iov_len ? iov[i].iov_len : skip;

		memcpy(c->data + at, (uint8_t *)iov[i].iov_base + from, iov[i].iov_len - from);
		at += iov[i].iov_len - from;
		skip -= from;
	}
	*c = (struct colo_link_chunk){ .len = at };
	if (w->tail)
		w->tail->next = c;
	else
		w->head = c;
	w->tail = c;
	w->stats.queued_bytes += at;
	if (w->stats.queued_bytes > w->stats.queued_max)
		w->stats.queued_max = w->stats.queued_bytes;
	return 0;
}

int colo_link_send(struct colo_link_writer *w, uint32_t epoch, uint64_t seq, const uint8_t *frame,
		   size_t len)
{
	uint8_t hdr[COLO_LINK_HDR_LEN];
	uint32_t len32 = (uint32_t)len;
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)frame, len } };
	size_t total = sizeof(hdr) + len;
	ssize_t sent = 0;
	int ret;

	if (len < 12 || len > COLO_LINK_MAX_FRAME)
		return -EINVAL;
	memcpy(hdr, &len32, 4);
	memcpy(hdr + 4, &epoch, 4);
	memcpy(hdr + 8, &seq, 8);
	pthread_mutex_lock(&w->lock);
	if ((ret = w->stats.error)) {
		pthread_mutex_unlock(&w->lock);
		return ret;
	}
	if (!w->head) { /* nothing waits: straight into the socket if it takes it */
		struct iovec now[2] = { iov[0], iov[1] };

		sent = send_now(w->fd, now, 2);
		if (sent < 0 && sent != -EAGAIN)
			ret = w->stats.error = (int)sent;
		sent = sent < 0 ? 0 : sent;
	}
	if (ret == 0 && (size_t)sent < total)
		ret = queue_frame(w, iov, total, (size_t)sent);
	if (ret == 0)
		w->stats.frames++;
	pthread_cond_signal(&w->wake); /* queued data, or an error to report */
	pthread_mutex_unlock(&w->lock);
	return ret;
}

void colo_link_writer_get_stats(struct colo_link_writer *w, struct colo_link_writer_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->stats;
	pthread_mutex_unlock(&w->lock);
}
