/*
 * The NBD server (src/block/nbd_*.c) driven by hostile client bytes: the
 * whole session, handshake and transmission, runs over an I/O ops table that
 * reads the input in pieces of varying size (short reads) and swallows the
 * replies, against a 64 KiB memory backend. The session must end (the input
 * runs out at the latest) with a result the API allows and a message for any
 * failure, the greeting must come first, a read-only export must never change,
 * and ASan checks every byte touched.
 *
 * Input: byte 0 chooses the read piece size and whether the export is
 * read-only; the rest is what a client sends after the server's greeting.
 *
 *   make fuzz && build/fuzz/fuzz_nbd_server -max_total_time=60 fuzz/corpus/nbd_server
 *
 * Built with -DFUZZ_CORPUS_MAIN (no -fsanitize=fuzzer) it writes the seed corpus:
 *   cc -std=gnu11 -D_GNU_SOURCE -Isrc -DFUZZ_CORPUS_MAIN fuzz/fuzz_nbd_server.c \
 *      src/block/nbd_*.c src/block/mem.c src/util/netaddr.c -o /tmp/gen && /tmp/gen fuzz/corpus/nbd_server
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "block/mem.h"
#include "block/nbd_proto.h"
#include "block/nbd_server.h"

#define DISK_SIZE (64 * 1024)

struct feed {
	const uint8_t *p;
	size_t left;
	size_t piece;   /* most bytes one read hands out */
	bool greeted;   /* the server's first write was its greeting */
	int writes;
};

static ssize_t feed_read(void *opaque, void *buf, size_t len)
{
	struct feed *f = opaque;
	size_t n = len < f->piece ? len : f->piece;

	if (n > f->left)
		n = f->left;
	memcpy(buf, f->p, n);
	f->p += n;
	f->left -= n;
	return (ssize_t)n;
}

static ssize_t feed_write(void *opaque, const void *buf, size_t len)
{
	struct feed *f = opaque;

	if (f->writes++ == 0)
		f->greeted = len == NBD_SERVER_GREETING_LEN && nbd_get64(buf) == NBD_MAGIC_INIT;
	return (ssize_t)len;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static const struct nbd_io_ops feed_ops = { .read = feed_read, .write = feed_write };

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blk_backend *be;
	/* Two exports over one disk, the second in whole sectors (as replication's). */
	struct nbd_export exps[2] = { { .name = "disk0" }, { .name = "disk1", .min_block = 512 } };
	struct feed f;
	char err[256];
	int ret;

	if (size < 1 || blk_mem_create(DISK_SIZE, data[0] & 0x80, &be) < 0)
		return 0;
	exps[0].be = exps[1].be = be;
	f = (struct feed){ .p = data + 1, .left = size - 1, .piece = (size_t)(data[0] & 0x7f) + 1 };
	ret = nbd_server_serve_exports(&feed_ops, &f, exps, 2, err, sizeof(err));
	check(ret == 0 || ret == -ECONNRESET || ret == -EPROTO || ret == -EMSGSIZE || ret == -ENOENT);
	check(ret == 0 || err[0] != '\0'); /* every failure says why */
	check(f.greeted);
	check(!be->readonly || all_zero(blk_mem_data(be), DISK_SIZE));
	blk_backend_close(be);
	return 0;
}

#ifdef FUZZ_CORPUS_MAIN
#include "corpus_writer.h"

static void put16(uint16_t v)
{
	seed_put((uint8_t)(v >> 8));
	seed_put((uint8_t)v);
}

static void put32(uint32_t v)
{
	put16((uint16_t)(v >> 16));
	put16((uint16_t)v);
}

static void put64(uint64_t v)
{
	put32((uint32_t)(v >> 32));
	put32((uint32_t)v);
}

static void put_option(uint32_t opt, const void *data, uint32_t len)
{
	put64(NBD_MAGIC_OPT);
	put32(opt);
	put32(len);
	for (uint32_t i = 0; i < len; i++)
		seed_put(((const uint8_t *)data)[i]);
}

/* NBD_OPT_GO (or INFO) for name asking for the name and block sizes. */
static void put_go(uint32_t opt, const char *name)
{
	uint32_t n = (uint32_t)strlen(name);

	put64(NBD_MAGIC_OPT);
	put32(opt);
	put32(4 + n + 2 + 4);
	put32(n);
	for (uint32_t i = 0; i < n; i++)
		seed_put((uint8_t)name[i]);
	put16(2);
	put16(NBD_INFO_NAME);
	put16(NBD_INFO_BLOCK_SIZE);
}

static void put_request(uint16_t flags, uint16_t type, uint64_t offset, uint32_t len)
{
	put32(NBD_MAGIC_REQUEST);
	put16(flags);
	put16(type);
	put64(0x1122334455667788ull);
	put64(offset);
	put32(len);
}

static void put_go_session(uint8_t mode)
{
	seed_put(mode);
	put32(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	put_option(NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	put_option(NBD_OPT_LIST, NULL, 0);
	put_go(NBD_OPT_INFO, "disk0");
	put_go(NBD_OPT_GO, "disk0");
}

int main(int argc, char **argv)
{
	static const uint8_t payload[64] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	if (argc != 2)
		return 2;
	/* A full session: options, then write, read, flush, errors, disconnect. */
	put_go_session(0x7f);
	put_request(NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 512, sizeof(payload));
	for (size_t i = 0; i < sizeof(payload); i++)
		seed_put(payload[i]);
	put_request(0, NBD_CMD_READ, 512, 64);
	put_request(0, NBD_CMD_FLUSH, 0, 0);
	put_request(0, NBD_CMD_READ, DISK_SIZE - 8, 64);   /* past the end */
	put_request(0, NBD_CMD_WRITE, DISK_SIZE - 8, 16);  /* past the end, payload follows */
	for (int i = 0; i < 16; i++)
		seed_put(0xaa);
	put_request(0, NBD_CMD_TRIM, 0, 512);              /* not advertised */
	put_request(0, NBD_CMD_DISC, 0, 0);
	seed_save(argv[1], "go_session");

	/* Read-only export, one byte per read; a refused write. */
	put_go_session(0x80);
	put_request(0, NBD_CMD_WRITE, 0, 8);
	for (int i = 0; i < 8; i++)
		seed_put(0x55);
	put_request(0, NBD_CMD_READ, 0, 8);
	put_request(0, NBD_CMD_DISC, 0, 0);
	seed_save(argv[1], "readonly");

	/* The old way in: NBD_OPT_EXPORT_NAME, with the zeroes. */
	seed_put(0x10);
	put32(NBD_FLAG_C_FIXED_NEWSTYLE);
	put_option(NBD_OPT_EXPORT_NAME, "disk0", 5);
	put_request(0, NBD_CMD_READ, 0, 4096);
	put_request(0, NBD_CMD_DISC, 0, 0);
	seed_save(argv[1], "export_name");

	/* Wrong names, an unknown option, then abort. */
	seed_put(0x03);
	put32(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	put_go(NBD_OPT_GO, "nope");
	put_option(0x1234, "xyz", 3);
	put_option(NBD_OPT_ABORT, NULL, 0);
	seed_save(argv[1], "refused_abort");
	return 0;
}
#endif
