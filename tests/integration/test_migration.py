"""Live migration between two lockstep processes on this machine."""
import re
import socket
import time

import pytest

from harness import GUEST, QMP, scaled, wait_for

_port = [47100]


def free_port():
    _port[0] += 1
    return _port[0]


def counters(vm):
    return [int(x) for x in re.findall(r"dirty: counter=(\d+) pages=\d+\r?\n", vm.console())]


def wait_migration(q, timeout=60.0):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        r = q.execute("query-migrate")["return"]
        if r.get("status") in ("completed", "failed", "cancelled"):
            return r
        time.sleep(0.02)
    raise AssertionError(f"migration still {r} after {timeout}s")


@pytest.fixture
def pair(start_vm, tmp_path):
    """pair(cmdline, extra=()) -> (src, qsrc, dst, qdst, uri): a running source, a waiting destination."""
    def make(cmdline, extra=(), dst_extra=None, netns=None):
        port = free_port()
        uri = f"tcp:127.0.0.1:{port}"
        src = start_vm(["--kernel", GUEST, "--qmp", str(tmp_path / "src.sock"), "--cmdline",
                        cmdline] + list(extra), name="src", netns=netns)
        dst = start_vm(["--incoming", uri, "--qmp", str(tmp_path / "dst.sock")] +
                       list(extra if dst_extra is None else dst_extra), name="dst", netns=netns)
        qdst = QMP(str(tmp_path / "dst.sock"))
        assert qdst.execute("query-status")["return"]["status"] == "inmigrate"
        return src, QMP(str(tmp_path / "src.sock")), dst, qdst, uri
    return make


def test_migrate_dirty_guest_with_ram_check(pair):
    src, qs, dst, qd, uri = pair("app=dirty,pages=256,period=10")
    src.wait_console(r"counter=10\b")
    assert qs.execute("migrate-set-parameters", {"x-check-ram": True}) == {"return": {}}
    assert qs.execute("migrate", {"uri": uri}) == {"return": {}}
    r = wait_migration(qs)
    assert r["status"] == "completed", r
    # The destination completes once it has loaded and checked what arrived,
    # which may be after the source saw its last byte acknowledged.
    rd = wait_migration(qd)
    assert rd["status"] == "completed", rd
    # RAM hashed at switchover on both sides, and the destination checked it too.
    assert r["x-ram-hash"] == rd["x-ram-hash"]
    assert r["ram"]["total"] == 256 << 20 and r["ram"]["transferred"] > 0
    assert r["downtime"] >= 0 and r["total-time"] >= r["downtime"]
    last_src = counters(src)[-1]
    dst.wait_console(rf"counter={last_src + 5}\b")
    # The guest went on where the source stopped (a line cut by the switch-over
    # completes on the destination, so the first whole line there may be one later).
    assert counters(dst)[0] in (last_src + 1, last_src + 2)
    assert qd.execute("query-status")["return"]["status"] == "running"
    # The source must never run the guest again.
    assert qs.execute("query-status")["return"]["status"] == "postmigrate"
    r = qs.execute("cont")
    assert r["error"]["class"] == "GenericError" and "postmigrate" in r["error"]["desc"]
    qs.wait_event("MIGRATION")


def test_bandwidth_limit_forces_dirty_rounds(pair):
    src, qs, dst, qd, uri = pair("app=dirty,pages=1024,period=10")
    src.wait_console(r"counter=5\b")
    qs.execute("migrate-set-parameters", {"x-check-ram": True, "max-bandwidth": 40 << 20,
                                          "downtime-limit": 50})
    params = qs.execute("query-migrate-parameters")["return"]
    assert params["downtime-limit"] == 50 and params["max-bandwidth"] == 40 << 20
    assert params["x-check-ram"] is True
    assert qs.execute("migrate", {"uri": uri}) == {"return": {}}
    r = wait_migration(qs)
    assert r["status"] == "completed", r
    assert r["ram"]["dirty-sync-count"] >= 1, r  # at least one round of dirty pages
    assert r["x-ram-hash"] == wait_migration(qd)["x-ram-hash"]
    last = counters(src)[-1]
    dst.wait_console(rf"counter={last + 3}\b")


