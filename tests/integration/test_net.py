"""virtio-net over a TAP device: ARP, ICMP echo and UDP echo, from a client namespace."""
import os

import pytest

from harness import GUEST

MAC = "52:54:00:ab:cd:ef"


@pytest.fixture
def guest(start_vm, netns):
    vm = start_vm(["--kernel", GUEST, "--net", f"tap={netns.tap},mac={MAC}",
                   "--cmdline", f"app=net,ip={netns.GUEST_IP}/24"], netns=netns.name)
    vm.wait_console(rf"net: up mac={MAC} ip={netns.GUEST_IP}/24")
    return vm


def test_ping(guest, netns):
    p = netns.sh(f"ping -c 5 -i 0.2 -W 2 {netns.GUEST_IP}", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "5 received" in p.stdout
    # ARP resolved the guest to the MAC given on the command line.
    neigh = netns.sh(f"ip neigh show {netns.GUEST_IP}").stdout
    assert MAC in neigh


UDP_CLIENT = """
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for size in (1, 64, 1000, 1472):
    payload = os.urandom(size)
    s.sendto(payload, (sys.argv[1], 7))
    data, addr = s.recvfrom(4096)
    assert data == payload, (size, len(data))
    assert addr == (sys.argv[1], 7)
print("udp ok")
"""


def test_udp_echo_intact(guest, netns):
    p = netns.run(["/usr/bin/python3", "-c", UDP_CLIENT, netns.GUEST_IP])
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().strip() == "udp ok"


def test_udp_to_closed_port_gets_no_echo(guest, netns):
    script = UDP_CLIENT.replace("(sys.argv[1], 7))", "(sys.argv[1], 9))")
    p = netns.run(["/usr/bin/python3", "-c", script, netns.GUEST_IP])
    assert p.returncode != 0  # timeout: nothing echoes on port 9
    # and the guest still serves port 7 afterwards
    p = netns.run(["/usr/bin/python3", "-c", UDP_CLIENT, netns.GUEST_IP])
    assert p.returncode == 0, p.stderr.decode()


def test_net_none_backend_boots(start_vm):
    vm = start_vm(["--kernel", GUEST, "--net", "none", "--cmdline", "app=hello"])
    assert vm.wait_exit() == 0
    assert "virtio-mmio devices: 1" in vm.console()
