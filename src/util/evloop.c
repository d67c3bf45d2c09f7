#include "util/evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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

struct evloop_call {
	void (*fn)(void *arg);
	void *arg;
	struct evloop_call *next;
};

struct evloop {
	pthread_mutex_t lock; /* the watch table: devices re-arm their fds from the vCPU thread */
	int epfd;
	int wake_fd; /* eventfd: stop requested or calls posted */
	int stopping;
	struct evloop_call *calls, **calls_tail; /* posted, not yet run; under lock */
	struct evloop_watch *dispatching; /* whose callback runs now (under lock) */
	pthread_t loop_thread;            /* valid while dispatching */
	pthread_cond_t dispatched;        /* signalled when a callback returns */
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
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->dispatched, NULL);
	loop->calls_tail = &loop->calls;
	for (int i = 0; i < EVLOOP_MAX_WATCHES; i++)
		loop->watches[i].fd = -1;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.ptr = NULL;
	if (loop->epfd < 0 || loop->wake_fd < 0 ||
	    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0) {
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
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	while (loop->calls) {
		struct evloop_call *c = loop->calls;

		loop->calls = c->next;
		free(c);
	}
	pthread_cond_destroy(&loop->dispatched);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
}

static struct evloop_watch *evloop_find(struct evloop *loop, int fd)
{
	for (int i = 0; i < EVLOOP_MAX_WATCHES; i++)
		if (loop->watches[i].fd == fd)
			return &loop->watches[i];
	return NULL;
}

static int evloop_add_locked(struct evloop *loop, int fd, uint32_t events, evloop_cb cb,
			     void *opaque)
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

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
	int ret;

	pthread_mutex_lock(&loop->lock);
	ret = evloop_add_locked(loop, fd, events, cb, opaque);
	pthread_mutex_unlock(&loop->lock);
	return ret;
}

int evloop_modify(struct evloop *loop, int fd, uint32_t events)
{
	struct evloop_watch *w;
	struct epoll_event ev;
	int ret = -ENOENT;

	pthread_mutex_lock(&loop->lock);
	w = evloop_find(loop, fd);
	if (w) {
		ev.events = events;
		ev.data.ptr = w;
		ret = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&loop->lock);
	return ret;
}

static void evloop_del_wait(struct evloop *loop, int fd, bool wait)
{
	struct evloop_watch *w;

	pthread_mutex_lock(&loop->lock);
	w = evloop_find(loop, fd);
	if (w) {
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		w->fd = -1;
		w->cb = NULL;
		while (wait && loop->dispatching == w && !pthread_equal(loop->loop_thread, pthread_self()))
			pthread_cond_wait(&loop->dispatched, &loop->lock);
	}
	pthread_mutex_unlock(&loop->lock);
}

void evloop_del(struct evloop *loop, int fd) { evloop_del_wait(loop, fd, false); }

void evloop_del_sync(struct evloop *loop, int fd) { evloop_del_wait(loop, fd, true); }

/* The callback runs unlocked: it may add, modify or delete watches itself. */
static void evloop_dispatch(struct evloop *loop, struct evloop_watch *w, uint32_t events)
{
	evloop_cb cb;
	void *opaque;

	pthread_mutex_lock(&loop->lock);
	cb = w->fd >= 0 ? w->cb : NULL;
	opaque = w->opaque;
	loop->dispatching = cb ? w : NULL;
	loop->loop_thread = pthread_self();
	pthread_mutex_unlock(&loop->lock);
	if (!cb)
		return;
	cb(opaque, events);
	pthread_mutex_lock(&loop->lock);
	loop->dispatching = NULL;
	pthread_cond_broadcast(&loop->dispatched);
	pthread_mutex_unlock(&loop->lock);
}

static void evloop_run_posted(struct evloop *loop)
{
	struct evloop_call *c;

	pthread_mutex_lock(&loop->lock);
	c = loop->calls;
	loop->calls = NULL;
	loop->calls_tail = &loop->calls;
	pthread_mutex_unlock(&loop->lock);
	while (c) {
		struct evloop_call *next = c->next;

		c->fn(c->arg);
		free(c);
		c = next;
	}
}

static void evloop_wake(struct evloop *loop)
{
	uint64_t one = 1;

	if (write(loop->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is full, so a wake-up is pending anyway */
	}
}

int evloop_post(struct evloop *loop, void (*fn)(void *arg), void *arg)
{
	struct evloop_call *c = malloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	*c = (struct evloop_call){ fn, arg, NULL };
	pthread_mutex_lock(&loop->lock);
	*loop->calls_tail = c;
	loop->calls_tail = &c->next;
	pthread_mutex_unlock(&loop->lock);
	evloop_wake(loop);
	return 0;
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

				if (read(loop->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					return -errno;
				evloop_run_posted(loop);
				continue;
			}
			evloop_dispatch(loop, w, evs[i].events);
		}
	}
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	__atomic_store_n(&loop->stopping, 1, __ATOMIC_RELEASE);
	evloop_wake(loop);
}