def test_cancel_leaves_source_running(pair):
    # 8 MiB of guest writes at 1 MiB/s: the migration cannot finish before we cancel.
    src, qs, dst, qd, uri = pair("app=dirty,pages=2048,period=50")
    src.wait_console(r"counter=3\b")
    qs.execute("migrate-set-parameters", {"max-bandwidth": 1 << 20})
    assert qs.execute("migrate", {"uri": uri}) == {"return": {}}
    # Under TCG the connection's setup alone can outlast a fixed half second.
    wait_for(lambda: qs.execute("query-migrate")["return"]["status"] == "active", 10, "the migration to run")
    assert qs.execute("migrate_cancel") == {"return": {}}
    r = wait_migration(qs)
    assert r["status"] == "cancelled", r
    n = counters(src)[-1]
    src.wait_console(rf"counter={n + 3}\b")
    assert qs.execute("query-status")["return"]["status"] == "running"
    # The destination saw a stream that ended early and gives up with a clear error.
    assert dst.wait_exit(10) == 1
    assert "incoming migration failed" in dst.stderr()


def test_destination_killed_midway(pair):
    src, qs, dst, qd, uri = pair("app=dirty,pages=2048,period=50")
    src.wait_console(r"counter=3\b")
    qs.execute("migrate-set-parameters", {"max-bandwidth": 1 << 20})
    qs.execute("migrate", {"uri": uri})
    wait_for(lambda: qs.execute("query-migrate")["return"]["status"] == "active", 10, "the migration to run")
    dst.kill()
    r = wait_migration(qs)
    assert r["status"] == "failed", r
    assert "error-desc" in r
    n = counters(src)[-1]
    src.wait_console(rf"counter={n + 3}\b")
    assert qs.execute("query-status")["return"]["status"] == "running"


def test_migrate_to_nobody(start_vm, tmp_path):
    vm = start_vm(["--kernel", GUEST, "--qmp", str(tmp_path / "q.sock"), "--cmdline",
                   "app=dirty,pages=4,period=20"])
    q = QMP(str(tmp_path / "q.sock"))
    r = q.execute("migrate", {"uri": f"tcp:127.0.0.1:{free_port()}"})
    assert "cannot connect" in r["error"]["desc"], r
    r = q.execute("migrate", {"uri": "udp:1.2.3.4:5"})
    assert "is not tcp:HOST:PORT" in r["error"]["desc"], r
    assert q.execute("query-status")["return"]["status"] == "running"


def garbage_to(uri, payload):
    host, port = uri.split(":")[1], int(uri.split(":")[2])
    s = socket.create_connection((host, port))
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    try:
        return s.recv(64)
    finally:
        s.close()


@pytest.mark.parametrize("payload,message", [
    (b"GET / HTTP/1.0\r\n\r\n", "bad magic"),
    (b"LSKVMST1\x02\x00\x00\x00\x00\x00\x00\x00", "unsupported VM state format version 2"),
    (b"LSKVMST1\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00", "truncated"),
])
def test_destination_rejects_bad_streams(start_vm, tmp_path, payload, message):
    uri = f"tcp:127.0.0.1:{free_port()}"
    dst = start_vm(["--incoming", uri, "--qmp", str(tmp_path / "d.sock")])
    QMP(str(tmp_path / "d.sock"))  # listening once the monitor is up
    answer = garbage_to(uri, payload)
    assert len(answer) == 16 and answer[:8] == b"LSKVMACK"  # a refusal, not silence
    assert int.from_bytes(answer[8:12], "little", signed=True) < 0
    assert dst.wait_exit(10) == 1
    assert message in dst.stderr(), dst.stderr()


def test_incoming_bad_arguments(start_vm):
    vm = start_vm(["--incoming", "tcp:127.0.0.1:notaport"])
    assert vm.wait_exit() == 1
    assert "bad port 'notaport'" in vm.stderr()


def test_network_follows_the_vm(pair, netns):
    """The TAP device is handed over: ping and UDP echo answer before and after."""
    src, qs, dst, qd, uri = pair(f"app=net,ip={netns.GUEST_IP}/24",
                                 extra=["--net", f"tap={netns.tap}"], netns=netns.name)
    src.wait_console(r"net: up")
    assert netns.sh(f"ping -c 2 -W 2 {netns.GUEST_IP}", check=False).returncode == 0
    qs.execute("migrate-set-parameters", {"x-check-ram": True})
    assert qs.execute("migrate", {"uri": uri}) == {"return": {}}
    r = wait_migration(qs)
    assert r["status"] == "completed", r
    p = netns.sh(f"ping -c 3 -i 0.2 -W 2 {netns.GUEST_IP}", check=False)
    assert p.returncode == 0, p.stdout
    assert qd.execute("query-status")["return"]["status"] == "running"
