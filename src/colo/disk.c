#include "colo/disk.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "block/digest.h"
#include "block/mirror.h"
#include "block/nbd_client.h"
#include "block/nbd_server.h"
#include "block/overlay.h"
#include "block/replication.h"
#include "colo/peer.h"
#include "util/log.h"

#define DISK_COPY_MAGIC "LSKDSKC1" /* the initial copy */
#define DISK_REPL_MAGIC "LSKDSKR1" /* the writes while COLO runs */
#define DISK_COPY_CHUNK (1u << 20)
#define SECTOR 512

struct colo_disk {
	enum colo_mode role;
	char name[16];          /* "disk0": the export's name and messages */
	/* Primary */
	struct blk_backend *mirror;     /* the guest's (borrowed from its device) */
	struct replication *forwarder;  /* while COLO runs, over the NBD client */
	int link_fd;                    /* the NBD client's socket (libnbd owns it) */
	/* Secondary */
	struct replication *repl;       /* the guest's backend (borrowed) */
	struct nbd_export exp;
	int server_fd;                  /* the replication connection, -1 if none */
	pthread_t server;
	bool server_running;
	bool by_qmp;                    /* links set up by QMP, not by COLO's start */
	/* Guards job (written on the COLO thread, read by QMP) and the primary's
	 * forwarder and link_fd (QMP attaches and detaches, COLO's failover too). */
	pthread_mutex_t lock;
	struct colo_disk_job job;
};

static void job_update(struct colo_disk *d, enum colo_disk_job_status status, uint64_t offset,
		       const char *error)
{
	pthread_mutex_lock(&d->lock);
	d->job.status = status;
	d->job.offset = offset;
	snprintf(d->job.error, sizeof(d->job.error), "%s", error ? error : "");
	pthread_mutex_unlock(&d->lock);
}

void colo_disk_get_job(struct colo_disk *d, struct colo_disk_job *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->job;
	pthread_mutex_unlock(&d->lock);
}

