#!/usr/bin/env python3
"""COLO checkpoint benchmarks: primary pause per checkpoint against dirty pages.

For each size, the guest dirties N distinct pages every 5 ms; the benchmark asks
for checkpoints one at a time (x-colo-checkpoint) and reads the pause and its
phases from query-colo-stats. Prints `bench: NAME VALUE UNIT` lines.
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from harness import GUEST, QMP, Cleanup, VM  # noqa: E402

SIZES = tuple(int(x) for x in os.environ.get("COLO_BENCH_SIZES", "0,100,1000,10000,50000").split(","))
CHECKPOINTS = 30


def emit(name, value, unit):
    print(f"bench: {name} {value:.3f} {unit}", flush=True)


def wait_for(fn, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.005)
    raise RuntimeError("timeout")


def start_pair(cleanup, d, pages, port, mem="512M"):
    app = "app=hello" if pages == 0 else f"app=dirty,pages={pages},period=5"
    if pages == 0:
        app = "app=dirty,pages=1,period=100000"  # idle guest: nearly nothing dirty
    sec = VM(cleanup, d, ["secondary", "--listen", f"127.0.0.1:{port}", "--mem", mem,
                          "--qmp", f"{d}/s.sock"], name="sec", command=None)
    qs = QMP(f"{d}/s.sock")
    pri = VM(cleanup, d, ["primary", "--kernel", GUEST, "--mem", mem, "--peer", f"127.0.0.1:{port}",
                          "--checkpoint-delay", "3600000", "--qmp", f"{d}/p.sock", "--cmdline", app],
             name="pri", command=None)
    qp = QMP(f"{d}/p.sock")
    wait_for(lambda: qp.execute("query-colo-status")["return"]["mode"] == "primary")
    time.sleep(0.5)
    return qp, qs


def measure(qp):
    pauses, phases = [], {k: [] for k in ("precopy", "request", "stop", "ram", "device", "received", "apply")}
    pages0 = qp.execute("query-colo-stats")["return"]["pages"]
    for _ in range(CHECKPOINTS):
        n = qp.execute("query-colo-stats")["return"]["checkpoints"]
        qp.execute("x-colo-checkpoint")
        st = wait_for(lambda: (lambda s: s if s["checkpoints"] > n else None)(
            qp.execute("query-colo-stats")["return"]))
        pauses.append(st["pause-us"]["last"] / 1000)
        for k in phases:
            phases[k].append(st["last-phases-us"][k] / 1000)
        time.sleep(0.02)
    pages = (st["pages"] - pages0) / CHECKPOINTS
    return pauses, phases, pages


def bench_pause():
    port = 47600
    for size in SIZES:
        port += 1
        cleanup = Cleanup()
        try:
            with tempfile.TemporaryDirectory() as d:
                qp, qs = start_pair(cleanup, d, size, port)
                pauses, phases, pages = measure(qp)
                pauses.sort()
                tag = f"pages={size}"
                emit(f"colo.pause.p50.{tag}", statistics.median(pauses), "ms")
                emit(f"colo.pause.p99.{tag}", pauses[min(len(pauses) - 1, int(len(pauses) * 0.99))], "ms")
                emit(f"colo.pause.max.{tag}", pauses[-1], "ms")
                emit(f"colo.pages_per_checkpoint.{tag}", pages, "pages")
                for k, v in phases.items():
                    emit(f"colo.phase.{k}.p50.{tag}", statistics.median(v), "ms")
                emit(f"colo.checkpoints_per_s.{tag}", 1000 / max(statistics.mean(pauses), 0.001), "1/s")
        finally:
            cleanup.run()


def bench_rate():
    """Back-to-back periodic checkpoints of a guest dirtying 100 pages every 5 ms."""
    cleanup = Cleanup()
    try:
        with tempfile.TemporaryDirectory() as d:
            qp, qs = start_pair(cleanup, d, 100, 47690, mem="256M")
            qp.execute("migrate-set-parameters", {"x-checkpoint-delay": 1})
            n0 = qp.execute("query-colo-stats")["return"]["checkpoints"]
            time.sleep(3)
            n1 = qp.execute("query-colo-stats")["return"]["checkpoints"]
            emit("colo.checkpoints_per_s.sustained.pages=100", (n1 - n0) / 3, "1/s")
    finally:
        cleanup.run()


def main():
    bench_pause()
    bench_rate()


if __name__ == "__main__":
    main()
