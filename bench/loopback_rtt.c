/*
 * The reference for a replicated write: DRBD protocol C acknowledges a write
 * once the peer has it, so its cost over a local write is about one round trip
 * of the data and an acknowledgement. This times that round trip on this
 * host's loopback TCP (the link of a pair run here): 4 KiB to a child process,
 * one byte back, one at a time. Prints `bench: NAME VALUE UNIT` lines.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"

#define BLOCK 4096
#define ROUNDS 2000

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void read_all(int fd, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0)
			die("read");
		got += (size_t)n;
	}
}

static void no_delay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("TCP_NODELAY");
}

/* The peer: takes each block, acknowledges it with one byte. */
static void peer(int listener)
{
	static char buf[BLOCK];
	int fd = accept(listener, NULL, NULL);

	if (fd < 0)
		die("accept");
	no_delay(fd);
	for (int i = 0; i < ROUNDS; i++) {
		read_all(fd, buf, BLOCK);
		if (write(fd, "k", 1) != 1)
			die("write");
	}
	_exit(0);
}

int main(void)
{
	static char buf[BLOCK];
	static uint64_t rtt[ROUNDS];
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0), fd;
	pid_t child;

	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(listener, 1) < 0 || getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
		die("listen");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0)
		peer(listener);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect");
	no_delay(fd);
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t t = bench_now_ns();

		if (write(fd, buf, BLOCK) != BLOCK)
			die("write");
		read_all(fd, buf, 1);
		rtt[i] = bench_now_ns() - t;
	}
	waitpid(child, NULL, 0);
	qsort(rtt, ROUNDS, sizeof(rtt[0]), bench_cmp_u64);
	printf("bench: net.loopback_rtt_4k.p50 %.1f us\n", (double)rtt[ROUNDS / 2] / 1000);
	printf("bench: net.loopback_rtt_4k.p99 %.1f us\n", (double)rtt[ROUNDS * 99 / 100] / 1000);
	return 0;
}
