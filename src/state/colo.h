/*
 * COLO: a primary and a secondary VM kept in step by checkpoints.
 *
 * Entry: a live migration with the x-colo capability. When its stop-and-copy
 * is loaded, both sides stay connected on the migration socket and run their
 * VMs; the primary takes checkpoints (periodically every x-checkpoint-delay
 * ms, and on request: QMP, later the network comparator) with QEMU's message
 * sequence:
 *
 *   P -> S  checkpoint-request      S stops its VM
 *   S -> P  checkpoint-reply        P stops its VM
 *   P -> S  vmstate-send, RAM       dirty pages into the secondary's RAM cache
 *   P -> S  vmstate-size, machine   vCPU, platform and device state
 *   S -> P  vmstate-received        output commit point (held packets released)
 *   S -> P  vmstate-loaded          S applied cache + state and runs; P runs
 *
 * The secondary stages pages in a RAM cache and applies them only once the
 * whole checkpoint is in, overwriting every page dirtied by either side since
 * the last checkpoint, so it can take over at any instant from a consistent
 * state. Both sides send a heartbeat while idle; a peer silent for
 * peer_timeout_ms (--peer-timeout) or a broken socket ends COLO on the survivor with
 * reason "error". Never two serving copies: a primary that loses its secondary
 * runs on alone (its output is what clients saw); a secondary that loses its
 * primary stops its VM and waits for a decision (x-colo-lost-heartbeat), since
 * a primary that only went silent (a partition, a stall) may still serve.
 */
#ifndef LOCKSTEP_STATE_COLO_H
#define LOCKSTEP_STATE_COLO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/stream.h"
#include "util/sbuf.h"

struct colo;
struct vm;
struct vmstate_loader;

#define COLO_DEFAULT_DELAY_MS 20000
#define COLO_HEARTBEAT_MS 200
#define COLO_DEFAULT_PEER_TIMEOUT_MS 3000 /* --peer-timeout */
#define COLO_PAUSE_HISTORY 1024
/* Dirty pages from which a checkpoint first sends them while the VM runs, and
 * stops it only for what was dirtied meanwhile (DESIGN.md §5). */
#define COLO_PRECOPY_MIN_PAGES 256

enum colo_mode { COLO_MODE_NONE, COLO_MODE_PRIMARY, COLO_MODE_SECONDARY };
enum colo_exit_reason { COLO_EXIT_NONE, COLO_EXIT_REQUEST, COLO_EXIT_ERROR, COLO_EXIT_PROCESSING };
enum colo_failover {
	COLO_FAILOVER_NONE,
	COLO_FAILOVER_REQUIRE,
	COLO_FAILOVER_ACTIVE,
	COLO_FAILOVER_COMPLETED,
	COLO_FAILOVER_RELAUNCH,
};

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
	COLO_MSG_COUNT,
};

enum colo_reason { COLO_REASON_PERIODIC, COLO_REASON_REQUEST, COLO_REASON_COMPARATOR, COLO_REASON_COUNT };

/*
 * A checkpoint participant: a layer whose state moves with the VM's (the
 * network proxy now, disk replication next). Every hook is optional and runs
 * on the COLO thread; one that returns -errno ends what it is part of, and
 * COLO ends by the usual rules (the primary serves on; the secondary keeps its
 * last checkpoint and waits for a decision).
 */
struct colo_participant {
	const char *name;
	void *opaque;
	/* Both sides, COLO begins (connect links). Error: COLO does not start. */
	int (*start)(void *opaque, struct colo *c);
	/* Primary: its VM stopped, before any state is sent. Secondary: the
	 * checkpoint validated, before vmstate-received. Error: the checkpoint is
	 * aborted, and nothing of it is applied. */
	int (*prepare)(void *opaque);
	/* Primary, at vmstate-received: the output commit point. */
	int (*committed)(void *opaque);
	/* Secondary, the checkpoint's state in place; `mark` is what the
	 * primary's mark hook said at vmstate-send. Prepare made sure this can
	 * succeed: if it fails anyway, this secondary can no longer take over. */
	int (*applied)(void *opaque, uint64_t mark);
	/* Primary, VM stopped: a position carried to the secondary (one participant). */
	uint64_t (*mark)(void *opaque);
	/* Either side: COLO has ended and the VM runs alone. */
	void (*failover)(void *opaque);
};
#define COLO_MAX_PARTICIPANTS 4

enum colo_step { COLO_STEP_START, COLO_STEP_PREPARE, COLO_STEP_COMMITTED, COLO_STEP_APPLIED };
extern const char *const colo_step_names[]; /* "start", "prepare", "committed", "applied" */

