/*
 * The NBD server (src/block/nbd_*.c) against real clients: libnbd for the
 * handshake, flags, block sizes, reads, writes, FUA, flush and the error
 * replies (EINVAL, ENOSPC, EPERM) after which the connection must still work;
 * raw bytes for hostile input (bad magic, truncated messages, oversized
 * options and writes, a peer that vanishes); and the command-line tools
 * nbdinfo and nbdcopy (qemu-img compare too where installed) over a Unix socket.
 * The server runs on its own thread over one end of a socketpair (or behind a
 * listening socket), as the replication layer will run it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <libnbd.h>

#include "block/file.h"
#include "block/mem.h"
#include "block/nbd_client.h"
#include "block/nbd_proto.h"
#include "block/nbd_server.h"
#include "block/nbd_service.h"

#define EXPORT "disk0"
#define DISK_SIZE (1024 * 1024)

/* ---- the server on a thread ---- */

struct server {
	int fd;        /* the server's end of the connection, or a listening socket */
	bool listener; /* serve each accepted connection in turn until stopped */
	struct nbd_export exp;
	pthread_t thread;
	int ret;       /* the (last) session's result */
	int sessions;
	char err[256];
};

static void *server_main(void *opaque)
{
	struct server *srv = opaque;

	if (!srv->listener) {
		srv->ret = nbd_server_serve_fd(srv->fd, &srv->exp, srv->err, sizeof(srv->err));
		srv->sessions = 1;
		return NULL;
	}
	for (;;) {
		int fd = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return NULL; /* nbd_server_stop on the listener */
		srv->ret = nbd_server_serve_fd(fd, &srv->exp, srv->err, sizeof(srv->err));
		srv->sessions++;
		close(fd);
	}
}

/* Starts serving be on a socketpair; returns the client's end. */
static int server_start_export(struct server *srv, struct blk_backend *be, uint32_t min_block)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*srv = (struct server){ .fd = sv[0], .exp = { .name = EXPORT, .be = be, .min_block = min_block } };
	assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
	return sv[1];
}

static int server_start(struct server *srv, struct blk_backend *be)
{
	return server_start_export(srv, be, 0);
}

/* Waits for the session to end; the server's fd is closed. */
static int server_join(struct server *srv)
{
	assert_int_equal(pthread_join(srv->thread, NULL), 0);
	close(srv->fd);
	return srv->ret;
}

/* ---- backends ---- */

static char tmpdir[] = "/tmp/nbd-test-XXXXXX";
static char image[256];

/* A DISK_SIZE image with a known pattern. */
static uint8_t pattern_at(uint64_t off) { return (uint8_t)(off * 7 + (off >> 12)); }

static void make_image(void)
{
	static uint8_t buf[DISK_SIZE];
	int fd;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pattern_at(i);
	fd = open(image, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
}

static struct blk_backend *open_image(bool readonly)
{
	struct blk_backend *be;

	make_image();
	assert_int_equal(blk_file_open(image, readonly, &be), 0);
	return be;
}

/* A memory disk whose writes at or past full_at fail with -ENOSPC, as a
 * full host file system would, and which counts its flushes. */
struct full_disk {
	struct blk_backend be; /* first */
	struct blk_backend *mem;
	uint64_t full_at;
	int flushes;
};

static int full_preadv(struct blk_backend *be, struct iovec *iov, int cnt, uint64_t off)
{
	return blk_backend_preadv(((struct full_disk *)be)->mem, iov, cnt, off);
}

static int full_pwritev(struct blk_backend *be, struct iovec *iov, int cnt, uint64_t off)
{
	struct full_disk *d = (struct full_disk *)be;

	if (off + iov[0].iov_len > d->full_at)
		return -ENOSPC;
	return blk_backend_pwritev(d->mem, iov, cnt, off);
}

static int full_flush(struct blk_backend *be)
{
	((struct full_disk *)be)->flushes++;
	return blk_backend_flush(((struct full_disk *)be)->mem);
}
static uint64_t full_size(struct blk_backend *be) { return blk_backend_size(((struct full_disk *)be)->mem); }

static void full_close(struct blk_backend *be)
{
	blk_backend_close(((struct full_disk *)be)->mem);
	free(be);
}

static const struct blk_backend_ops full_ops = {
	.kind = "full-test", .preadv = full_preadv, .pwritev = full_pwritev,
	.flush = full_flush, .size = full_size, .close = full_close,
};

static struct blk_backend *full_disk_create(uint64_t size, uint64_t full_at)
{
	struct full_disk *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->be.ops = &full_ops;
	d->full_at = full_at;
	assert_int_equal(blk_mem_create(size, false, &d->mem), 0);
	return &d->be;
}

/* ---- libnbd clients ---- */

static int connect_errno; /* of the last client_connect that failed */

static struct nbd_handle *client_connect(int fd, const char *name)
{
	struct nbd_handle *h = nbd_create();

	assert_non_null(h);
	assert_int_equal(nbd_set_export_name(h, name), 0);
	/* Let bad requests reach the server instead of being refused locally. */
	assert_int_equal(nbd_set_strict_mode(h, 0), 0);
	if (nbd_connect_socket(h, fd) < 0) {
		connect_errno = nbd_get_errno();
		nbd_close(h);
		return NULL;
	}
	return h;
}

static void client_disconnect(struct nbd_handle *h)
{
	assert_int_equal(nbd_shutdown(h, 0), 0);
	nbd_close(h);
}

/* The errno of a failed libnbd call, -1 if it succeeded. */
static int pread_errno(struct nbd_handle *h, void *buf, size_t len, uint64_t off)
{
	return nbd_pread(h, buf, len, off, 0) < 0 ? nbd_get_errno() : -1;
}

static int pwrite_errno(struct nbd_handle *h, const void *buf, size_t len, uint64_t off, uint32_t flags)
{
	return nbd_pwrite(h, buf, len, off, flags) < 0 ? nbd_get_errno() : -1;
}

static void expect_pattern(struct nbd_handle *h, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(nbd_pread(h, buf, len, off, 0), 0);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern_at(off + i))
			fail_msg("byte %zu of the read at %llu differs", i, (unsigned long long)off);
	free(buf);
}

