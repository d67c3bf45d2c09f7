#!/usr/bin/env python3
"""The lockstep demo: a protected VM pair across two virtual test hosts survives
the loss of its primary's host.

Host A runs the primary, host B the secondary (scripts/vhost/pair.py), each with
its own disk image: host A's is copied to host B when protection starts, then
every write reaches both. A client on the LAN outside both writes to the guest's
key-value store (which logs each write to its disk before answering) over one TCP
connection, without pause. The power of host A is pulled (its QEMU is killed:
lockstep, its TAP and the host kernel vanish at once), the secondary is told to
take over, and the client goes on over the same connection. At the end every
write the guest acknowledged is read back from the survivor.
"""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vhost"))
from pair import CLIENT_IP, GUEST_IP, LOCKSTEP, QMP_PATH, TwoHosts  # noqa: E402
from vhost import VhostError  # noqa: E402

DISK = "/tmp/lockstep-demo.img"  # in each host: the guest's disk, replicated from A to B
DISK_MIB = 16


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Writer:
    """The client: SET kN vN on one connection, as fast as the guest answers; records ack times."""

    def __init__(self, hosts):
        self.hosts, self.acks, self.error = hosts, [], None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        # The client lives in the LAN's namespace: a small helper there relays stdin/stdout.
        relay = subprocess.Popen(self.hosts.client(["socat", "-", f"TCP:{GUEST_IP}:6379,connect-timeout=10"]),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            while not self.stop.is_set():
                n = len(self.acks)
                key, val = f"k{n}", f"v{n}"
                relay.stdin.write(f"*3\r\n$3\r\nSET\r\n${len(key)}\r\n{key}\r\n${len(val)}\r\n{val}\r\n".encode())
                relay.stdin.flush()
                line = relay.stdout.readline()
                if line != b"+OK\r\n":
                    self.error = f"SET {key} answered {line!r} (connection lost?)"
                    return
                self.acks.append(time.monotonic())
                time.sleep(0.01)
        finally:
            relay.stdin.close()
            relay.wait(timeout=10)

    def longest_gap(self, after):
        times = [t for t in self.acks if t >= after - 5]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def lost_writes(hosts, count):
    """The keys k0..k{count-1} that do not read back as written (one redis-cli, a GET per line)."""
    keys = [f"k{i}" for i in range(count)]
    r = subprocess.run(hosts.client(["redis-cli", "-h", GUEST_IP]), input="".join(f"GET {k}\n" for k in keys),
                       capture_output=True, text=True, timeout=120)
    values = r.stdout.split("\n")
    return [k for i, k in enumerate(keys) if i >= len(values) or values[i] != f"v{k[1:]}"]


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except (OSError, EOFError, VhostError):
            pass
        time.sleep(0.2)
    raise VhostError(f"timeout waiting for {what}")


def demo():
    t_start = time.monotonic()
    say("Booting two virtual test hosts (QEMU with emulated AMD-V, real KVM inside):"
        " host A for the primary, host B for the secondary")
    hosts = TwoHosts()
    try:
        say(f"Both up. Client LAN {CLIENT_IP}/24 (clients outside both hosts), replication link between A and B")
        say("Starting the secondary on host B, then the primary on host A (the test guest's"
            f" key-value store at {GUEST_IP}, which logs every write to its disk before answering)")
        for h in hosts.hosts.values():  # host B's image starts empty: protection copies A's
            h.run(["truncate", "-s", f"{DISK_MIB}M", DISK], check=True)
        hosts.start_secondary(extra=["--disk", DISK])
        wait_for(lambda: hosts.qmp("secondary", "query-status"), 60, "the secondary's monitor")
        hosts.start_primary(f"app=serve,ip={GUEST_IP}/24,services=echo+kv,kvdisk=1",
                            extra=["--checkpoint-delay", "500", "--disk", DISK])
        wait_for(lambda: hosts.qmp("secondary", "query-colo-status")["mode"] == "secondary", 90,
                 "the pair to enter COLO")
        job = hosts.qmp("primary", "query-block-jobs")[0]
        say(f"The pair is protected: host A's {job['len'] >> 20} MiB disk was copied to host B and every"
            " write now reaches both disks before the guest sees it done; primary and secondary run"
            " the same guest; checkpoints every 500 ms and whenever their network output differs")

        writer = Writer(hosts)
        writer.thread.start()
        wait_for(lambda: len(writer.acks) > 0 or writer.error, 60, "the client's first write")
        say("The client writes to the guest over one TCP connection, without pause")
        time.sleep(5)
        stats = hosts.qmp("primary", "query-colo-stats")
        before = len(writer.acks)
        say(f"So far: {stats['checkpoints']} checkpoints, {before} writes acknowledged")

        say("Pulling the power on host A (the primary's QEMU is killed: no FIN, no RST, nothing)")
        t_loss = time.monotonic()
        hosts.hosts["a"].power_off()
        wait_for(lambda: hosts.qmp("secondary", "query-colo-status").get("x-waiting-for-decision"), 30,
                 "the secondary to notice")
        st = hosts.qmp("secondary", "query-colo-status")
        say(f"Host B noticed ({st.get('x-error', 'primary lost')}): its copy is stopped, waiting for a"
            " decision, since a primary that only went silent could still be serving")
        say("The decision, on host B: lockstep failover (host A is known to be dead)")
        r = hosts.hosts["b"].run([LOCKSTEP, "failover", "--qmp", QMP_PATH["secondary"]], timeout=60)
        if r.returncode != 0:
            raise VhostError(f"lockstep failover: {r.stderr.strip()}")
        say(f"  {r.stdout.strip()}")
        wait_for(lambda: hosts.qmp("secondary", "query-status")["status"] == "running", 30,
                 "the secondary to run")
        time.sleep(5)
        writer.stop.set()
        writer.thread.join(timeout=30)
        if writer.error:
            raise VhostError(f"the client lost its connection: {writer.error}")
        after = len(writer.acks) - before
        say(f"The client carried on: {after} more writes acknowledged over the same connection")

        say("Reading every acknowledged write back from the survivor (new connections)")
        lost = lost_writes(hosts, len(writer.acks))
        if lost:
            raise VhostError(f"{len(lost)} acknowledged writes missing after the failover: {lost[:5]} ...")
        status = hosts.qmp("secondary", "query-status")["status"]
        say(f"Host B's copy is {status}, host A is gone: one copy serves, from host B's own disk")

        print()
        print("Summary")
        print(f"  checkpoints before the power loss:     {stats['checkpoints']}")
        print(f"  longest pause the client saw:          {writer.longest_gap(t_loss):.2f} s"
              " (failover, as seen by the client)")
        print("  client connections kept / reset:       1 / 0")
        print(f"  writes acknowledged / read back:       {len(writer.acks)} / {len(writer.acks)}"
              " (each logged to the replicated disk before its answer)")
        print(f"  demo time:                             {time.monotonic() - t_start:.0f} s")
    finally:
        hosts.close()


if __name__ == "__main__":
    try:
        demo()
    except VhostError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
