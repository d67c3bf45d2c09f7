"""COLO with real clients: the pair's network path (mirror, comparator, rewriter) and failover.

Two "hosts" on one LAN: a bridge in a private namespace with the primary's and
the secondary's TAP devices on it, and the clients on the bridge's address.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import zlib

import pytest

from guest_net import GUEST_MAC, pattern
import harness
from harness import GUEST, QMP, NetNS, scaled

_port = [47800]

ECHO_SESSION = r"""
import os, socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(20)
s.connect((sys.argv[1], 7))
data = os.urandom(1 << 20)
deadline = time.monotonic() + float(sys.argv[2])
n = got = 0
while time.monotonic() < deadline:
    part = data[(n * 4096) % len(data):][:4096]
    s.sendall(part)
    back = b""
    while len(back) < len(part):
        b = s.recv(len(part) - len(back))
        if not b:
            sys.exit("echo session closed by the guest")
        back += b
    if back != part:
        sys.exit("echo differs")
    got += len(back)
    n += 1
    time.sleep(0.005)
print(f"echo ok {got} bytes {n} round trips")
"""

KV_WRITER = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 6379), timeout=20)
f = s.makefile("rb")
deadline = time.monotonic() + float(sys.argv[2])
acked = 0
while time.monotonic() < deadline:
    key, val = f"k{acked}", f"v{acked}"
    s.sendall(f"*3\r\n$3\r\nSET\r\n${len(key)}\r\n{key}\r\n${len(val)}\r\n{val}\r\n".encode())
    line = f.readline()
    if line != b"+OK\r\n":
        sys.exit(f"SET {key} answered {line!r}")
    acked += 1
    time.sleep(0.002)
print(f"acked {acked}")
"""

SLOW_LISTENER = r"""
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
srv = socket.socket(fam, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
srv.settimeout(30)
c, _ = srv.accept()
c.settimeout(30)
got = bytearray()
while True:
    b = c.recv(16384)
    if not b:
        break
    got += b
    time.sleep(0.004)  # a slow reader keeps the guest's stream going for seconds
open(sys.argv[3], "wb").write(got)
"""


class PairNet(NetNS):
    """A bridge with two TAP devices (primary, secondary) and the clients' addresses."""

    HOST_IP6 = "fd00::1"
    GUEST_IP6 = "fd00::15"

    def __init__(self, cleanup):
        super().__init__(cleanup, tap="tap-pri")
        self.sh("ip addr flush dev tap-pri && ip link add br0 type bridge && ip link set br0 up && "
                f"ip link set tap-pri master br0 && ip addr add {self.HOST_IP}/24 dev br0 && "
                f"ip -6 addr add {self.HOST_IP6}/64 dev br0 nodad && "
                "ip tuntap add dev tap-sec mode tap && ip link set tap-sec master br0 && "
                "ip link set tap-sec up")
        capture_lan(self, cleanup)


