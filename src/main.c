/* lockstep: command-line entry. `lockstep run ...` builds one VM and runs it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "block/file.h"
#include "cli/monitor_client.h"
#include "cli/run_args.h"
#include "dev/reset.h"
#include "dev/serial.h"
#include "dev/testdev.h"
#include "dev/virtio_blk.h"
#include "dev/virtio_net.h"
#include "net/tap.h"
#include "colo/net/proxy.h"
#include "qmp/qmp.h"
#include "qmp/qmp_blk.h"
#include "qmp/qmp_colo.h"
#include "qmp/qmp_migrate.h"
#include "qmp/qmp_nbd.h"
#include "qmp/qmp_replication.h"
#include "qmp/qmp_state.h"
#include "qmp/qmp_vm.h"
#include "util/evloop.h"
#include "util/log.h"
#include "colo/colo.h"
#include "colo/disk.h"
#include "state/migrate.h"
#include "state/snapshot.h"
#include "vm/boot.h"
#include "vm/vm.h"

static const uint8_t default_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct run_ctx {
	struct run_args args;
	struct evloop *loop;
	struct vm vm;
	int vm_created;
	struct qmp_server *qmp;
	struct migration migration;
	struct colo *colo;
	struct virtio_net *nic;
	struct colo_net *colo_net;
	struct colo_disk *colo_disks[RUN_MAX_DISKS];
	struct qmp_blk_disks blk_disks; /* colo_disks, for query-block-jobs */
	struct qmp_nbd nbd;             /* the same, for replication set up by hand */
	struct qmp_replication repl;    /* the same, for its steps driven by hand */
	int migration_ready;
	int console_fd;
	int signal_fd;
	int timer_fd; /* primary: retries the connection to the secondary */
};

