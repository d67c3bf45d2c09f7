#!/usr/bin/env python3
"""VM state benchmarks (docs/vmstate.md). Prints one figure per line: `bench: NAME VALUE UNIT`.

- snapshot save and restore time against RAM size, with the guest dirtying a quarter of it;
- live migration total time and downtime against the guest's dirty rate;
- RAM pages per second the stream carries over loopback, beside memcpy on the same machine.

Run alone (`/usr/bin/python3 bench/state.py`) or from bench/run.py (`make bench`).
Figures, not assertions: the machines are shared and noisy, and KVM here is nested.
"""
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import emit, machine  # noqa: E402  (run.py also puts the harness on sys.path)
from harness import GUEST, QMP, VM, Cleanup  # noqa: E402

PAGE = 4096


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(pred, timeout, what, step=0.001):
    """Returns pred()'s first true value, checking every `step` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"timeout waiting for {what}")
        time.sleep(step)


def dirty_cmdline(pages, period_ms):
    return f"app=dirty,pages={pages},period={period_ms}"


# ---- snapshots ----

def restore_once(cleanup, d, snap, mem, name):
    """Start of `lockstep run --restore` to (QMP says running, first guest line after the restore)."""
    sock = os.path.join(d, f"{name}.sock")
    t0 = time.monotonic()
    vm = VM(cleanup, d, ["--restore", snap, "--mem", mem, "--qmp", sock], name=name)
    # The monitor socket appears once the state is loaded; the vCPU starts right after.
    poll(lambda: os.path.exists(sock) or vm.proc.poll() is not None, 120, "the restored VM's socket")
    if vm.proc.poll() is not None:
        raise RuntimeError(f"restore failed: {vm.stderr()}")
    q = QMP(sock, timeout=30)
    poll(lambda: q.execute("query-status")["return"]["status"] == "running", 30, "running")
    to_running = time.monotonic() - t0
    poll(lambda: "dirty: counter=" in vm.console(), 30, "guest output after the restore")
    to_output = time.monotonic() - t0
    q.close()
    vm.kill()
    return to_running, to_output


def bench_snapshot(sizes=(("64M", 64), ("256M", 256), ("1G", 1024)), period_ms=20, runs=3):
    for mem, mib in sizes:
        pages = mib * (1 << 20) // PAGE // 4  # the guest rewrites a quarter of its RAM every period
        cleanup = Cleanup()
        try:
            with tempfile.TemporaryDirectory() as d:
                sock = os.path.join(d, "src.sock")
                src = VM(cleanup, d, ["--kernel", GUEST, "--mem", mem, "--qmp", sock,
                                      "--cmdline", dirty_cmdline(pages, period_ms)], name="src")
                src.wait_console(r"dirty: counter=3\b", timeout=120)
                q = QMP(sock)
                saves = []
                for i in range(runs):
                    snap = os.path.join(d, f"vm{i}.snap")
                    t0 = time.monotonic()
                    r = q.execute("snapshot-save", {"file": snap})
                    saves.append(time.monotonic() - t0)
                    if r != {"return": {}}:
                        raise RuntimeError(f"snapshot-save: {r}")
                size = os.path.getsize(snap)
                q.close()
                src.kill()  # the restores get the machine to themselves
                results = [restore_once(cleanup, d, snap, mem, f"restored{i}") for i in range(runs)]
            save = statistics.median(saves)
            emit(f"state.snapshot.save.mem={mem}", save * 1e3, "ms")
            emit(f"state.snapshot.save_rate.mem={mem}", size / save / 1e6, "MB/s")
            emit(f"state.snapshot.file_size.mem={mem}", size / (1 << 20), "MiB")
            emit(f"state.snapshot.restore_to_running.mem={mem}",
                 statistics.median(r[0] for r in results) * 1e3, "ms")
            emit(f"state.snapshot.restore_to_guest_output.mem={mem}",
                 statistics.median(r[1] for r in results) * 1e3, "ms")
        finally:
            cleanup.run()


# ---- live migration ----

def migrate_once(cleanup, d, mem, cmdline, ready, params=None, ready_timeout=60, timeout=300):
    """Runs a source with `cmdline`, waits for `ready` on its console, migrates; query-migrate's answer."""
    uri = f"tcp:127.0.0.1:{free_port()}"
    ssock, dsock = os.path.join(d, "src.sock"), os.path.join(d, "dst.sock")
    src = VM(cleanup, d, ["--kernel", GUEST, "--mem", mem, "--qmp", ssock, "--cmdline", cmdline],
             name="src")
    dst = VM(cleanup, d, ["--incoming", uri, "--mem", mem, "--qmp", dsock], name="dst")
    qd = QMP(dsock)  # the greeting comes from the event loop: the destination listens by then
    src.wait_console(ready, timeout=ready_timeout)
    qs = QMP(ssock)
    if params:
        qs.execute("migrate-set-parameters", params)
    r = qs.execute("migrate", {"uri": uri})
    if r != {"return": {}}:
        raise RuntimeError(f"migrate: {r}")
    r = poll(lambda: (lambda m: m if m.get("status") in ("completed", "failed", "cancelled") else None)(
        qs.execute("query-migrate")["return"]), timeout, "the migration", step=0.01)
    if r["status"] != "completed":
        raise RuntimeError(f"migration {r['status']}: {r.get('error-desc')}")
    # The guest goes on at the destination.
    poll(lambda: qd.execute("query-status")["return"]["status"] == "running", 30,
         "the destination to run", step=0.01)
    qs.close()
    qd.close()
    src.kill()
    dst.kill()
    return r


