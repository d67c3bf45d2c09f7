#!/usr/bin/env python3
"""Guest disk writes: a plain VM against the primary of a protected pair, in one run.

The same guest workload (app=bench-blk-lat: random 4 KiB writes one at a time,
timed by the guest, then a sequential pass of 256 KiB writes and a flush) runs

    disk_guest.plain.*        in `lockstep run` with a raw image
    disk_guest.replicated.*   in `lockstep primary` of a pair on this host (loopback
                              link), its disk replicated to the secondary's image

    disk_guest.replicated_over_plain.*   the ratios, measured side by side

The pair runs with periodic checkpoints off, so the latency figures are the
replication's cost per write (local write, then the NBD round trip to the
secondary with its copy before write), not checkpoint pauses; the secondary's copy
of the guest runs the same writes into its active overlay meanwhile, on the same
CPUs (a real pair has a host each). Then, in the same
pair, on-demand checkpoints while the guest writes and once it idles:

    disk_guest.pair.pause.*.writing|idle             the primary's pause (query-colo-stats),
    disk_guest.pair.phase.*.writing|idle             and its phases
    disk_guest.pair.secondary_apply.*.writing|idle   the secondary's apply phase, where
                                                     it empties its overlays

Without a VM: build/bench/loopback_rtt, a 4 KiB write and its one-byte
acknowledgement over loopback TCP (net.loopback_rtt_4k.*: what DRBD protocol C
adds to a local write, the figure to beat), and build/bench/repl_checkpoint,
emptying overlays that hold K dirty blocks (disk.checkpoint_empty.*).
Prints `bench: NAME VALUE UNIT` lines.
"""
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import GUEST, QMP, Cleanup, VM, scaled, wait_for  # noqa: E402
from run import emit  # noqa: E402

DISK_MIB = 64
MEM = "64M"
WRITES = int(os.environ.get("DISK_GUEST_WRITES", "2000"))
SEQ_MIB = 16
# VM time the pair's guest waits before measuring: COLO's start (pre-copy, then
# the disk copy with the VM stopped) must be over. Checked, not assumed.
PAIR_WAIT_MS = int(os.environ.get("DISK_GUEST_WAIT_MS", "3000"))
LOAD_MS = 3000
CHECKPOINTS = 15
CHECKPOINT_GAP_S = 0.05
BENCH_BIN = os.path.join(HERE, "..", "build", "bench")


def app_cmdline(**extra):
    args = dict(n=WRITES, mb=SEQ_MIB, **extra)
    return "app=bench-blk-lat," + ",".join(f"{k}={v}" for k, v in args.items())


def make_image(path):
    with open(path, "wb") as f:
        f.truncate(DISK_MIB << 20)
    return path


def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_results(console):
    """The guest's two result lines as figures (us, MB/s)."""
    m = re.search(r"bench-blk-lat: write4k n=(\d+) p50_ns=(\d+) p99_ns=(\d+) max_ns=(\d+) total_us=(\d+)",
                  console)
    s = re.search(r"bench-blk-lat: seq256k mb=(\d+) total_us=(\d+)", console)
    if not m or not s:
        raise RuntimeError(f"no bench-blk-lat results in the console:\n{console[-2000:]}")
    n, p50, p99, mx, total = (int(x) for x in m.groups())
    mb, seq_total = (int(x) for x in s.groups())
    return {"write_4k.p50": (p50 / 1e3, "us"), "write_4k.p99": (p99 / 1e3, "us"),
            "write_4k.max": (mx / 1e3, "us"), "write_4k.throughput": (n * 4096 / total, "MB/s"),
            "seq_256k.throughput": (mb * 1048576 / seq_total, "MB/s")}


def emit_results(tag, results):
    for name, (value, unit) in results.items():
        emit(f"disk_guest.{tag}.{name}", value, unit)


def run_plain(d):
    cleanup = Cleanup()
    try:
        vm = VM(cleanup, d, ["--kernel", GUEST, "--mem", MEM, "--disk", make_image(f"{d}/plain.img"),
                             "--cmdline", app_cmdline()], name="plain")
        vm.wait_console(r"bench-blk-lat: done", timeout=300)
        if vm.wait_exit(timeout=30) != 0:
            raise RuntimeError(f"plain VM failed: {vm.stderr()}")
        return parse_results(vm.console())
    finally:
        cleanup.run()


def start_pair(cleanup, d):
    """Secondary, then the primary, which protects its VM at once; returns their
    monitors once COLO runs, having checked that the guest has not started measuring."""
    addr = f"127.0.0.1:{free_loopback_port()}"
    VM(cleanup, d, ["secondary", "--listen", addr, "--mem", MEM, "--disk", make_image(f"{d}/sec.img"),
                    "--qmp", f"{d}/s.sock"], name="sec", command=None)
    qs = QMP(f"{d}/s.sock")
    pri = VM(cleanup, d, ["primary", "--kernel", GUEST, "--mem", MEM, "--peer", addr,
                          "--checkpoint-delay", "3600000", "--disk", make_image(f"{d}/pri.img"),
                          "--qmp", f"{d}/p.sock", "--cmdline",
                          app_cmdline(wait=PAIR_WAIT_MS, load=LOAD_MS, then="idle")],
             name="pri", command=None)
    qp = QMP(f"{d}/p.sock")
    wait_for(lambda: qp.execute("query-colo-status")["return"]["mode"] == "primary", timeout=60,
             what="COLO to start", poll=0.01)
    # The primary's VM is stopped from the stop-and-copy until the disk copy ends,
    # and COLO's mode is set in between: a guest that has not started by now starts
    # only once its disk is replicated.
    if "bench-blk-lat: start" in pri.console():
        raise RuntimeError(f"the guest started measuring before COLO ran: raise DISK_GUEST_WAIT_MS "
                           f"(now {PAIR_WAIT_MS})")
    wait_for(lambda: qs.execute("query-colo-status")["return"]["mode"] == "secondary", timeout=60,
             what="the secondary")
    return pri, qp, qs


