"""The guest's TCP/IP services (app=serve: lwIP + echo, RESP key-value, HTTP,
the guest's own client stream) against real clients in a client namespace:
redis-cli, redis-benchmark, curl, nc, Python sockets, over IPv4 and IPv6."""
import os
import re
import signal
import time

import pytest

from guest_net import GUEST_MAC, NetNS6, crc32_hex, pattern, start_serve
from harness import scaled


@pytest.fixture
def ns(cleanup):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    return NetNS6(cleanup)


@pytest.fixture
def guest(start_vm, ns):
    return start_serve(start_vm, ns)


def run_ok(ns, argv, timeout=60, input=None):
    p = ns.run(argv, timeout=timeout, input=input)
    assert p.returncode == 0, f"{argv}: exit {p.returncode}\n{p.stdout[-2000:]!r}\n{p.stderr[-2000:]!r}"
    return p.stdout


def redis(ns, host, *args):
    return run_ok(ns, ["redis-cli", "-h", host, *args], timeout=10).decode().strip()


def assert_alive(vm):
    assert vm.proc.poll() is None, f"guest died:\n{vm.console()}"
    assert "FAIL" not in vm.console(), vm.console()


# ---- the key-value server ----

def test_redis_cli_commands(guest, ns):
    ip = ns.GUEST_IP
    assert redis(ns, ip, "PING") == "PONG"
    assert redis(ns, ip, "SET", "greeting", "hello world") == "OK"
    assert redis(ns, ip, "GET", "greeting") == "hello world"
    assert redis(ns, ip, "GET", "nothing") == ""
    assert [redis(ns, ip, "INCR", "hits") for _ in range(3)] == ["1", "2", "3"]
    assert redis(ns, ip, "INCRBY", "hits", "10") == "13"
    assert redis(ns, ip, "EXISTS", "greeting", "hits", "nothing") == "2"
    assert redis(ns, ip, "DBSIZE") == "2"
    assert redis(ns, ip, "DEL", "greeting") == "1"
    assert redis(ns, ip, "ECHO", "abc") == "abc"
    assert redis(ns, ip, "SET", "t", "x") == "OK"
    assert "ERR value is not an integer" in redis(ns, ip, "INCR", "t")
    assert redis(ns, ip, "FLUSHALL") == "OK"
    assert redis(ns, ip, "DBSIZE") == "0"


def test_redis_cli_binary_values(guest, ns):
    value = bytes(range(256)) * 64  # 16 KiB with every byte value, CR and LF included
    run_ok(ns, ["redis-cli", "-h", ns.GUEST_IP, "-x", "SET", "blob"], input=value)
    out = run_ok(ns, ["redis-cli", "-h", ns.GUEST_IP, "--raw", "GET", "blob"])  # value + "\n"
    assert out[:-1] == value


def test_redis_benchmark_no_errors(guest, ns):
    out = run_ok(ns, ["redis-benchmark", "-h", ns.GUEST_IP, "-t", "ping,set,get,incr",
                      "-n", "5000", "-c", "20", "-q"], timeout=120).decode()
    lines = re.findall(r"(\w+): ([\d.]+) requests per second", out)
    names = [name for name, _ in lines]
    assert names == ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"], out
    assert all(float(rps) > 0 for _, rps in lines)
    assert "error" not in out.lower(), out


def test_kv_persists_across_restart(start_vm, ns, tmp_path):
    disk = str(tmp_path / "kv.img")
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    vm = start_serve(start_vm, ns, services="kv", extra="kvdisk=1", disk=disk, name="first")
    ip = ns.GUEST_IP
    assert redis(ns, ip, "SET", "durable", "yes") == "OK"
    assert redis(ns, ip, "SET", "gone", "soon") == "OK"
    assert redis(ns, ip, "DEL", "gone") == "1"
    for _ in range(5):
        redis(ns, ip, "INCR", "counter")
    run_ok(ns, ["redis-benchmark", "-h", ip, "-t", "set", "-n", "2000", "-c", "10", "-q"], timeout=120)
    vm.proc.send_signal(signal.SIGKILL)  # no shutdown: only what reached the disk survives
    vm.wait_exit()
    vm = start_serve(start_vm, ns, services="kv", extra="kvdisk=1", disk=disk, name="second")
    m = vm.wait_console(r"kv: log replayed: (\d+) records, (\d+) keys")
    assert int(m.group(1)) >= 2008 and int(m.group(2)) == 3
    assert redis(ns, ip, "GET", "durable") == "yes"
    assert redis(ns, ip, "GET", "counter") == "5"
    assert redis(ns, ip, "EXISTS", "gone") == "0"
    assert redis(ns, ip, "CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]


# ---- HTTP ----

@pytest.mark.parametrize("size", [0, 1, 1000, 65536, 1048576, 10 << 20])
def test_curl_body_byte_exact(guest, ns, tmp_path, size):
    body, head = tmp_path / "body", tmp_path / "head"
    run_ok(ns, ["curl", "-sS", "--max-time", "60", "-D", str(head), "-o", str(body),
                f"http://{ns.GUEST_IP}/bytes/{size}"], timeout=90)
    data = body.read_bytes() if body.exists() else b""  # curl creates no file for an empty body
    headers = head.read_bytes().decode()
    assert headers.startswith("HTTP/1.1 200 OK")
    assert f"Content-Length: {size}\r\n" in headers
    assert len(data) == size and data == pattern(size)
    assert f"X-Checksum: crc32={crc32_hex(data)}\r\n" in headers


def test_curl_keepalive_and_errors(guest, ns):
    p = ns.run(["curl", "-sS", "-v", "-o", "/dev/null", "-o", "/dev/null",
                f"http://{ns.GUEST_IP}/", f"http://{ns.GUEST_IP}/bytes/10"])
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, err
    assert re.search(r"Re-?using existing connection", err), err
    code = run_ok(ns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                       f"http://{ns.GUEST_IP}/missing"]).decode()
    assert code == "404"
    code = run_ok(ns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                       f"http://{ns.GUEST_IP}/"]).decode()
    assert code == "405"


