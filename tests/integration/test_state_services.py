"""Snapshots and live migration of a guest serving real clients (issue 4 with issue 3's services)."""
import socket
import threading
import time

from guest_net import NetNS6, serve_args, start_serve
from harness import QMP, scaled


def redis(ns, *args):
    p = ns.run(["redis-cli", "-h", ns.GUEST_IP] + list(args), timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


ECHO_CLIENT = r"""
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 7), timeout=10)
sent = got = 0
data = os.urandom(1 << 20)
deadline = time.monotonic() + float(sys.argv[2])
chunks = 0
while time.monotonic() < deadline or chunks < 50:
    part = data[(chunks * 4096) % len(data):][:4096]
    s.sendall(part)
    back = b""
    while len(back) < len(part):
        b = s.recv(len(part) - len(back))
        if not b:
            sys.exit("connection closed by the guest")
        back += b
    assert back == part, "echo differs"
    got += len(back)
    chunks += 1
    time.sleep(0.01)
print(f"echoed {got} bytes in {chunks} round trips")
"""


def wait_migration(q, timeout=60):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        r = q.execute("query-migrate")["return"]
        if r.get("status") in ("completed", "failed", "cancelled"):
            return r
        time.sleep(0.05)
    raise AssertionError("migration did not finish")


def wait_running(q, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while q.execute("query-status")["return"]["status"] != "running":
        assert time.monotonic() < deadline, "the destination did not start the guest"
        time.sleep(0.02)


def test_tcp_connection_survives_migration(start_vm, cleanup, tmp_path):
    """A live echo session keeps going, byte-exact, while the VM moves to another VMM (TAP handed over)."""
    ns = NetNS6(cleanup)
    src = start_vm(serve_args(ns) + ["--qmp", str(tmp_path / "src.sock")], netns=ns.name, name="src")
    src.wait_console(r"net: up")
    dst = start_vm(["--incoming", "tcp:127.0.0.1:47701", "--qmp", str(tmp_path / "dst.sock"), "--mem", "256M",
                    "--net", f"tap={ns.tap},mac=52:54:00:ab:cd:ef"], netns=ns.name, name="dst")
    qd = QMP(str(tmp_path / "dst.sock"))
    qs = QMP(str(tmp_path / "src.sock"))
    result = {}
    client = threading.Thread(target=lambda: result.update(
        p=ns.run(["/usr/bin/python3", "-c", ECHO_CLIENT, ns.GUEST_IP, "4"], timeout=60)))
    client.start()
    time.sleep(1)
    qs.execute("migrate-set-parameters", {"x-check-ram": True})
    assert qs.execute("migrate", {"uri": "tcp:127.0.0.1:47701"}) == {"return": {}}
    r = wait_migration(qs)
    assert r["status"] == "completed", r
    wait_running(qd)
    client.join()
    p = result["p"]
    assert p.returncode == 0, p.stderr.decode() + p.stdout.decode()
    assert "echoed" in p.stdout.decode()
    # New connections work on the destination too.
    assert redis(ns, "PING") == "PONG"


def test_kv_data_survives_snapshot_restore_and_migration(start_vm, cleanup, tmp_path):
    ns = NetNS6(cleanup)
    vm = start_vm(serve_args(ns) + ["--qmp", str(tmp_path / "a.sock")], netns=ns.name, name="a")
    vm.wait_console(r"net: up")
    for i in range(20):
        assert redis(ns, "SET", f"key{i}", f"value{i}") == "OK"
    assert redis(ns, "INCR", "counter") == "1"
    q = QMP(str(tmp_path / "a.sock"))
    snap = tmp_path / "kv.snap"
    assert q.execute("snapshot-save", {"file": str(snap)}) == {"return": {}}
    assert redis(ns, "SET", "after", "snapshot") == "OK"
    vm.kill()  # frees the TAP for the restored VM
    restored = start_vm(["--restore", str(snap), "--mem", "256M", "--net",
                         f"tap={ns.tap},mac=52:54:00:ab:cd:ef", "--qmp", str(tmp_path / "b.sock")],
                        netns=ns.name, name="b")
    qb = QMP(str(tmp_path / "b.sock"))
    assert qb.execute("query-status")["return"]["status"] == "running"
    assert redis(ns, "GET", "key7") == "value7"
    assert redis(ns, "INCR", "counter") == "2"
    assert redis(ns, "EXISTS", "after") == "0"  # written after the snapshot: not in it
    # And the restored VM migrates on with its data.
    dst = start_vm(["--incoming", "tcp:127.0.0.1:47702", "--mem", "256M", "--net",
                    f"tap={ns.tap},mac=52:54:00:ab:cd:ef", "--qmp", str(tmp_path / "c.sock")],
                   netns=ns.name, name="c")
    qc = QMP(str(tmp_path / "c.sock"))
    assert qb.execute("migrate", {"uri": "tcp:127.0.0.1:47702"}) == {"return": {}}
    assert wait_migration(qb)["status"] == "completed"
    # The destination runs the guest right after it answered the source.
    wait_running(qc)
    assert redis(ns, "GET", "key19") == "value19"
    assert redis(ns, "DBSIZE") == "21"
