"""A stock Linux kernel under lockstep: Debian's own vmlinuz (a bzImage, the same
package the virtual test hosts boot) starts through Linux's boot protocol, with an
initrd and a command line, and reaches its init."""
import os
import subprocess
import sys

import pytest

from harness import LOCKSTEP, ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts", "vhost"))
import vhost  # noqa: E402

INIT = b"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "linux-guest: up $(/bin/busybox uname -r) cmdline=$(/bin/busybox cat /proc/cmdline)"
/bin/busybox echo "linux-guest: mem $(/bin/busybox grep MemTotal /proc/meminfo)"
/bin/busybox reboot -f
"""


def write_initrd(path):
    """busybox and an /init that reports what the kernel was given."""
    entries = [("bin", b"", 0o40755), ("proc", b"", 0o40755),
               ("bin/busybox", open("/bin/busybox", "rb").read(), 0o100755), ("init", INIT, 0o100755)]
    with open(path, "wb") as f:
        for ino, (name, data, mode) in enumerate(entries, 1):
            vhost.cpio_entry(f, ino, name, data, mode)
        vhost.cpio_entry(f, 0, "TRAILER!!!", b"", 0)


@pytest.fixture(scope="module")
def debian_kernel():
    return vhost.prepare(log=lambda msg: None)["bzimage"]


def test_debian_vmlinuz_boots_to_init(start_vm, tmp_path, debian_kernel):
    initrd = tmp_path / "init.cpio"
    write_initrd(initrd)
    vm = start_vm(["--kernel", debian_kernel, "--initrd", str(initrd), "--mem", "256M",
                   "--cmdline", "console=ttyS0 quiet marker=42"])
    m = vm.wait_console(r"linux-guest: up (\S+) cmdline=([^\r\n]*)\r?\n", timeout=120)
    assert debian_kernel.split(os.sep)[-2] == m.group(1), m.group(0)  # the cache is per version
    assert "marker=42" in m.group(2).split(), m.group(0)
    m = vm.wait_console(r"linux-guest: mem MemTotal:\s+(\d+) kB\r?\n", timeout=30)
    assert 200_000 < int(m.group(1)) <= 256 * 1024, m.group(0)  # the e820 map: 256 MiB less the kernel's
    # Its reboot (no ACPI: the keyboard controller's reset pulse) ends the run cleanly.
    assert vm.wait_exit(timeout=60) == 0, vm.stderr()


def test_truncated_bzimage_is_named(kvm, tmp_path, debian_kernel):
    cut = tmp_path / "vmlinuz.cut"
    cut.write_bytes(open(debian_kernel, "rb").read()[:0x240])
    p = subprocess.run([LOCKSTEP, "run", "--kernel", str(cut)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip() == f"lockstep: error: kernel {cut}: truncated Linux setup header", p.stderr
