"""COLO across two virtual test hosts: power loss, a frozen host and network partitions.

Primary and secondary run in their own virtual host (scripts/vhost), joined by a
client LAN and a replication link that this machine controls; the clients run
outside both hosts. Each test asserts the promise, not liveness: at most one
copy of the guest serves with network output, no client connection is reset,
no acknowledged write is lost.

A secondary that loses its primary (dead, frozen, or cut off) stops its guest
and waits for a decision (x-colo-lost-heartbeat, `lockstep failover`): a frozen
primary that comes back, or a partition, never leaves two serving copies.
"""
import re
import subprocess
import sys
import time

import pytest

from harness import QMP, ROOT, wait_for

sys.path.insert(0, f"{ROOT}/scripts/vhost")
from pair import GUEST, GUEST_IP, GUEST_MAC, LOCKSTEP, QMP_PATH, TwoHosts  # noqa: E402
from test_colo_network import ECHO_SESSION, KV_WRITER  # noqa: E402

pytestmark = pytest.mark.vhosts

SILENCE = 3.0  # lockstep's heartbeat: a peer silent this long is gone (docs/colo.md)
SERVICES = "echo+kv+http"
DISK = "/tmp/lockstep-disk.img"  # in each host


class SplitBrain(AssertionError):
    """Two copies of the guest serve with network output."""


def start_pair(cleanup, disk_mib=0):
    """Boots two hosts, starts the pair, waits for COLO; returns (TwoHosts, QMP primary, QMP secondary).
    disk_mib: each host gets an image of that size (the secondary's empty) that the
    pair replicates, and the guest's KV store logs to it."""
    hosts = TwoHosts()
    cleanup.add(hosts.close)
    cleanup.add(lambda: diagnose(hosts))
    disk, cmdline = [], f"app=serve,ip={GUEST_IP}/24,services={SERVICES}"
    if disk_mib:
        for h in hosts.hosts.values():
            h.run(["truncate", "-s", f"{disk_mib}M", DISK], check=True)
        disk, cmdline = ["--disk", DISK], f"app=serve,ip={GUEST_IP}/24,services=echo+kv,kvdisk=1"
    hosts.start_secondary(extra=disk)
    qs = QMP("", timeout=60, connect=lambda: hosts.qmp_socket("secondary"))
    hosts.start_primary(cmdline, extra=["--checkpoint-delay", "500", "--compare-timeout", "200"] + disk)
    qp = QMP("", timeout=60, connect=lambda: hosts.qmp_socket("primary"))
    wait_for(lambda: mode(qs) == "secondary", 90, "the pair to enter COLO")
    wait_for(lambda: ping(hosts, 1), 60, "the guest to answer on the LAN")
    return hosts, qp, qs


@pytest.fixture
def pair(cleanup):
    return start_pair(cleanup)


@pytest.fixture
def disk_pair(cleanup):
    return start_pair(cleanup, disk_mib=16)


def diagnose(hosts):
    """Printed at teardown; pytest shows it for a failed test."""
    for role in ("primary", "secondary"):
        print(f"--- {role} lockstep stderr:\n{hosts.lockstep_stderr(role)[-3000:]}")
        try:
            print(f"--- {role} guest console:\n{hosts.console(role)[-2000:]}")
        except Exception as e:
            print(f"--- {role} console unavailable: {e}")


def mode(q):
    return q.execute("query-colo-status")["return"]["mode"]


def ping(hosts, count):
    r = subprocess.run(hosts.client(["ping", "-c", str(count), "-i", "0.2", "-W", "2", GUEST_IP]),
                       capture_output=True, timeout=60)
    return r.returncode == 0


def serving(q):
    """Does the lockstep behind q run its guest with network output? None if unreachable."""
    try:
        status = q.execute("query-status")["return"]["status"]
        colo = q.execute("query-colo-status")["return"]["mode"]
    except (OSError, EOFError, KeyError):
        return None
    return status == "running" and colo != "secondary"


def assert_one_serving(hosts, role_alive):
    """role_alive: {role: True if its host runs}. Counts the copies that serve."""
    copies = []
    for role, alive in role_alive.items():
        if not alive:
            continue
        q = QMP("", timeout=30, connect=lambda r=role: hosts.qmp_socket(r))
        if serving(q):
            copies.append(role)
        q.close()
    if len(copies) > 1:
        raise SplitBrain(f"both copies serve: {copies}")
    assert len(copies) == 1, "no copy serves"
    return copies[0]


def assert_secondary_waits(qs):
    st = qs.execute("query-colo-status")["return"]
    assert st.get("x-waiting-for-decision") is True and st["last-mode"] == "secondary", st
    assert qs.execute("query-status")["return"]["status"] == "paused"


