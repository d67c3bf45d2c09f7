#include "net/colo_link.h"

#include <errno.h>
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

void colo_link_writer_init(struct colo_link_writer *w, int fd)
{
	w->fd = fd;
	w->error = 0;
	pthread_mutex_init(&w->lock, NULL);
}

void colo_link_writer_destroy(struct colo_link_writer *w) { pthread_mutex_destroy(&w->lock); }

static int write_all_iov(int fd, struct iovec *iov, int n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int colo_link_send(struct colo_link_writer *w, uint32_t epoch, uint64_t seq, const uint8_t *frame,
		   size_t len)
{
	uint8_t hdr[COLO_LINK_HDR_LEN];
	uint32_t len32 = (uint32_t)len;
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)frame, len } };
	int ret;

	if (len < 12 || len > COLO_LINK_MAX_FRAME)
		return -EINVAL;
	memcpy(hdr, &len32, 4);
	memcpy(hdr + 4, &epoch, 4);
	memcpy(hdr + 8, &seq, 8);
	pthread_mutex_lock(&w->lock);
	ret = w->error ? w->error : write_all_iov(w->fd, iov, 2);
	if (ret < 0)
		w->error = ret;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int colo_link_send_magic(int fd)
{
	return send(fd, COLO_LINK_MAGIC, COLO_LINK_MAGIC_LEN, MSG_NOSIGNAL) == COLO_LINK_MAGIC_LEN
		       ? 0
		       : -EIO;
}

int colo_link_expect_magic(int fd)
{
	char magic[COLO_LINK_MAGIC_LEN];
	size_t got = 0;

	while (got < sizeof(magic)) {
		ssize_t r = recv(fd, magic + got, sizeof(magic) - got, 0);

		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		got += (size_t)r;
	}
	return memcmp(magic, COLO_LINK_MAGIC, sizeof(magic)) == 0 ? 0 : -EPROTO;
}
