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
#ifndef LOCKSTEP_COLO_COLO_H
#define LOCKSTEP_COLO_COLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


struct colo;
struct stream_in;
struct vm;

#define COLO_DEFAULT_DELAY_MS 20000
#define COLO_DEFAULT_PEER_TIMEOUT_MS 3000 /* --peer-timeout */
#define COLO_PAUSE_HISTORY 1024

enum colo_mode { COLO_MODE_NONE, COLO_MODE_PRIMARY, COLO_MODE_SECONDARY };
enum colo_exit_reason { COLO_EXIT_NONE, COLO_EXIT_REQUEST, COLO_EXIT_ERROR, COLO_EXIT_PROCESSING };
enum colo_failover {
	COLO_FAILOVER_NONE,
	COLO_FAILOVER_REQUIRE,
	COLO_FAILOVER_ACTIVE,
	COLO_FAILOVER_COMPLETED,
	COLO_FAILOVER_RELAUNCH,
};

enum colo_reason { COLO_REASON_PERIODIC, COLO_REASON_REQUEST, COLO_REASON_COMPARATOR, COLO_REASON_COUNT };

/* Where a participant's own links go (its start hook). */
struct colo_peer {
	enum colo_mode mode;
	const char *uri;       /* primary: where the secondary listens */
	int listen_fd;         /* secondary: the migration listener */
	uint32_t timeout_ms;   /* a peer silent this long is gone */
};

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
	/* Both sides, COLO begins (connect links to `peer`). Error: COLO does not start. */
	int (*start)(void *opaque, const struct colo_peer *peer);
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
	/* x-check-disk (a test hook): the primary, VM stopped, digests the state
	 * it keeps outside the VM; the secondary, the checkpoint applied, checks
	 * that its own state digests the same (-EILSEQ if not, and says why). */
	int (*digest)(void *opaque, uint64_t *digest);
	int (*verify)(void *opaque, uint64_t primary_digest);
};
#define COLO_MAX_PARTICIPANTS 8

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
	uint64_t disk_checks;              /* participants' digests (disks) compared and equal */
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

/* Test hooks (x-colo-test), set from the monitor with atomic stores. */
struct colo_test_hooks {
	int stall_phase;            /* enum colo_test_phase: the primary stops dead there once */
	int stalled_in;             /* the phase it is stalled in now (NONE: not stalled) */
	uint32_t apply_delay_ms;    /* secondary: after vmstate-received, before vmstate-loaded */
	uint32_t cache_fill_delay_ms; /* secondary: at start, while filling its RAM cache */
	bool corrupt_next;          /* primary: the next checkpoint's RAM hash is wrong */
	bool refuse_next;           /* primary: the next checkpoint holds a record S refuses */
	int fail_step;              /* enum colo_step + 1: a participant's next such step fails */
};

/* waiting: a secondary that stopped its VM and waits for the takeover decision. */
typedef void (*colo_exit_fn)(void *opaque, enum colo_mode mode, enum colo_exit_reason reason,
			     bool waiting);

/* The COLO engine of one VM; NULL if out of memory. */
struct colo *colo_create(struct vm *vm);
/* Ends COLO if it runs (a waiting secondary leaves without taking over). */
void colo_free(struct colo *c);
/* --peer-timeout: a peer silent this long is gone. */
void colo_set_peer_timeout(struct colo *c, uint32_t ms);
/* Primary: where the secondary listens (the migration URI). */
void colo_set_peer_uri(struct colo *c, const char *uri);
/* Secondary: the migration listener, where the links are accepted. */
void colo_set_listen_fd(struct colo *c, int fd);
/* x-check-ram: every checkpoint's RAM hash is compared. */
void colo_set_check_ram(struct colo *c, bool on);
/* x-check-disk: every checkpoint carries each replicated disk's digest, and the
 * secondary compares its disk as its guest sees it (a test hook: each side
 * reads its whole disk per checkpoint, within the checkpoint's pause). */
void colo_set_check_disk(struct colo *c, bool on);
uint32_t colo_get_delay(struct colo *c);
void colo_set_exit_handler(struct colo *c, colo_exit_fn fn, void *opaque);
struct colo_test_hooks *colo_test_hooks(struct colo *c);

/* -ENOSPC if the table is full, -EBUSY for a second participant with a mark. */
int colo_add_participant(struct colo *c, const struct colo_participant *p);

/*
 * Take over the connected migration socket fd (its read side has the stream
 * `in` already buffered) and run COLO on a new thread. The VM is stopped
 * (primary: after the stop-and-copy) or loaded and not yet started (secondary).
 */
int colo_start_primary(struct colo *c, int fd, bool resume_vm, bool check_ram);
int colo_start_secondary(struct colo *c, int fd, struct stream_in *in, bool check_ram);

/*
 * Primary, its VM shut down: if the guest ended by itself (SHUTDOWN reason
 * "guest-shutdown", "guest-reset" or "guest-panic"), the COLO thread tells the
 * secondary, which ends its VM the same way instead of waiting for a takeover
 * decision, and COLO ends (reason none). This wakes the thread and waits for
 * that, at most about a second; for any other end of the VM COLO ends as
 * usual when freed. Not a primary in COLO: returns at once.
 */
void colo_wait_guest_end(struct colo *c);
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


#endif