def start_load(hosts, seconds):
    """An echo session and a KV writer on persistent connections, and redis-benchmark."""
    def py(script, *args):
        return subprocess.Popen(hosts.client(["/usr/bin/python3", "-c", script, *map(str, args)]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return {
        "echo": py(ECHO_SESSION, GUEST_IP, seconds),
        "kv": py(KV_WRITER, GUEST_IP, seconds),
        "bench": subprocess.Popen(hosts.client(["redis-benchmark", "-h", GUEST_IP, "-t", "set",
                                                "-n", "2000", "-c", "4", "-q"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE),
    }


def communicate_all(load):
    """Waits for every client and keeps its output."""
    for p in load.values():
        p._out, p._err = p.communicate(timeout=180)


def check_clients(hosts, load):
    """No client saw a reset or wrong data, and every acknowledged SET is readable."""
    communicate_all(load)
    for name, p in load.items():
        out = p._out + p._err
        assert p.returncode == 0 and b"rror" not in out, f"{name} failed: {out.decode()}"
    acked = int(re.search(rb"acked (\d+)", load["kv"]._out).group(1))
    assert acked > 0
    assert_acked_readable(hosts, acked)
    return acked


def assert_acked_readable(hosts, acked):
    """Every acknowledged SET: one redis-cli, a GET per line."""
    r = subprocess.run(hosts.client(["redis-cli", "-h", GUEST_IP]), capture_output=True, text=True,
                       input="".join(f"GET k{i}\n" for i in range(acked)), timeout=120)
    got = r.stdout.split("\n")[:acked]
    lost = [i for i in range(acked) if i >= len(got) or got[i] != f"v{i}"]
    assert not lost, f"{len(lost)} of {acked} acknowledged SETs lost, first k{lost[0]}: {r.stderr}"


def checkpoints(q):
    return q.execute("query-colo-stats")["return"]["checkpoints"]


def test_primary_power_loss_under_load(pair):
    hosts, qp, qs = pair
    load = start_load(hosts, 12)
    wait_for(lambda: checkpoints(qp) >= 3, 30, "checkpoints under load")
    time.sleep(2)
    hosts.hosts["a"].power_off()  # no FIN, no RST: lockstep, its TAP and the host kernel vanish
    # The secondary notices, stops its guest and waits; the decision (an operator,
    # later an arbiter) is `lockstep failover` on host B.
    ev = qs.wait_event("COLO_EXIT", timeout=SILENCE + 20)
    assert ev["data"]["x-waiting-for-decision"] is True, ev
    assert serving(qs) is False
    r = hosts.hosts["b"].run([LOCKSTEP, "failover", "--qmp", QMP_PATH["secondary"]], timeout=60)
    assert r.returncode == 0 and "takes over" in r.stdout, r
    wait_for(lambda: serving(qs), 30, "the secondary to serve")
    check_clients(hosts, load)
    assert assert_one_serving(hosts, {"primary": False, "secondary": True}) == "secondary"
    assert ping(hosts, 3)


@pytest.mark.parametrize("disk_mib", [0, 16], ids=["no-disk", "replicated-disk"])
def test_secondary_power_loss_under_load(cleanup, disk_mib):
    """The secondary's host dies under load: the primary serves on alone, and its
    clients see nothing. With a replicated disk, its NBD server dies too (no RST):
    the primary's guest never waits on the dead replica for long, and every
    acknowledged SET is served from the primary's own disk."""
    hosts, qp, qs = start_pair(cleanup, disk_mib)
    load = start_load(hosts, 10)
    wait_for(lambda: checkpoints(qp) >= 3, 30, "checkpoints under load")
    hosts.hosts["b"].power_off()
    ev = qp.wait_event("COLO_EXIT", timeout=SILENCE + 20)
    assert ev["data"]["mode"] == "primary"
    check_clients(hosts, load)
    assert assert_one_serving(hosts, {"primary": True, "secondary": False}) == "primary"
    assert qp.execute("query-colo-status")["return"]["mode"] == "none"


def test_frozen_primary_host_comes_back(pair):
    hosts, qp, qs = pair
    load = start_load(hosts, 15)
    wait_for(lambda: checkpoints(qp) >= 3, 30, "checkpoints under load")
    hosts.hosts["a"].freeze()
    time.sleep(SILENCE + 4)
    assert_secondary_waits(qs)
    hosts.hosts["a"].thaw()
    time.sleep(SILENCE + 2)
    # The primary's output was what clients saw: it must be the only copy that serves,
    # and its clients, stalled while it was frozen, lost nothing.
    assert assert_one_serving(hosts, {"primary": True, "secondary": True}) == "primary"
    check_clients(hosts, load)


def test_partition_between_hosts(pair):
    hosts, qp, qs = pair
    load = start_load(hosts, 12)
    wait_for(lambda: checkpoints(qp) >= 3, 30, "checkpoints under load")
    hosts.cut("a", "repl")
    time.sleep(SILENCE + 4)
    assert_secondary_waits(qs)
    # Both hosts still reach the clients: only the primary may serve them, and the
    # clients it served through the partition lost nothing.
    assert assert_one_serving(hosts, {"primary": True, "secondary": True}) == "primary"
    check_clients(hosts, load)
    assert ping(hosts, 3)


def test_primary_isolated_from_everyone(pair):
    hosts, qp, qs = pair
    load = start_load(hosts, 15)
    wait_for(lambda: checkpoints(qp) >= 3, 30, "checkpoints under load")
    hosts.cut("a", "repl")
    hosts.cut("a", "lan")
    time.sleep(SILENCE + 4)
    assert_secondary_waits(qs)
    hosts.mend("a", "lan")
    hosts.mend("a", "repl")
    time.sleep(1)
    # Nobody decided a failover, so the secondary must not have started serving; the
    # clients, cut off meanwhile, go on with the primary and lost nothing.
    assert assert_one_serving(hosts, {"primary": True, "secondary": True}) == "primary"
    check_clients(hosts, load)


@pytest.mark.parametrize("phase", ["request", "ram", "device", "received"])
def test_primary_power_loss_in_each_checkpoint_phase(pair, phase):
    """The primary's host loses power in the middle of a checkpoint, under load: the
    secondary waits (one copy), takes over on the decision, and the clients see no
    reset and lose no acknowledged write, whether the output held for that
    checkpoint was released (received) or not (before it)."""
    hosts, qp, qs = pair
    load = start_load(hosts, 12)
    wait_for(lambda: checkpoints(qp) >= 3, 30, "checkpoints under load")
    assert qp.execute("x-colo-test", {"stall-in": phase}) == {"return": {}}
    wait_for(lambda: qp.execute("query-colo-status")["return"].get("x-test-stalled-in") == phase, 30,
             f"the primary to stall in {phase}")
    hosts.hosts["a"].power_off()
    ev = qs.wait_event("COLO_EXIT", timeout=SILENCE + 20)
    assert ev["data"]["x-waiting-for-decision"] is True, ev
    assert serving(qs) is False
    r = hosts.hosts["b"].run([LOCKSTEP, "failover", "--qmp", QMP_PATH["secondary"]], timeout=60)
    assert r.returncode == 0 and "takes over" in r.stdout, r
    wait_for(lambda: serving(qs), 30, "the secondary to serve")
    check_clients(hosts, load)
    assert assert_one_serving(hosts, {"primary": False, "secondary": True}) == "secondary"


# ---- block replication: the guest's KV store logs every SET to a replicated disk ----

def test_replicated_disk_primary_power_loss(disk_pair):
    """The primary's host dies under SET load: after the takeover every acknowledged
    SET is served, and the secondary's disk holds them all: a fresh VM booted from
    that image on host B replays its log and serves every one."""
    hosts, qp, qs = disk_pair
    load = start_load(hosts, 12)
    wait_for(lambda: checkpoints(qp) >= 3, 30, "checkpoints under load")
    time.sleep(2)
    hosts.hosts["a"].power_off()
    ev = qs.wait_event("COLO_EXIT", timeout=SILENCE + 20)
    assert ev["data"]["x-waiting-for-decision"] is True, ev
    r = hosts.hosts["b"].run([LOCKSTEP, "failover", "--qmp", QMP_PATH["secondary"]], timeout=60)
    assert r.returncode == 0 and "takes over" in r.stdout, r
    wait_for(lambda: serving(qs), 30, "the secondary to serve")
    acked = check_clients(hosts, load)
    assert qs.execute("quit") == {"return": {}}
    hosts.lockstep["secondary"].wait(60)
    hosts.lockstep["fresh"] = hosts.hosts["b"].spawn(
        [LOCKSTEP, "run", "--console", "file:/tmp/fresh-console.log", "--kernel", GUEST, "--mem", "128M",
         "--net", f"tap=tap0,mac={GUEST_MAC}", "--disk", DISK,
         "--cmdline", f"app=serve,ip={GUEST_IP}/24,services=echo+kv,kvdisk=1"])
    wait_for(lambda: ping(hosts, 1), 60, "the fresh VM to answer")
    assert_acked_readable(hosts, acked)