/* ---- libnbd tests ---- */

static void test_export_facts(void **state)
{
	struct server srv;
	struct nbd_handle *h;

	(void)state;
	h = client_connect(server_start(&srv, open_image(false)), EXPORT);
	assert_non_null(h);
	assert_int_equal(nbd_get_size(h), DISK_SIZE);
	assert_int_equal(nbd_is_read_only(h), 0);
	assert_int_equal(nbd_can_flush(h), 1);
	assert_int_equal(nbd_can_fua(h), 1);
	assert_int_equal(nbd_can_multi_conn(h), 0);
	assert_int_equal(nbd_can_trim(h), 0);
	assert_int_equal(nbd_can_zero(h), 0);
	assert_int_equal(nbd_get_structured_replies_negotiated(h), 0);
	assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM), NBD_SERVER_MIN_BLOCK);
	assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED), NBD_SERVER_PREFERRED_BLOCK);
	assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM), NBD_SERVER_MAX_BLOCK);
	assert_string_equal(nbd_get_protocol(h), "newstyle-fixed");
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

static void test_read_write_flush(void **state)
{
	struct server srv;
	struct nbd_handle *h;
	uint8_t data[10000], back[sizeof(data)];
	int fd;

	(void)state;
	h = client_connect(server_start(&srv, open_image(false)), EXPORT);
	assert_non_null(h);
	expect_pattern(h, 0, 65536);
	expect_pattern(h, DISK_SIZE - 777, 777); /* unaligned, up to the end */
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(nbd_pwrite(h, data, sizeof(data), 12345, LIBNBD_CMD_FLAG_FUA), 0);
	assert_int_equal(nbd_pwrite(h, data, 1, DISK_SIZE - 1, 0), 0);
	assert_int_equal(nbd_flush(h, 0), 0);
	assert_int_equal(nbd_pread(h, back, sizeof(back), 12345, 0), 0);
	assert_memory_equal(back, data, sizeof(data));
	expect_pattern(h, 12345 + sizeof(data), 4096); /* nothing beyond the write changed */
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
	/* The bytes are in the image itself. */
	fd = open(image, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, back, sizeof(back), 12345), (ssize_t)sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	assert_int_equal(pread(fd, back, 1, DISK_SIZE - 1), 1);
	assert_int_equal(back[0], data[0]);
	close(fd);
}

