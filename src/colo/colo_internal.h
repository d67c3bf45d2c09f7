/* COLO's internals, shared by frame.c, primary.c and secondary.c (and the engine's unit test). */
#ifndef LOCKSTEP_COLO_COLO_INTERNAL_H
#define LOCKSTEP_COLO_COLO_INTERNAL_H

#include <pthread.h>

#include "colo/colo.h"
#include "state/stream.h"
#include "state/vmstate.h"
#include "util/sbuf.h"

#define COLO_HEARTBEAT_MS 200
/* Dirty pages from which a checkpoint first sends them while the VM runs, and
 * stops it only for what was dirtied meanwhile (DESIGN.md §5). */
#define COLO_PRECOPY_MIN_PAGES 256

/* Wire values (u32, little-endian); 0-6 are QEMU's COLOMessage numbers. */
enum colo_msg {
	COLO_MSG_CHECKPOINT_READY = 0,
	COLO_MSG_CHECKPOINT_REQUEST = 1,
	COLO_MSG_CHECKPOINT_REPLY = 2,
	COLO_MSG_VMSTATE_SEND = 3,
	COLO_MSG_VMSTATE_SIZE = 4,
	COLO_MSG_VMSTATE_RECEIVED = 5,
	COLO_MSG_VMSTATE_LOADED = 6,
	COLO_MSG_HEARTBEAT = 7, /* ours: "still here", sent by either side while idle */
	COLO_MSG_RAM_BACKGROUND = 8, /* ours: P -> S, RAM while both run, before a checkpoint */
	COLO_MSG_GUEST_ENDED = 9, /* ours: P -> S, the guest ended; value: colo_guest_end_encode */
	COLO_MSG_COUNT,
};

/* What colo_create allocates and colo_free frees. */
struct colo {
	struct vm *vm;
	pthread_mutex_t lock;
	enum colo_mode mode;        /* while COLO runs */
	enum colo_mode last_mode;   /* mode before the last exit */
	enum colo_exit_reason reason;
	int failover;               /* enum colo_failover, changed by compare-and-swap */
	bool running;
	char error[256];
	struct colo_stats stats;

	int fd;
	struct stream_in in;
	struct stream_out out;
	uint64_t last_heard_ns, last_sent_ns;
	uint32_t peer_timeout_ms;   /* a peer silent this long is gone */
	pthread_t thread;
	bool thread_started;

	/* Primary */
	int trigger_fd;             /* eventfd: a checkpoint was requested */
	unsigned pending_reasons;   /* bit per enum colo_reason */
	uint32_t delay_ms;
	uint64_t next_periodic_ns;
	uint64_t *bitmap;
	bool check_ram;
	bool check_disk;
	bool resume_vm;

	/* Secondary */
	uint8_t *cache;             /* RAM as of the last checkpoint, plus what arrives */
	int cache_fd;               /* the memfd behind it */
	uint64_t *cache_dirty;      /* pages received since the last checkpoint */
	bool applying;              /* a checkpoint is being applied: failover waits */
	bool leaving;               /* the COLO thread left its loop: no new failover request */
	struct sbuf device_blob;
	/* After losing the primary: the VM is stopped until a decision. */
	bool decision_open;         /* left COLO on an error: a takeover decision is taken */
	bool waiting;               /* stopped, waiting for that decision */
	bool decided;               /* take over (x-colo-lost-heartbeat while decision_open) */
	bool abandon;               /* the process ends: leave without taking over */
	bool exit_announced;        /* COLO_EXIT already sent (when the wait began) */
	pthread_cond_t decision;

	struct colo_test_hooks test; /* x-colo-test */

	char peer_uri[300]; /* primary: where the secondary listens */
	int listen_fd;      /* secondary: the migration listener, kept for the links */
	uint64_t checkpoint_mark; /* secondary: the mark that came with vmstate-send */
	char unusable[256]; /* secondary: why its state can no longer be taken over */
	bool guest_ended;   /* the guest ended (primary: announced; secondary: told): COLO ends, reason none */

	struct colo_participant participants[COLO_MAX_PARTICIPANTS];
	int n_participants;
	colo_exit_fn on_exit;
	void *exit_opaque;
};

void colo_init(struct colo *c, struct vm *vm);
void colo_destroy(struct colo *c);

int colo_send_msg(struct colo *c, enum colo_msg msg);
int colo_send_msg_value(struct colo *c, enum colo_msg msg, uint64_t value);
/* Next non-heartbeat message, which must be `expect`; value read for VMSTATE_SIZE. */
int colo_expect_msg(struct colo *c, enum colo_msg expect, uint64_t *value);
/* Sends a heartbeat if one is due; -ETIMEDOUT if the peer has been silent too long. */
int colo_heartbeat(struct colo *c);
/* The same after reading and dropping the heartbeats that arrived (primary:
 * while it is idle, the secondary sends nothing else). */
int colo_keepalive(struct colo *c);
int colo_peer_silent(struct colo *c);
/* During long local work (cache fill, apply): a heartbeat if one is due, so the
 * waiting peer does not take us for dead. Slow is not dead. */
int colo_tell_peer_alive(struct colo *c);
/* Sleeps ms in heartbeat-sized slices, telling the peer we are alive (test hooks). */
int colo_sleep_alive(struct colo *c, uint32_t ms);
void colo_fail(struct colo *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Secondary, its primary lost: the one place that decides a takeover. */
bool colo_await_takeover(struct colo *c);
/* Every participant's hook for `step`, in order; the first error ends the
 * step (colo_fail names the participant). `mark` is for COLO_STEP_APPLIED. */
int colo_run_participants(struct colo *c, enum colo_step step, uint64_t mark);
/* Primary, VM stopped: a DIGEST section for each participant with a digest hook. */
int colo_write_participant_digests(struct colo *c, struct stream_out *out);
/* Secondary, the checkpoint applied: each digest that came with it, checked by
 * the participant of that name; one that is missing or differs fails. */
int colo_verify_participant_digests(struct colo *c, const struct vmstate_digest *d, int n);
/* A guest's end on the wire: exit status and SHUTDOWN reason; -EINVAL for an unknown reason. */
int colo_guest_end_encode(int exit_status, const char *reason, uint64_t *value);
/* The VM is down with a guest's reason (its own shutdown, reset, panic); *value to announce. */
bool colo_guest_has_ended(struct colo *c, uint64_t *value);
/* The reverse of colo_guest_end_encode; NULL reason for a value no primary sends. */
const char *colo_guest_end_decode(uint64_t value, int *exit_status);
/* The mark of the participant that has one (0 if none). */
uint64_t colo_participant_mark(struct colo *c);
void colo_record_pause(struct colo *c, uint64_t pause_us);
/* vm_runs_alone: the VM runs on without COLO (the failover hooks run); false
 * when a waiting secondary is abandoned without a decision. */
void colo_finish(struct colo *c, bool vm_runs_alone);
void colo_leave_loop(struct colo *c);
bool colo_failover_cas(struct colo *c, int from, int to);
void *colo_primary_thread(void *arg);
void *colo_secondary_thread(void *arg);

#endif