def test_wrk_and_ab_without_errors(guest, ns):
    out = run_ok(ns, ["wrk", "-t", "2", "-c", "20", "-d", "2s", f"http://{ns.GUEST_IP}/bytes/1024"],
                 timeout=60).decode()
    assert re.search(r"Requests/sec:\s+[\d.]+", out), out
    assert "Socket errors" not in out and "Non-2xx" not in out, out
    out = run_ok(ns, ["ab", "-k", "-n", "2000", "-c", "10", f"http://{ns.GUEST_IP}/bytes/1024"],
                 timeout=60).decode()
    assert "Failed requests:        0" in out and "Complete requests:      2000" in out, out


# ---- echo, concurrency, IPv6 ----

def test_echo_1mb_random_over_nc(guest, ns):
    data = os.urandom(1 << 20)
    out = run_ok(ns, ["nc", "-N", "-w", "10", ns.GUEST_IP, "7"], input=data, timeout=60)
    assert out == data


CONCURRENT = r"""
import os, socket, sys, threading
host, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks, results = [], {}
for i in range(n):                        # all open before any data moves
    s = socket.create_connection((host, 7), timeout=30)
    socks.append(s)
def run(i, s):
    data = os.urandom(size)
    threading.Thread(target=s.sendall, args=(data,)).start()
    got = bytearray()
    while len(got) < size:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    results[i] = bytes(got) == data
    s.close()
threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(socks)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(results.values()))
"""


def test_50_concurrent_connections(guest, ns):
    out = run_ok(ns, ["/usr/bin/python3", "-c", CONCURRENT, ns.GUEST_IP, "50", "100000"], timeout=120)
    assert out.decode().strip() == "50"


def test_ipv6_ping_and_tcp(guest, ns, tmp_path):
    out = run_ok(ns, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", ns.GUEST_IP6]).decode()
    assert "3 received" in out
    data = os.urandom(300000)
    assert run_ok(ns, ["nc", "-N", "-w", "10", ns.GUEST_IP6, "7"], input=data) == data
    assert redis(ns, ns.GUEST_IP6, "SET", "v6", "works") == "OK"
    assert redis(ns, ns.GUEST_IP6, "GET", "v6") == "works"
    body = tmp_path / "body6"
    run_ok(ns, ["curl", "-sS", "-g", "-o", str(body), f"http://[{ns.GUEST_IP6}]/bytes/200000"])
    assert body.read_bytes() == pattern(200000)
    out = run_ok(ns, ["/usr/bin/python3", "-c", CONCURRENT, ns.GUEST_IP6, "10", "20000"], timeout=60)
    assert out.decode().strip() == "10"


UDP6 = r"""
import os, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
for size in (1, 500, 1452):
    data = os.urandom(size)
    s.sendto(data, (sys.argv[1], 7))
    got, _ = s.recvfrom(4096)
    assert got == data, size
print("ok")
"""


def test_udp_echo_over_ipv6(guest, ns):
    assert run_ok(ns, ["/usr/bin/python3", "-c", UDP6, ns.GUEST_IP6]).decode().strip() == "ok"


# ---- the guest's own connections ----

LISTENER = r"""
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
srv.settimeout(60)
conn, _ = srv.accept()
with open(sys.argv[3], "wb") as f:
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        f.write(chunk)
"""


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_guest_initiated_stream(start_vm, ns, tmp_path, v6):
    import subprocess
    size = 3_000_000
    host = ns.HOST_IP6 if v6 else ns.HOST_IP
    out = tmp_path / "stream.bin"
    listener = subprocess.Popen(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-c", LISTENER,
                                 host, "9000", str(out)])
    try:
        time.sleep(0.3)
        target = f"[{host}]:9000" if v6 else f"{host}:9000"
        vm = start_serve(start_vm, ns, services="echo+stream", extra=f"connect={target},bytes={size}")
        vm.wait_console(rf"stream: done bytes={size}", timeout=60)
        assert listener.wait(timeout=30) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert out.read_bytes() == pattern(size)
    assert f"stream: connected to {target}" in vm.console()


