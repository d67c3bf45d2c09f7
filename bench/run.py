#!/usr/bin/env python3
"""lockstep benchmarks. Prints one figure per line: `bench: NAME VALUE UNIT`.

Figures, not assertions: these machines are shared and noisy. Run with `make bench`
(as root: the network figures use a namespace and a TAP device).
"""
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from harness import GUEST, LOCKSTEP, Cleanup, NetNS, VM  # noqa: E402


VHOST_MARK = "/run/lockstep-vhost"  # written by scripts/vhost/init.sh


def where():
    """'vhost-tcg' inside a virtual test host (everything runs under TCG: compare only
    ratios taken in the same run), 'native' elsewhere."""
    return "vhost-tcg" if os.path.exists(VHOST_MARK) else "native"


def emit(name, value, unit):
    print(f"bench: {name} {value:.3f} {unit} [{where()}]", flush=True)


def machine():
    if where() == "vhost-tcg":
        print("bench: where virtual test host (QEMU TCG with nested KVM): absolute times are several "
              "times those on hardware and not comparable to them; compare ratios taken in one run")
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"bench: machine {platform.node()} {os.cpu_count()} cpus, {cpu}, kernel {platform.release()}")


def bench_boot(runs=20):
    """Process start to the guest's first console byte (its main), and to exit."""
    to_main, to_exit = [], []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen([LOCKSTEP, "run", "--kernel", GUEST, "--mem", "64M",
                              "--cmdline", "app=hello"], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        p.stdout.read(1)
        to_main.append(time.monotonic() - t0)
        p.stdout.read()
        p.wait()
        to_exit.append(time.monotonic() - t0)
    emit("boot.start_to_guest_main.p50", statistics.median(to_main) * 1e3, "ms")
    emit("boot.start_to_guest_main.min", min(to_main) * 1e3, "ms")
    emit("boot.start_to_exit.p50", statistics.median(to_exit) * 1e3, "ms")


def run_guest(cmdline, extra=(), timeout=120):
    p = subprocess.run([LOCKSTEP, "run", "--kernel", GUEST, "--mem", "256M", "--cmdline",
                        cmdline] + list(extra), capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"{cmdline}: exit {p.returncode}: {p.stdout.decode()}{p.stderr.decode()}")
    return p.stdout.decode()


def bench_pio(n=200000):
    out = run_guest(f"app=bench-pio,n={n}")
    for port, ms in re.findall(r"bench-pio: port=(0x[0-9a-f]+) n=\d+ ms=(\d+)", out):
        name = "pio.exit_to_vmm" if port == "0xfc" else "pio.exit_in_kernel"
        emit(f"{name}.roundtrip", int(ms) * 1e3 / n, "us")


def bench_blk(mb=64):
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "bench.img")
        with open(img, "wb") as f:
            f.truncate((mb + 1) << 20)
        out = run_guest(f"app=bench-blk,mb={mb}", ["--disk", img])
    for what, n, ms in re.findall(r"bench-blk: (write|read) mb=(\d+) ms=(\d+)", out):
        emit(f"blk.seq_{what}", int(n) * 1000.0 / max(int(ms), 1), "MB/s")


def bench_ping(count=50):
    cleanup = Cleanup()
    try:
        ns = NetNS(cleanup)
        with tempfile.TemporaryDirectory() as d:
            vm = VM(cleanup, d, ["--kernel", GUEST, "--net", f"tap={ns.tap}",
                                 "--cmdline", f"app=net,ip={ns.GUEST_IP}/24"], netns=ns.name)
            vm.wait_console(r"net: up")
            ns.sh(f"ping -c 2 -W 2 {ns.GUEST_IP}")
            out = ns.sh(f"ping -c {count} -i 0.02 -W 2 {ns.GUEST_IP}").stdout
            rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
            emit("net.ping_rtt.p50", statistics.median(rtts), "ms")
            emit("net.ping_rtt.max", max(rtts), "ms")
    finally:
        cleanup.run()


def main():
    machine()
    for fn in (bench_boot, bench_pio, bench_blk, bench_ping):
        try:
            fn()
        except Exception as e:
            print(f"bench: {fn.__name__} failed: {e}", file=sys.stderr)
    # The other benchmark files, each also runnable alone.
    for module in ("state", "services", "colo", "colo_net", "disk", "disk_guest"):
        try:
            __import__(module).main()
        except Exception as e:
            print(f"bench: {module} failed: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