def bench_migrate_dirty_rates(mem="256M",
                              rates=((16, 100), (256, 20), (1024, 10), (4096, 10), (16384, 10)),
                              bandwidths=((0, "unlimited"), (125000000, "1Gbit"))):
    """(pages, period ms): the guest rewrites `pages` pages every period. Over plain loopback,
    and capped at 1 Gbit/s (max-bandwidth), where the dirty rate can outrun the link."""
    for bw, bw_name in bandwidths:
        for pages, period in rates:
            cleanup = Cleanup()
            try:
                with tempfile.TemporaryDirectory() as d:
                    r = migrate_once(cleanup, d, mem, dirty_cmdline(pages, period),
                                     r"dirty: counter=5\b", params={"max-bandwidth": bw})
            finally:
                cleanup.run()
            tag = f"mem={mem},bw={bw_name},dirty={pages}x{period}ms"
            emit(f"state.migrate.total_time.{tag}", r["total-time"], "ms")
            emit(f"state.migrate.downtime.{tag}", r["downtime"], "ms")
            emit(f"state.migrate.dirty_rounds.{tag}", r["ram"]["dirty-sync-count"], "rounds")
            emit(f"state.migrate.guest_dirty_rate.{tag}", r["ram"]["dirty-pages-rate"], "pages/s")
            emit(f"state.migrate.transferred.{tag}", r["ram"]["transferred"] / (1 << 20), "MiB")


def bench_migrate_throughput(mem="1G", pages=196608):
    """A guest that wrote `pages` pages once (768 MiB) and sleeps: the stream's own speed."""
    cleanup = Cleanup()
    try:
        with tempfile.TemporaryDirectory() as d:
            r = migrate_once(cleanup, d, mem, dirty_cmdline(pages, 3600000), r"dirty: counter=1\b",
                             ready_timeout=300)
    finally:
        cleanup.run()
    secs = r["total-time"] / 1e3
    emit(f"state.migrate.stream_pages_per_s.mem={mem}", r["ram"]["normal"] / secs, "pages/s")
    emit(f"state.migrate.stream_rate.mem={mem}", r["ram"]["transferred"] / secs / 1e6, "MB/s")
    emit(f"state.migrate.total_time.mem={mem},idle={pages}pages", r["total-time"], "ms")
    emit(f"state.migrate.downtime.mem={mem},idle={pages}pages", r["downtime"], "ms")


MEMCPY_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Bytes/s of memcpy between touched buffers, and into fresh pages of a memfd
 * (what a migration destination or a restore does: every page is allocated
 * and zeroed by the kernel before the copy lands). */
int main(void)
{
	size_t n = 256u << 20;
	char *a = malloc(n), *b = malloc(n), *m;
	int reps = 8, fd;
	double t0, hot, cold;

	if (!a || !b)
		return 1;
	memset(a, 1, n);
	memset(b, 2, n);
	t0 = now();
	for (int i = 0; i < reps; i++) {
		memcpy(b, a, n);
		a[i * 4096] ^= b[n - 1 - i];
	}
	hot = reps * (double)n / (now() - t0);
	fd = memfd_create("bench", 0);
	if (fd < 0 || ftruncate(fd, (off_t)n) < 0)
		return 1;
	m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	t0 = now();
	memcpy(m, a, n);
	cold = n / (now() - t0);
	printf("%f %f %d\n", hot, cold, b[7] + m[9]);
	return 0;
}
"""


def bench_memcpy():
    """memcpy on this machine (a C program compiled on the fly), else dd's copy rate."""
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "memcpy.c"), os.path.join(d, "memcpy")
        with open(src, "w") as f:
            f.write(MEMCPY_C)
        try:
            subprocess.run(["cc", "-O2", src, "-o", exe], check=True, capture_output=True)
            hot, cold = map(float, subprocess.run([exe], check=True, capture_output=True,
                                                  text=True).stdout.split()[:2])
        except (OSError, subprocess.CalledProcessError, ValueError):
            out = subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=4096"],
                                 capture_output=True, text=True).stderr
            m = re.search(r"(\d+) bytes.*copied, ([\d.]+) s", out)
            emit("host.dd_rate", int(m.group(1)) / float(m.group(2)) / 1e6, "MB/s")
            return
    emit("host.memcpy_rate", hot / 1e6, "MB/s")
    emit("host.memcpy_pages_per_s", hot / PAGE, "pages/s")
    emit("host.memcpy_into_fresh_memfd_rate", cold / 1e6, "MB/s")
    emit("host.memcpy_into_fresh_memfd_pages_per_s", cold / PAGE, "pages/s")


def main():
    for fn in (bench_snapshot, bench_migrate_dirty_rates, bench_migrate_throughput, bench_memcpy):
        try:
            fn()
        except Exception as e:
            print(f"bench: {fn.__name__} failed: {e}", file=sys.stderr)


if __name__ == "__main__":
    machine()
    main()
