/*
 * What block replication costs a guest write, without a VM: 4 KiB writes to a
 * raw image, against the same writes through the primary's mirror (local
 * image + forwarder -> libnbd -> a socketpair -> our NBD server -> the
 * secondary with copy-before-write into its hidden overlay). Both sides on
 * this host, so the "network" is a socketpair: the figure is the software's
 * cost; a real link adds its round trip. Prints `bench: NAME VALUE UNIT` lines.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "block/file.h"
#include "block/mirror.h"
#include "block/nbd_client.h"
#include "block/nbd_server.h"
#include "block/overlay.h"
#include "block/replication.h"
#include "bench_clock.h"

#define DISK_SIZE (64u << 20)
#define BLOCK 4096u
#define WRITES 4096

static char *make_image(void)
{
	char *path = strdup("/tmp/lockstep-bench-XXXXXX");
	int fd = mkstemp(path);

	if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
		exit(1);
	close(fd);
	return path;
}

/* WRITES writes of BLOCK bytes at spread offsets; prints p50/p99 and MB/s. */
static double measure(const char *name, struct blk_backend *be)
{
	static uint64_t lat[WRITES];
	static uint8_t buf[BLOCK];
	uint64_t t0 = bench_now_ns();

	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < WRITES; i++) {
		struct iovec iov = { buf, BLOCK };
		uint64_t off = ((uint64_t)i * 7919 % (DISK_SIZE / BLOCK)) * BLOCK, t = bench_now_ns();

		if (blk_backend_pwritev(be, &iov, 1, off) < 0)
			exit(1);
		lat[i] = bench_now_ns() - t;
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	qsort(lat, WRITES, sizeof(lat[0]), bench_cmp_u64);
	printf("bench: disk.%s.write_4k.p50 %.1f us\n", name, (double)lat[WRITES / 2] / 1000);
	printf("bench: disk.%s.write_4k.p99 %.1f us\n", name, (double)lat[WRITES * 99 / 100] / 1000);
	printf("bench: disk.%s.write_4k.throughput %.1f MB/s\n", name, WRITES * (double)BLOCK / secs / 1e6);
	return (double)lat[WRITES / 2];
}

struct server {
	int fd;
	struct nbd_export exp;
};

static void *serve(void *arg)
{
	struct server *s = arg;

	nbd_server_serve_fd(s->fd, &s->exp, NULL, 0);
	return NULL;
}

int main(void)
{
	char *local_path = make_image(), *plain_path = make_image(), *sec_path = make_image(), err[200];
	struct blk_backend *plain, *local, *disk, *nbd, *mirror;
	struct overlay *active, *hidden;
	struct replication *sec, *pri;
	struct server srv;
	pthread_t thread;
	int sv[2];

	if (blk_file_open(plain_path, false, &plain) || blk_file_open(local_path, false, &local) ||
	    blk_file_open(sec_path, false, &disk) || overlay_create("/tmp", DISK_SIZE, &active) ||
	    overlay_create("/tmp", DISK_SIZE, &hidden) || repl_secondary_create(disk, active, hidden, &sec) ||
	    repl_start(sec, REPL_MODE_SECONDARY) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	srv = (struct server){ sv[0], { "disk", repl_secondary_export(sec), 512 } };
	pthread_create(&thread, NULL, serve, &srv);
	if (blk_nbd_connect_fd(sv[1], "disk", &nbd, err, sizeof(err)) || repl_primary_create(nbd, &pri) ||
	    repl_start(pri, REPL_MODE_PRIMARY) || blk_mirror_create(local, &mirror) ||
	    blk_mirror_attach_replica(mirror, repl_backend(pri)))
		return 1;
	double p = measure("plain", plain), r = measure("replicated", mirror);
	printf("bench: disk.replicated_over_plain.write_4k.p50 %.2f ratio\n", r / p);
	blk_mirror_detach_replica(mirror);
	repl_free(pri);
	pthread_join(thread, NULL);
	close(sv[0]);
	repl_free(sec);
	blk_backend_close(mirror);
	blk_backend_close(plain);
	unlink(local_path);
	unlink(plain_path);
	unlink(sec_path);
	return 0;
}
