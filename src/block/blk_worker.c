#include "block/blk_worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static void list_init(struct blk_job_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void list_push(struct blk_job_list *l, struct blk_job *job)
{
	job->next = NULL;
	*l->tail = job;
	l->tail = &job->next;
}

static struct blk_job *list_pop(struct blk_job_list *l)
{
	struct blk_job *job = l->head;

	l->head = job->next;
	if (!l->head)
		l->tail = &l->head;
	job->next = NULL;
	return job;
}

/* The whole list, oldest first; l is empty afterwards. */
static struct blk_job *list_take(struct blk_job_list *l)
{
	struct blk_job *head = l->head;

	list_init(l);
	return head;
}

/* Written under w->lock, read under it too: done_fd is readable exactly
 * while the done list is not empty. */
static void done_fd_set(struct blk_worker *w)
{
	uint64_t one = 1;

	if (write(w->done_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: readable anyway */
	}
}

static void done_fd_clear(struct blk_worker *w)
{
	uint64_t v;

	if (read(w->done_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: it was clear */
	}
}

static void *worker_main(void *arg)
{
	struct blk_worker *w = arg;
	struct blk_job *job;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->queued.head && !w->stopping)
			pthread_cond_wait(&w->work, &w->lock);
		if (w->stopping)
			break;
		job = list_pop(&w->queued);
		w->running = job;
		pthread_mutex_unlock(&w->lock);
		job->run(job);
		pthread_mutex_lock(&w->lock);
		w->running = NULL;
		list_push(&w->done, job);
		done_fd_set(w);
		pthread_cond_broadcast(&w->idle);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* The sleep measures monotonic time: a clock step must not stretch it. */
static int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t attr;
	int ret;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	ret = pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
	return -ret;
}

/* With every signal blocked: process signals belong to the main thread's
 * signalfd and the vCPU's kick, never to the worker. */
static int start_thread(struct blk_worker *w)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -ret;
}

int blk_worker_start(struct blk_worker *w, const char *name)
{
	char tname[16];
	int ret;

	memset(w, 0, sizeof(*w));
	w->done_fd = -1;
	list_init(&w->queued);
	list_init(&w->done);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->idle, NULL);
	ret = cond_init_monotonic(&w->work);
	if (ret < 0)
		return ret;
	w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->done_fd < 0)
		return -errno;
	ret = start_thread(w);
	if (ret < 0)
		return ret;
	w->started = true;
	snprintf(tname, sizeof(tname), "%s", name);
	pthread_setname_np(w->thread, tname);
	return 0;
}

void blk_worker_submit(struct blk_worker *w, struct blk_job *job)
{
	pthread_mutex_lock(&w->lock);
	list_push(&w->queued, job);
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->lock);
}

void blk_worker_drain(struct blk_worker *w)
{
	pthread_mutex_lock(&w->lock);
	while ((w->queued.head || w->running) && !w->stopping)
		pthread_cond_wait(&w->idle, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

struct blk_job *blk_worker_cancel(struct blk_worker *w)
{
	struct blk_job *head;

	pthread_mutex_lock(&w->lock);
	head = list_take(&w->queued);
	while (w->running)
		pthread_cond_wait(&w->idle, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return head;
}

struct blk_job *blk_worker_take_done(struct blk_worker *w)
{
	struct blk_job *head;

	pthread_mutex_lock(&w->lock);
	done_fd_clear(w);
	head = list_take(&w->done);
	pthread_mutex_unlock(&w->lock);
	return head;
}

void blk_worker_sleep(struct blk_worker *w, uint32_t ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->stopping && pthread_cond_timedwait(&w->work, &w->lock, &until) != ETIMEDOUT) {
		/* woken by a submit: keep sleeping */
	}
	pthread_mutex_unlock(&w->lock);
}

void blk_worker_stop(struct blk_worker *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stopping = true;
		pthread_cond_broadcast(&w->work);
		pthread_cond_broadcast(&w->idle);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	if (w->done_fd >= 0)
		close(w->done_fd);
	w->done_fd = -1;
}
