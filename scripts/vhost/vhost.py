"""Virtual test hosts: real KVM on machines without /dev/kvm.

A virtual test host is a QEMU (TCG, `-cpu max`: emulated AMD-V) running
Debian's stock kernel from a small busybox initramfs. Its root is this
machine's root, shared read-only over 9p under a tmpfs overlay, with the work
tree shared read-write at its own path, so every package installed here is
there too. Inside, kvm-amd gives a working /dev/kvm. An agent in the host
(agent.py) runs commands sent from here over QEMU's user-mode network,
forwarded from this machine's loopback only.

    with VirtualHost("a", cpus=2, mem="4G") as h:
        r = h.run(["build/lockstep", "run", ...], timeout=60)

Extra NICs (`Lan.tap_for`) join hosts to bridges in a network namespace this
machine controls, where clients run: a host can lose power (`power_off`),
freeze (`freeze`/`thaw`) or lose a link (`Lan.set_link`).

Everything a host creates (QEMU, its TAPs, temporary files) is removed by
`close()`, which also runs at interpreter exit and on SIGTERM/SIGINT; QEMU
also dies with the process that started it (PR_SET_PDEATHSIG).
"""
import atexit
import ctypes
import fcntl
import json
import lzma
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CACHE = os.path.join(ROOT, "build", "vhost")
AGENT_PORT = 7100

# Modules the boot needs (in the initramfs), by name; their dependencies are
# added from modinfo. Everything else (tun, veth, bridge, ...) the kernel loads
# on demand with modprobe from the cached module tree.
BOOT_MODULES = ["virtio_pci", "virtio_net", "9pnet_virtio", "9p", "overlay", "kvm_amd"]


class VhostError(Exception):
    pass


# ---------------------------------------------------------------- preparing

def kernel_package():
    """The versioned kernel package behind Debian's linux-image-amd64."""
    for attempt in range(2):
        out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("Depends: linux-image-"):
                return line.split()[1]
        if attempt == 0 and os.geteuid() == 0:  # no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
    raise VhostError("apt-cache knows no linux-image-amd64: run `apt-get update` first")


def prepare(log=print):
    """Kernel, module tree and initramfs, made once from Debian packages and cached
    under build/vhost/VERSION. The kernel is the ELF inside Debian's bzImage: QEMU
    boots it through its PVH entry, which skips the decompressor (3 s under TCG).
    Concurrent callers (threads, processes) wait for one another."""
    os.makedirs(CACHE, exist_ok=True)
    with _prepare_lock, open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _prepare(log)


_prepare_lock = threading.Lock()