static int run_open_console(struct run_ctx *c)
{
	if (!c->args.console_file) {
		c->console_fd = -1;
		return 0;
	}
	c->console_fd = open(c->args.console_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (c->console_fd < 0) {
		log_error("console file %s: %s", c->args.console_file, strerror(errno));
		return -errno;
	}
	return 0;
}

/* lockstep primary|secondary: a writable disk follows the primary's (block
 * replication); lockstep run: the same for a disk with replication=, set up
 * over QMP. The overlays live beside the image. *be becomes the guest's. */
static int run_replicate_disk(struct run_ctx *c, int i, struct blk_backend **be)
{
	const struct run_disk *disk = &c->args.disks[i];
	enum colo_mode role = c->args.role == RUN_ROLE_PRIMARY ? COLO_MODE_PRIMARY : COLO_MODE_SECONDARY;
	char dir[PATH_MAX];
	int ret;

	bool by_qmp = c->args.role == RUN_ROLE_VM;

	if (disk->readonly || (by_qmp && disk->replication == RUN_REPL_NONE))
		return 0;
	if (by_qmp)
		role = disk->replication == RUN_REPL_PRIMARY ? COLO_MODE_PRIMARY : COLO_MODE_SECONDARY;
	snprintf(dir, sizeof(dir), "%s", disk->path);
	ret = colo_disk_create(c->colo, role, i, *be, dirname(dir), by_qmp, be, &c->colo_disks[i]);
	if (ret == -ENOSPC)
		log_error("at most %d replicated disks", COLO_MAX_DISKS);
	return ret;
}

static int run_add_devices(struct run_ctx *c)
{
	struct run_args *a = &c->args;
	int out_fd = c->console_fd >= 0 ? c->console_fd : STDOUT_FILENO;
	int in_fd = c->console_fd >= 0 ? -1 : STDIN_FILENO;
	struct net_backend *be;
	struct device *dev;
	int ret;

	if ((ret = testdev_create(&c->vm, NULL)) || (ret = serial_create(&c->vm, out_fd, in_fd, NULL)) ||
	    (ret = reset_create(&c->vm))) {
		log_error("creating the platform devices: %s", strerror(-ret));
		return ret;
	}
	for (int i = 0; i < a->ndisks; i++) {
		struct blk_backend *be;

		ret = blk_file_open(a->disks[i].path, a->disks[i].readonly, &be);
		if (ret == 0)
			ret = run_replicate_disk(c, i, &be);
		if (ret == 0)
			ret = virtio_blk_create(&c->vm, be, &dev);
		if (ret < 0) {
			log_error("disk %s: %s", a->disks[i].path, strerror(-ret));
			return ret;
		}
	}
	if (a->net == RUN_NET_ABSENT)
		return 0;
	/* A VM waiting for an incoming migration takes the TAP only once it runs:
	 * until then the source still owns it. */
	ret = a->net == RUN_NET_TAP ? net_tap_create(a->tap, !c->vm.defer_backends, &be)
				    : net_none_create(&be);
	if (ret == 0)
		ret = virtio_net_create(&c->vm, be, a->mac_set ? a->mac : default_mac, &dev);
	if (ret == 0)
		c->nic = (struct virtio_net *)dev; /* struct device is its first member */
	if (ret < 0)
		log_error("tap %s: %s", a->net == RUN_NET_TAP ? a->tap : "none", strerror(-ret));
	return ret;
}

/* The NIC's COLO network path: dormant until this VM becomes half of a pair. */
static int run_setup_colo_net(struct run_ctx *c)
{
	struct colo_net_config cfg;

	if (!c->nic)
		return 0;
	colo_net_default_config(&cfg);
	if (c->args.compare_timeout_ms)
		cfg.compare.compare_timeout_ms = c->args.compare_timeout_ms;
	if (c->args.compare_scan_ms)
		cfg.scan_period_ms = c->args.compare_scan_ms;
	if (c->args.compare_queue)
		cfg.compare.max_queue_size = c->args.compare_queue;
	cfg.pcap_path = c->args.mismatch_pcap;
	c->colo_net = colo_net_create(&c->vm, c->nic, c->colo, &cfg);
	if (!c->colo_net) {
		log_error("setting up the COLO network path: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

/* --incoming: the stream is in; run the guest, or end with the reason. */
static void run_on_incoming(void *opaque, bool ok, const char *error)
{
	struct run_ctx *c = opaque;
	int ret;

	if (ok && (ret = vm_start(&c->vm)) == 0)
		return;
	log_error("incoming migration failed: %s", ok ? strerror(-ret) : error);
	vm_request_shutdown(&c->vm, 1, "migration-failed");
}

/* A fresh boot from the kernel, or the state of a snapshot (--restore). */
static int run_load_guest(struct run_ctx *c)
{
	char err[512];
	int ret;

	if (c->args.incoming)
		return 0;
	if (!c->args.restore)
		return boot_kernel(&c->vm, c->args.kernel, c->args.initrd, c->args.cmdline);
	ret = snapshot_restore_fresh(&c->vm, c->args.restore, err, sizeof(err));
	if (ret < 0)
		log_error("%s", err);
	return ret;
}

/* SIGINT/SIGTERM end the VM like QMP quit does, so cleanup runs. */
static void run_on_signal(void *opaque, uint32_t events)
{
	struct run_ctx *c = opaque;
	struct signalfd_siginfo si;

	(void)events;
	if (read(c->signal_fd, &si, sizeof(si)) == sizeof(si))
		vm_request_shutdown(&c->vm, 128 + (int)si.ssi_signo, "host-signal");
}

static int run_watch_signals(struct run_ctx *c)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	c->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (c->signal_fd < 0)
		return -errno;
	return evloop_add(c->loop, c->signal_fd, EPOLLIN, run_on_signal, c);
}

/*
 * lockstep primary: protect the VM as soon as the secondary listens. The
 * secondary may start after us, so a refused connection is retried.
 */
static void run_try_protect(void *opaque, uint32_t events)
{
	struct run_ctx *c = opaque;
	uint64_t ticks;
	char err[256];
	int ret;

	(void)events;
	if (read(c->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	ret = migration_start(&c->migration, c->args.peer_uri, err, sizeof(err));
	if (ret == -ECONNREFUSED || ret == -ENOENT || ret == -EHOSTUNREACH || ret == -ETIMEDOUT)
		return; /* not listening yet: try again at the next tick */
	evloop_del(c->loop, c->timer_fd);
	if (ret < 0)
		log_error("--peer %s: %s", c->args.peer_uri, err);
	else
		log_info("protecting the VM: migrating to the secondary at %s", c->args.peer_uri);
}

static int run_start_protection(struct run_ctx *c)
{
	struct itimerspec every = { .it_interval = { 0, 250000000 }, .it_value = { 0, 1000000 } };

	c->migration.colo_capability = true;
	colo_set_delay(c->colo, c->args.checkpoint_delay_ms);
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->timer_fd < 0 || timerfd_settime(c->timer_fd, 0, &every, NULL) < 0)
		return -errno;
	return evloop_add(c->loop, c->timer_fd, EPOLLIN, run_try_protect, c);
}

static int run_listen_incoming(struct run_ctx *c)
{
	char err[256];
	int ret = migration_listen(&c->migration, c->args.incoming, run_on_incoming, c, err,
				   sizeof(err));

	if (ret < 0)
		log_error("--incoming: %s", err);
	return ret;
}

static int run_setup(struct run_ctx *c)
{
	int ret;

	c->loop = evloop_create();
	if (!c->loop)
		return -ENOMEM;
	if ((ret = run_watch_signals(c)) || (ret = run_open_console(c)))
		return ret;
	ret = vm_create(&c->vm, c->loop, c->args.mem_size);
	c->vm_created = 1;
	migration_init(&c->migration, &c->vm, NULL, NULL);
	c->migration_ready = 1;
	c->colo = colo_create(&c->vm);
	if (!c->colo)
		return -ENOMEM;
	if (c->args.peer_timeout_ms) /* a peer silent this long is gone */
		colo_set_peer_timeout(c->colo, c->args.peer_timeout_ms);
	if (c->args.incoming) {
		/* The source owns the TAP until it hands the VM over. */
		c->vm.defer_backends = 1;
		vm_set_state(&c->vm, VM_STATE_CREATED, VM_STATE_INMIGRATE);
	}
	if (ret || (ret = migration_attach_colo(&c->migration, c->colo)) || (ret = run_add_devices(c)) ||
	    (ret = run_setup_colo_net(c)) ||
	    (ret = run_load_guest(c)))
		return ret;
	if (c->args.qmp_path) {
		c->qmp = qmp_server_create(c->loop, c->args.qmp_path, &ret);
		if (!c->qmp) {
			log_error("qmp socket %s: %s", c->args.qmp_path, strerror(-ret));
			return ret;
		}
		c->blk_disks = (struct qmp_blk_disks){ c->colo_disks, RUN_MAX_DISKS };
		c->nbd.disks = c->colo_disks;
		c->nbd.ndisks = RUN_MAX_DISKS;
		c->repl = (struct qmp_replication){ c->colo_disks, RUN_MAX_DISKS, c->colo };
		if ((ret = qmp_vm_bind(c->qmp, &c->vm)) || (ret = qmp_state_bind(c->qmp, &c->vm)) ||
		    (ret = qmp_blk_bind(c->qmp, &c->vm, &c->blk_disks)) || (ret = qmp_nbd_bind(c->qmp, &c->nbd)) ||
		    (ret = qmp_replication_bind(c->qmp, &c->repl)) ||
		    (ret = qmp_migrate_bind(c->qmp, &c->migration)) ||
		    (ret = qmp_colo_bind(c->qmp, &c->migration)) ||
		    (c->colo_net && (ret = qmp_colo_net_bind(c->qmp, c->colo_net))))
			return ret;
	}
	if (c->args.role == RUN_ROLE_SECONDARY)
		c->migration.colo_capability = true;
	for (int i = 0; i < c->args.ndisks; i++)
		c->migration.colo_required |= c->args.disks[i].replication == RUN_REPL_SECONDARY;
	if (c->args.incoming)
		return run_listen_incoming(c);
	ret = vm_start(&c->vm);
	if (ret == 0 && c->args.role == RUN_ROLE_PRIMARY)
		ret = run_start_protection(c);
	return ret;
}

static void run_teardown(struct run_ctx *c)
{
	if (c->colo && c->vm_created) /* a guest that ended: a COLO secondary ends with it */
		colo_wait_guest_end(c->colo);
	colo_free(c->colo);
	qmp_nbd_cleanup(&c->nbd); /* its server exports the disks */
	for (int i = 0; i < RUN_MAX_DISKS; i++)
		colo_disk_free(c->colo_disks[i]);
	if (c->migration_ready)
		migration_destroy(&c->migration);
	colo_net_destroy(c->colo_net);
	if (c->qmp) {
		qmp_vm_unbind(&c->vm);
		qmp_server_destroy(c->qmp);
	}
	if (c->vm_created)
		vm_destroy(&c->vm);
	if (c->timer_fd >= 0) {
		evloop_del(c->loop, c->timer_fd);
		close(c->timer_fd);
	}
	if (c->signal_fd > 0) {
		evloop_del(c->loop, c->signal_fd);
		close(c->signal_fd);
	}
	if (c->console_fd >= 0)
		close(c->console_fd);
	evloop_destroy(c->loop);
	run_args_free(&c->args);
}

static int cmd_run(int argc, char **argv)
{
	static struct run_ctx ctx;
	struct run_ctx *c = &ctx;
	char err[256];
	int ret, status = 1;

	c->console_fd = c->signal_fd = c->timer_fd = -1;
	ret = run_args_parse(&c->args, argc, argv, err, sizeof(err));
	if (ret == 1) {
		fputs(run_usage, stdout);
		return 0;
	}
	if (ret < 0) {
		log_error("%s", ret == -EINVAL ? err : strerror(-ret));
		run_args_free(&c->args);
		return 2;
	}
	log_set_verbose(c->args.verbose);
	if (run_setup(c) == 0 && evloop_run(c->loop) == 0)
		status = c->vm.exit_status;
	run_teardown(c);
	return status;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "primary") == 0 ||
			  strcmp(argv[1], "secondary") == 0))
		return cmd_run(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "failover") == 0 || strcmp(argv[1], "status") == 0))
		return cmd_monitor(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(run_usage, stdout);
		return 0;
	}
	log_error("%s%s: expected a command: run, primary, secondary, failover or status",
		  argc < 2 ? "missing command" : "unknown command ",
		  argc < 2 ? "" : argv[1]);
	fputs(run_usage, stderr);
	return 2;
}
