/*
 * Event loop: one epoll set run by the main thread. File descriptors (QMP
 * sockets, TAP devices, timers, the vCPU's exit notification) register a
 * callback; callbacks run on the loop thread, one at a time.
 */
#ifndef LOCKSTEP_UTIL_EVLOOP_H
#define LOCKSTEP_UTIL_EVLOOP_H

#include <stdint.h>

struct evloop;

/* events: EPOLLIN / EPOLLOUT bits as returned by epoll. */
typedef void (*evloop_cb)(void *opaque, uint32_t events);

struct evloop *evloop_create(void);
void evloop_destroy(struct evloop *loop);
/* Watch fd for events (EPOLLIN/EPOLLOUT); one registration per fd. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb, void *opaque);
int evloop_modify(struct evloop *loop, int fd, uint32_t events);
/* Safe to call from inside a callback, including for the fd being dispatched. */
void evloop_del(struct evloop *loop, int fd);
/* The same, and from another thread it returns only once the fd's callback is
 * not running (it waits for one under way), so the caller may close the fd.
 * The caller must hold nothing that callback waits for. */
void evloop_del_sync(struct evloop *loop, int fd);
/* Runs until evloop_stop(); returns 0, or -errno if epoll failed. */
int evloop_run(struct evloop *loop);
/* Thread-safe: may be called from any thread. */
void evloop_stop(struct evloop *loop);
/*
 * Runs fn(arg) on the loop thread, soon, in posting order. Thread-safe: how
 * other threads (vCPU, migration) hand work to the single-threaded monitor.
 * -ENOMEM if the call could not be queued.
 */
int evloop_post(struct evloop *loop, void (*fn)(void *arg), void *arg);

#endif
