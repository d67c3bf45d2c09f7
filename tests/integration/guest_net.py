"""What the TCP/IP service tests and benchmarks share: a namespace with IPv6 as
well, the guest's command line, and the documented byte pattern of its
HTTP bodies and client stream (guest/services/pattern.h)."""
import array
import sys
import zlib

from harness import GUEST, NetNS

GUEST_MAC = "52:54:00:ab:cd:ef"


class NetNS6(NetNS):
    """NetNS whose TAP also carries fd00::1/64 (no duplicate address detection,
    so the address works at once)."""

    HOST_IP6 = "fd00::1"
    GUEST_IP6 = "fd00::15"

    def __init__(self, cleanup, tap="tap0"):
        super().__init__(cleanup, tap)
        self.sh(f"ip -6 addr add {self.HOST_IP6}/64 dev {tap} nodad")


def serve_args(ns, services="echo+kv+http", extra="", disk=None):
    """`lockstep run` arguments for app=serve on ns's TAP."""
    cmdline = (f"app=serve,ip={ns.GUEST_IP}/24,ip6={ns.GUEST_IP6}/64,services={services}"
               + (f",{extra}" if extra else ""))
    args = ["--kernel", GUEST, "--mem", "256M", "--net", f"tap={ns.tap},mac={GUEST_MAC}",
            "--cmdline", cmdline]
    if disk:
        args += ["--disk", disk]
    return args


def start_serve(start_vm, ns, services="echo+kv+http", extra="", disk=None, name="vm"):
    vm = start_vm(serve_args(ns, services, extra, disk), netns=ns.name, name=name)
    vm.wait_console(r"net: up mac=\S+ ip=\S+ ip6=fd00::15/64")
    return vm


def pattern(n):
    """The first n bytes of the guest's pattern stream: 64-bit little-endian counters."""
    counters = array.array("Q", range(n // 8 + 1))
    if sys.byteorder != "little":
        counters.byteswap()
    return counters.tobytes()[:n]


def crc32_hex(data):
    return f"{zlib.crc32(data) & 0xffffffff:08x}"
