/*
 * Live migration over TCP, both directions. The stream is the vmstate format
 * (vmstate.h) followed by a 16-byte answer from the destination.
 *
 * Source (a thread, so the monitor stays responsive): send all RAM while the
 * guest runs, then rounds of dirty pages until what is left would take less
 * than the downtime limit at the measured bandwidth (or MIGRATE_MAX_ROUNDS),
 * then stop the VM, send the rest and the machine state, hand the network
 * backends over and wait for the destination's answer. On any failure the
 * source takes its backends back and runs on.
 *
 * Destination (lockstep run --incoming tcp:HOST:PORT): receive into a fresh
 * VM, load, take the backends, answer, run. A bad stream ends the process
 * with a clear error.
 */
#ifndef LOCKSTEP_STATE_MIGRATE_H
#define LOCKSTEP_STATE_MIGRATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/netaddr.h"

struct colo;
struct vm;

#define MIGRATE_DEFAULT_DOWNTIME_MS 300
#define MIGRATE_MAX_ROUNDS 30
#define MIGRATE_ACK_MAGIC 0x4b43414d564b534cULL /* "LSKVMACK" */
#define MIGRATE_ACK_TIMEOUT_S 30

enum migrate_status {
	MIGRATE_NONE,
	MIGRATE_SETUP,
	MIGRATE_ACTIVE,
	MIGRATE_COMPLETED,
	MIGRATE_FAILED,
	MIGRATE_CANCELLING,
	MIGRATE_CANCELLED,
	MIGRATE_COLO, /* the migration became a COLO pair (colo/colo.h) */
};

struct migrate_params {
	uint64_t downtime_limit_ms;
	uint64_t max_bandwidth; /* bytes/s, 0 = unlimited */
	bool check_ram;         /* send / verify a hash of all RAM at switchover (test hook) */
	bool check_disk;        /* COLO: every checkpoint checks the replicated disks (test hook) */
};

struct migrate_stats {
	uint64_t ram_total;       /* bytes of guest RAM */
	uint64_t transferred;     /* stream bytes */
	uint64_t remaining;       /* bytes dirty at the last count */
	uint64_t normal_pages;    /* pages sent with data */
	uint64_t zero_pages;      /* pages sent as zero markers */
	uint64_t dirty_pages_rate; /* pages/s dirtied during the last round */
	uint64_t rounds;          /* dirty-page rounds after the first full pass */
	uint64_t setup_time_ms, total_time_ms, downtime_ms;
	double mbps;              /* last measured throughput */
	uint64_t ram_hash;        /* with check_ram: XXH3 of RAM at switchover */
	bool ram_hash_valid;
};

/* Called on the event-loop thread whenever the status changes. */
typedef void (*migrate_status_fn)(void *opaque, enum migrate_status st);
/* Destination only: the VM is loaded and may run (ok), or the stream failed. */
typedef void (*migrate_incoming_fn)(void *opaque, bool ok, const char *error);

struct migration {
	struct vm *vm;
	pthread_mutex_t lock; /* status, stats, params, error */
	enum migrate_status status;
	struct migrate_params params;
	struct migrate_stats stats;
	char error[256];
	bool incoming;
	bool colo_capability; /* x-colo: the migration enters COLO instead of completing */
	/* Destination: refuse a migration that would not enter COLO (its disks
	 * serve a COLO secondary only: --disk ...,replication=secondary). */
	bool colo_required;
	struct colo *colo;    /* where COLO runs once entered */
	int fd;        /* connection, -1 when none */
	int listen_fd; /* destination, until the source connects */
	volatile int cancel;
	bool committing; /* END sent: past the point where cancel is honoured */
	pthread_t thread;
	bool thread_started;
	migrate_status_fn on_status;
	void *opaque;
	migrate_incoming_fn on_incoming;
	void *incoming_opaque;
};

void migration_init(struct migration *m, struct vm *vm, migrate_status_fn on_status, void *opaque);
/* Migrations with x-colo enter COLO on c; once COLO ends with this VM alone,
 * it can be protected again. */
int migration_attach_colo(struct migration *m, struct colo *c);
/* Cancels what runs and waits for the thread. */
void migration_destroy(struct migration *m);

/* Source: starts migrating to uri. -EBUSY if a migration is in progress. */
int migration_start(struct migration *m, const char *uri, char *err, size_t errlen);
/* -EBUSY once the stream is committed (the destination may already run the guest). */
int migration_cancel(struct migration *m);
/* Destination: listens on uri now (so errors show at start-up), receives in a thread. */
int migration_listen(struct migration *m, const char *uri, migrate_incoming_fn done,
		     void *done_opaque, char *err, size_t errlen);

/* A consistent copy of what query-migrate shows. */
void migration_query(struct migration *m, enum migrate_status *st, struct migrate_stats *stats,
		     char *error, size_t errlen);
void migration_get_params(struct migration *m, struct migrate_params *p);
void migration_set_params(struct migration *m, const struct migrate_params *p);
const char *migrate_status_name(enum migrate_status st);

/* ---- shared by migrate_send.c / migrate_recv.c ---- */
void migration_set_status(struct migration *m, enum migrate_status st);
void migration_fail(struct migration *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *migration_send_thread(void *arg);
void *migration_recv_thread(void *arg);

struct migrate_ack {
	uint64_t magic;
	int32_t status; /* 0, or the negative errno the destination failed with */
	uint32_t reserved;
};

#endif