def capture_lan(net, cleanup):
    """Every frame on the LAN goes to a pcap (LOCKSTEP_CAPTURE_DIR, else the
    namespace's temporary directory), read back by lan_resets() when a test fails."""
    where = os.environ.get("LOCKSTEP_CAPTURE_DIR") or tempfile.mkdtemp(prefix="lan-")
    os.makedirs(where, exist_ok=True)
    net.capture = os.path.join(where, f"{net.name}.pcap")
    dump = subprocess.Popen(["ip", "netns", "exec", net.name, "tcpdump", "-Z", "root", "-q", "-n", "-U", "-s", "128",
                             "-i", "br0", "-w", net.capture],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cleanup.add(lambda: (dump.terminate(), dump.wait()))
    if not os.environ.get("LOCKSTEP_CAPTURE_DIR"):
        cleanup.add(lambda: shutil.rmtree(where, ignore_errors=True))


def lan_resets(net, context=12):
    """The TCP resets on the LAN so far, each with the frames of its connection before it."""
    def read(expr):
        p = subprocess.run(["tcpdump", "-r", net.capture, "-nn", "-tt", "-S", expr], capture_output=True,
                           text=True)
        return p.stdout.splitlines()
    lines = []
    for rst in read("tcp[tcpflags] & tcp-rst != 0")[:3]:
        ends = re.findall(r"(\d+\.\d+\.\d+\.\d+)\.(\d+)", rst)[:2]
        ports = " and ".join(f"port {port}" for _, port in ends)
        flow = read(f"tcp and {ports}") if ports else []
        upto = flow.index(rst) + 1 if rst in flow else len(flow)
        lines += ["-- reset:", rst, "-- its connection before it:"] + flow[max(0, upto - context):upto]
    return "\n".join(lines) or "no TCP reset on the LAN"


def pair_diagnosis(net, qp, qs):
    """What the COLO network path and the LAN saw: for an assertion message."""
    text = ""
    for name, q in (("primary", qp), ("secondary", qs)):
        try:
            text += f"{name} compare: {q.execute('query-colo-compare')['return']}\n"
        except OSError as e:
            text += f"{name} monitor: {e}\n"
    return text + lan_resets(net)


def counters(q):
    return q.execute("query-colo-stats")["return"]


def wait_for(fn, timeout=20.0, what="condition"):
    return harness.wait_for(fn, timeout, what)


@pytest.fixture
def pair(start_vm, cleanup, tmp_path):
    def make(extra="", services="echo+kv+http", disk_mib=0, sec_disk_dir=None, wait_colo=True):
        net = PairNet(cleanup)
        _port[0] += 1
        addr = f"127.0.0.1:{_port[0]}"
        cmdline = (f"app=serve,ip={net.GUEST_IP}/24,ip6={net.GUEST_IP6}/64,services={services}"
                   + (f",{extra}" if extra else ""))
        disks = {}
        for side in ("pri", "sec") if disk_mib else ():  # the secondary's starts empty: COLO copies it
            path = (sec_disk_dir if side == "sec" and sec_disk_dir else tmp_path) / f"{side}.img"
            disks[side] = ["--disk", str(path)]
            with open(path, "wb") as f:
                f.truncate(disk_mib << 20)
        sec = start_vm(["secondary", "--listen", addr, "--mem", "256M", "--net",
                        f"tap=tap-sec,mac={GUEST_MAC}", "--qmp", str(tmp_path / "s.sock")]
                       + disks.get("sec", []), netns=net.name, name="sec", command=None)
        qs = QMP(str(tmp_path / "s.sock"))
        pri = start_vm(["primary", "--kernel", GUEST, "--mem", "256M", "--net",
                        f"tap=tap-pri,mac={GUEST_MAC}", "--peer", addr, "--checkpoint-delay", "300",
                        "--compare-timeout", "100", "--qmp", str(tmp_path / "p.sock"),
                        "--mismatch-pcap", str(tmp_path / "mismatch.pcap"), "--cmdline", cmdline]
                       + disks.get("pri", []), netns=net.name, name="pri", command=None)
        qp = QMP(str(tmp_path / "p.sock"))
        if wait_colo:
            wait_for(lambda: qs.execute("query-colo-status")["return"]["mode"] == "secondary",
                     what="the pair to enter COLO")
        pri.wait_console(r"net: up")
        return net, pri, qp, sec, qs
    return make


def pair_state(pri, qp, sec, qs):
    """Both consoles' ends and the primary's COLO figures, for a failed wait."""
    text = ""
    for name, vm, q in (("primary", pri, qp), ("secondary", sec, qs)):
        text += (f"{name}: exit {vm.proc.poll()}\nconsole: {vm.console()[-800:]}\n"
                 f"stderr: {vm.stderr()[-800:]}\n")
        try:
            text += f"colo: {q.execute('query-colo-status')}\ncompare: {q.execute('query-colo-compare')}\n"
        except OSError as e:
            text += f"monitor: {e}\n"
    return text


def start_client(net, script, *args):
    return subprocess.Popen(["ip", "netns", "exec", net.name, "/usr/bin/python3", "-c", script]
                            + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(p, timeout=60):
    out, err = p.communicate(timeout=scaled(timeout))
    return p.returncode, out.decode(), err.decode()


def fail_over(pri, qs):
    """The primary dies; the secondary stops and waits; the operator decides the takeover."""
    pri.proc.send_signal(signal.SIGKILL)
    pri.proc.wait()
    ev = qs.wait_event("COLO_EXIT", timeout=10)
    assert ev["data"] == {"mode": "secondary", "reason": "error", "x-waiting-for-decision": True}, ev
    assert qs.execute("x-colo-lost-heartbeat") == {"return": {}}


def redis(net, *args):
    p = net.run(["redis-cli", "-h", net.GUEST_IP] + list(args), timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def expect_acked_sets(net, acked):
    """SET k<i> v<i> for every i < acked (a sample and the last) is served."""
    for i in list(range(0, acked, max(1, acked // 50))) + [acked - 1]:
        assert redis(net, "GET", f"k{i}") == f"v{i}", i


def replay_on_fresh_vm(start_vm, q, vm, net, tap, image, acked):
    """The serving VM quits; a new one booted from its image replays the KV log on
    it and serves every acknowledged SET: the image itself holds them."""
    assert q.execute("quit") == {"return": {}}
    vm.wait_exit()
    fresh = start_vm(["--kernel", GUEST, "--mem", "256M", "--net", f"tap={tap},mac={GUEST_MAC}",
                      "--disk", str(image), "--cmdline",
                      f"app=serve,ip={net.GUEST_IP}/24,ip6={net.GUEST_IP6}/64,services=kv,kvdisk=1"],
                     netns=net.name, name="fresh")
    m = fresh.wait_console(r"kv: log replayed: (\d+) records, (\d+) keys")
    assert int(m.group(2)) >= acked + 1, (m.group(0), acked)
    expect_acked_sets(net, acked)


def test_clients_survive_primary_death(pair, tmp_path):
    net, pri, qp, sec, qs = pair()
    size = 6_000_000
    body = tmp_path / "body.bin"
    headers = tmp_path / "headers.txt"
    echo = start_client(net, ECHO_SESSION, net.GUEST_IP, 5)
    kv = start_client(net, KV_WRITER, net.GUEST_IP, 5)
    curl = subprocess.Popen(["ip", "netns", "exec", net.name, "curl", "-sS", "--max-time", "60",
                             "--limit-rate", "1500K", "-D", str(headers), "-o", str(body),
                             f"http://{net.GUEST_IP}/bytes/{size}"], stderr=subprocess.PIPE)
    bench = subprocess.Popen(["ip", "netns", "exec", net.name, "redis-benchmark", "-h", net.GUEST_IP,
                              "-t", "set,get", "-n", "3000", "-c", "4", "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    assert counters(qp)["checkpoints"] > 0
    fail_over(pri, qs)
    code, out, err = finish(echo)
    assert code == 0, err + out + pair_diagnosis(net, qp, qs)
    code, out, err = finish(kv)
    assert code == 0, err + out + pair_diagnosis(net, qp, qs)
    acked = int(re.search(r"acked (\d+)", out).group(1))
    assert acked > 0
    assert curl.wait(timeout=scaled(60)) == 0, curl.stderr.read().decode() + pair_diagnosis(net, qp, qs)
    data = body.read_bytes()
    assert len(data) == size and data == pattern(size)
    crc = re.search(r"X-Checksum: crc32=([0-9a-f]{8})", headers.read_text()).group(1)
    assert crc == f"{zlib.crc32(data) & 0xffffffff:08x}"
    out, err = bench.communicate(timeout=scaled(60))
    assert bench.returncode == 0 and b"rror" not in out + err, \
        (out + err).decode(errors="replace")[-600:] + pair_diagnosis(net, qp, qs)
    # Every acknowledged SET is there, and new connections work.
    expect_acked_sets(net, acked)
    assert redis(net, "PING") == "PONG"
    assert qs.execute("query-status")["return"]["status"] == "running"


def test_replicated_disk_keeps_every_acknowledged_write(pair, start_vm, tmp_path):
    """Block replication: the KV store logs every SET to its disk before it answers
    OK. The secondary's image starts empty and is copied when COLO starts; the
    primary dies under a SET load; after the takeover every acknowledged SET is
    served, and is on the secondary's disk itself: a new VM booted from that image
    replays the log and finds them all."""
    net, pri, qp, sec, qs = pair(extra="kvdisk=1", services="kv", disk_mib=16)
    # A guest that writes nothing for longer than the peer timeout: the link stays.
    assert redis(net, "SET", "before", "idle") == "OK"
    time.sleep(scaled(4))
    kv = start_client(net, KV_WRITER, net.GUEST_IP, 6)
    time.sleep(3)
    assert counters(qp)["checkpoints"] > 0
    fail_over(pri, qs)
    code, out, err = finish(kv)
    assert code == 0, err + out + pair_diagnosis(net, qp, qs)
    acked = int(re.search(r"acked (\d+)", out).group(1))
    assert acked > 0
    expect_acked_sets(net, acked)
    # The takeover committed the overlays: the image itself holds the log.
    replay_on_fresh_vm(start_vm, qs, sec, net, "tap-sec", tmp_path / "sec.img", acked)
    assert redis(net, "GET", "before") == "idle"


def test_replicated_disk_equals_the_primarys(pair, tmp_path):
    """After a checkpoint with no primary write since, the secondary's image is the
    primary's, byte for byte (its own guest's writes live in its overlay, not in the
    image): the initial copy and every write under a SET load reached it."""
    net, pri, qp, sec, qs = pair(extra="kvdisk=1", services="kv", disk_mib=16)
    # The initial copy reported its progress, and its job now mirrors every write.
    assert qp.execute("query-block-jobs")["return"] == [
        {"type": "mirror", "device": "disk0", "len": 16 << 20, "offset": 16 << 20, "speed": 0,
         "busy": False, "paused": False, "ready": True, "status": "ready", "io-status": "ok"}]
    assert qs.execute("query-block-jobs")["return"] == []  # the primary runs the job
    progress = re.findall(r"COLO disk0: copied (\d+) of 16 MiB to the secondary \((\d+)%\)", pri.stderr())
    assert progress == [("4", "25"), ("8", "50"), ("12", "75"), ("16", "100")], pri.stderr()
    assert "COLO disk0: the secondary's copy is verified" in pri.stderr()
    net.run(["redis-benchmark", "-h", net.GUEST_IP, "-t", "set", "-n", "3000", "-c", "4", "-q"],
            timeout=120)
    qp.execute("stop")  # its disk drained: nothing more reaches either image
    n = counters(qs)["checkpoints"]
    qp.execute("x-colo-checkpoint")
    wait_for(lambda: counters(qs)["checkpoints"] > n, what="a checkpoint of the stopped primary")
    r = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(tmp_path / "pri.img"),
                        str(tmp_path / "sec.img")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert qs.execute("query-colo-status")["return"]["mode"] == "secondary"
    assert qp.execute("cont") == {"return": {}}


def test_replicated_disk_checked_after_every_checkpoint(pair, tmp_path):
    """x-check-disk: every checkpoint carries a digest of the primary's image (its
    writes drained), and the secondary compares its disk as its guest reads it,
    through the overlays, once the checkpoint is applied. Under a SET load (disk
    writes between checkpoints) every check passes; a secondary image changed behind
    lockstep's back fails the next one: the secondary refuses the takeover and the
    primary serves on."""
    net, pri, qp, sec, qs = pair(extra="kvdisk=1", services="kv", disk_mib=16)
    assert qp.execute("migrate-set-parameters", {"x-check-disk": True}) == {"return": {}}
    assert qp.execute("query-migrate-parameters")["return"]["x-check-disk"] is True
    wait_for(lambda: counters(qs)["disk-checks"] > 0, what="a first disk check")
    before = counters(qs)
    net.run(["redis-benchmark", "-h", net.GUEST_IP, "-t", "set", "-n", "2000", "-c", "4", "-q"],
            timeout=120)
    wait_for(lambda: counters(qs)["disk-checks"] >= before["disk-checks"] + 3,
             what="disk checks after the load")
    after = counters(qs)
    assert after["checkpoints"] - before["checkpoints"] >= 3, (before, after)
    assert qs.execute("query-colo-status")["return"]["mode"] == "secondary"
    assert redis(net, "DBSIZE") != "0"
    # The secondary's image changes where no one writes: the next check must fail.
    with open(tmp_path / "sec.img", "r+b") as f:
        f.seek(15 << 20)
        f.write(b"\xee" * 4096)
    def secondary_error():
        st = qs.execute("query-colo-status")["return"]
        return st.get("x-error") if st["reason"] == "error" else None
    why = wait_for(secondary_error, what="the secondary to fail the disk check")
    assert "disk0 differs from the primary's after the checkpoint" in why, why
    r = qs.execute("x-colo-lost-heartbeat")
    assert "this secondary cannot take over: disk0 differs" in r["error"]["desc"], r
    assert qs.execute("query-status")["return"]["status"] != "running"  # one serving copy
    wait_for(lambda: qp.execute("query-colo-status")["return"]["mode"] == "none",
             what="the primary to run alone")
    job, = qp.execute("query-block-jobs")["return"]
    assert job["status"] == "concluded" and not job["ready"], job  # its disk is its own again
    assert redis(net, "SET", "after", "check") == "OK"
    assert redis(net, "GET", "after") == "check"


def test_secondary_disk_full_refuses_protection(pair, cleanup, tmp_path):
    """The secondary's file system cannot hold the copy of the primary's disk: COLO
    does not start and says why, the primary serves on with its disk, and the
    secondary, holding half a disk, refuses to ever take over."""
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
    cleanup.add(lambda: subprocess.run(["umount", "-l", str(small)]))
    net, pri, qp, sec, qs = pair(extra="kvdisk=1", services="kv", disk_mib=16, sec_disk_dir=small,
                                 wait_colo=False)
    def primary_error():
        st = qp.execute("query-colo-status")["return"]
        return st.get("x-error") if st["reason"] == "error" else None
    why = wait_for(primary_error, what="the primary to give up protecting")
    assert "disk0 cannot start: No space left on device" in why, why
    assert qp.execute("query-colo-status")["return"]["mode"] == "none"
    job, = qp.execute("query-block-jobs")["return"]
    assert (job["status"], job["io-status"], job["error"]) == ("concluded", "failed",
                                                             "No space left on device"), job
    assert job["offset"] < job["len"] == 16 << 20, job
    assert redis(net, "SET", "still", "served") == "OK"
    assert redis(net, "GET", "still") == "served"
    wait_for(lambda: qs.execute("query-colo-status")["return"]["reason"] == "error",
             what="the secondary to leave COLO")
    r = qs.execute("x-colo-lost-heartbeat")
    assert "this secondary cannot take over: disk0 cannot start" in r["error"]["desc"], r
    assert qs.execute("query-status")["return"]["status"] != "running"


def test_echo_over_ipv6_survives_failover(pair):
    net, pri, qp, sec, qs = pair()
    echo = start_client(net, ECHO_SESSION, net.GUEST_IP6, 4)
    time.sleep(1.5)
    fail_over(pri, qs)
    code, out, err = finish(echo)
    assert code == 0, err + out
    p = net.run(["ping", "-6", "-c", "2", "-W", "2", net.GUEST_IP6])
    assert p.returncode == 0


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_guest_initiated_stream_survives_failover(pair, tmp_path, v6):
    size = 4_000_000
    out = tmp_path / "stream.bin"
    # The guest retries its connection until the listener is up.
    probe = PairNet.HOST_IP6 if v6 else NetNS.HOST_IP
    target = f"[{probe}]:9000" if v6 else f"{probe}:9000"
    net, pri, qp, sec, qs = pair(extra=f"connect={target},bytes={size}", services="echo+stream")
    listener = start_client(net, SLOW_LISTENER, probe, 9000, out)
    harness.wait_for(lambda: "stream: connected" in pri.console(), 20, "the guest to connect",
                     diagnose=lambda: pair_state(pri, qp, sec, qs))
    time.sleep(1)
    fail_over(pri, qs)
    code, o, err = finish(listener, timeout=90)
    assert code == 0, err
    assert out.read_bytes() == pattern(size)


def test_diverging_service_forces_checkpoints(pair, tmp_path):
    net, pri, qp, sec, qs = pair()
    before = counters(qp)["reasons"]["comparator"]
    for _ in range(5):
        p = net.run(["curl", "-sS", "--max-time", "10", f"http://{net.GUEST_IP}/tsc"])
        assert p.returncode == 0, p.stderr
        assert re.fullmatch(rb"tsc=\d+\n", p.stdout), p.stdout
    st = qp.execute("query-colo-compare")["return"]["compare"]
    assert st["protocols"]["tcp"]["mismatched"] >= 1
    assert st["checkpoints-requested"]["mismatch"] + st["checkpoints-requested"]["stale"] >= 1
    assert counters(qp)["reasons"]["comparator"] > before
    # The mismatching pairs are in the diagnosis file, a pcap Wireshark opens.
    cap = (tmp_path / "mismatch.pcap").read_bytes()
    assert cap[:4] == bytes.fromhex("d4c3b2a1") and cap[20:24] == b"\x01\x00\x00\x00"
    assert b"tsc=" in cap
    # Matching traffic meanwhile is released by comparison, without checkpoints.
    assert redis(net, "PING") == "PONG"
    assert qp.execute("query-colo-compare")["return"]["compare"]["protocols"]["tcp"]["matched"] > 0


HOSTILE = r"""
import os, random, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
dst = bytes.fromhex(sys.argv[2].replace(":", ""))
src = bytes.fromhex("020000000001")
rnd = random.Random(7)
def ip4(proto, payload, tot=None, ihl=5):
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot if tot is not None else 20 + len(payload),
                    1, 0, 64, proto, 0, socket.inet_aton("10.0.2.1"), socket.inet_aton("10.0.2.15"))
    return h + payload
frames = []
for n in range(300):
    kind = n % 6
    if kind == 0:
        body = ip4(6, os.urandom(rnd.randrange(0, 40)))            # truncated TCP
    elif kind == 1:
        body = ip4(17, os.urandom(8), tot=rnd.randrange(0, 2000))  # bad total length
    elif kind == 2:
        body = ip4(6, b"\0" * 20, ihl=rnd.randrange(0, 5))          # bad IHL
    elif kind == 3:
        body = os.urandom(rnd.randrange(0, 60))                     # garbage
    elif kind == 4:
        tcp = struct.pack("!HHIIBBHHH", 1234, 7, 1, 0, 0xf0, 0x02, 1024, 0, 0) + os.urandom(40)
        body = ip4(6, tcp)                                           # bogus TCP options
    else:
        body = ip4(1, b"\x08\x00" + os.urandom(rnd.randrange(0, 10)))  # short ICMP
    etype = b"\x81\x00\x00\x05\x08\x00" if n % 7 == 0 else b"\x08\x00"
    s.send(dst + src + etype + body)
print("sent", n + 1)
"""


def test_hostile_frames_keep_the_pair_alive(pair):
    net, pri, qp, sec, qs = pair()
    p = net.run(["/usr/bin/python3", "-c", HOSTILE, "br0", GUEST_MAC])
    assert p.returncode == 0, p.stderr
    time.sleep(1)
    assert pri.proc.poll() is None and sec.proc.poll() is None
    assert qp.execute("query-colo-status")["return"]["mode"] == "primary"
    assert qs.execute("query-colo-status")["return"]["mode"] == "secondary"
    assert redis(net, "PING") == "PONG"


UDP_FLOOD = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = bytes(1400)
deadline = time.monotonic() + float(sys.argv[2])
sent = 0
while time.monotonic() < deadline:
    for _ in range(100):
        try:
            s.sendto(payload, (sys.argv[1], 9))
            sent += 1
        except OSError:
            pass
print(f"sent {sent}")
"""


def test_a_secondary_that_reads_nothing_cannot_stall_the_primary(pair):
    """The mirror to a stopped secondary backs up; the primary's event loop and
    guest never wait on it: COLO ends as for a silent peer, the link's queue
    stays within its limit, the primary serves on alone, and the secondary,
    running again, waits for a decision (one serving copy)."""
    net, pri, qp, sec, qs = pair()
    assert redis(net, "SET", "before", "1") == "OK"
    up = qp.execute("query-colo-compare")["return"]["link"]
    assert up["state"] == "up" and up["sent-frames"] > 0, up
    sec.proc.send_signal(signal.SIGSTOP)
    try:
        flood = start_client(net, UDP_FLOOD, net.GUEST_IP, scaled(2))
        ev = qp.wait_event("COLO_EXIT", timeout=scaled(10))
        assert ev["data"] == {"mode": "primary", "reason": "error"}
        assert "silent" in qp.execute("query-colo-status")["return"].get("x-error", "")
        code, out, err = finish(flood)
        assert code == 0, err
        link = qp.execute("query-colo-compare")["return"]["link"]
        assert link["state"] == "down", link
        assert link["queued-max-bytes"] <= link["queue-limit-bytes"] + 16 + 65562, link
        assert link["sent-frames"] > up["sent-frames"], link
        # Alone, it serves at once, with what it had.
        assert redis(net, "GET", "before") == "1"
        assert redis(net, "SET", "after", "2") == "OK"
    finally:
        sec.proc.send_signal(signal.SIGCONT)
    ev = qs.wait_event("COLO_EXIT", timeout=scaled(10))
    assert ev["data"] == {"mode": "secondary", "reason": "error", "x-waiting-for-decision": True}, ev
    assert qs.execute("query-status")["return"]["status"] == "paused"
    assert redis(net, "GET", "after") == "2"  # still the primary answering


@pytest.mark.parametrize("disk", [False, True], ids=["no-disk", "replicated-disk"])
def test_a_survivor_is_protected_again(pair, start_vm, tmp_path, disk):
    """After a takeover, the survivor gets a new secondary (QMP migrate with x-colo),
    COLO runs again in the same processes' kind, and a second loss of the serving
    host loses no acknowledged write. A connection opened before the first takeover
    keeps working across the re-protection (its translation stays on the survivor).
    With a replicated disk the survivor's disk, a secondary's until the takeover, is
    copied to the new secondary and replicated from then on (checked at every
    checkpoint); after the second loss the new secondary's image holds every
    acknowledged SET."""
    net, pri, qp, sec, qs = pair(**({"extra": "kvdisk=1", "disk_mib": 16} if disk else {}))
    assert redis(net, "SET", "first", "1") == "OK"
    # No periodic checkpoint: the echo session keeps the secondary's own sequence
    # numbers (translated by its rewriter) up to the takeover and after it.
    assert qp.execute("migrate-set-parameters", {"x-checkpoint-delay": 600000}) == {"return": {}}
    time.sleep(scaled(0.5))
    echo = start_client(net, ECHO_SESSION, net.GUEST_IP, scaled(6))
    time.sleep(scaled(1))
    fail_over(pri, qs)
    wait_for(lambda: qs.execute("query-colo-status")["return"]["x-failover-state"] == "completed",
             what="the first takeover")
    carried = qs.execute("query-colo-compare")["return"]["rewriter"]
    assert carried["failover"] and carried["connections"] >= 1, carried
    # A new secondary where the dead primary was.
    _port[0] += 1
    addr = f"127.0.0.1:{_port[0]}"
    sec2_disk = []
    if disk:
        with open(tmp_path / "sec2.img", "wb") as f:
            f.truncate(16 << 20)
        sec2_disk = ["--disk", str(tmp_path / "sec2.img")]
    sec2 = start_vm(["secondary", "--listen", addr, "--mem", "256M", "--net",
                     f"tap=tap-pri,mac={GUEST_MAC}", "--qmp", str(tmp_path / "s2.sock")] + sec2_disk,
                    netns=net.name, name="sec2", command=None)
    qs2 = QMP(str(tmp_path / "s2.sock"))
    assert qs.execute("query-migrate")["return"]["status"] == "completed"
    if disk:
        assert qs.execute("migrate-set-parameters", {"x-check-disk": True}) == {"return": {}}
    assert qs.execute("migrate", {"uri": f"tcp:{addr}"}) == {"return": {}}
    wait_for(lambda: qs2.execute("query-colo-status")["return"]["mode"] == "secondary" and
             qs.execute("query-colo-status")["return"]["mode"] == "primary", what="COLO again")
    wait_for(lambda: counters(qs2)["checkpoints"] >= 2, what="checkpoints of the new pair")
    if disk:
        assert qs.execute("query-block-jobs")["return"][0]["status"] == "ready"
        wait_for(lambda: counters(qs2)["disk-checks"] >= 2, what="disk checks of the new pair")
    code, out, err = finish(echo)
    assert code == 0, err + out + pair_diagnosis(net, qs, qs2)
    rw = qs.execute("query-colo-compare")["return"]["rewriter"]
    assert rw["inbound-rewritten"] > carried["inbound-rewritten"], rw  # it kept translating
    assert redis(net, "GET", "first") == "1"
    # The second loss: the survivor's host dies under a writer.
    kv = start_client(net, KV_WRITER, net.GUEST_IP, scaled(3))
    time.sleep(scaled(1))
    fail_over(sec, qs2)
    code, out, err = finish(kv)
    assert code == 0, err + out + pair_diagnosis(net, qs, qs2)
    acked = int(re.search(r"acked (\d+)", out).group(1))
    assert acked > 0
    assert redis(net, "GET", "first") == "1"
    assert redis(net, "GET", f"k{acked - 1}") == f"v{acked - 1}"
    assert qs2.execute("query-status")["return"]["status"] == "running"
    if disk:  # the log on the new secondary's own image: a fresh VM replays it all
        replay_on_fresh_vm(start_vm, qs2, sec2, net, "tap-pri", tmp_path / "sec2.img", acked)
        assert redis(net, "GET", "first") == "1"


def test_pair_set_up_by_hand_replicates_its_disk(start_vm, cleanup, tmp_path):
    """Disk replication set up over QMP, QEMU's way: `lockstep run` on both hosts with
    --disk ...,replication=secondary|primary; on the secondary nbd-server-start and
    nbd-server-add; the operator makes the disks equal (nbdcopy into the secondary's
    export, the primary stopped); on the primary blockdev-add of an NBD node and
    x-blockdev-change into its disk; then migrate with x-colo. Every checkpoint checks
    the disks (x-check-disk); the primary dies under a SET load; after nbd-server-stop
    and the takeover every acknowledged SET is served, and is in the secondary's image."""
    net = PairNet(cleanup)
    _port[0] += 2
    mig, nbd = _port[0] - 1, _port[0]
    pri_img, sec_img = tmp_path / "pri.img", tmp_path / "sec.img"
    with open(pri_img, "wb") as f:
        f.truncate(16 << 20)
    with open(sec_img, "wb") as f:  # not the primary's: the operator's copy fixes that
        f.write(os.urandom(16 << 20))
    cmdline = f"app=serve,ip={net.GUEST_IP}/24,ip6={net.GUEST_IP6}/64,services=kv,kvdisk=1"
    sec = start_vm(["--incoming", f"tcp:127.0.0.1:{mig}", "--mem", "256M", "--net",
                    f"tap=tap-sec,mac={GUEST_MAC}", "--qmp", str(tmp_path / "s.sock"),
                    "--disk", f"{sec_img},replication=secondary"], netns=net.name, name="sec")
    qs = QMP(str(tmp_path / "s.sock"))
    colo_on = {"capabilities": [{"capability": "x-colo", "state": True}]}
    assert qs.execute("migrate-set-capabilities", colo_on) == {"return": {}}
    assert qs.execute("nbd-server-add", {"device": "disk0", "writable": True})["error"]["desc"] == \
        "NBD server not running"
    server = {"type": "inet", "data": {"host": "127.0.0.1", "port": str(nbd)}}
    assert qs.execute("nbd-server-start", {"addr": server}) == {"return": {}}
    r = qs.execute("nbd-server-add", {"device": "disk1", "writable": True})
    assert r["error"]["class"] == "DeviceNotFound", r
    r = qs.execute("nbd-server-add", {"device": "disk0"})
    assert "writable must be true" in r["error"]["desc"], r
    assert qs.execute("nbd-server-add", {"device": "disk0", "writable": True}) == {"return": {}}
    r = qs.execute("nbd-server-add", {"device": "disk0", "writable": True})
    assert r["error"]["desc"] == "NBD export 'disk0': already exists", r
    r = qs.execute("nbd-server-add", {"device": "disk0", "writable": True, "name": "x" * 64})
    assert "File name too long" in r["error"]["desc"], r
    listing = net.run(["nbdinfo", "--list", f"nbd://127.0.0.1:{nbd}"], timeout=30)
    assert listing.returncode == 0 and b"export=\"disk0\"" in listing.stdout, listing
    pri = start_vm(["--kernel", GUEST, "--mem", "256M", "--net", f"tap=tap-pri,mac={GUEST_MAC}",
                    "--qmp", str(tmp_path / "p.sock"), "--disk", f"{pri_img},replication=primary",
                    "--cmdline", cmdline], netns=net.name, name="pri")
    qp = QMP(str(tmp_path / "p.sock"))
    pri.wait_console(r"net: up")
    assert redis(net, "SET", "before", "protection") == "OK"
    # The operator's part: the primary stopped (its disk drained), the secondary's disk made equal.
    assert qp.execute("stop") == {"return": {}}
    copy = net.run(["nbdcopy", str(pri_img), f"nbd://127.0.0.1:{nbd}/disk0"], timeout=120)
    assert copy.returncode == 0, copy.stderr
    link = {"driver": "nbd", "node-name": "nbd0", "export": "disk0",
            "server": {"type": "inet", "host": "127.0.0.1", "port": str(nbd)}}
    assert qp.execute("query-xen-replication-status")["return"] == {"error": True, "desc": "disk0: no replica"}
    assert qp.execute("blockdev-add", link) == {"return": {}}
    assert "in use" in qp.execute("blockdev-add", link)["error"]["desc"]
    assert qp.execute("x-blockdev-change", {"parent": "disk0", "node": "nbd0"}) == {"return": {}}
    assert qp.execute("query-block-jobs")["return"][0]["status"] == "ready"
    assert "busy" in qp.execute("blockdev-del", {"node-name": "nbd0"})["error"]["desc"]
    assert qp.execute("cont") == {"return": {}}
    assert qp.execute("migrate-set-capabilities", colo_on) == {"return": {}}
    assert qp.execute("migrate-set-parameters", {"x-checkpoint-delay": 300, "x-check-disk": True}) == \
        {"return": {}}
    assert qp.execute("migrate", {"uri": f"tcp:127.0.0.1:{mig}"}) == {"return": {}}
    wait_for(lambda: qs.execute("query-colo-status")["return"]["mode"] == "secondary" and
             qp.execute("query-colo-status")["return"]["mode"] == "primary", what="the pair to enter COLO")
    assert qp.execute("query-xen-replication-status")["return"] == {"error": False}
    r = qp.execute("xen-colo-do-checkpoint")
    assert r["error"]["desc"] == "COLO drives the replication while it runs", r
    kv = start_client(net, KV_WRITER, net.GUEST_IP, 6)
    wait_for(lambda: counters(qs)["disk-checks"] >= 3, timeout=30, what="disk checks under load")
    fail_over(pri, qs)
    assert qs.execute("nbd-server-stop") == {"return": {}}
    code, out, err = finish(kv)
    assert code == 0, err + out + pair_diagnosis(net, qp, qs)
    acked = int(re.search(r"acked (\d+)", out).group(1))
    assert acked > 0
    expect_acked_sets(net, acked)
    assert redis(net, "GET", "before") == "protection"
    replay_on_fresh_vm(start_vm, qs, sec, net, "tap-sec", sec_img, acked)
