/*
 * The replication's stages and operations, the same rules for both modes;
 * what a secondary does at each step is in replication_secondary.c.
 */
#include "block/replication.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/replication_internal.h"

static const char *const stage_names[] = {
	[REPL_STAGE_NONE] = "none",
	[REPL_STAGE_RUNNING] = "running",
	[REPL_STAGE_FAILOVER] = "failover",
	[REPL_STAGE_FAILOVER_FAILED] = "failover-failed",
	[REPL_STAGE_DONE] = "done",
};

static const char *mode_name(enum repl_mode m)
{
	return m == REPL_MODE_PRIMARY ? "primary" : "secondary";
}

const char *repl_stage_name(enum repl_stage s)
{
	return (unsigned)s < sizeof(stage_names) / sizeof(stage_names[0]) ? stage_names[s] : "?";
}

struct replication *repl_alloc(enum repl_mode mode, const struct blk_backend_ops *ops,
			       struct blk_backend *child)
{
	struct replication *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->be.ops = ops;
	r->mode = mode;
	r->stage = REPL_STAGE_NONE;
	r->child = child;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->err_lock, NULL);
	return r;
}

void repl_free(struct replication *r)
{
	if (!r)
		return;
	/* Stopping a running replication without failover drops the overlays:
	 * closing them below does exactly that. */
	blk_backend_close(r->child);
	overlay_close(r->active);
	overlay_close(r->hidden);
	free(r->bounce);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->err_lock);
	free(r);
}

struct blk_backend *repl_backend(struct replication *r) { return &r->be; }

static void vformat(char *buf, int err, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, REPL_MSG_LEN, fmt, ap);

	if (n >= 0 && n < REPL_MSG_LEN)
		snprintf(buf + n, REPL_MSG_LEN - (size_t)n, ": %s", strerror(-err));
}

int repl_fail(struct replication *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vformat(r->why, err, fmt, ap);
	va_end(ap);
	return err;
}

int repl_record(struct replication *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vformat(r->why, err, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&r->err_lock);
	if (r->err == 0) {
		r->err = err;
		memcpy(r->err_msg, r->why, REPL_MSG_LEN);
	}
	pthread_mutex_unlock(&r->err_lock);
	return err;
}

/* A promoted secondary ignores the operations of the pair it has left. */
static bool after_failover(const struct replication *r)
{
	return r->stage == REPL_STAGE_FAILOVER || r->stage == REPL_STAGE_DONE;
}

static int start_locked(struct replication *r, enum repl_mode mode)
{
	int ret = 0;

	if (after_failover(r))
		return 0;
	if (mode != r->mode)
		return repl_fail(r, -EINVAL, "cannot start a %s replication as %s", mode_name(r->mode),
				 mode_name(mode));
	if (r->stage != REPL_STAGE_NONE)
		return repl_fail(r, -EINVAL, "cannot start: the replication is %s",
				 repl_stage_name(r->stage));
	if (r->mode == REPL_MODE_SECONDARY)
		ret = repl_secondary_start(r);
	if (ret == 0) {
		pthread_mutex_lock(&r->err_lock);
		r->err = 0;
		r->err_msg[0] = '\0';
		r->started = true;
		pthread_mutex_unlock(&r->err_lock);
		r->stage = REPL_STAGE_RUNNING;
	}
	return ret;
}

int repl_start(struct replication *r, enum repl_mode mode)
{
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = start_locked(r, mode);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int repl_do_checkpoint(struct replication *r)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (after_failover(r))
		ret = 0;
	else if (r->stage != REPL_STAGE_RUNNING)
		ret = repl_fail(r, -EINVAL, "no checkpoint: the replication is %s",
				repl_stage_name(r->stage));
	else if (r->mode == REPL_MODE_SECONDARY)
		ret = repl_secondary_checkpoint(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int stop_locked(struct replication *r, bool failover)
{
	bool retry = failover && r->stage == REPL_STAGE_FAILOVER_FAILED;

	if (after_failover(r))
		return 0;
	if (r->stage != REPL_STAGE_RUNNING && !retry)
		return repl_fail(r, -EINVAL, "cannot stop: the replication is %s",
				 repl_stage_name(r->stage));
	if (r->mode == REPL_MODE_SECONDARY)
		return repl_secondary_stop(r, failover);
	r->stage = REPL_STAGE_DONE;
	return 0;
}

int repl_stop(struct replication *r, bool failover)
{
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = stop_locked(r, failover);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static void copy_msg(char *buf, size_t len, const char *msg)
{
	if (len)
		snprintf(buf, len, "%s", msg);
}

int repl_get_error(struct replication *r, char *buf, size_t len)
{
	int ret;

	pthread_mutex_lock(&r->err_lock);
	if (!r->started) {
		ret = -ENOTCONN;
		copy_msg(buf, len, "block replication is not running");
	} else {
		ret = r->err;
		copy_msg(buf, len, r->err_msg);
	}
	pthread_mutex_unlock(&r->err_lock);
	return ret;
}

void repl_last_failure(struct replication *r, char *buf, size_t len)
{
	pthread_mutex_lock(&r->lock);
	copy_msg(buf, len, r->why);
	pthread_mutex_unlock(&r->lock);
}

enum repl_stage repl_stage(struct replication *r)
{
	enum repl_stage s;

	pthread_mutex_lock(&r->lock);
	s = r->stage;
	pthread_mutex_unlock(&r->lock);
	return s;
}
