#!/usr/bin/env python3
"""What COLO costs a client: request latency and stream throughput through a
protected pair, beside the same guest running alone. Prints `bench: NAME VALUE UNIT`.

    colo_net.pingpong.{plain,colo}.p50/p99   64-byte TCP echo round trip, ms
    colo_net.redis_ping.{plain,colo}.p50/p99 redis-benchmark -t ping -c 1, ms
    colo_net.stream.{plain,colo}             one HTTP download, MB/s (and the ratio)
    colo.compare.*                            the comparator alone (build/bench/compare_rate)
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from guest_net import GUEST_MAC  # noqa: E402
from harness import GUEST, QMP, VM, Cleanup  # noqa: E402
from run import emit  # noqa: E402
from test_colo_network import PairNet  # noqa: E402

PINGPONG = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg = b"x" * 64
lat = []
for i in range(int(sys.argv[2])):
    t = time.perf_counter()
    s.sendall(msg)
    got = b""
    while len(got) < 64:
        got += s.recv(64 - len(got))
    lat.append((time.perf_counter() - t) * 1000)
print(" ".join(f"{x:.4f}" for x in lat))
"""


def start(cleanup, d, net, colo, port):
    cmdline = f"app=serve,ip={net.GUEST_IP}/24,services=echo+kv+http"
    if not colo:
        VM(cleanup, d, ["--kernel", GUEST, "--mem", "256M", "--net", f"tap=tap-pri,mac={GUEST_MAC}",
                        "--cmdline", cmdline], netns=net.name, name="plain")
        time.sleep(1.5)
        return None
    VM(cleanup, d, ["secondary", "--listen", f"127.0.0.1:{port}", "--mem", "256M", "--net",
                    f"tap=tap-sec,mac={GUEST_MAC}", "--qmp", f"{d}/s.sock"], netns=net.name,
       name="sec", command=None)
    qs = QMP(f"{d}/s.sock")
    VM(cleanup, d, ["primary", "--kernel", GUEST, "--mem", "256M", "--net", f"tap=tap-pri,mac={GUEST_MAC}",
                    "--peer", f"127.0.0.1:{port}", "--checkpoint-delay", "2000", "--qmp", f"{d}/p.sock",
                    "--cmdline", cmdline], netns=net.name, name="pri", command=None)
    deadline = time.monotonic() + 20
    while qs.execute("query-colo-status")["return"]["mode"] != "secondary":
        if time.monotonic() > deadline:
            raise RuntimeError("the pair did not enter COLO")
        time.sleep(0.1)
    time.sleep(1.5)
    return QMP(f"{d}/p.sock")


def percentiles(values):
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))]


class Checkpoints:
    """Checkpoints per second over one workload (pair only)."""

    def __init__(self, q, name):
        self.q, self.name = q, name

    def __enter__(self):
        if self.q:
            self.n0, self.t0 = self.q.execute("query-colo-stats")["return"]["checkpoints"], time.monotonic()
        return self

    def __exit__(self, *exc):
        if self.q and not exc[0]:
            n = self.q.execute("query-colo-stats")["return"]["checkpoints"] - self.n0
            emit(f"colo_net.checkpoints_per_s.{self.name}", n / (time.monotonic() - self.t0), "1/s")


def measure(net, tag, q):
    with Checkpoints(q, "pingpong"):
        p = net.run(["/usr/bin/python3", "-c", PINGPONG, net.GUEST_IP, "2000"], timeout=120)
    lat = [float(x) for x in p.stdout.split()]
    p50, p99 = percentiles(lat)
    emit(f"colo_net.pingpong.{tag}.p50", p50, "ms")
    emit(f"colo_net.pingpong.{tag}.p99", p99, "ms")
    with Checkpoints(q, "redis_ping"):
        p = net.run(["redis-benchmark", "-h", net.GUEST_IP, "-t", "ping", "-n", "5000", "-c", "1"],
                    timeout=120)
    m = re.search(rb"latency summary \(msec\):\s*\n\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*([\d.]+)\s+"
                  rb"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", p.stdout)
    if m:
        emit(f"colo_net.redis_ping.{tag}.p50", float(m.group(3)), "ms")
        emit(f"colo_net.redis_ping.{tag}.p99", float(m.group(5)), "ms")
    size = 64 << 20
    with Checkpoints(q, "stream"):
        t0 = time.monotonic()
        p = net.run(["curl", "-sS", "-o", "/dev/null", f"http://{net.GUEST_IP}/bytes/{size}"], timeout=300)
        mbps = size / (time.monotonic() - t0) / 1e6 if p.returncode == 0 else 0.0
    emit(f"colo_net.stream.{tag}", mbps, "MB/s")
    return mbps


def main():
    results = {}
    for colo, port in ((False, 0), (True, 47950)):
        cleanup = Cleanup()
        try:
            with tempfile.TemporaryDirectory() as d:
                net = PairNet(cleanup)
                q = start(cleanup, d, net, colo, port)
                results[colo] = measure(net, "colo" if colo else "plain", q)
        finally:
            cleanup.run()
    if results.get(False):
        emit("colo_net.stream.colo_over_plain", results[True] / results[False], "ratio")
    rate = os.path.join(HERE, "..", "build", "bench", "compare_rate")
    if os.path.exists(rate):
        print(subprocess.run([rate], capture_output=True, text=True).stdout, end="")


if __name__ == "__main__":
    main()
