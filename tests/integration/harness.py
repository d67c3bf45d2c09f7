"""Helpers for integration tests: lockstep processes, QMP clients, network namespaces.

Every process and namespace created here is registered with a Cleanup that the
fixtures run at teardown, pass or fail.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOCKSTEP = os.path.join(ROOT, "build", "lockstep")
# Fresh heap memory is filled with a pattern and freed memory overwritten
# (glibc), so that a read of uninitialised or freed memory fails every time
# instead of once in a while.
LOCKSTEP_ENV = dict(os.environ, MALLOC_PERTURB_="165")
# LOCKSTEP_GUEST points the tests at another guest image (e.g. one built from another revision).
GUEST = os.environ.get("LOCKSTEP_GUEST", os.path.join(ROOT, "build", "guest", "testguest.elf"))

# The waits are tuned for hardware. Inside a virtual test host (scripts/vhost)
# everything, lockstep and the guest included, runs under TCG several times
# slower: every wait is scaled by this factor, none is removed.
VHOST_MARK = "/run/lockstep-vhost"
TIME_SCALE = float(os.environ.get("LOCKSTEP_TIME_SCALE") or (4 if os.path.exists(VHOST_MARK) else 1))


def scaled(seconds):
    return seconds * TIME_SCALE


def wait_for(fn, timeout=10.0, what="condition", diagnose=None, poll=0.05):
    """fn's first true value within timeout (scaled) seconds; an AssertionError naming
    `what` (and diagnose()'s text) otherwise. OSError/EOFError from fn count as false."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        try:
            v = fn()
        except (OSError, EOFError):
            v = None
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"timeout ({scaled(timeout):g}s) waiting for {what}"
                         + (f"\n{diagnose()}" if diagnose else ""))


class Cleanup:
    def __init__(self):
        self._actions = []

    def add(self, fn):
        self._actions.append(fn)

    def run(self):
        while self._actions:
            fn = self._actions.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning up the rest
                print(f"cleanup: {e}")


class VM:
    """One `lockstep run` process with its console in a file."""

    def __init__(self, cleanup, tmp_path, args, netns=None, name="vm", command="run"):
        """command None: args start with the lockstep command (run, primary, secondary)."""
        self.console_path = os.path.join(str(tmp_path), f"{name}-console.log")
        self.stderr_path = os.path.join(str(tmp_path), f"{name}-stderr.log")
        args = list(args) if command is None else [command] + list(args)
        cmd = [LOCKSTEP] + args[:1] + ["--console", f"file:{self.console_path}"] + args[1:]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=LOCKSTEP_ENV)
        cleanup.add(self.kill)

    def console(self):
        try:
            with open(self.console_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_console(self, pattern, timeout=10.0):
        deadline = time.monotonic() + scaled(timeout)
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.console())
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.console())
                if m:
                    return m
                raise AssertionError(f"lockstep exited ({self.proc.returncode}) before /{pattern}/;"
                                     f" console:\n{self.console()}\nstderr:\n{self.stderr()}")
            time.sleep(0.02)
        raise AssertionError(f"timeout waiting for /{pattern}/; console:\n{self.console()}\n"
                             f"stderr:\n{self.stderr()}")

    def wait_exit(self, timeout=10.0):
        try:
            return self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"lockstep still running after {timeout}s; console:\n"
                                 f"{self.console()}\nstderr:\n{self.stderr()}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._stderr.close()


def run_lockstep(args, timeout=10.0):
    """Runs lockstep to completion; returns (exit status, stdout, stderr)."""
    p = subprocess.run([LOCKSTEP] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=scaled(timeout), env=LOCKSTEP_ENV)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class QMP:
    """A QMP client: greeting, capabilities, commands, events."""

    def __init__(self, path, timeout=10.0, negotiate=True, connect=None):
        """connect: a function returning a connected socket, for monitors that are
        not local UNIX sockets (inside a virtual host); default: connect to path."""
        timeout = scaled(timeout)
        connect = connect or (lambda: _connect_unix(path, timeout))
        deadline = time.monotonic() + timeout
        while True:
            self.buf, self.sock = b"", None
            try:
                self.sock = connect()
                self.sock.settimeout(timeout)
                self.greeting = self.recv()
                break
            except (FileNotFoundError, ConnectionRefusedError, EOFError):
                if self.sock:
                    self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.events = []
        if negotiate:
            assert self.execute("qmp_capabilities") == {"return": {}}

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv(self):
        """Next JSON message (reply or event)."""
        while True:
            line, sep, rest = self.buf.partition(b"\n")
            if sep:
                self.buf = rest
                if line.strip():
                    return json.loads(line)
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP connection closed")
            self.buf += chunk

    def reply(self):
        """Next reply, queueing events seen on the way."""
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
            else:
                return msg

    def execute(self, cmd, arguments=None, **extra):
        msg = {"execute": cmd}
        if arguments is not None:
            msg["arguments"] = arguments
        msg.update(extra)
        self.send_raw(json.dumps(msg) + "\n")
        return self.reply()

    def wait_event(self, name, timeout=10.0):
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.recv()
            except socket.timeout:
                raise AssertionError(f"no {name} event within {timeout}s (got {self.events})")
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        self.sock.close()


def _connect_unix(path, timeout):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


class NetNS:
    """A network namespace with a TAP device for the guest and an address for clients."""

    HOST_IP = "10.0.2.1"
    GUEST_IP = "10.0.2.15"

    def __init__(self, cleanup, tap="tap0"):
        self.name = f"ls-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.tap = tap
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        cleanup.add(self.delete)
        self.sh(f"ip link set lo up && ip tuntap add dev {tap} mode tap && "
                f"ip addr add {self.HOST_IP}/24 dev {tap} && ip link set {tap} up")

    def sh(self, script, timeout=30, check=True):
        return subprocess.run(["ip", "netns", "exec", self.name, "sh", "-c", script],
                              capture_output=True, text=True, timeout=timeout, check=check)

    def run(self, argv, timeout=30, input=None):
        return subprocess.run(["ip", "netns", "exec", self.name] + list(argv),
                              capture_output=True, timeout=timeout, input=input)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)