static void test_out_of_range_then_usable(void **state)
{
	struct server srv;
	struct nbd_handle *h;
	static uint8_t buf[NBD_SERVER_MAX_BLOCK + 4096];

	(void)state;
	h = client_connect(server_start(&srv, open_image(false)), EXPORT);
	assert_non_null(h);
	assert_int_equal(pread_errno(h, buf, 4096, DISK_SIZE - 100), EINVAL);
	assert_int_equal(pread_errno(h, buf, 1, DISK_SIZE), EINVAL);
	assert_int_equal(pread_errno(h, buf, 1, UINT64_MAX), EINVAL);
	assert_int_equal(pread_errno(h, buf, sizeof(buf), 0), EINVAL); /* over the maximum */
	/* A write past the end gets ENOSPC, as the protocol asks; its payload is consumed. */
	assert_int_equal(pwrite_errno(h, buf, 4096, DISK_SIZE - 100, 0), ENOSPC);
	assert_int_equal(pwrite_errno(h, buf, sizeof(buf), 0, 0), EINVAL);
	expect_pattern(h, DISK_SIZE - 4096, 4096); /* still in step, nothing written */
	expect_pattern(h, 0, 4096);
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

static void test_read_only_export(void **state)
{
	struct server srv;
	struct nbd_handle *h;
	uint8_t buf[512] = { 0xee };

	(void)state;
	h = client_connect(server_start(&srv, open_image(true)), EXPORT);
	assert_non_null(h);
	assert_int_equal(nbd_is_read_only(h), 1);
	assert_int_equal(pwrite_errno(h, buf, sizeof(buf), 0, 0), EPERM);
	assert_int_equal(pwrite_errno(h, buf, sizeof(buf), 0, LIBNBD_CMD_FLAG_FUA), EPERM);
	assert_int_equal(nbd_flush(h, 0), 0);
	expect_pattern(h, 0, 4096); /* unchanged, and the connection works */
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

static void test_enospc_then_usable(void **state)
{
	struct server srv;
	struct nbd_handle *h;
	uint8_t buf[4096], back[4096];

	(void)state;
	memset(buf, 0x42, sizeof(buf));
	h = client_connect(server_start(&srv, full_disk_create(DISK_SIZE, 8192)), EXPORT);
	assert_non_null(h);
	assert_int_equal(pwrite_errno(h, buf, sizeof(buf), 65536, 0), ENOSPC);
	assert_int_equal(pwrite_errno(h, buf, sizeof(buf), 65536, LIBNBD_CMD_FLAG_FUA), ENOSPC);
	assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), 0); /* below the "full" mark */
	assert_int_equal(nbd_pread(h, back, sizeof(back), 0, 0), 0);
	assert_memory_equal(back, buf, sizeof(buf));
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

/* FUA means flushed before the reply; a plain write is not flushed. */
static void test_fua_flushes(void **state)
{
	struct server srv;
	struct nbd_handle *h;
	struct full_disk *d;
	uint8_t buf[512] = { 7 };

	(void)state;
	h = client_connect(server_start(&srv, full_disk_create(DISK_SIZE, DISK_SIZE)), EXPORT);
	assert_non_null(h);
	d = (struct full_disk *)srv.exp.be;
	assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 0, 0), 0);
	assert_int_equal(d->flushes, 0);
	assert_int_equal(nbd_pwrite(h, buf, sizeof(buf), 4096, LIBNBD_CMD_FLAG_FUA), 0);
	assert_int_equal(d->flushes, 1);
	assert_int_equal(nbd_flush(h, 0), 0);
	assert_int_equal(d->flushes, 2);
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

static void test_error_mapping(void **state)
{
	(void)state;
	assert_int_equal(nbd_error_from_errno(-EIO), NBD_EIO);
	assert_int_equal(nbd_error_from_errno(-ENOSPC), NBD_ENOSPC);
	assert_int_equal(nbd_error_from_errno(-EDQUOT), NBD_ENOSPC);
	assert_int_equal(nbd_error_from_errno(-EFBIG), NBD_ENOSPC);
	assert_int_equal(nbd_error_from_errno(-EROFS), NBD_EPERM);
	assert_int_equal(nbd_error_from_errno(-EPERM), NBD_EPERM);
	assert_int_equal(nbd_error_from_errno(-ENOMEM), NBD_ENOMEM);
	assert_int_equal(nbd_error_from_errno(-EINVAL), NBD_EINVAL);
	assert_int_equal(nbd_error_from_errno(-EOVERFLOW), NBD_EOVERFLOW);
	assert_int_equal(nbd_error_from_errno(-ESHUTDOWN), NBD_ESHUTDOWN);
	assert_int_equal(nbd_error_from_errno(-ENOTCONN), NBD_EIO); /* no NBD value: EIO */
}

static void test_wrong_export_refused(void **state)
{
	struct server srv;
	struct blk_backend *be;

	(void)state;
	assert_int_equal(blk_mem_create(4096, false, &be), 0);
	assert_null(client_connect(server_start(&srv, be), "nope"));
	assert_int_equal(connect_errno, ENOENT); /* libnbd's reading of NBD_REP_ERR_UNKNOWN */
	assert_int_equal(server_join(&srv), 0); /* libnbd aborts after NBD_REP_ERR_UNKNOWN */
	blk_backend_close(be);
}

static int collect_name(void *opaque, const char *name, const char *description)
{
	(void)description;
	snprintf(opaque, 64, "%s", name);
	return 0;
}

