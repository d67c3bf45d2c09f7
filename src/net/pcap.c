/* Classic libpcap file writer (see pcap.h). */
#include "net/pcap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define PCAP_MAGIC 0xa1b2c3d4u
#define LINKTYPE_ETHERNET 1

struct pcap_writer {
	int fd;
	off_t size; /* bytes of whole records written */
};

static void put16le(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32le(uint8_t *p, uint32_t v)
{
	put16le(p, (uint16_t)v);
	put16le(p + 2, (uint16_t)(v >> 16));
}

/* Writes everything or fails; on failure the file is cut back to its last
 * whole record, so a reader never meets a torn one. */
static int write_record(struct pcap_writer *w, struct iovec *iov, int n)
{
	size_t total = 0, done = 0;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	while (done < total) {
		ssize_t r = writev(w->fd, iov, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int err = r < 0 ? errno : ENOSPC;

			if (ftruncate(w->fd, w->size) == 0)
				lseek(w->fd, w->size, SEEK_SET);
			return -err;
		}
		done += (size_t)r;
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	w->size += (off_t)total;
	return 0;
}

struct pcap_writer *pcap_open_fd(int fd, int *err)
{
	struct pcap_writer *w = malloc(sizeof(*w));
	uint8_t hdr[24];
	struct iovec iov = { hdr, sizeof(hdr) };
	int r;

	if (!w) {
		*err = -ENOMEM;
		close(fd);
		return NULL;
	}
	w->fd = fd;
	w->size = 0;
	put32le(hdr, PCAP_MAGIC);
	put16le(hdr + 4, 2); /* version 2.4 */
	put16le(hdr + 6, 4);
	put32le(hdr + 8, 0); /* thiszone: UTC */
	put32le(hdr + 12, 0); /* sigfigs */
	put32le(hdr + 16, PCAP_SNAPLEN);
	put32le(hdr + 20, LINKTYPE_ETHERNET);
	r = write_record(w, &iov, 1);
	if (r < 0) {
		*err = r;
		close(fd);
		free(w);
		return NULL;
	}
	return w;
}

struct pcap_writer *pcap_open(const char *path, int *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	return pcap_open_fd(fd, err);
}

int pcap_write(struct pcap_writer *w, const uint8_t *frame, size_t len, uint64_t ts_us)
{
	uint8_t rec[16];
	uint32_t caplen = len > PCAP_SNAPLEN ? PCAP_SNAPLEN : (uint32_t)len;
	struct iovec iov[2] = { { rec, sizeof(rec) }, { (void *)frame, caplen } };

	put32le(rec, (uint32_t)(ts_us / 1000000));
	put32le(rec + 4, (uint32_t)(ts_us % 1000000));
	put32le(rec + 8, caplen);
	put32le(rec + 12, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
	return write_record(w, iov, caplen ? 2 : 1);
}

int pcap_close(struct pcap_writer *w)
{
	int r = 0;

	if (!w)
		return 0;
	if (close(w->fd) < 0)
		r = -errno;
	free(w);
	return r;
}
