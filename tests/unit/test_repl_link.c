/*
 * Block replication end to end, without a VM: the primary's mirror (local
 * image + forwarder) talks NBD (libnbd client, our server) over a socketpair
 * to the secondary's export, as the two hosts will over TCP. Checks the
 * promise: an acknowledged write is on both disks; the secondary's guest sees
 * its checkpoint's disk; a takeover leaves exactly that view on the disk; a
 * lost link never fails the primary guest's write and is reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/file.h"
#include "block/mirror.h"
#include "block/nbd_client.h"
#include "block/nbd_server.h"
#include "block/overlay.h"
#include "block/replication.h"

#define DISK_SIZE (4u << 20)
#define MIB (1u << 20)
#define SENTINEL 0x5A

struct pair {
	char local_path[64], disk_path[64];
	struct replication *sec, *pri;
	struct blk_backend *mirror;
	struct nbd_export exp;
	int server_fd;
	pthread_t server;
	bool server_joined;
	int server_ret;
	char server_err[160];
};

static void fill_file(const char *path, int byte)
{
	int fd = open(path, O_WRONLY);
	uint8_t *buf = malloc(DISK_SIZE);

	assert_true(fd >= 0 && buf);
	memset(buf, byte, DISK_SIZE);
	assert_int_equal(pwrite(fd, buf, DISK_SIZE, 0), DISK_SIZE);
	close(fd);
	free(buf);
}

static void *serve(void *arg)
{
	struct pair *p = arg;

	p->server_ret = nbd_server_serve_fd(p->server_fd, &p->exp, p->server_err, sizeof(p->server_err));
	return NULL;
}

static void make_image(char *path, size_t len)
{
	int fd;

	snprintf(path, len, "/tmp/lockstep-repl-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(truncate(path, DISK_SIZE), 0);
	fill_file(path, 0x11);
}

static void start_secondary(struct pair *p)
{
	struct blk_backend *disk;
	struct overlay *active, *hidden;

	assert_int_equal(blk_file_open(p->disk_path, false, &disk), 0);
	assert_int_equal(overlay_create("/tmp", DISK_SIZE, &active), 0);
	assert_int_equal(overlay_create("/tmp", DISK_SIZE, &hidden), 0);
	assert_int_equal(repl_secondary_create(disk, active, hidden, &p->sec), 0);
	assert_int_equal(repl_start(p->sec, REPL_MODE_SECONDARY), 0);
}

static void start_primary(struct pair *p, int link_fd)
{
	struct blk_backend *nbd, *local;
	char err[160];

	assert_int_equal(blk_nbd_connect_fd(link_fd, "disk", &nbd, err, sizeof(err)), 0);
	assert_int_equal(blk_backend_size(nbd), DISK_SIZE);
	assert_int_equal(repl_primary_create(nbd, &p->pri), 0);
	assert_int_equal(repl_start(p->pri, REPL_MODE_PRIMARY), 0);
	assert_int_equal(blk_file_open(p->local_path, false, &local), 0);
	assert_int_equal(blk_mirror_create(local, &p->mirror), 0);
	assert_int_equal(blk_mirror_attach_replica(p->mirror, repl_backend(p->pri)), 0);
	assert_int_equal(blk_mirror_attach_replica(p->mirror, repl_backend(p->pri)), -EBUSY);
}

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int sv[2];

	make_image(p->local_path, sizeof(p->local_path));
	make_image(p->disk_path, sizeof(p->disk_path));
	start_secondary(p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	p->exp = (struct nbd_export){ .name = "disk", .be = repl_secondary_export(p->sec), .min_block = 512 };
	p->server_fd = sv[0];
	assert_int_equal(pthread_create(&p->server, NULL, serve, p), 0);
	start_primary(p, sv[1]);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	blk_mirror_detach_replica(p->mirror);
	repl_free(p->pri); /* the NBD client says goodbye: the server returns */
	blk_backend_close(p->mirror);
	if (!p->server_joined)
		pthread_join(p->server, NULL);
	close(p->server_fd);
	repl_free(p->sec);
	unlink(p->local_path);
	unlink(p->disk_path);
	free(p);
	return 0;
}

static void write_range(struct blk_backend *be, uint64_t off, uint64_t len, int byte)
{
	uint8_t *buf = malloc(len);
	struct iovec iov = { buf, len };

	memset(buf, byte, len);
	assert_int_equal(blk_backend_pwritev(be, &iov, 1, off), 0);
	free(buf);
}