static void test_list_info_abort(void **state)
{
	struct server srv;
	struct nbd_handle *h = nbd_create();
	struct blk_backend *be;
	char listed[64] = "";

	(void)state;
	assert_int_equal(blk_mem_create(3 * 4096, true, &be), 0);
	assert_int_equal(nbd_set_opt_mode(h, true), 0);
	assert_int_equal(nbd_set_full_info(h, true), 0);
	assert_int_equal(nbd_connect_socket(h, server_start(&srv, be)), 0);
	assert_int_equal(nbd_opt_list(h, (nbd_list_callback){ .callback = collect_name, .user_data = listed }), 1);
	assert_string_equal(listed, EXPORT);
	assert_int_equal(nbd_set_export_name(h, EXPORT), 0);
	assert_int_equal(nbd_opt_info(h), 0);
	assert_int_equal(nbd_get_size(h), 3 * 4096);
	assert_int_equal(nbd_is_read_only(h), 1);
	char *canonical = nbd_get_canonical_export_name(h);
	assert_non_null(canonical);
	assert_string_equal(canonical, EXPORT);
	free(canonical);
	assert_int_equal(nbd_set_export_name(h, "other"), 0);
	assert_int_equal(nbd_opt_info(h), -1); /* unknown export: an error, haggling goes on */
	assert_int_equal(nbd_opt_abort(h), 0);
	nbd_close(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(be);
}

/* The default export ("") is the one export. */
static void test_default_export_name(void **state)
{
	struct server srv;
	struct blk_backend *be;
	struct nbd_handle *h;

	(void)state;
	assert_int_equal(blk_mem_create(8192, false, &be), 0);
	h = client_connect(server_start(&srv, be), "");
	assert_non_null(h);
	assert_int_equal(nbd_get_size(h), 8192);
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(be);
}

/* ---- raw clients: hostile and old-style input ---- */

static void raw_put(int fd, const void *p, size_t len)
{
	assert_int_equal(write(fd, p, len), (ssize_t)len);
}

/* Exactly len bytes, or fails the test; returns false at a clean end of stream. */
static bool raw_get(int fd, void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (uint8_t *)p + done, len - done);

		assert_true(n >= 0);
		if (n == 0) {
			assert_int_equal(done, 0);
			return false;
		}
		done += (size_t)n;
	}
	return true;
}

static void raw_greeting(int fd, uint32_t client_flags)
{
	uint8_t g[NBD_SERVER_GREETING_LEN], f[4];

	assert_true(raw_get(fd, g, sizeof(g)));
	assert_true(nbd_get64(g) == NBD_MAGIC_INIT);
	assert_true(nbd_get64(g + 8) == NBD_MAGIC_OPT);
	assert_int_equal(nbd_get16(g + 16), NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	nbd_put32(f, client_flags);
	raw_put(fd, f, sizeof(f));
}

static void raw_option(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[NBD_OPT_HDR_LEN] = { 0 };

	nbd_put64(h, NBD_MAGIC_OPT);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, len);
	raw_put(fd, h, sizeof(h));
	if (len)
		raw_put(fd, data, len);
}

/* Reads one option reply for opt; returns its type, skipping its data. */
static uint32_t raw_option_reply(int fd, uint32_t opt)
{
	uint8_t r[NBD_OPT_REPLY_HDR_LEN], data[256];
	uint32_t len;

	assert_true(raw_get(fd, r, sizeof(r)));
	assert_true(nbd_get64(r) == NBD_MAGIC_OPT_REPLY);
	assert_int_equal(nbd_get32(r + 8), opt);
	len = nbd_get32(r + 16);
	assert_true(len <= sizeof(data));
	if (len)
		assert_true(raw_get(fd, data, len));
	return nbd_get32(r + 12);
}

/* Old-style entry with NO_ZEROES: size and flags, then transmission. */
static void raw_enter(int fd, uint64_t size)
{
	uint8_t r[10];

	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	raw_option(fd, NBD_OPT_EXPORT_NAME, EXPORT, strlen(EXPORT));
	assert_true(raw_get(fd, r, sizeof(r)));
	assert_true(nbd_get64(r) == size);
	assert_int_equal(nbd_get16(r + 8), NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA);
}

static void raw_request(int fd, uint32_t magic, uint16_t flags, uint16_t type, uint64_t offset, uint32_t len)
{
	uint8_t q[NBD_REQUEST_LEN];

	nbd_put32(q, magic);
	nbd_put16(q + 4, flags);
	nbd_put16(q + 6, type);
	nbd_put64(q + 8, 0xc0ffee00u + type);
	nbd_put64(q + 16, offset);
	nbd_put32(q + 24, len);
	raw_put(fd, q, sizeof(q));
}

/* The simple reply's error; checks the cookie raw_request chose for type. */
static uint32_t raw_reply(int fd, uint16_t type)
{
	uint8_t r[NBD_SIMPLE_REPLY_LEN];

	assert_true(raw_get(fd, r, sizeof(r)));
	assert_int_equal(nbd_get32(r), NBD_MAGIC_SIMPLE_REPLY);
	assert_true(nbd_get64(r + 8) == 0xc0ffee00u + type);
	return nbd_get32(r + 4);
}

static struct blk_backend *mem_disk(void)
{
	struct blk_backend *be;

