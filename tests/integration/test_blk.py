"""virtio-blk end to end: the guest writes and verifies a pattern; the host checks the image."""
import struct

from harness import GUEST

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