const char *colo_disk_job_status_name(enum colo_disk_job_status s)
{
	static const char *const names[] = {
		[COLO_DISK_JOB_NONE] = "none",
		[COLO_DISK_JOB_RUNNING] = "running",
		[COLO_DISK_JOB_READY] = "ready",
		[COLO_DISK_JOB_CONCLUDED] = "concluded",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* ---- primary ------------------------------------------------------------- */

/* Each quarter of the copy, on stderr; every chunk, in query-block-jobs. */
static void copy_progress(struct colo_disk *d, uint64_t done, uint64_t size, unsigned *quarters)
{
	unsigned now = size ? (unsigned)(done * 4 / size) : 4;

	job_update(d, COLO_DISK_JOB_RUNNING, done, NULL);
	if (now <= *quarters)
		return;
	*quarters = now;
	log_notice("COLO %s: copied %llu of %llu MiB to the secondary (%llu%%)", d->name,
		   (unsigned long long)(done >> 20), (unsigned long long)(size >> 20),
		   (unsigned long long)(size ? done * 100 / size : 100));
}

/* The local image onto the secondary's disk, then read back and compared:
 * the secondary must start from exactly our disk. The VM is stopped. */
static int copy_image(struct colo_disk *d, struct blk_backend *to)
{
	uint64_t size = blk_backend_size(d->mirror);
	unsigned quarters = 0;
	uint8_t *a = malloc(DISK_COPY_CHUNK), *b = malloc(DISK_COPY_CHUNK);
	int ret = a && b ? 0 : -ENOMEM;

	for (uint64_t off = 0; ret == 0 && off < size; off += DISK_COPY_CHUNK) {
		size_t n = size - off < DISK_COPY_CHUNK ? (size_t)(size - off) : DISK_COPY_CHUNK;
		struct iovec ia = { a, n }, ib = { b, n }, iw = { a, n };

		if ((ret = blk_backend_preadv(d->mirror, &ia, 1, off)) ||
		    (ret = blk_backend_pwritev(to, &iw, 1, off)) || (ret = blk_backend_preadv(to, &ib, 1, off)))
			break;
		if (memcmp(a, b, n)) {
			log_error("COLO %s: the secondary's copy differs at byte %llu", d->name,
				  (unsigned long long)off);
			ret = -EIO;
		} else {
			copy_progress(d, off + n, size, &quarters);
		}
	}
	if (ret == 0)
		ret = blk_backend_flush(to);
	free(a);
	free(b);
	return ret;
}

/*
 * A secondary that lost power sends no RST, and a request waiting on it would
 * wait for TCP's minutes, with the VM's pause (a checkpoint drains the disk)
 * waiting behind it. Keepalive probes after a second of silence and a limit on
 * unacknowledged data end such a connection within about the peer timeout.
 */
static void detect_dead_peer(int fd, uint32_t timeout_ms)
{
	int on = 1, idle = 1, interval = 1, probes = (int)(timeout_ms + 999) / 1000;
	unsigned int unacked_ms = timeout_ms;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &unacked_ms, sizeof(unacked_ms));
}

/* One NBD connection to the secondary's export, opened with magic; its
 * socket's number in *fd (for shutdown only: the client owns it). */
static int connect_export(struct colo_disk *d, const struct colo_peer *peer, const char *magic,
			  struct blk_backend **out, int *fd)
{
	char err[256];
	int ret;

	*fd = colo_peer_connect(peer, magic);
	if (*fd < 0)
		return *fd;
	detect_dead_peer(*fd, peer->timeout_ms);
	ret = blk_nbd_connect_fd(*fd, d->name, out, err, sizeof(err));
	if (ret < 0)
		log_error("COLO %s: NBD connection to the secondary: %s", d->name, err);
	return ret;
}

/* Writes go to link (owned from now on) as well as the local image. */
static int attach_replica(struct colo_disk *d, struct blk_backend *link, int link_fd)
{
	struct replication *fw;
	int ret = repl_primary_create(link, &fw);

	if (ret < 0)
		return ret;
	if ((ret = repl_start(fw, REPL_MODE_PRIMARY)) == 0)
		ret = blk_mirror_attach_replica(d->mirror, repl_backend(fw));
	if (ret < 0) {
		repl_free(fw);
		return ret;
	}
	pthread_mutex_lock(&d->lock);
	d->forwarder = fw;
	d->link_fd = link_fd;
	pthread_mutex_unlock(&d->lock);
	job_update(d, COLO_DISK_JOB_READY, d->job.len, NULL);
	return 0;
}

static int primary_connect_and_copy(struct colo_disk *d, const struct colo_peer *peer)
{
	struct blk_backend *copy, *link;
	int copy_fd, link_fd, ret = connect_export(d, peer, DISK_COPY_MAGIC, &copy, &copy_fd);

	if (ret < 0)
		return ret;
	ret = copy_image(d, copy);
	blk_backend_close(copy); /* NBD_CMD_DISC: the secondary goes on to the next connection */
	if (ret < 0)
		return ret;
	if ((ret = connect_export(d, peer, DISK_REPL_MAGIC, &link, &link_fd)) < 0)
		return ret;
	return attach_replica(d, link, link_fd);
}

/* By QMP: the replica is attached already (x-blockdev-change) and has every
 * write since; the operator made the secondary's disk equal before. */
static int primary_start(struct colo_disk *d, const struct colo_peer *peer)
{
	int ret;

	if (d->by_qmp) {
		if (colo_disk_has_replica(d))
			return 0;
		log_error("COLO %s: no replica: blockdev-add an nbd node and x-blockdev-change it into %s first",
			  d->name, d->name);
		return -ENOTCONN;
	}
	job_update(d, COLO_DISK_JOB_RUNNING, 0, NULL);
	ret = primary_connect_and_copy(d, peer);
	if (ret < 0) {
		job_update(d, COLO_DISK_JOB_CONCLUDED, d->job.offset, strerror(-ret));
		return ret;
	}
	log_notice("COLO %s: the secondary's copy is verified; every write now goes to both", d->name);
	return 0;
}

/*
 * Replication ends: the guest's writes go to the local image only. A write
 * may be waiting on a secondary that lost power (no RST: TCP would wait for
 * minutes), so the link is shut down first: the waiting request fails, the
 * forwarder records it, and the detach does not wait on a dead peer.
 */
static void primary_stop(struct colo_disk *d)
{
	struct replication *fw;
	char why[200] = "";
	int link_fd;

	pthread_mutex_lock(&d->lock);
	fw = d->forwarder;
	link_fd = d->link_fd;
	d->forwarder = NULL;
	d->link_fd = -1;
	pthread_mutex_unlock(&d->lock);
	if (!fw)
		return;
	if (repl_get_error(fw, why, sizeof(why)) == 0)
		why[0] = '\0';
	job_update(d, COLO_DISK_JOB_CONCLUDED, d->job.len, why);
	shutdown(link_fd, SHUT_RDWR);
	blk_mirror_detach_replica(d->mirror);
	repl_free(fw);
}

/* ---- secondary ----------------------------------------------------------- */

static void *serve_replication(void *arg)
{
	struct colo_disk *d = arg;
	char err[256];
	int ret = nbd_server_serve_fd(d->server_fd, &d->exp, err, sizeof(err));

	if (ret < 0 && ret != -ECONNRESET)
		log_warn("COLO %s: replication link: %s", d->name, err);
	return NULL;
}

static void server_stop(struct colo_disk *d)
{
	if (d->server_running) {
		nbd_server_stop(d->server_fd);
		pthread_join(d->server, NULL);
		d->server_running = false;
	}
	if (d->server_fd >= 0)
		close(d->server_fd);
	d->server_fd = -1;
}

/* A guest may not write for minutes: on the replication connection silence is
 * normal (COLO's heartbeat finds a dead primary; the failover shuts it down). */
static void no_timeouts(int fd)
{
	struct timeval none = { 0, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
}

/* The copy is served here, on the COLO thread, until the primary hangs up;
 * then replication starts and its connection gets a thread of its own. */
static int secondary_start(struct colo_disk *d, const struct colo_peer *peer)
{
	char err[256];
	int fd, ret;

	if (d->by_qmp) /* the primary's writes come through nbd-server-add's export */
		return repl_start(d->repl, REPL_MODE_SECONDARY);
	if ((fd = colo_peer_accept(peer, DISK_COPY_MAGIC)) < 0)
		return fd;
	ret = nbd_server_serve_fd(fd, &d->exp, err, sizeof(err));
	close(fd);
	if (ret < 0) {
		log_error("COLO %s: the primary's copy of its disk: %s", d->name, err);
		return ret;
	}
	server_stop(d); /* one left from an earlier session */
	if ((ret = repl_start(d->repl, REPL_MODE_SECONDARY)) < 0)
		return ret;
	if ((d->server_fd = colo_peer_accept(peer, DISK_REPL_MAGIC)) < 0)
		return d->server_fd;
	no_timeouts(d->server_fd);
	ret = -pthread_create(&d->server, NULL, serve_replication, d);
	d->server_running = ret == 0;
	return ret;
}

/* ---- the participant ----------------------------------------------------- */

/*
 * A secondary that took over serves its disk (the overlays committed, the
 * replication DONE: I/O goes straight to the image); protected again, it is a
 * primary: its guest's mirror gets a replica. Nothing else changes roles.
 */
static int become_primary(struct colo_disk *d)
{
	if (repl_stage(d->repl) != REPL_STAGE_DONE) {
		log_error("COLO %s: a secondary's disk becomes a primary's only after a takeover (replication %s)",
			  d->name, repl_stage_name(repl_stage(d->repl)));
		return -EOPNOTSUPP;
	}
	pthread_mutex_lock(&d->lock);
	d->role = COLO_MODE_PRIMARY;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int disk_start(void *opaque, const struct colo_peer *peer)
{
	struct colo_disk *d = opaque;
	int ret;

	if (peer->mode == COLO_MODE_SECONDARY && d->role == COLO_MODE_PRIMARY) {
		log_error("COLO %s: a primary's disk cannot become a secondary's", d->name);
		return -EOPNOTSUPP;
	}
	if (peer->mode == COLO_MODE_PRIMARY && d->role == COLO_MODE_SECONDARY && (ret = become_primary(d)) < 0)
		return ret;
	return d->role == COLO_MODE_PRIMARY ? primary_start(d, peer) : secondary_start(d, peer);
}

/* Primary, VM stopped: a replica that failed since the last checkpoint ends COLO. */
static int disk_prepare(void *opaque)
{
	struct colo_disk *d = opaque;
	char why[200];
	int ret;

	if (d->role != COLO_MODE_PRIMARY)
		return 0;
	pthread_mutex_lock(&d->lock); /* the VM is stopped: no write waits on the link */
	ret = d->forwarder ? repl_get_error(d->forwarder, why, sizeof(why)) : 0;
	pthread_mutex_unlock(&d->lock);
	if (ret < 0)
		log_error("COLO %s: the secondary's disk failed: %s", d->name, why);
	return ret;
}

/* Secondary: the checkpoint's RAM is in, and every primary write before it is
 * on the disk (the primary drained its disk before stopping): the overlays go. */
static int disk_applied(void *opaque, uint64_t mark)
{
	struct colo_disk *d = opaque;

	(void)mark;
	return d->role == COLO_MODE_SECONDARY ? repl_do_checkpoint(d->repl) : 0;
}

/* x-check-disk, primary, VM stopped: the local image (its writes all done). */
static int disk_digest(void *opaque, uint64_t *digest)
{
	struct colo_disk *d = opaque;

	return d->role == COLO_MODE_PRIMARY ? blk_backend_digest(d->mirror, digest) : -EINVAL;
}

/* x-check-disk, secondary, checkpoint applied: the disk as the guest reads it
 * (through the overlays) must be the primary's image. */
static int disk_verify(void *opaque, uint64_t primary_digest)
{
	struct colo_disk *d = opaque;
	uint64_t mine;
	int ret;

	if (d->role != COLO_MODE_SECONDARY)
		return -EINVAL;
	if ((ret = blk_backend_digest(repl_backend(d->repl), &mine)) < 0)
		return ret;
	if (mine == primary_digest)
		return 0;
	log_error("COLO %s: digest %016llx, the primary's %016llx", d->name, (unsigned long long)mine,
		  (unsigned long long)primary_digest);
	return -EILSEQ;
}

static void disk_failover(void *opaque)
{
	struct colo_disk *d = opaque;
	char why[200];

	if (d->role == COLO_MODE_PRIMARY) {
		primary_stop(d);
		return;
	}
	server_stop(d); /* no primary write after the decision */
	if (repl_stop(d->repl, true) < 0) {
		repl_last_failure(d->repl, why, sizeof(why));
		log_error("COLO %s: committing the overlays: %s (the guest runs on them)", d->name, why);
	}
}

/* ---- construction -------------------------------------------------------- */

static int create_secondary(struct colo_disk *d, struct blk_backend *image, const char *overlay_dir,
			    struct blk_backend **guest)
{
	uint64_t size = blk_backend_size(image);
	struct overlay *active = NULL, *hidden = NULL;
	int ret = overlay_create(overlay_dir, size, &active);

	if (ret == 0)
		ret = overlay_create(overlay_dir, size, &hidden);
	if (ret < 0) {
		overlay_close(active);
		blk_backend_close(image);
		return ret;
	}
	if ((ret = repl_secondary_create(image, active, hidden, &d->repl)) < 0)
		return ret;
	d->exp = (struct nbd_export){ .name = d->name, .be = repl_secondary_export(d->repl),
				      .min_block = SECTOR };
	/* Under a mirror, without a replica until this VM, having taken over, is
	 * protected again as a primary (become_primary). */
	if ((ret = blk_mirror_create(repl_backend(d->repl), &d->mirror)) < 0)
		return ret;
	*guest = d->mirror;
	return 0;
}

int colo_disk_create(struct colo *c, enum colo_mode role, int index, struct blk_backend *image,
		     const char *overlay_dir, bool by_qmp, struct blk_backend **guest, struct colo_disk **out)
{
	struct colo_disk *d = calloc(1, sizeof(*d));
	int ret;

	*guest = NULL;
	if (!d) {
		blk_backend_close(image);
		return -ENOMEM;
	}
	d->role = role;
	d->by_qmp = by_qmp;
	d->server_fd = -1;
	d->link_fd = -1;
	snprintf(d->name, sizeof(d->name), "disk%d", index);
	pthread_mutex_init(&d->lock, NULL);
	snprintf(d->job.device, sizeof(d->job.device), "%s", d->name);
	d->job.len = blk_backend_size(image);
	if (role == COLO_MODE_PRIMARY) {
		ret = blk_mirror_create(image, &d->mirror);
		*guest = d->mirror;
	} else {
		ret = create_secondary(d, image, overlay_dir, guest);
	}
	if (ret == 0)
		ret = colo_add_participant(c, &(struct colo_participant){
			.name = d->name, .opaque = d, .start = disk_start, .prepare = disk_prepare,
			.applied = disk_applied, .failover = disk_failover, .digest = disk_digest,
			.verify = disk_verify });
	if (ret < 0) {
		blk_backend_close(*guest); /* NULL-safe: what was built so far */
		pthread_mutex_destroy(&d->lock);
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

const char *colo_disk_name(const struct colo_disk *d) { return d->name; }

const struct nbd_export *colo_disk_export(struct colo_disk *d)
{
	enum colo_mode role;

	pthread_mutex_lock(&d->lock);
	role = d->role;
	pthread_mutex_unlock(&d->lock);
	return role == COLO_MODE_SECONDARY ? &d->exp : NULL;
}

int colo_disk_attach_replica(struct colo_disk *d, struct blk_backend *link, int link_fd)
{
	if (d->by_qmp && d->role == COLO_MODE_SECONDARY && repl_stage(d->repl) == REPL_STAGE_DONE)
		become_primary(d); /* a survivor, to be protected again */
	if (d->role != COLO_MODE_PRIMARY || !d->by_qmp) {
		blk_backend_close(link);
		return -EINVAL;
	}
	if (colo_disk_has_replica(d)) {
		blk_backend_close(link);
		return -EBUSY;
	}
	detect_dead_peer(link_fd, COLO_DEFAULT_PEER_TIMEOUT_MS);
	return attach_replica(d, link, link_fd);
}

int colo_disk_detach_replica(struct colo_disk *d)
{
	if (!colo_disk_has_replica(d))
		return -ENOENT;
	primary_stop(d);
	return 0;
}

bool colo_disk_has_replica(struct colo_disk *d)
{
	bool has;

	pthread_mutex_lock(&d->lock);
	has = d->forwarder != NULL;
	pthread_mutex_unlock(&d->lock);
	return has;
}

/* ---- the replication steps by hand (QMP xen-set-replication ...) ---------- */

int colo_disk_repl_start(struct colo_disk *d, enum colo_mode mode)
{
	if (mode != d->role)
		return -EINVAL;
	if (d->role == COLO_MODE_SECONDARY)
		return repl_start(d->repl, REPL_MODE_SECONDARY);
	return colo_disk_has_replica(d) ? 0 : -ENOTCONN; /* started when attached */
}

int colo_disk_repl_checkpoint(struct colo_disk *d)
{
	return d->role == COLO_MODE_SECONDARY ? repl_do_checkpoint(d->repl) : 0;
}

int colo_disk_repl_stop(struct colo_disk *d, bool failover)
{
	if (d->role == COLO_MODE_PRIMARY) {
		primary_stop(d);
		return 0;
	}
	return repl_stop(d->repl, failover);
}

int colo_disk_repl_error(struct colo_disk *d, char *buf, size_t len)
{
	int ret = -ENOTCONN;

	if (d->role == COLO_MODE_SECONDARY)
		return repl_get_error(d->repl, buf, len);
	pthread_mutex_lock(&d->lock);
	if (d->forwarder)
		ret = repl_get_error(d->forwarder, buf, len);
	else
		snprintf(buf, len, "no replica");
	pthread_mutex_unlock(&d->lock);
	return ret;
}

void colo_disk_repl_failure(struct colo_disk *d, char *buf, size_t len)
{
	if (d->role == COLO_MODE_SECONDARY)
		repl_last_failure(d->repl, buf, len);
	else
		snprintf(buf, len, "%s", colo_disk_has_replica(d) ? "" : "no replica attached (x-blockdev-change)");
}

void colo_disk_free(struct colo_disk *d)
{
	if (!d)
		return;
	primary_stop(d);
	server_stop(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