	assert_int_equal(blk_mem_create(65536, false, &be), 0);
	return be;
}

static void test_raw_export_name_with_zeroes(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t r[8 + 2 + NBD_OLD_ZEROES_LEN], zeroes[NBD_OLD_ZEROES_LEN] = { 0 };

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	raw_option(fd, NBD_OPT_EXPORT_NAME, EXPORT, strlen(EXPORT));
	assert_true(raw_get(fd, r, sizeof(r)));
	assert_true(nbd_get64(r) == 65536);
	assert_memory_equal(r + 10, zeroes, sizeof(zeroes));
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_DISC, 0, 0);
	assert_false(raw_get(fd, r, 1)); /* DISC: the server hangs up */
	close(fd);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

static void test_raw_export_name_unknown_ends(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t b;

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	raw_option(fd, NBD_OPT_EXPORT_NAME, "nope", 4);
	assert_int_equal(server_join(&srv), -ENOENT);
	assert_false(raw_get(fd, &b, 1));
	close(fd);
	blk_backend_close(srv.exp.be);
}

static void test_raw_unknown_options(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t bad_go[] = { 0, 0, 0, 200, 'x' }; /* name length beyond the data */
	uint8_t wrong_go[] = { 0, 0, 0, 4, 'n', 'o', 'p', 'e', 0, 0 };

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	raw_option(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	assert_int_equal(raw_option_reply(fd, NBD_OPT_STRUCTURED_REPLY), NBD_REP_ERR_UNSUP);
	raw_option(fd, NBD_OPT_STARTTLS, NULL, 0);
	assert_int_equal(raw_option_reply(fd, NBD_OPT_STARTTLS), NBD_REP_ERR_UNSUP);
	raw_option(fd, 0x7777, "junk", 4);
	assert_int_equal(raw_option_reply(fd, 0x7777), NBD_REP_ERR_UNSUP);
	raw_option(fd, NBD_OPT_GO, bad_go, sizeof(bad_go));
	assert_int_equal(raw_option_reply(fd, NBD_OPT_GO), NBD_REP_ERR_INVALID);
	raw_option(fd, NBD_OPT_GO, wrong_go, sizeof(wrong_go));
	assert_int_equal(raw_option_reply(fd, NBD_OPT_GO), NBD_REP_ERR_UNKNOWN);
	raw_option(fd, NBD_OPT_LIST, "x", 1);
	assert_int_equal(raw_option_reply(fd, NBD_OPT_LIST), NBD_REP_ERR_INVALID);
	raw_option(fd, NBD_OPT_LIST, NULL, 0); /* still in step */
	assert_int_equal(raw_option_reply(fd, NBD_OPT_LIST), NBD_REP_SERVER);
	assert_int_equal(raw_option_reply(fd, NBD_OPT_LIST), NBD_REP_ACK);
	raw_option(fd, NBD_OPT_ABORT, NULL, 0);
	assert_int_equal(raw_option_reply(fd, NBD_OPT_ABORT), NBD_REP_ACK);
	close(fd);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

static void test_raw_bad_client_flags(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE | 0x100);
	assert_int_equal(server_join(&srv), -EPROTO);
	close(fd);
	blk_backend_close(srv.exp.be);
}

static void test_raw_oversized_option(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t h[NBD_OPT_HDR_LEN], b;

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	nbd_put64(h, NBD_MAGIC_OPT);
	nbd_put32(h + 8, NBD_OPT_GO);
	nbd_put32(h + 12, 0x40000000); /* 1 GiB of option data announced */
	raw_put(fd, h, sizeof(h));
	assert_int_equal(raw_option_reply(fd, NBD_OPT_GO), NBD_REP_ERR_TOO_BIG);
	assert_false(raw_get(fd, &b, 1)); /* then the server hangs up */
	close(fd);
	assert_int_equal(server_join(&srv), -EMSGSIZE);
	assert_non_null(strstr(srv.err, "option"));
	blk_backend_close(srv.exp.be);
}

static void test_raw_truncated_handshake(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t h[NBD_OPT_HDR_LEN] = { 0 };

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	nbd_put64(h, NBD_MAGIC_OPT);
	raw_put(fd, h, 9); /* then the client dies */
	close(fd);
	assert_int_equal(server_join(&srv), -ECONNRESET);
	assert_non_null(strstr(srv.err, "in the middle of an option header"));
	blk_backend_close(srv.exp.be);
}

static void test_raw_truncated_option_data(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t h[NBD_OPT_HDR_LEN] = { 0 };

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	nbd_put64(h, NBD_MAGIC_OPT);
	nbd_put32(h + 8, NBD_OPT_GO);
	nbd_put32(h + 12, 100);
	raw_put(fd, h, sizeof(h));
	raw_put(fd, "\0\0\0\5dis", 7);
	close(fd);
	assert_int_equal(server_join(&srv), -ECONNRESET);
	assert_non_null(strstr(srv.err, "option data"));
	blk_backend_close(srv.exp.be);
}

static void test_raw_bad_option_magic(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t h[NBD_OPT_HDR_LEN] = { 'N', 'O', 'T', 'M', 'A', 'G', 'I', 'C' };

	(void)state;
	raw_greeting(fd, NBD_FLAG_C_FIXED_NEWSTYLE);
	raw_put(fd, h, sizeof(h));
	assert_int_equal(server_join(&srv), -EPROTO);
	close(fd);
	blk_backend_close(srv.exp.be);
}

static void test_raw_bad_request_magic(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t b;

	(void)state;
	raw_enter(fd, 65536);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_FLUSH, 0, 0);
	assert_int_equal(raw_reply(fd, NBD_CMD_FLUSH), 0);
	raw_request(fd, 0x12345678, 0, NBD_CMD_READ, 0, 512);
	assert_false(raw_get(fd, &b, 1)); /* dropped, no reply */
	close(fd);
	assert_int_equal(server_join(&srv), -EPROTO);
	assert_non_null(strstr(srv.err, "magic"));
	blk_backend_close(srv.exp.be);
}