struct colo_stats {
	uint64_t checkpoints;
	uint64_t by_reason[COLO_REASON_COUNT];
	uint64_t pages, bytes;             /* sent (primary) or received (secondary) */
	uint64_t precopy_pages;            /* of those, sent while the VM ran */
	uint64_t pause_last_us, pause_max_us, pause_total_us;
	uint64_t pauses[COLO_PAUSE_HISTORY]; /* last pauses, for percentiles */
	/* Phases of the last checkpoint, microseconds. */
	uint64_t phase_precopy_us; /* RAM sent while the VM still ran (0: none) */
	uint64_t phase_request_us; /* request sent .. reply received */
	uint64_t phase_stop_us;    /* stopping the primary's vCPU and devices */
	uint64_t phase_ram_us;     /* dirty log + RAM pages sent */
	uint64_t phase_device_us;  /* machine state serialised and sent */
	uint64_t phase_received_us; /* .. vmstate-received: the secondary read it all */
	uint64_t phase_apply_us;   /* .. vmstate-loaded: the secondary applied and runs */
	uint64_t ram_checks;               /* checkpoints whose RAM hash was compared and equal */
	uint64_t last_ram_hash;
};

/* Where the primary's test hook can stall a checkpoint (x-colo-test stall-in). */
enum colo_test_phase {
	COLO_TEST_PHASE_NONE,
	COLO_TEST_PHASE_PRECOPY,  /* ram-background sent, its pages not */
	COLO_TEST_PHASE_REQUEST,  /* checkpoint-request sent, reply not read */
	COLO_TEST_PHASE_RAM,      /* vmstate-send sent, its pages not */
	COLO_TEST_PHASE_DEVICE,   /* RAM sent, device state not */
	COLO_TEST_PHASE_RECEIVED, /* vmstate-received read (output released), vmstate-loaded not */
	COLO_TEST_PHASE_COUNT,
};

extern const char *const colo_test_phase_names[COLO_TEST_PHASE_COUNT];

/* waiting: a secondary that stopped its VM and waits for the takeover decision. */
typedef void (*colo_exit_fn)(void *opaque, enum colo_mode mode, enum colo_exit_reason reason,
			     bool waiting);

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
	bool resume_vm;             /* the VM ran before the stop-and-copy: run it again */

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

	/* Test hooks */
	int test_stall_phase;       /* enum colo_test_phase: the primary stops dead there once */
	int test_stalled_in;        /* the phase it is stalled in now (NONE: not stalled) */
	uint32_t test_apply_delay_ms;
	uint32_t test_cache_fill_delay_ms;
	bool test_corrupt_next;
	bool test_refuse_next;
	int test_fail_step;         /* enum colo_step + 1: its next run fails (0: none) */

	char peer_uri[300]; /* primary: where the secondary listens */
	int listen_fd;      /* secondary: the migration listener, kept for the links */
	uint64_t checkpoint_mark; /* secondary: the mark that came with vmstate-send */
	char unusable[256]; /* secondary: why its state can no longer be taken over */

	struct colo_participant participants[COLO_MAX_PARTICIPANTS];
	int n_participants;
	colo_exit_fn on_exit;
	void *exit_opaque;
};

void colo_init(struct colo *c, struct vm *vm);
void colo_destroy(struct colo *c);
/* -ENOSPC if the table is full, -EBUSY for a second participant with a mark. */
int colo_add_participant(struct colo *c, const struct colo_participant *p);

/*
 * Take over the connected migration socket fd (its read side has the stream
 * `in` already buffered) and run COLO on a new thread. The VM is stopped
 * (primary: after the stop-and-copy) or loaded and not yet started (secondary).
 */
int colo_start_primary(struct colo *c, int fd, bool resume_vm, bool check_ram);
int colo_start_secondary(struct colo *c, int fd, struct stream_in *in, bool check_ram);

/* Any thread: ask for a checkpoint now (primary only; ignored otherwise). */
void colo_request_checkpoint(struct colo *c, enum colo_reason why);
/* The network link to the peer failed (any thread): COLO ends as for a dead
 * peer, on both sides (the peer sees the checkpoint stream close). */
void colo_link_failed(struct colo *c, const char *why);
/* x-checkpoint-delay changed: store it, and checkpoint at once if COLO runs. */
void colo_set_delay(struct colo *c, uint32_t delay_ms);
/* x-colo-lost-heartbeat: during COLO, fail over now; on a secondary waiting after
 * losing its primary, the decision to take over. -ENOTCONN if neither, -EALREADY
 * if a failover is under way, -ESTALE if this secondary's state cannot run
 * (a participant failed after the commit point: colo_get_error says why). */
int colo_lost_heartbeat(struct colo *c);

void colo_query(struct colo *c, enum colo_mode *mode, enum colo_mode *last_mode,
		enum colo_exit_reason *reason, int *failover, bool *waiting);
void colo_get_stats(struct colo *c, struct colo_stats *out);
/* Why COLO ended with an error ("" if it did not). */
void colo_get_error(struct colo *c, char *buf, size_t len);
const char *colo_mode_name(enum colo_mode m);
const char *colo_exit_reason_name(enum colo_exit_reason r);
const char *colo_failover_name(int f);
const char *colo_reason_name(enum colo_reason r);

/* ---- shared by colo*.c ---- */
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
