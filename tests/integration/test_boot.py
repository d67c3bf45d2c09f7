"""Booting the test guest, and every bad-input case of `lockstep run`."""
import os

import pytest

from harness import GUEST, LOCKSTEP, run_lockstep


def test_hello_exits_zero_with_banner(start_vm):
    vm = start_vm(["--kernel", GUEST, "--cmdline", "app=hello"])
    assert vm.wait_exit() == 0
    console = vm.console()
    assert "lockstep test guest: hello from CPL3" in console
    assert "cmdline: app=hello" in console
    assert vm.stderr() == ""


def test_guest_exit_status_becomes_process_status(start_vm):
    vm = start_vm(["--kernel", GUEST, "--cmdline", "app=no-such-app"])
    assert vm.wait_exit() == 1
    assert "FAIL: unknown app 'no-such-app'" in vm.console()


def test_memory_size_reaches_guest(start_vm):
    vm = start_vm(["--kernel", GUEST, "--mem", "64M", "--cmdline", "app=hello"])
    assert vm.wait_exit() == 0
    assert "ram top: 0x4000000," in vm.console()


def test_console_on_stdout(kvm):
    status, out, err = run_lockstep(["run", "--kernel", GUEST, "--cmdline", "app=hello"])
    assert status == 0, err
    assert "hello from CPL3" in out


def expect_bad_input(args, message, status=None):
    code, out, err = run_lockstep(args)
    assert code != 0, f"lockstep accepted {args}"
    if status is not None:
        assert code == status
    lines = [l for l in err.splitlines() if l.startswith("lockstep: error:")]
    assert len(lines) == 1, err
    assert message in lines[0], err


@pytest.mark.parametrize("args,message", [
    ([], "missing command"),
    (["frobnicate"], "unknown command frobnicate"),
    (["run"], "--kernel ELF is required"),
    (["run", "--kernel"], "missing value for option '--kernel'"),
    (["run", "--kernel", "k", "--mem", "lots"], "--mem: bad size 'lots'"),
    (["run", "--kernel", "k", "--mem", "1M"], "must be between 4M and 64G"),
    (["run", "--kernel", "k", "--net", "tap=t0,mac=01:02:03:04:05:06"], "bad MAC address"),
    (["run", "--kernel", "k", "--net", "tap=t0,mac=nonsense"], "bad MAC address 'nonsense'"),
    (["run", "--kernel", "k", "--net", "bridge"], "expected tap=IFNAME[,mac=MAC] or none"),
    (["run", "--kernel", "k", "--disk", "d.img,cache=none"], "unknown option 'cache=none'"),
    (["run", "--kernel", "k", "--console", "pty"], "expected stdio or file:PATH"),
    (["run", "--kernel", "k", "--frobnicate"], "unknown option '--frobnicate'"),
])
def test_bad_arguments(args, message):
    expect_bad_input(args, message, status=2)


def test_kernel_missing(kvm, tmp_path):
    expect_bad_input(["run", "--kernel", str(tmp_path / "nope.elf")],
                     "kernel " + str(tmp_path / "nope.elf") + ": No such file or directory")


def test_kernel_not_elf(kvm, tmp_path):
    k = tmp_path / "k.txt"
    k.write_text("not a kernel\n")
    expect_bad_input(["run", "--kernel", str(k)],
                     f"kernel {k}: neither an ELF (PVH) nor a Linux bzImage (no \"HdrS\" boot header)")


def test_kernel_without_pvh_note(kvm, tmp_path):
    # /bin/true is a 64-bit x86 ELF without the PVH note.
    expect_bad_input(["run", "--kernel", "/bin/true"], "not a PVH kernel")


def test_disk_missing(kvm, tmp_path):
    d = str(tmp_path / "missing.img")
    expect_bad_input(["run", "--kernel", GUEST, "--disk", d], f"disk {d}: No such file")


def test_disk_unreadable(kvm, tmp_path):
    d = tmp_path / "dir.img"
    d.mkdir()
    expect_bad_input(["run", "--kernel", GUEST, "--disk", str(d)], f"disk {d}:")


def test_tap_cannot_be_opened(kvm, netns):
    # "lo" exists in the namespace but is not a TAP device: attaching must fail cleanly.
    p = netns.run([LOCKSTEP, "run", "--kernel", GUEST, "--net", "tap=lo"])
    err = p.stderr.decode()
    assert p.returncode == 1, err
    lines = [l for l in err.splitlines() if l.startswith("lockstep: error:")]
    assert len(lines) == 1 and lines[0].startswith("lockstep: error: tap lo:"), err


def test_no_kvm_access(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges")
    # An unprivileged user cannot open /dev/kvm (mode 0600 root here).
    import subprocess
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        LOCKSTEP, "run",
                        "--kernel", GUEST], capture_output=True, text=True, timeout=10)
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.skip("/dev/kvm is world-accessible here")
    assert p.returncode == 1
    assert "cannot open /dev/kvm: Permission denied" in p.stderr