def colo_running(qp):
    st = qp.execute("query-colo-status")["return"]
    if st["mode"] != "primary":
        raise RuntimeError(f"COLO ended during the benchmark: {st}")


PRIMARY_PHASES = ("request", "stop", "ram", "device", "received", "apply")


def checkpoint(qp, qs):
    """One on-demand checkpoint's figures: the primary's pause and its phases (ms),
    the secondary's apply phase (ms; it empties the overlays there), RAM pages sent."""
    before = qp.execute("query-colo-stats")["return"]
    qp.execute("x-colo-checkpoint")
    st = wait_for(lambda: (lambda s: s if s["checkpoints"] > before["checkpoints"] else None)(
        qp.execute("query-colo-stats")["return"]), timeout=30, what="a checkpoint", poll=0.005)
    figures = {f"phase.{k}": st["last-phases-us"][k] / 1e3 for k in PRIMARY_PHASES}
    figures["pause"] = st["pause-us"]["last"] / 1e3
    figures["secondary_apply"] = qs.execute("query-colo-stats")["return"]["last-phases-us"]["apply"] / 1e3
    figures["pages"] = st["pages"] - before["pages"]
    return figures


def checkpoints_while(qp, qs, going_on):
    """The first checkpoint (it also carries what came before the phase), then up to
    CHECKPOINTS more, CHECKPOINT_GAP_S apart, that ended while going_on() held."""
    first = checkpoint(qp, qs)
    taken = []
    while len(taken) < CHECKPOINTS and going_on():
        time.sleep(CHECKPOINT_GAP_S)
        figures = checkpoint(qp, qs)
        if going_on():
            taken.append(figures)
    return first, taken


def emit_checkpoints(phase, taken):
    """p50 of every figure (and the pause's max) of one phase's checkpoints."""
    if len(taken) < 3:
        raise RuntimeError(f"only {len(taken)} checkpoints {phase}: raise LOAD_MS")
    p50 = {k: statistics.median(c[k] for c in taken) for k in taken[0]}
    for k, v in p50.items():
        emit(f"disk_guest.pair.{k}.p50.{phase}", v, "pages" if k == "pages" else "ms")
    emit(f"disk_guest.pair.pause.max.{phase}", max(c["pause"] for c in taken), "ms")
    emit(f"disk_guest.pair.checkpoints.{phase}", len(taken), "checkpoints")
    return p50


def run_pair(d):
    cleanup = Cleanup()
    try:
        pri, qp, qs = start_pair(cleanup, d)
        pri.wait_console(r"bench-blk-lat: seq256k", timeout=600)
        colo_running(qp)
        results = parse_results(pri.console())
        loading = lambda: "bench-blk-lat: load" not in pri.console()  # noqa: E731
        after_passes, writing = checkpoints_while(qp, qs, loading)
        load = pri.wait_console(r"bench-blk-lat: load writes=(\d+) ms=(\d+)", timeout=120)
        pri.wait_console(r"bench-blk-lat: done")
        _, idle = checkpoints_while(qp, qs, lambda: True)
        colo_running(qp)
        return results, after_passes, writing, idle, int(load.group(1)) * 1e3 / int(load.group(2))
    finally:
        cleanup.run()


def bench_guest():
    with tempfile.TemporaryDirectory() as d:
        plain = run_plain(d)
        replicated, after_passes, writing, idle, load_rate = run_pair(d)
    emit_results("plain", plain)
    emit_results("replicated", replicated)
    for name in ("write_4k.p50", "write_4k.p99", "write_4k.throughput", "seq_256k.throughput"):
        emit(f"disk_guest.replicated_over_plain.{name}", replicated[name][0] / plain[name][0], "ratio")
    # What replication adds to a write; DRBD protocol C adds about net.loopback_rtt_4k.
    emit("disk_guest.replicated_minus_plain.write_4k.p50",
         replicated["write_4k.p50"][0] - plain["write_4k.p50"][0], "us")
    # The overlays then hold both passes: WRITES random blocks and SEQ_MIB MiB.
    emit("disk_guest.pair.pause.after_passes", after_passes["pause"], "ms")
    emit("disk_guest.pair.secondary_apply.after_passes", after_passes["secondary_apply"], "ms")
    emit("disk_guest.pair.load_rate", load_rate, "writes/s")
    writing, idle = emit_checkpoints("writing", writing), emit_checkpoints("idle", idle)
    emit("disk_guest.pair.pause_added_by_writes.p50", writing["pause"] - idle["pause"], "ms")
    emit("disk_guest.pair.secondary_apply_added_by_writes.p50",
         writing["secondary_apply"] - idle["secondary_apply"], "ms")


def run_native(binary, *args):
    """A C benchmark of build/bench/, its figures re-emitted (labelled with where)."""
    out = subprocess.run([os.path.join(BENCH_BIN, binary), *args], check=True, capture_output=True,
                         text=True, timeout=scaled(120)).stdout
    for name, value, unit in re.findall(r"bench: (\S+) ([\d.]+) (\S+)", out):
        emit(name, float(value), unit)


def main():
    bench_guest()
    run_native("loopback_rtt")  # DRBD protocol C's cost over a local write, on this link
    with tempfile.TemporaryDirectory() as d:  # overlays beside the images, as in the pair
        run_native("repl_checkpoint", d)


if __name__ == "__main__":
    main()
