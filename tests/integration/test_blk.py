"""virtio-blk end to end: the guest writes and verifies a pattern; the host checks the image.
Requests are served by an I/O worker: a slow backend blocks neither the vCPU nor the
monitor, and stop/snapshots wait for requests in flight."""
import re
import shutil
import struct
import subprocess
import time

import pytest

from harness import GUEST, QMP, scaled, wait_for

SECTOR = 512
MAGIC = 0x4c4b5354 << 32  # "LKST" in the top half of every word the guest writes


def pattern_sectors(capacity):
    s = set(range(64)) | set(range(capacity - 64, capacity))
    s |= {k * 2048 for k in range(capacity // 2048)}
    return sorted(s)


def sector_pattern(s):
    return struct.pack("<Q", MAGIC | (s & 0xffffffff)) * (SECTOR // 8)


def test_blkcheck_writes_pattern_to_image(start_vm, tmp_path):
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * (8 << 20))
    vm = start_vm(["--kernel", GUEST, "--disk", str(img), "--cmdline", "app=blkcheck"])
    assert vm.wait_exit(30) == 0, vm.console()
    console = vm.console()
    assert "blkcheck: PASS" in console
    irqs = int(console.split("blkcheck: irqs=")[1].split()[0])
    assert irqs > 0, "completions must arrive by interrupt"
    data = img.read_bytes()
    capacity = len(data) // SECTOR
    for s in pattern_sectors(capacity):
        assert data[s * SECTOR:(s + 1) * SECTOR] == sector_pattern(s), f"sector {s}"
    # Sectors the guest did not test are untouched.
    assert data[100 * SECTOR:101 * SECTOR] == b"\0" * SECTOR


def test_readonly_disk_refuses_writes(start_vm, tmp_path):
    img = tmp_path / "ro.img"
    original = bytes(range(256)) * (4 << 12)  # 4 MiB of known bytes
    img.write_bytes(original)
    vm = start_vm(["--kernel", GUEST, "--disk", f"{img},readonly", "--cmdline", "app=blkcheck"])
    assert vm.wait_exit(30) == 0, vm.console()
    assert "blkcheck: readonly ok" in vm.console()
    assert img.read_bytes() == original


# ---- requests served off the vCPU: a slow backend, stop and snapshots ----
#
# app=blkseq writes record k (64 words SEQ_TAG | k) to sector (k - 1) % 64, reads it
# and the one before back, prints "blkseq: done seq=k", and while a request is out
# prints "blkseq: waiting ... tick=T" every 100 ms. x-blk-test makes the disk's I/O
# worker sleep before each request, as a slow backend (a network round trip) would.

SEQ_TAG = 0x534551 << 40  # "SEQ" in the top bytes
SEQ_SECTORS = 64
BLKSEQ = f"app=blkseq,sectors={SEQ_SECTORS},period=20"


def seq_record(k):
    return struct.pack("<Q", SEQ_TAG | k) * (SECTOR // 8)


def done_seqs(vm):
    return [int(x) for x in re.findall(r"blkseq: done seq=(\d+)\r?\n", vm.console())]


def last_done(vm):
    seqs = done_seqs(vm)
    return seqs[-1] if seqs else 0


def last_tick(vm):
    ticks = re.findall(r"blkseq: waiting seq=\d+ tick=(\d+)\r?\n", vm.console())
    return int(ticks[-1]) if ticks else 0


def blk_test(q, **args):
    r = q.execute("x-blk-test", dict({"device": "virtio-blk0"}, **args))
    assert "return" in r, r
    return r["return"]


def served(st):
    return st["reads"] + st["writes"] + st["flushes"]


def stuck_request(q):
    """The device's counters once a request sits in the (slow) worker."""
    def one_in_flight():
        st = blk_test(q)
        return st if st["in-flight"] == 1 else None
    return wait_for(one_in_flight, 10, "a request in the slow backend")


def check_records(data, last):
    """Each of the last 64 records the guest completed is in its sector (or, in the
    oldest one's sector, the record after `last` the guest was writing)."""
    for k in range(max(1, last - SEQ_SECTORS + 1), last + 1):
        s = (k - 1) % SEQ_SECTORS
        ok = [seq_record(k)] + ([seq_record(k + SEQ_SECTORS)] if k + SEQ_SECTORS == last + 1 else [])
        assert data[s * SECTOR:(s + 1) * SECTOR] in ok, f"record {k} missing from sector {s}"


def assert_guest_ok(vm):
    console = vm.console()
    assert "FAIL" not in console, console[-2000:]


@pytest.fixture
def blkseq_vm(start_vm, tmp_path):
    """start(disk, name) -> (vm, qmp): app=blkseq on `disk`, a few records done."""
    def start(disk, name="vm", restore=None):
        sock = str(tmp_path / f"{name}.sock")
        boot = ["--restore", str(restore)] if restore else ["--kernel", GUEST, "--cmdline", BLKSEQ]
        vm = start_vm(boot + ["--disk", str(disk), "--net", "none", "--qmp", sock], name=name)
        if not restore:
            vm.wait_console(r"blkseq: done seq=3\b", timeout=30)
        return vm, QMP(sock)
    return start


def new_disk(tmp_path, name="disk.img"):
    img = tmp_path / name
    img.write_bytes(b"\0" * (1 << 20))
    return img


def test_slow_disk_leaves_vcpu_and_monitor_running(blkseq_vm, tmp_path):
    """While the guest's request sits in a slow backend, its vCPU runs on and the
    monitor answers at once; the request then completes with the right data."""
    img = new_disk(tmp_path)
    vm, q = blkseq_vm(img)
    blk_test(q, **{"delay-ms": 4000})
    stuck = stuck_request(q)
    start, tick0, seq0 = time.monotonic(), last_tick(vm), last_done(vm)
    slowest = 0.0
    while time.monotonic() - start < 1.5:  # well inside the 4 s the request is held
        t0 = time.monotonic()
        assert q.execute("query-status")["return"]["status"] == "running"
        st = blk_test(q)  # takes io_lock: nobody holds it across the I/O
        slowest = max(slowest, time.monotonic() - t0)
        time.sleep(0.1)
    # Still the same request in the backend: nothing was served meanwhile ...
    assert st["in-flight"] == 1 and served(st) == served(stuck), (stuck, st)
    assert last_done(vm) == seq0
    # ... yet the guest printed its waiting ticks all along, and QMP replied promptly.
    assert last_tick(vm) >= tick0 + 3, vm.console()[-1000:]
    assert slowest < scaled(0.5), slowest
    blk_test(q, **{"delay-ms": 0})
    vm.wait_console(rf"blkseq: done seq={seq0 + 5}\b", timeout=30)
    assert_guest_ok(vm)
    assert served(blk_test(q)) > served(stuck)
    assert q.execute("stop") == {"return": {}}
    check_records(img.read_bytes(), last_done(vm))


def test_stop_waits_for_slow_request_and_snapshot_restores(blkseq_vm, tmp_path):
    """`stop` during a slow request returns once it is complete and in the used ring;
    a snapshot taken then, restored on a copy of the disk, carries on with every
    record in place (none lost, none completed twice: the guest would panic)."""
    img = new_disk(tmp_path)
    vm, q = blkseq_vm(img)
    blk_test(q, **{"delay-ms": 2000})
    stuck = stuck_request(q)
    assert q.execute("stop") == {"return": {}}
    st = blk_test(q)
    assert st["in-flight"] == 0, st
    assert served(st) == served(stuck) + 1, (stuck, st)
    snap = tmp_path / "vm.snap"
    assert q.execute("snapshot-save", {"file": str(snap)}) == {"return": {}}
    copy = tmp_path / "copy.img"
    shutil.copyfile(img, copy)
    saved = last_done(vm)
    # The original goes on from where it stopped, too.
    blk_test(q, **{"delay-ms": 0})
    assert q.execute("cont") == {"return": {}}
    vm.wait_console(rf"blkseq: done seq={saved + 3}\b", timeout=30)
    assert_guest_ok(vm)
    vm.kill()
    restored, q2 = blkseq_vm(copy, name="restored", restore=snap)
    restored.wait_console(rf"blkseq: done seq={saved + 5}\b", timeout=30)
    assert "lockstep test guest" not in restored.console()  # resumed, not rebooted
    assert_guest_ok(restored)
    assert q2.execute("stop") == {"return": {}}
    check_records(copy.read_bytes(), last_done(restored))


def test_snapshot_of_running_vm_waits_for_slow_request(blkseq_vm, tmp_path):
    """snapshot-save of a running VM during a slow request: the save waits for it,
    so the state holds no half-done request; restored on the disk as it was at the
    save, the guest finds every record it was told is written."""
    img = new_disk(tmp_path)
    vm, q = blkseq_vm(img)
    blk_test(q, **{"delay-ms": 3000})
    stuck = stuck_request(q)
    snap = tmp_path / "vm.snap"
    assert q.execute("snapshot-save", {"file": str(snap)}) == {"return": {}}
    saved_at = time.monotonic()
    # The VM runs again, but its next request is held 3 s before touching the
    # disk: a copy made now is the disk of the snapshot.
    copy = tmp_path / "copy.img"
    shutil.copyfile(img, copy)
    assert time.monotonic() - saved_at < 1.5
    st = blk_test(q)
    assert served(st) >= served(stuck) + 1, (stuck, st)
    assert q.execute("query-status")["return"]["status"] == "running"
    vm.kill()
    restored, q2 = blkseq_vm(copy, name="restored", restore=snap)
    first = wait_for(lambda: done_seqs(restored), 30, "the restored guest's next record")[0]
    restored.wait_console(rf"blkseq: done seq={first + 5}\b", timeout=30)
    assert_guest_ok(restored)
    assert q2.execute("stop") == {"return": {}}
    check_records(copy.read_bytes(), last_done(restored))


def test_x_blk_test_errors(blkseq_vm, tmp_path):
    vm, q = blkseq_vm(new_disk(tmp_path))
    r = q.execute("x-blk-test", {"device": "virtio-blk7"})
    assert r["error"]["class"] == "DeviceNotFound", r
    r = q.execute("x-blk-test", {"device": "serial0"})
    assert "not a virtio-blk" in r["error"]["desc"], r
    r = q.execute("x-blk-test", {"device": "virtio-blk0", "delay-ms": -1})
    assert r["error"]["class"] == "GenericError", r
    r = q.execute("x-blk-test", {})
    assert r["error"]["class"] == "GenericError", r
    st = blk_test(q)
    assert st["delay-ms"] == 0 and st["writes"] > 0 and st["io-errors"] == 0, st


def test_replication_steps_driven_by_hand(start_vm, tmp_path):
    """The replication steps over QMP (QEMU's xen-set-replication family), on a
    secondary's disk: not running until started; the mode must match; the primary's
    writes (through the NBD export) reach the image, with their pre-images kept for
    the secondary's guest until a checkpoint; a failover stop commits the overlays."""
    img = tmp_path / "sec.img"
    img.write_bytes(b"\x11" * (4 << 20))
    sock = tmp_path / "nbd.sock"
    vm = start_vm(["--incoming", "tcp:127.0.0.1:47991", "--qmp", str(tmp_path / "q.sock"),
                   "--disk", f"{img},replication=secondary"])
    q = QMP(str(tmp_path / "q.sock"))
    assert q.execute("query-xen-replication-status")["return"] == {"error": True, "desc": "disk0: block replication is not running"}
    r = q.execute("xen-set-replication", {"enable": True, "primary": True})
    assert r["error"]["desc"] == "disk0: not a primary's disk", r
    r = q.execute("xen-set-replication", {"enable": True, "primary": False, "failover": True})
    assert "only for enable=false" in r["error"]["desc"], r
    assert q.execute("xen-set-replication", {"enable": True, "primary": False}) == {"return": {}}
    assert q.execute("query-xen-replication-status")["return"] == {"error": False}
    # The primary's writes arrive over NBD (qemu-io as the primary).
    assert q.execute("nbd-server-start", {"addr": {"type": "unix", "path": str(sock)}}) == {"return": {}}
    assert q.execute("nbd-server-add", {"device": "disk0", "writable": True}) == {"return": {}}

    def primary_write(pattern, mib):
        w = subprocess.run(["qemu-io", "-f", "raw", "-c", f"write -P {pattern} {mib}M 1M",
                            f"nbd+unix:///disk0?socket={sock}"], capture_output=True, text=True, timeout=60)
        assert w.returncode == 0, w.stdout + w.stderr

    primary_write(0x22, 1)
    assert img.read_bytes()[1 << 20:2 << 20] == b"\x22" * (1 << 20)  # on the disk itself
    assert q.execute("xen-colo-do-checkpoint") == {"return": {}}  # the pre-images dropped
    primary_write(0x33, 2)  # after the checkpoint: its pre-image (0x11) kept in hidden
    # A failover stop commits the overlays: the disk becomes the secondary guest's view,
    # as of the checkpoint: the write after it is undone, the one before it stays.
    assert q.execute("xen-set-replication", {"enable": False, "primary": False, "failover": True}) == \
        {"return": {}}
    assert q.execute("query-xen-replication-status")["return"] == {"error": False}
    assert q.execute("nbd-server-stop") == {"return": {}}
    content = img.read_bytes()
    assert content[1 << 20:2 << 20] == b"\x22" * (1 << 20)
    assert content[2 << 20:3 << 20] == b"\x11" * (1 << 20)
    assert content[:1 << 20] == b"\x11" * (1 << 20)
    r = q.execute("xen-colo-do-checkpoint")  # after the failover: ignored, as upstream
    assert r == {"return": {}}, r


def test_secondary_disk_refuses_a_plain_migration(start_vm, tmp_path):
    """A VM whose disk serves a COLO secondary (replication=secondary) would give its
    guest I/O errors if it ran as a plain migration target: it refuses the migration
    before answering, and the source runs on."""
    img = tmp_path / "sec.img"
    img.write_bytes(b"\0" * (4 << 20))
    dst = start_vm(["--incoming", "tcp:127.0.0.1:47992", "--qmp", str(tmp_path / "d.sock"),
                    "--disk", f"{img},replication=secondary"], name="dst")
    (tmp_path / "src.img").write_bytes(b"\0" * (4 << 20))
    src = start_vm(["--kernel", GUEST, "--qmp", str(tmp_path / "s.sock"), "--cmdline",
                    "app=dirty,pages=16,period=10", "--disk", str(tmp_path / "src.img")], name="src")
    qs = QMP(str(tmp_path / "s.sock"))
    src.wait_console(r"counter=3\b")
    assert qs.execute("migrate", {"uri": "tcp:127.0.0.1:47992"}) == {"return": {}}
    r = wait_for(lambda: (lambda st: st if st["status"] in ("completed", "failed") else None)(
        qs.execute("query-migrate")["return"]), 30, "the migration to end")
    assert r["status"] == "failed", r
    assert r.get("error-desc", "").startswith("the destination refused the VM"), r
    assert qs.execute("query-status")["return"]["status"] == "running"
    last = int(re.findall(r"counter=(\d+)", src.console())[-1])
    src.wait_console(rf"counter={last + 3}\b")  # the guest still counts on the source
    dst.wait_exit()
    assert "can only become a COLO secondary (a disk with replication=secondary)" in dst.stderr()


def test_replication_commands_refuse_bad_requests(start_vm, tmp_path):
    """Every QMP command of a pair set up by hand names what is wrong with a bad
    request and changes nothing: here on a primary's disk with no replica."""
    img = tmp_path / "pri.img"
    img.write_bytes(b"\0" * (1 << 20))
    start_vm(["--incoming", "tcp:127.0.0.1:47993", "--qmp", str(tmp_path / "q.sock"),
              "--disk", f"{img},replication=primary"])
    q = QMP(str(tmp_path / "q.sock"))

    def error(cmd, args=None):
        r = q.execute(cmd, args or {})
        assert "error" in r, (cmd, args, r)
        return r["error"]["desc"]

    assert error("nbd-server-stop") == "NBD server not running"
    assert "expected a socket address" in error("nbd-server-start", {"addr": {"type": "vsock"}})
    sock = str(tmp_path / "nbd.sock")
    assert q.execute("nbd-server-start", {"addr": {"type": "unix", "path": sock}}) == {"return": {}}
    assert error("nbd-server-start", {"addr": {"type": "unix", "path": sock}}) == "NBD server already running"
    assert "not a disk with replication=secondary" in error("nbd-server-add", {"device": "disk0", "writable": True})
    assert q.execute("nbd-server-stop") == {"return": {}}
    link = {"driver": "nbd", "node-name": "nbd0", "export": "disk0",
            "server": {"type": "inet", "host": "127.0.0.1", "port": "47994"}}
    assert "driver 'qcow2' not supported" in error("blockdev-add", dict(link, driver="qcow2"))
    assert "cannot connect to tcp:127.0.0.1:47994" in error("blockdev-add", link)
    assert "Failed to find node with node-name='nbd0'" in error("blockdev-del", {"node-name": "nbd0"})
    assert "not a disk with replication=primary" in error("x-blockdev-change", {"parent": "disk1", "node": "nbd0"})
    assert "either 'node'" in error("x-blockdev-change", {"parent": "disk0", "node": "nbd0", "child": "children.1"})
    assert "not found or not free" in error("x-blockdev-change", {"parent": "disk0", "node": "nbd0"})
    assert "has no child 'children.1'" in error("x-blockdev-change", {"parent": "disk0", "child": "children.1"})
    assert q.execute("query-xen-replication-status")["return"] == {"error": True, "desc": "disk0: no replica"}
    assert error("xen-set-replication", {"enable": True, "primary": True}) == \
        "disk0: no replica attached (x-blockdev-change)"
    assert error("xen-set-replication", {"enable": True, "primary": False}) == "disk0: not a secondary's disk"
    assert q.execute("query-block-jobs")["return"] == []