/* Every byte of [off, off + len) of be equals byte (read into a sentinel-filled buffer). */
static void assert_range(struct blk_backend *be, uint64_t off, uint64_t len, int byte)
{
	uint8_t *buf = malloc(len), *want = malloc(len);
	struct iovec iov = { buf, len };

	memset(buf, SENTINEL, len);
	memset(want, byte, len);
	assert_int_equal(blk_backend_preadv(be, &iov, 1, off), 0);
	assert_memory_equal(buf, want, len);
	free(buf);
	free(want);
}

static void assert_file_range(const char *path, uint64_t off, uint64_t len, int byte)
{
	struct blk_backend *be;

	assert_int_equal(blk_file_open(path, true, &be), 0);
	assert_range(be, off, len, byte);
	blk_backend_close(be);
}

static void test_acknowledged_write_is_on_both_disks(void **state)
{
	struct pair *p = *state;

	write_range(p->mirror, 0, MIB, 0x22);
	assert_int_equal(blk_backend_flush(p->mirror), 0);
	assert_file_range(p->local_path, 0, MIB, 0x22);
	assert_file_range(p->disk_path, 0, MIB, 0x22);
	/* The secondary's guest runs the last checkpoint's state: it still sees
	 * the old data (kept in hidden) until the next checkpoint. */
	assert_range(repl_backend(p->sec), 0, MIB, 0x11);
	assert_int_equal(repl_do_checkpoint(p->sec), 0);
	assert_range(repl_backend(p->sec), 0, MIB, 0x22);
	assert_range(p->mirror, 0, MIB, 0x22); /* the primary reads its local image */
	assert_int_equal(repl_get_error(p->pri, NULL, 0), 0);
}

/* Primary writes after the last checkpoint are not part of the secondary's
 * state: a takeover must leave the disk as its guest saw it (checkpoint + its
 * own writes), not the primary's newer blocks. */
static void test_takeover_leaves_the_checkpoint_view_on_disk(void **state)
{
	struct pair *p = *state;

	write_range(p->mirror, 0, MIB, 0x22);
	assert_int_equal(repl_do_checkpoint(p->sec), 0);
	write_range(p->mirror, MIB, MIB, 0x44);           /* after the checkpoint */
	write_range(repl_backend(p->sec), 2 * MIB, MIB, 0x33); /* the secondary guest's own */
	assert_file_range(p->disk_path, MIB, MIB, 0x44);
	assert_int_equal(repl_stop(p->sec, true), 0);
	assert_int_equal(repl_stage(p->sec), REPL_STAGE_DONE);
	assert_file_range(p->disk_path, 0, MIB, 0x22);
	assert_file_range(p->disk_path, MIB, MIB, 0x11);
	assert_file_range(p->disk_path, 2 * MIB, MIB, 0x33);
	assert_file_range(p->disk_path, 3 * MIB, MIB, 0x11);
	/* The primary's late write now fails at the secondary (it took over) but
	 * never reaches the primary's guest as an error. */
	write_range(p->mirror, 3 * MIB, 512, 0x55);
	assert_true(repl_get_error(p->pri, NULL, 0) < 0);
	assert_file_range(p->disk_path, 3 * MIB, MIB, 0x11);
}

static void test_lost_link_never_fails_the_primary_guest(void **state)
{
	struct pair *p = *state;
	char why[200];

	nbd_server_stop(p->server_fd); /* the secondary's host is gone */
	pthread_join(p->server, NULL);
	p->server_joined = true;
	write_range(p->mirror, 0, MIB, 0x66);
	assert_int_equal(blk_backend_flush(p->mirror), 0);
	assert_file_range(p->local_path, 0, MIB, 0x66);
	assert_true(repl_get_error(p->pri, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "forwarding a write"));
	/* COLO ends: the mirror writes locally only, and nothing more is recorded. */
	blk_mirror_detach_replica(p->mirror);
	write_range(p->mirror, MIB, MIB, 0x77);
	assert_file_range(p->local_path, MIB, MIB, 0x77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acknowledged_write_is_on_both_disks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover_leaves_the_checkpoint_view_on_disk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lost_link_never_fails_the_primary_guest, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
