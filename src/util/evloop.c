#include "util/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVLOOP_MAX_WATCHES 256

struct evloop_watch {
	int fd;
	evloop_cb cb;
	void *opaque;
};

struct evloop {
	int epfd;
	int stop_fd;
	int stopping;
	/* Watches live in a fixed table so a pointer handed to epoll stays valid;
	 * a deleted watch has fd == -1 and is skipped if an event for it is pending. */
	struct evloop_watch watches[EVLOOP_MAX_WATCHES];
};

struct evloop *evloop_create(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!loop)
		return NULL;
	for (int i = 0; i < EVLOOP_MAX_WATCHES; i++)
		loop->watches[i].fd = -1;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.ptr = NULL;
	if (loop->epfd < 0 || loop->stop_fd < 0 ||
	    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stop_fd, &ev) < 0) {
		evloop_destroy(loop);
		return NULL;
	}
	return loop;
}

void evloop_destroy(struct evloop *loop)
{
	if (!loop)
		return;
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->stop_fd >= 0)
		close(loop->stop_fd);
	free(loop);
}

static struct evloop_watch *evloop_find(struct evloop *loop, int fd)
{
	for (int i = 0; i < EVLOOP_MAX_WATCHES; i++)
		if (loop->watches[i].fd == fd)
			return &loop->watches[i];
	return NULL;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
	struct evloop_watch *w;
	struct epoll_event ev;

	if (fd < 0 || evloop_find(loop, fd))
		return -EINVAL;
	w = evloop_find(loop, -1);
	if (!w)
		return -ENOSPC;
	ev.events = events;
	ev.data.ptr = w;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	w->fd = fd;
	w->cb = cb;
	w->opaque = opaque;
	return 0;
}

int evloop_modify(struct evloop *loop, int fd, uint32_t events)
{
	struct evloop_watch *w = evloop_find(loop, fd);
	struct epoll_event ev;

	if (!w)
		return -ENOENT;
	ev.events = events;
	ev.data.ptr = w;
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void evloop_del(struct evloop *loop, int fd)
{
	struct evloop_watch *w = evloop_find(loop, fd);

	if (!w)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->fd = -1;
	w->cb = NULL;
}

int evloop_run(struct evloop *loop)
{
	struct epoll_event evs[32];

	while (!__atomic_load_n(&loop->stopping, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(loop->epfd, evs, 32, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct evloop_watch *w = evs[i].data.ptr;

			if (!w) {
				uint64_t v;

				if (read(loop->stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					return -errno;
				continue;
			}
			if (w->fd >= 0 && w->cb)
				w->cb(w->opaque, evs[i].events);
		}
	}
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	uint64_t one = 1;

	__atomic_store_n(&loop->stopping, 1, __ATOMIC_RELEASE);
	if (write(loop->stop_fd, &one, sizeof(one)) < 0) {
		/* the counter is full, so a wake-up is pending anyway */
	}
}
