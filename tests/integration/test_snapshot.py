"""Snapshots: the whole VM saved to a file and loaded back, in the same process or a new one."""
import re
import time

import pytest

from harness import GUEST, QMP, scaled, wait_for

DIRTY = "app=dirty,pages=32,period=20"


def counters(vm):
    return [int(x) for x in re.findall(r"dirty: counter=(\d+) pages=\d+\r?\n", vm.console())]


def wait_new_counters(vm, skip, n, timeout=10.0):
    """The counters printed after the first `skip` ones, once there are n of them."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        later = counters(vm)[skip:]
        if len(later) >= n:
            return later
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} new counters: {vm.console()[-500:]}")


def first_run_from(vm, skip, at_most):
    """After the first `skip` counters, the first three that start at or below at_most."""
    def find():
        c = counters(vm)[skip:]
        starts = [i for i in range(len(c) - 2) if c[i] <= at_most]
        return c[starts[0]:starts[0] + 3] if starts else None
    return wait_for(find, 10, f"a counter at or below {at_most}")


@pytest.fixture
def dirty_vm(start_vm, tmp_path):
    def start(extra=(), name="vm"):
        sock = str(tmp_path / f"{name}.sock")
        vm = start_vm(["--kernel", GUEST, "--qmp", sock, "--cmdline", DIRTY] + list(extra), name=name)
        vm.wait_console(r"dirty: counter=5\b")
        return vm, QMP(sock)
    return start


def save(q, path):
    r = q.execute("snapshot-save", {"file": str(path)})
    assert r == {"return": {}}, r


def test_restore_in_new_process_continues_counter(dirty_vm, start_vm, tmp_path):
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * (1 << 20))
    devices = ["--disk", str(img), "--net", "none"]
    vm, q = dirty_vm(devices)
    snap = tmp_path / "vm.snap"
    before_save = counters(vm)[-1]
    save(q, snap)
    at_save = counters(vm)[-1]  # the console may lag the guest: saved between the two
    vm.wait_console(rf"counter={at_save + 3}\b")  # the original runs on after saving
    vm.kill()
    restored = start_vm(["--restore", str(snap)] + devices, name="restored")
    restored.wait_console(r"dirty: counter=\d+ pages=\d+\r?\n")
    first = counters(restored)[0]
    # The guest resumes where it was saved: the next period prints the next value
    # (or the one after, when the save cut a line the restored guest then completes).
    assert before_save + 1 <= first <= at_save + 2, (before_save, at_save, restored.console())
    restored.wait_console(rf"counter={first + 5}\b")
    assert "lockstep test guest" not in restored.console()  # no reboot: no banner


def test_snapshot_load_rewinds_running_vm(dirty_vm, tmp_path):
    vm, q = dirty_vm()
    snap = tmp_path / "vm.snap"
    before_save = counters(vm)[-1]
    save(q, snap)
    # The console can lag the guest (more so under TCG): the snapshot was taken
    # somewhere between these two readings.
    at_save = counters(vm)[-1]
    vm.wait_console(rf"counter={at_save + 10}\b")
    before = len(counters(vm))
    r = q.execute("snapshot-load", {"file": str(snap)})
    assert r == {"return": {}}, r
    # Back to the saved state: the counter after it again, then on. (Lines printed
    # before the load took effect continue the old run, far above at_save.)
    rewound = first_run_from(vm, before, at_save + 2)
    assert before_save + 1 <= rewound[0] <= at_save + 2, (before_save, at_save, rewound)
    assert rewound[1:3] == [rewound[0] + 1, rewound[0] + 2], (at_save, rewound)
    assert q.execute("query-status")["return"]["status"] == "running"


def test_snapshot_of_stopped_vm_keeps_it_stopped(dirty_vm, tmp_path):
    vm, q = dirty_vm()
    assert q.execute("stop") == {"return": {}}
    save(q, tmp_path / "s.snap")
    assert q.execute("query-status")["return"]["status"] == "paused"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_bad_snapshot_is_refused_and_vm_unharmed(dirty_vm, tmp_path, damage):
    vm, q = dirty_vm()
    snap = tmp_path / "vm.snap"
    save(q, snap)
    data = bytearray(snap.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data = bytearray(b"this is not a snapshot" * 10)
    bad = tmp_path / "bad.snap"
    bad.write_bytes(bytes(data))
    n = counters(vm)[-1]
    r = q.execute("snapshot-load", {"file": str(bad)})
    assert r["error"]["class"] == "GenericError"
    expect = {"flip": "corrupted", "truncate": "truncated", "garbage": "bad magic"}[damage]
    assert expect in r["error"]["desc"], r
    # The VM was not touched: it runs on from where it was.
    vm.wait_console(rf"counter={n + 3}\b")
    assert all(b - a == 1 for a, b in zip(counters(vm), counters(vm)[1:]))


def test_snapshot_errors(dirty_vm, tmp_path):
    vm, q = dirty_vm()
    r = q.execute("snapshot-save", {"file": str(tmp_path / "no" / "such" / "dir" / "x")})
    assert "cannot create" in r["error"]["desc"]
    r = q.execute("snapshot-load", {"file": str(tmp_path / "missing.snap")})
    assert "No such file" in r["error"]["desc"]
    r = q.execute("snapshot-save", {})
    assert r["error"]["class"] == "GenericError" and "file" in r["error"]["desc"]
    assert q.execute("query-status")["return"]["status"] == "running"


def test_restore_with_other_config_is_refused(dirty_vm, start_vm, tmp_path):
    vm, q = dirty_vm()
    snap = tmp_path / "vm.snap"
    save(q, snap)
    other = start_vm(["--restore", str(snap), "--mem", "128M"], name="other")
    assert other.wait_exit() == 1
    assert "state has 256 MiB of RAM, this VM 128 MiB" in other.stderr()
    other = start_vm(["--restore", str(snap), "--net", "none"], name="other2")
    assert other.wait_exit() == 1
    assert "devices" in other.stderr()
    missing = start_vm(["--restore", str(tmp_path / "nope")], name="missing")
    assert missing.wait_exit() == 1
    assert "No such file" in missing.stderr()


def test_snapshot_to_full_disk_keeps_old_file_and_vm(dirty_vm, tmp_path):
    """A full disk: the save fails with a clear error, the previous snapshot is intact, the VM runs on."""
    import os
    import subprocess
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        vm, q = dirty_vm()
        old = mnt / "vm.snap"
        old.write_bytes(b"previous snapshot")
        r = q.execute("snapshot-save", {"file": str(old)})
        assert "No space left on device" in r["error"]["desc"], r
        assert old.read_bytes() == b"previous snapshot"
        assert not os.path.exists(str(old) + ".tmp")
        assert q.execute("query-status")["return"]["status"] == "running"
        n = counters(vm)[-1]
        vm.wait_console(rf"counter={n + 3}\b")
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