def _prepare(log):
    pkg = kernel_package()
    version = pkg[len("linux-image-"):]
    out = os.path.join(CACHE, version)
    paths = {"kernel": os.path.join(out, "vmlinux"), "initrd": os.path.join(out, "initramfs.cpio"),
             "bzimage": os.path.join(out, "vmlinuz"),
             "modules": os.path.join(out, "lib", "modules", version)}
    stamp = os.path.join(out, "stamp")
    sources = [os.path.join(HERE, "init.sh"), "/bin/busybox", __file__]
    if os.path.exists(stamp) and all(os.path.getmtime(s) <= os.path.getmtime(stamp) for s in sources):
        return paths
    for tool, package in (("/bin/busybox", "busybox-static"), ("/usr/sbin/depmod", "kmod"),
                          ("/usr/bin/qemu-system-x86_64", "qemu-system-x86")):
        if not os.path.exists(tool):
            raise VhostError(f"{tool} is missing: apt-get install {package}")
    log(f"vhost: preparing {pkg} and an initramfs in {out}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        r = subprocess.run(["apt-get", "download", pkg], cwd=tmp, capture_output=True, text=True)
        debs = [f for f in os.listdir(tmp) if f.endswith(".deb")]
        if r.returncode != 0 or not debs:
            raise VhostError(f"apt-get download {pkg} failed: {r.stderr.strip()}")
        tree = os.path.join(tmp, "x")
        subprocess.run(["dpkg-deb", "-x", os.path.join(tmp, debs[0]), tree], check=True)
        write_vmlinux(os.path.join(tree, "boot", f"vmlinuz-{version}"), paths["kernel"])
        shutil.copyfile(os.path.join(tree, "boot", f"vmlinuz-{version}"), paths["bzimage"])
        shutil.move(os.path.join(tree, "lib", "modules", version), paths["modules"])
    run(["depmod", "-b", out, version])
    order = module_load_order(paths["modules"], BOOT_MODULES)
    write_initramfs(paths["initrd"] + ".tmp", paths["modules"], order)
    os.replace(paths["initrd"] + ".tmp", paths["initrd"])
    with open(stamp, "w") as f:
        f.write(pkg + "\n")
    return paths


def write_vmlinux(bzimage, path):
    """The kernel ELF inside a bzImage (Debian compresses it with xz)."""
    with open(bzimage, "rb") as f:
        data = f.read()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise VhostError(f"{bzimage}: no xz payload")
    elf = lzma.LZMADecompressor().decompress(data[start:])
    if elf[:4] != b"\x7fELF":
        raise VhostError(f"{bzimage}: its payload is not an ELF kernel")
    with open(path, "wb") as f:
        f.write(elf)


def module_index(moddir):
    index = {}
    for dirpath, _, files in os.walk(moddir):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(dirpath, f)
    return index


def module_depends(path):
    with open(path, "rb") as f:
        data = f.read()
    i = data.find(b"\0depends=")
    if i < 0:
        return []
    value = data[i + 9:data.index(b"\0", i + 1)].decode()
    return [d.replace("-", "_") for d in value.split(",") if d]


def module_load_order(moddir, wanted):
    """Module files (relative to moddir) in an order where each follows its dependencies."""
    index, order, seen = module_index(moddir), [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            raise VhostError(f"kernel module {name} not found in {moddir}")
        for dep in module_depends(index[name]):
            visit(dep)
        order.append(os.path.relpath(index[name], moddir))

    for name in wanted:
        visit(name)
    return order


def write_initramfs(path, moddir, order):
    """A newc cpio archive: busybox, /init and the modules (flattened) with their load order."""
    entries = [("bin", None, 0o40755), ("modules", None, 0o40755),
               ("bin/busybox", open("/bin/busybox", "rb").read(), 0o100755),
               ("init", open(os.path.join(HERE, "init.sh"), "rb").read(), 0o100755)]
    names = []
    for rel in order:
        name = os.path.basename(rel)
        names.append(name)
        entries.append((f"modules/{name}", open(os.path.join(moddir, rel), "rb").read(), 0o100644))
    entries.append(("modules/order", ("\n".join(names) + "\n").encode(), 0o100644))
    with open(path, "wb") as f:
        for ino, (name, data, mode) in enumerate(entries, 1):
            cpio_entry(f, ino, name, data or b"", mode)
        cpio_entry(f, 0, "TRAILER!!!", b"", 0)


def cpio_entry(f, ino, name, data, mode):
    nlink = 2 if mode & 0o40000 else 1
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
    f.write(b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0")
    f.write(b"\0" * (-(110 + len(name) + 1) % 4))
    f.write(data)
    f.write(b"\0" * (-len(data) % 4))


# ---------------------------------------------------------------- the network

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def open_tap(name):
    """A non-persistent TAP in this namespace: it vanishes when its last fd closes."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
    return fd


class Lan:
    """A network namespace with bridges that virtual hosts' NICs join; clients run in it.

    `bridge(name, addr)` makes a bridge (optionally with an address for clients);
    `tap_for(bridge)` gives a TAP fd for a host NIC on it. TAPs are opened here and
    moved into the namespace, so QEMU (in this namespace) keeps them open.
    """

    def __init__(self):
        self.ns = f"vh-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._n = 0
        self.taps = {}  # tap name -> bridge
        run(["ip", "netns", "add", self.ns])
        _live.add(self)
        self.sh("ip link set lo up")

    def sh(self, script, timeout=30, check=True):
        r = subprocess.run(["ip", "netns", "exec", self.ns, "sh", "-c", script], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise VhostError(f"in {self.ns}: `{script}` failed: {r.stderr.strip()}")
        return r

    def bridge(self, name, addr=None):
        self.sh(f"ip link add {name} type bridge && ip link set {name} up" +
                (f" && ip addr add {addr} dev {name}" if addr else ""))

    def tap_for(self, bridge):
        self._n += 1
        name = f"vht{os.getpid() % 100000}x{self._n}"
        fd = open_tap(name)
        try:
            run(["ip", "link", "set", name, "netns", self.ns])
            self.sh(f"ip link set {name} master {bridge} && ip link set {name} up")
        except Exception:
            os.close(fd)
            raise
        self.taps[name] = bridge
        return name, fd

    def set_link(self, tap, up):
        """Cuts (up=False) or restores one host NIC's cable."""
        self.sh(f"ip link set {tap} {'up' if up else 'down'}")

    def close(self):
        _live.discard(self)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


# ---------------------------------------------------------------- the host

class Result:
    def __init__(self, status, stdout, stderr):
        self.returncode, self.stdout, self.stderr = status, stdout, stderr

    def __repr__(self):
        return f"Result({self.returncode}, stdout={self.stdout[-500:]!r}, stderr={self.stderr[-500:]!r})"


class Process:
    """A command running in a host: output collected as it comes, status when it ends."""

    def __init__(self, host, argv, env=None, cwd=None, echo=None):
        self.argv = argv
        self.stdout, self.stderr = bytearray(), bytearray()
        self.returncode = None
        self._echo = echo
        self._done = threading.Event()
        self._sock = host._connect({"argv": argv, "env": env or {}, "cwd": cwd or ROOT})
        self.pid = int(self._read_frame(expect=b"P"))
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _read_frame(self, expect=None):
        head = self._read_exact(5)
        kind, n = head[:1], struct.unpack(">I", head[1:])[0]
        data = self._read_exact(n) if n else b""
        if expect and kind != expect:
            raise VhostError(f"agent: expected frame {expect!r}, got {kind!r}")
        return data if expect else (kind, data)

    def _collect(self):
        try:
            while True:
                kind, data = self._read_frame()
                if kind == b"X":
                    self.returncode = int(data)
                    return
                (self.stdout if kind == b"1" else self.stderr).extend(data)
                if self._echo:
                    self._echo(kind, data)
        except (OSError, EOFError):
            if self.returncode is None:
                self.returncode = "lost"  # the host died or the agent dropped us
        finally:
            self._sock.close()
            self._done.set()

    def wait(self, timeout=None):
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(self.argv, timeout)
        return self.returncode

    def kill(self):
        """Kills the command's process group (by closing its connection)."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._done.wait(10)

    def result(self):
        return Result(self.returncode, self.stdout.decode(errors="replace"),
                      self.stderr.decode(errors="replace"))


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def kvm_accel_available():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


class VirtualHost:
    """One virtual test host. `nics`: (name inside the host, TAP name, TAP fd), the
    last two from Lan.tap_for; the host's `ip link` shows each NIC by its name."""

    _count = 0

    # One vCPU by default: with two, QEMU 7.2's multi-threaded TCG sometimes misses
    # the kernel's live code patching and both vCPUs spin on an int3 (docs/virtual-hosts.md).
    def __init__(self, name="vhost", cpus=1, mem="2G", nics=(), boot_timeout=120, log=None):
        VirtualHost._count += 1
        self.number = VirtualHost._count
        self.name, self.cpus, self.mem = name, cpus, mem
        self.nics = list(nics)
        self.boot_timeout = boot_timeout
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.qemu = None
        self.dir = None
        self.port = None
        self.boot_seconds = None

    # lifecycle

    def start(self):
        """Boots the host and waits for its agent."""
        for _ in range(5):  # another process may take the chosen loopback port first
            self.launch()
            try:
                return self.wait_ready()
            except _PortTaken:
                self.power_off()
        raise VhostError("could not forward a loopback port to the agent")

    def launch(self):
        """Starts QEMU. Call it from the thread that lives as long as the host:
        QEMU dies with that thread (PR_SET_PDEATHSIG)."""
        paths = prepare(self.log)
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix=f"vhost-{self.name}-")
            _live.add(self)
        self.port = free_port()
        self._t0 = time.monotonic()
        self._spawn_qemu(paths)

    def wait_ready(self):
        self._wait_ready(self._t0)
        self.boot_seconds = time.monotonic() - self._t0
        return self

    def _qemu_argv(self, paths):
        accel = "kvm" if os.environ.get("VHOST_ACCEL") == "kvm" and kvm_accel_available() \
            else "tcg,thread=multi,tb-size=256"
        # NICs get deterministic MACs (host number, NIC number); init.sh names them by MAC.
        macs = {name: "52:54:00:%02x:%02x:01" % (self.number % 256, i)
                for i, name in enumerate(["mgmt"] + [n for n, _, _ in self.nics])}
        append = (f"console=ttyS0 quiet nokaslr panic=-1 mitigations=off tsc=reliable init_on_alloc=0 "
                  f"cryptomgr.notests 8250.nr_uarts=1 vhost.worktree={ROOT} "
                  f"vhost.modules={paths['modules']} vhost.name={self.name} "
                  f"vhost.nics={','.join(f'{n}@{m}' for n, m in macs.items())}")
        argv = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                "-name", self.name, "-accel", accel, "-cpu", "max", "-smp", str(self.cpus), "-m", self.mem,
                "-kernel", paths["kernel"], "-initrd", paths["initrd"], "-append", append,
                "-serial", f"file:{self.console_path}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
                "-virtfs", f"local,path={ROOT},mount_tag=worktree,security_model=none,multidevs=remap",
                "-netdev", f"user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:{self.port}-:{AGENT_PORT}",
                "-device", f"virtio-net-pci,netdev=mgmt,mac={macs['mgmt']},romfile="]
        for name, _, fd in self.nics:
            argv += ["-netdev", f"tap,id={name},fd={fd},vhost=off",
                     "-device", f"virtio-net-pci,netdev={name},mac={macs[name]},romfile="]
        return argv

    @property
    def console_path(self):
        return os.path.join(self.dir, "console.log")

    @property
    def qmp_path(self):
        return os.path.join(self.dir, "qmp.sock")

    def _spawn_qemu(self, paths):
        if getattr(self, "_qemu_err", None):
            self._qemu_err.close()
        self._qemu_err = open(os.path.join(self.dir, "qemu.err"), "w+b")
        self.qemu = subprocess.Popen(self._qemu_argv(paths), stdin=subprocess.DEVNULL,
                                     stdout=self._qemu_err, stderr=self._qemu_err,
                                     pass_fds=[fd for _, _, fd in self.nics], preexec_fn=_die_with_parent)

    def _qemu_error(self):
        self._qemu_err.seek(0)
        return self._qemu_err.read().decode(errors="replace").strip()

    def _wait_ready(self, t0):
        while True:
            if self.qemu.poll() is not None:
                err = self._qemu_error()
                if "hostfwd" in err or "host forwarding" in err:
                    raise _PortTaken()
                raise VhostError(f"virtual host {self.name}: QEMU exited ({self.qemu.returncode}): "
                                 f"{err}\nconsole:\n{self.console()[-3000:]}")
            # Probing before the agent listens costs slirp's SYN retries (seconds): wait for its word.
            if "vhost-agent: ready" in self.console():
                try:
                    if self.run(["true"], timeout=10).returncode == 0:
                        return
                except (OSError, EOFError, VhostError, subprocess.TimeoutExpired):
                    pass
            if time.monotonic() - t0 > self.boot_timeout:
                raise VhostError(f"virtual host {self.name} not ready after {self.boot_timeout}s;"
                                 f" console:\n{self.console()[-3000:]}")
            time.sleep(0.1)

    def console(self):
        try:
            with open(self.console_path, "rb") as f:
                return f.read().decode(errors="replace")
        except (OSError, TypeError):
            return ""

    def close(self):
        """Powers the host off (if it still runs) and removes everything it made."""
        _live.discard(self)
        self.power_off()
        for _, _, fd in self.nics:
            try:
                os.close(fd)
            except OSError:
                pass
        self.nics = []
        if getattr(self, "_qemu_err", None):
            self._qemu_err.close()
            self._qemu_err = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # faults

    def power_off(self):
        """Pulls the plug: QEMU dies at once, with everything inside it."""
        if self.qemu and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()

    def freeze(self):
        self.qmp("stop")

    def thaw(self):
        self.qmp("cont")

    def qmp(self, command, **arguments):
        """One command on QEMU's own monitor (not lockstep's)."""
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(self.qmp_path)
        return qmp_command(sock, command, **arguments)

    # commands

    def _connect(self, request):
        if self.qemu is None or self.qemu.poll() is not None:
            raise VhostError(f"virtual host {self.name} is not running")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.settimeout(None)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(json.dumps(request).encode() + b"\n")
        return s

    def spawn(self, argv, env=None, cwd=None, echo=None):
        """Starts a command in the host; returns a Process (output, wait, kill)."""
        if isinstance(argv, str):
            argv = ["/bin/sh", "-c", argv]
        return Process(self, argv, env=env, cwd=cwd, echo=echo)

    def run(self, argv, timeout=60, check=False, env=None, cwd=None, echo=None):
        """Runs a command in the host to its end; returns a Result. A timeout kills it."""
        p = self.spawn(argv, env=env, cwd=cwd, echo=echo)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        r = p.result()
        if r.returncode == "lost":
            raise VhostError(f"virtual host {self.name}: lost `{argv}`")
        if check and r.returncode != 0:
            raise VhostError(f"in {self.name}: `{argv}` exited {r.returncode}: {r.stderr.strip()}")
        return r

    def connect(self, argv):
        """A socket that is a command's stdin and stdout in the host (e.g. socat to a UNIX socket)."""
        return self._connect({"argv": argv, "raw": True, "cwd": ROOT})

    def connect_unix(self, path):
        return self.connect(["socat", "-", f"UNIX-CONNECT:{path}"])


def qmp_command(sock, command, **arguments):
    """One command on a new QMP connection (greeting, capabilities, command); closes sock.
    Returns the command's return value; a QMP error raises VhostError."""
    with sock:
        sock.settimeout(30)
        f = sock.makefile("rwb")
        f.readline()
        for msg in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": arguments}):
            f.write(json.dumps(msg).encode() + b"\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    raise VhostError(f"QMP {command}: the monitor closed the connection")
                reply = json.loads(line)
                if "event" not in reply:
                    break
            if "error" in reply:
                raise VhostError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")


class _PortTaken(Exception):
    pass


# Everything still open is closed at exit and on SIGINT/SIGTERM.
_live = set()


def close_all():
    for obj in list(_live):
        try:
            obj.close()
        except Exception as e:
            print(f"vhost cleanup: {e}", file=sys.stderr)


def _on_signal(signum, frame):
    close_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(close_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_sig) in (signal.SIG_DFL, None):
        signal.signal(_sig, _on_signal)


# ---------------------------------------------------------------- command line

def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="vhost", description="Virtual test hosts with real KVM inside.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="build the cached kernel and initramfs")
    r = sub.add_parser("run", help="boot a host, run a command in it, print its output, exit with its status")
    r.add_argument("--cpus", type=int, default=1, help="vCPUs (default 1; see docs/virtual-hosts.md)")
    r.add_argument("--mem", default="2G")
    r.add_argument("--timeout", type=float, default=None, help="seconds (default: none)")
    r.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("command", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        print(" ".join(prepare().values()))
        return 0
    env = dict(e.split("=", 1) for e in a.env)

    def echo(kind, data):
        stream = sys.stdout if kind == b"1" else sys.stderr
        stream.buffer.write(data)
        stream.flush()

    with VirtualHost("vhost", cpus=a.cpus, mem=a.mem) as h:
        print(f"vhost: booted in {h.boot_seconds:.1f} s ({a.cpus} vCPUs, {a.mem})", file=sys.stderr)
        try:
            r = h.run(a.command, timeout=a.timeout, env=env, echo=echo)
        except subprocess.TimeoutExpired:
            print(f"vhost: `{' '.join(a.command)}` still running after {a.timeout} s: killed",
                  file=sys.stderr)
            return 124
        return r.returncode if isinstance(r.returncode, int) and r.returncode >= 0 else 128 - r.returncode


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except VhostError as e:
        print(f"vhost: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