def test_guest_stream_retries_until_the_listener_is_up(start_vm, ns, tmp_path):
    # Refused attempts are retried every second; each retry is a one-shot lwIP timeout,
    # which once found lwIP's timeout pool sized for its own timers only (assertion).
    import subprocess
    size = 100_000
    out = tmp_path / "stream.bin"
    vm = start_serve(start_vm, ns, services="echo+stream", extra=f"connect={ns.HOST_IP}:9000,bytes={size}")
    time.sleep(scaled(3.5))  # three refused attempts at least
    assert "stream: connected" not in vm.console() and vm.proc.poll() is None, vm.console()
    listener = subprocess.Popen(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-c", LISTENER,
                                 ns.HOST_IP, "9000", str(out)])
    try:
        vm.wait_console(rf"stream: done bytes={size}", timeout=30)
        assert listener.wait(timeout=scaled(30)) == 0
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert out.read_bytes() == pattern(size)


# ---- initial sequence numbers ----

ISN_PROBE = r"""
import socket, struct, sys, threading
guest, port, tries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sniff.bind((sys.argv[4], 0))
sniff.settimeout(2)
isns = []
for _ in range(tries):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    s.bind(("0.0.0.0", port))
    s.connect((guest, 7))
    while True:
        f = sniff.recv(2048)
        ip = f[14:]
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        if ip[9] == 6 and sport == 7 and dport == port and tcp[13] & 0x12 == 0x12:
            isns.append(seq)
            break
    s.close()
print(" ".join(map(str, isns)))
"""


def test_isns_differ_across_connections_and_boots(start_vm, ns):
    isns = []
    for boot in range(2):
        vm = start_serve(start_vm, ns, services="echo", name=f"boot{boot}")
        out = run_ok(ns, ["/usr/bin/python3", "-c", ISN_PROBE, ns.GUEST_IP, "40123", "2", ns.tap])
        isns += [int(x) for x in out.split()]
        vm.kill()
    assert len(isns) == 4 and len(set(isns)) == 4, isns


# ---- robustness ----

