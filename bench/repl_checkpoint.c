/*
 * What emptying the overlays adds to a COLO checkpoint's pause, without a VM:
 * a secondary replication over a 1 GiB image whose overlays hold K dirty 4 KiB
 * blocks, K from the primary (copy before write: their pre-images in hidden)
 * and K from the secondary's guest (in active), then repl_do_checkpoint timed
 * (clear both maps, punch a hole over both files). The secondary's applied step
 * calls exactly this during the pause. Overlays in argv[1] (default /tmp), as
 * lockstep puts them in the image's directory. Prints `bench: NAME VALUE UNIT`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/file.h"
#include "block/overlay.h"
#include "block/replication.h"
#include "bench_clock.h"

#define DISK_SIZE (1ull << 30)
#define BLOCK 4096u
#define ROUNDS 15

static const unsigned dirty_blocks[] = { 0, 16, 256, 4096 };

static void die(const char *what)
{
	fprintf(stderr, "repl_checkpoint: %s failed\n", what);
	exit(1);
}

static uint64_t random_block_offset(uint64_t *rng)
{
	*rng ^= *rng << 13;
	*rng ^= *rng >> 7;
	*rng ^= *rng << 17;
	return *rng % (DISK_SIZE / BLOCK) * BLOCK;
}

/* k primary writes and k guest writes at random blocks: both overlays dirty. */
static void dirty_overlays(struct replication *r, unsigned k, uint64_t *rng)
{
	static uint8_t buf[BLOCK];

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned i = 0; i < k; i++) {
		struct iovec from_primary = { buf, BLOCK }, from_guest = { buf, BLOCK };

		if (repl_secondary_primary_write(r, &from_primary, 1, random_block_offset(rng)) < 0 ||
		    blk_backend_pwritev(repl_backend(r), &from_guest, 1, random_block_offset(rng)) < 0)
			die("a write");
	}
}

static void measure(struct replication *r, unsigned k, uint64_t *rng)
{
	uint64_t took[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		dirty_overlays(r, k, rng);
		uint64_t t = bench_now_ns();

		if (repl_do_checkpoint(r) < 0)
			die("repl_do_checkpoint");
		took[i] = bench_now_ns() - t;
	}
	qsort(took, ROUNDS, sizeof(took[0]), bench_cmp_u64);
	printf("bench: disk.checkpoint_empty.p50.blocks=%u %.1f us\n", k, (double)took[ROUNDS / 2] / 1000);
	printf("bench: disk.checkpoint_empty.max.blocks=%u %.1f us\n", k, (double)took[ROUNDS - 1] / 1000);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	char path[4096];
	struct blk_backend *disk;
	struct overlay *active, *hidden;
	struct replication *r;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int fd;

	snprintf(path, sizeof(path), "%s/lockstep-bench-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
		die("the image");
	close(fd);
	if (blk_file_open(path, false, &disk) || overlay_create(dir, DISK_SIZE, &active) ||
	    overlay_create(dir, DISK_SIZE, &hidden) || repl_secondary_create(disk, active, hidden, &r) ||
	    repl_start(r, REPL_MODE_SECONDARY))
		die("the secondary replication");
	for (size_t i = 0; i < sizeof(dirty_blocks) / sizeof(dirty_blocks[0]); i++)
		measure(r, dirty_blocks[i], &rng);
	repl_free(r);
	unlink(path);
	return 0;
}