static void test_raw_bad_requests_answered(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t r[NBD_SIMPLE_REPLY_LEN + 512], payload[512];

	(void)state;
	memset(payload, 0x33, sizeof(payload));
	raw_enter(fd, 65536);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_TRIM, 0, 512);      /* not advertised */
	assert_int_equal(raw_reply(fd, NBD_CMD_TRIM), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, 99, 0, 0);                  /* unknown */
	assert_int_equal(raw_reply(fd, 99), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, NBD_CMD_FLAG_DF, NBD_CMD_READ, 0, 512); /* flag not offered */
	assert_int_equal(raw_reply(fd, NBD_CMD_READ), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_FLUSH, 0, 4);      /* flush with a length */
	assert_int_equal(raw_reply(fd, NBD_CMD_FLUSH), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE, 0, sizeof(payload));
	raw_put(fd, payload, sizeof(payload));                           /* refused, payload consumed */
	assert_int_equal(raw_reply(fd, NBD_CMD_WRITE), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_READ, 0, 512);     /* still in step, disk untouched */
	assert_true(raw_get(fd, r, sizeof(r)));
	assert_int_equal(nbd_get32(r + 4), 0);
	assert_int_equal(r[NBD_SIMPLE_REPLY_LEN], 0);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_DISC, 0, 0);
	close(fd);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);
}

/* An export that works in 512-byte sectors (the replication's) says so, and
 * a request that is not whole sectors is refused, its write payload consumed. */
static void test_min_block_advertised_and_enforced(void **state)
{
	struct server srv;
	struct nbd_handle *h = client_connect(server_start_export(&srv, mem_disk(), 512), EXPORT);
	uint8_t r[NBD_SIMPLE_REPLY_LEN + 512], payload[512];
	int fd;

	(void)state;
	assert_non_null(h);
	assert_int_equal(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM), 512);
	client_disconnect(h);
	assert_int_equal(server_join(&srv), 0);
	blk_backend_close(srv.exp.be);

	memset(payload, 0x44, sizeof(payload));
	fd = server_start_export(&srv, mem_disk(), 512);
	raw_enter(fd, 65536);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_READ, 100, 512);
	assert_int_equal(raw_reply(fd, NBD_CMD_READ), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_WRITE, 0, 100);
	raw_put(fd, payload, 100);
	assert_int_equal(raw_reply(fd, NBD_CMD_WRITE), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_WRITE, 512, 512);
	raw_put(fd, payload, 512);
	assert_int_equal(raw_reply(fd, NBD_CMD_WRITE), 0);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_READ, 0, 512);   /* still in step, untouched */
	assert_true(raw_get(fd, r, sizeof(r)));
	assert_int_equal(nbd_get32(r + 4), 0);
	assert_int_equal(r[NBD_SIMPLE_REPLY_LEN], 0);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_DISC, 0, 0);
	close(fd);
	assert_int_equal(server_join(&srv), 0);
	assert_int_equal(blk_mem_data(srv.exp.be)[512], 0x44);
	blk_backend_close(srv.exp.be);
}