HOSTILE = r"""
import os, random, socket, struct, sys
tap, guest_mac, gip4, hip4 = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), sys.argv[3], sys.argv[4]
rnd = random.Random(1234)
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind((tap, 0))
ours = bytes.fromhex("02ee00000001")
sent = 0

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def eth(t, payload, dst=guest_mac):
    return dst + ours + struct.pack("!H", t) + payload

def ip4(src, proto, payload, ihl=5, total=None, good=True, frag=0x4000):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, rnd.randrange(65536), frag, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(gip4))
    c = csum(h) if good else 0x1234
    return h[:10] + struct.pack("!H", c) + h[12:] + payload

def tcp4(src, sport, dport, flags, seq=0, data=b"", opts=b"", off=None, good=True):
    off = (20 + len(opts)) // 4 if off is None else off
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, off << 4, flags, 65535, 0, 0) + opts + data
    ph = socket.inet_aton(src) + socket.inet_aton(gip4) + struct.pack("!BBH", 0, 6, len(h))
    c = csum(ph + h) if good else 0xbeef
    return h[:16] + struct.pack("!H", c) + h[18:]

def send(frame):
    global sent
    try:
        raw.send(frame)
        sent += 1
    except OSError:
        pass

def spoofed():
    return f"10.0.2.{rnd.randrange(100, 250)}"

# truncated and malformed IPv4
good_ping = ip4(hip4, 1, b"\x08\x00\xf7\xff" + b"\0" * 4)
for cut in range(len(good_ping)):
    send(eth(0x0800, good_ping[:cut]))
for ihl in (0, 4, 15):
    send(eth(0x0800, ip4(hip4, 1, b"\x08\0\0\0\0\0\0\0", ihl=ihl)))
for total in (0, 19, 21, 9000, 65535):
    send(eth(0x0800, ip4(hip4, 1, b"\x08\0\0\0\0\0\0\0", total=total)))
send(eth(0x0800, ip4(hip4, 1, b"\x08\0\0\0\0\0\0\0", good=False)))
# TCP: bad checksums, impossible data offsets, broken options
for port in (7, 80, 6379):
    send(eth(0x0800, ip4(hip4, 6, tcp4(hip4, 5000, port, 0x02, good=False))))
    for off in (0, 4, 15):
        send(eth(0x0800, ip4(hip4, 6, tcp4(hip4, 5001, port, 0x02, off=off))))
    for opts in (b"\x02\x00\x00\x00", b"\x02\x01\x05\xb4", b"\x03\x00\x00\x00", b"\x02\x04", b"\x08\x0a\x00\x00"):
        send(eth(0x0800, ip4(hip4, 6, tcp4(hip4, 5002, port, 0x02, opts=opts + b"\0" * (-len(opts) % 4)))))
# UDP with lying length fields
for ulen in (0, 7, 9, 4000):
    u = struct.pack("!HHHH", 1000, 7, ulen, 0) + b"x" * 8
    send(eth(0x0800, ip4(hip4, 17, u)))
# overlapping IPv4 fragments that never complete
for i in range(300):
    send(eth(0x0800, ip4(hip4, 17, os.urandom(rnd.choice((8, 64, 512))),
                         frag=(0x2000 if rnd.random() < 0.7 else 0) | rnd.randrange(400))))
# IPv6: lying payload lengths, zero-length ND options, junk extension headers
gip6, hip6 = socket.inet_pton(socket.AF_INET6, sys.argv[5]), socket.inet_pton(socket.AF_INET6, sys.argv[6])
def ip6(nxt, payload, plen=None, hop=255):
    plen = len(payload) if plen is None else plen
    return struct.pack("!IHBB", 0x60000000, plen, nxt, hop) + hip6 + gip6 + payload
for plen in (0, 1, 200, 65535):
    send(eth(0x86dd, ip6(58, b"\x80\x00\x00\x00\x00\x01\x00\x01", plen=plen)))
ns_msg = b"\x87\x00\x00\x00\x00\x00\x00\x00" + gip6 + b"\x01\x00" + b"\0" * 6
send(eth(0x86dd, ip6(58, ns_msg)))
for _ in range(50):
    hbh = bytes([rnd.choice((0, 43, 44, 58, 60)), rnd.randrange(4)]) + os.urandom(6 + 8 * rnd.randrange(3))
    send(eth(0x86dd, ip6(0, hbh)))
# a SYN flood from forged addresses, IPv4 and IPv6
def syn6(src, sport, dport):
    h = struct.pack("!HHIIBBHHH", sport, dport, rnd.randrange(1 << 32), 0, 6 << 4, 0x02, 65535, 0, 0)
    h += b"\x02\x04\x05\xa0"
    ph = src + gip6 + struct.pack("!I3xB", len(h), 6)
    h = h[:16] + struct.pack("!H", csum(ph + h)) + h[18:]
    return struct.pack("!IHBB", 0x60000000, len(h), 6, 64) + src + gip6 + h
for i in range(int(sys.argv[7])):
    port = rnd.choice((7, 80, 6379))
    if i % 4 == 0:
        src6 = socket.inet_pton(socket.AF_INET6, f"fd00::10:{rnd.randrange(1, 65535):x}")
        send(eth(0x86dd, syn6(src6, rnd.randrange(1024, 65535), port)))
        continue
    src = spoofed()
    send(eth(0x0800, ip4(src, 6, tcp4(src, rnd.randrange(1024, 65535), port, 0x02, seq=rnd.randrange(1 << 32),
                                       opts=b"\x02\x04\x05\xb4"))))
# random junk of every type
for _ in range(2000):
    t = rnd.choice((0x0800, 0x86dd, 0x0806, 0x8100, rnd.randrange(65536)))
    send(eth(t, os.urandom(rnd.randrange(0, 1500))))
print(sent)
"""


def test_hostile_frames_leave_services_answering(start_vm, ns):
    vm = start_serve(start_vm, ns)
    out = run_ok(ns, ["/usr/bin/python3", "-c", HOSTILE, ns.tap, GUEST_MAC, ns.GUEST_IP, ns.HOST_IP,
                      ns.GUEST_IP6, ns.HOST_IP6, "1500"], timeout=120)
    assert int(out) > 3000
    time.sleep(0.5)
    assert_alive(vm)
    assert "3 received" in run_ok(ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", ns.GUEST_IP]).decode()
    assert "3 received" in run_ok(ns, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", ns.GUEST_IP6]).decode()
    assert redis(ns, ns.GUEST_IP, "PING") == "PONG"
    assert redis(ns, ns.GUEST_IP6, "PING") == "PONG"
    data = os.urandom(100000)
    assert run_ok(ns, ["nc", "-N", "-w", "10", ns.GUEST_IP, "7"], input=data) == data
    body = run_ok(ns, ["curl", "-sS", "--max-time", "20", f"http://{ns.GUEST_IP}/bytes/100000"], timeout=30)
    assert body == pattern(100000)
    assert_alive(vm)
