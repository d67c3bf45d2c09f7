/*
 * An I/O worker: one thread that runs jobs one at a time, in the order they
 * were submitted, so that whoever submits them (a vCPU holding vm->io_lock)
 * never waits for the I/O itself.
 *
 * A finished job goes on a done list and done_fd (an eventfd) becomes
 * readable; the owner collects the list with blk_worker_take_done, from its
 * event loop or right after blk_worker_drain. The worker takes no lock but
 * its own, so a caller holding any other lock may wait for it (drain,
 * cancel, stop) without risk of deadlock.
 *
 * Jobs belong to the caller; the worker only links them, never frees them.
 */
#ifndef LOCKSTEP_BLOCK_BLK_WORKER_H
#define LOCKSTEP_BLOCK_BLK_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct blk_job {
	struct blk_job *next; /* the worker's link while queued or done */
	/* Runs on the worker thread with no lock held; may block. */
	void (*run)(struct blk_job *job);
};

struct blk_job_list {
	struct blk_job *head;
	struct blk_job **tail;
};

struct blk_worker {
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t work;  /* to the worker: a job was queued, or stop */
	pthread_cond_t idle;  /* from the worker: a job finished */
	struct blk_job_list queued;
	struct blk_job_list done;
	struct blk_job *running;
	bool stopping;
	bool started;
	pthread_t thread;
	int done_fd; /* eventfd, readable while the done list is not empty */
};

/* Starts the thread (named `name`, cut to 15 characters). -errno on failure,
 * after which only blk_worker_stop may be called. */
int blk_worker_start(struct blk_worker *w, const char *name);
/* Queues job behind the others. */
void blk_worker_submit(struct blk_worker *w, struct blk_job *job);
/* Waits until every job submitted so far has run (they are then on the done
 * list). Jobs submitted meanwhile by other threads are waited for too. */
void blk_worker_drain(struct blk_worker *w);
/* Takes back the jobs not started yet (returned, oldest first: they never
 * run) and waits until the one under way, if any, has finished. */
struct blk_job *blk_worker_cancel(struct blk_worker *w);
/* The finished jobs, oldest first (NULL if none); done_fd is then clear. */
struct blk_job *blk_worker_take_done(struct blk_worker *w);
/* On the worker thread (inside a job): waits ms milliseconds, cut short by
 * blk_worker_stop. For test delays. */
void blk_worker_sleep(struct blk_worker *w, uint32_t ms);
/* Lets the job under way finish (a sleep in it is cut short), drops queued
 * ones and ends the thread. The jobs stay their owner's. */
void blk_worker_stop(struct blk_worker *w);

#endif