static void test_bad_min_block_refused(void **state)
{
	struct nbd_export exp = { .name = EXPORT, .be = mem_disk(), .min_block = 768 };
	char err[160];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(nbd_server_serve_fd(sv[0], &exp, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a power of two"));
	close(sv[0]);
	close(sv[1]);
	blk_backend_close(exp.be);
}

/* A write longer than the maximum: refused with EINVAL after its payload is
 * read and dropped, so the next request is understood. */
static void test_raw_oversized_write_consumed(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint32_t len = NBD_SERVER_MAX_BLOCK + 1;
	uint8_t *payload = calloc(1, len);

	(void)state;
	assert_non_null(payload);
	raw_enter(fd, 65536);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_WRITE, 0, len);
	raw_put(fd, payload, len);
	assert_int_equal(raw_reply(fd, NBD_CMD_WRITE), NBD_EINVAL);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_FLUSH, 0, 0);
	assert_int_equal(raw_reply(fd, NBD_CMD_FLUSH), 0);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_DISC, 0, 0);
	close(fd);
	assert_int_equal(server_join(&srv), 0);
	free(payload);
	blk_backend_close(srv.exp.be);
}

static void test_raw_peer_gone_mid_write(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());
	uint8_t part[100] = { 1 };

	(void)state;
	raw_enter(fd, 65536);
	raw_request(fd, NBD_MAGIC_REQUEST, 0, NBD_CMD_WRITE, 0, 4096);
	raw_put(fd, part, sizeof(part));
	close(fd);
	assert_int_equal(server_join(&srv), -ECONNRESET);
	assert_non_null(strstr(srv.err, "payload"));
	assert_int_equal(blk_mem_data(srv.exp.be)[0], 0); /* nothing half-written */
	blk_backend_close(srv.exp.be);
}

/* nbd_server_stop from another thread ends a session waiting for a request. */
static void test_stop_from_other_thread(void **state)
{
	struct server srv;
	int fd = server_start(&srv, mem_disk());

	(void)state;
	raw_enter(fd, 65536);
	nbd_server_stop(srv.fd);
	assert_int_equal(server_join(&srv), -ECONNRESET);
	close(fd);
	blk_backend_close(srv.exp.be);
}

/* ---- command-line tools over a Unix socket ---- */

static char sock_path[300];
static char uri[400];

static void listener_start(struct server *srv, struct blk_backend *be)
{
	char addr[320], err[256];

	snprintf(sock_path, sizeof(sock_path), "%s/nbd.sock", tmpdir);
	snprintf(addr, sizeof(addr), "unix:%s", sock_path);
	snprintf(uri, sizeof(uri), "nbd+unix:///%s?socket=%s", EXPORT, sock_path);
	*srv = (struct server){ .listener = true, .exp = { .name = EXPORT, .be = be } };
	srv->fd = nbd_server_listen(addr, err, sizeof(err));
	if (srv->fd < 0)
		fail_msg("listen: %s", err);
	assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
}

static void listener_stop(struct server *srv)
{
	nbd_server_stop(srv->fd);
	server_join(srv);
	unlink(sock_path);
}

/* Runs a shell command; its exit status. Output goes to out (if not NULL). */
static int run(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	assert_non_null(p);
	if (out) {
		n = fread(out, 1, outlen - 1, p);
		out[n] = '\0';
	} else {
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_nbdinfo(void **state)
{
	struct server srv;
	char cmd[600], out[8192];

	(void)state;
	listener_start(&srv, open_image(false));
	snprintf(cmd, sizeof(cmd), "nbdinfo --json '%s' 2>&1", uri);
	assert_int_equal(run(cmd, out, sizeof(out)), 0);
	if (!strstr(out, "\"export-size\": 1048576") || !strstr(out, "\"export-name\": \"disk0\"") ||
	    !strstr(out, "\"is_read_only\": false") || !strstr(out, "\"can_flush\": true"))
		fail_msg("nbdinfo output lacks the export's facts:\n%s", out);
	snprintf(cmd, sizeof(cmd), "nbdinfo --list --json 'nbd+unix:///?socket=%s' 2>&1", sock_path);
	assert_int_equal(run(cmd, out, sizeof(out)), 0);
	if (!strstr(out, "\"export-name\": \"disk0\"") || !strstr(out, "\"export-size\": 1048576"))
		fail_msg("nbdinfo --list does not show the export:\n%s", out);
	listener_stop(&srv);
	assert_true(srv.sessions >= 1);
	assert_int_equal(srv.ret, 0);
	blk_backend_close(srv.exp.be);
}

static void test_nbdcopy_equals_image(void **state)
{
	struct server srv;
	char cmd[2048], copy[320];

	(void)state;
	listener_start(&srv, open_image(true));
	snprintf(copy, sizeof(copy), "%s/copy.img", tmpdir);
	snprintf(cmd, sizeof(cmd), "nbdcopy '%s' '%s' 2>&1 && cmp '%s' '%s' 2>&1", uri, copy, image, copy);
	assert_int_equal(run(cmd, NULL, 0), 0);
	unlink(copy);
	if (access("/usr/bin/qemu-img", X_OK) == 0) { /* a second, independent client */
		snprintf(cmd, sizeof(cmd), "qemu-img compare -f raw '%s' '%s' 2>&1", image, uri);
		assert_int_equal(run(cmd, NULL, 0), 0);
	}
	listener_stop(&srv);
	assert_true(srv.sessions >= 1);
	assert_int_equal(srv.ret, 0);
	blk_backend_close(srv.exp.be);
}

/* nbd-server-start's server: two exports, each client picks one; stop ends a
 * client still connected; the socket path is free again afterwards. */
static void test_service_with_two_exports(void **state)
{
	struct blk_backend *a, *b, *link;
	struct nbd_export ea = { .name = "disk0" }, eb = { .name = "disk1", .min_block = 512 };
	struct nbd_service *svc;
	char addr[320], err[256], cmd[600], out[8192], byte;
	struct iovec iov = { &byte, 1 };
	int fd;

	(void)state;
	assert_int_equal(blk_mem_create(4096, false, &a), 0);
	assert_int_equal(blk_mem_create(8192, false, &b), 0);
	ea.be = a;
	eb.be = b;
	snprintf(sock_path, sizeof(sock_path), "%s/svc.sock", tmpdir);
	snprintf(addr, sizeof(addr), "unix:%s", sock_path);
	svc = nbd_service_start(addr, err, sizeof(err));
	if (!svc)
		fail_msg("nbd_service_start: %s", err);
	assert_int_equal(nbd_service_add_export(svc, &ea), 0);
	assert_int_equal(nbd_service_add_export(svc, &eb), 0);
	assert_int_equal(nbd_service_add_export(svc, &ea), -EEXIST);
	assert_true(nbd_service_has_export(svc, "disk1"));
	snprintf(cmd, sizeof(cmd), "nbdinfo --list --json 'nbd+unix:///?socket=%s' 2>&1", sock_path);
	assert_int_equal(run(cmd, out, sizeof(out)), 0);
	if (!strstr(out, "\"export-name\": \"disk0\"") || !strstr(out, "\"export-name\": \"disk1\"") ||
	    !strstr(out, "\"export-size\": 8192"))
		fail_msg("nbdinfo --list does not show both exports:\n%s", out);
	/* A client of disk1 sees disk1's size; one of an unknown export is refused. */
	assert_int_equal(blk_nbd_connect_addr(addr, "disk1", 2000, &link, &fd, err, sizeof(err)), 0);
	assert_int_equal(blk_backend_size(link), 8192);
	assert_int_not_equal(blk_nbd_connect_addr(addr, "disk9", 2000, &b, &fd, err, sizeof(err)), 0);
	assert_int_equal(fd, -1);
	/* Stop with the disk1 client connected: its connection ends, the path is freed. */
	nbd_service_stop(svc);
	assert_int_not_equal(blk_backend_preadv(link, &iov, 1, 0), 0);
	blk_backend_close(link);
	assert_int_not_equal(access(sock_path, F_OK), 0);
	svc = nbd_service_start(addr, err, sizeof(err));
	assert_non_null(svc);
	nbd_service_stop(svc);
	blk_backend_close(a);
	blk_backend_close(eb.be);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(image, sizeof(image), "%s/disk.img", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(image);
	rmdir(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_facts),
		cmocka_unit_test(test_read_write_flush),
		cmocka_unit_test(test_out_of_range_then_usable),
		cmocka_unit_test(test_read_only_export),
		cmocka_unit_test(test_enospc_then_usable),
		cmocka_unit_test(test_fua_flushes),
		cmocka_unit_test(test_error_mapping),
		cmocka_unit_test(test_wrong_export_refused),
		cmocka_unit_test(test_list_info_abort),
		cmocka_unit_test(test_default_export_name),
		cmocka_unit_test(test_raw_export_name_with_zeroes),
		cmocka_unit_test(test_raw_export_name_unknown_ends),
		cmocka_unit_test(test_raw_unknown_options),
		cmocka_unit_test(test_raw_bad_client_flags),
		cmocka_unit_test(test_raw_oversized_option),
		cmocka_unit_test(test_raw_truncated_handshake),
		cmocka_unit_test(test_raw_truncated_option_data),
		cmocka_unit_test(test_raw_bad_option_magic),
		cmocka_unit_test(test_raw_bad_request_magic),
		cmocka_unit_test(test_raw_bad_requests_answered),
		cmocka_unit_test(test_min_block_advertised_and_enforced),
		cmocka_unit_test(test_bad_min_block_refused),
		cmocka_unit_test(test_raw_oversized_write_consumed),
		cmocka_unit_test(test_raw_peer_gone_mid_write),
		cmocka_unit_test(test_stop_from_other_thread),
		cmocka_unit_test(test_nbdinfo),
		cmocka_unit_test(test_nbdcopy_equals_image),
		cmocka_unit_test(test_service_with_two_exports),
	};

	signal(SIGPIPE, SIG_IGN); /* a test's raw client may write to a closed server */
	return cmocka_run_group_tests(tests, setup, teardown);
}
