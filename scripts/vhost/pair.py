"""A protected VM pair across two virtual test hosts, as it is deployed for real.

    client LAN 10.0.3.0/24 (bridge "lan" in a namespace of this machine, clients at .1)
      |-- host A: NIC "lan" + TAP tap0 on bridge br0 -- lockstep primary  (guest .15)
      |-- host B: NIC "lan" + TAP tap0 on bridge br0 -- lockstep secondary (same guest)
    replication link 10.0.4.0/24 (bridge "repl"): host A .1, host B .2

Each host can lose power (`power_off`), freeze (`freeze`/`thaw`) or lose a cable
(`cut`/`mend`: "lan", "repl"). Used by the two-host COLO tests and the demo.
"""
import os
import threading

from vhost import ROOT, Lan, VhostError, VirtualHost, qmp_command

LOCKSTEP = os.path.join(ROOT, "build", "lockstep")
GUEST = os.path.join(ROOT, "build", "guest", "testguest.elf")
CLIENT_IP = "10.0.3.1"
GUEST_IP = "10.0.3.15"
GUEST_MAC = "52:54:00:ab:cd:ef"
REPL_IP = {"a": "10.0.4.1", "b": "10.0.4.2"}
REPL_PORT = 7000
QMP_PATH = {"primary": "/run/lockstep-primary.sock", "secondary": "/run/lockstep-secondary.sock"}
CONSOLE_PATH = {"primary": "/tmp/primary-console.log", "secondary": "/tmp/secondary-console.log"}


class TwoHosts:
    """Hosts "a" (the primary's) and "b" (the secondary's) on a client LAN and a replication link."""

    def __init__(self, cpus=1, mem="2G", log=None):
        self.lan = Lan()
        self.hosts, self.taps, self.lockstep = {}, {}, {}
        try:
            self.lan.bridge("lan", f"{CLIENT_IP}/24")
            self.lan.bridge("repl")
            for name in ("a", "b"):
                nics = []
                for net in ("lan", "repl"):
                    tap, fd = self.lan.tap_for(net)
                    self.taps[name, net] = tap
                    nics.append((net, tap, fd))
                self.hosts[name] = VirtualHost(f"host-{name}", cpus=cpus, mem=mem, nics=nics, log=log)
            self._start_hosts()
        except BaseException:
            self.close()
            raise

    def _start_hosts(self):
        """Both boot at once; QEMU is started from this thread, which outlives the hosts."""
        errors = []

        def boot(h, repl_ip):
            try:
                h.wait_ready()
                h.run("ip link add br0 type bridge && ip link set lan master br0 && "
                      "ip tuntap add dev tap0 mode tap && ip link set tap0 master br0 && "
                      f"ip link set lan up && ip link set tap0 up && ip link set br0 up && "
                      f"ip addr add {repl_ip}/24 dev repl && ip link set repl up", check=True)
            except BaseException as e:
                errors.append(e)

        for h in self.hosts.values():
            h.launch()
        threads = [threading.Thread(target=boot, args=(h, REPL_IP[n])) for n, h in self.hosts.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    # the pair

    def start_secondary(self, mem="128M", extra=()):
        self.lockstep["secondary"] = self.hosts["b"].spawn(
            [LOCKSTEP, "secondary", "--console", f"file:{CONSOLE_PATH['secondary']}",
             "--listen", f"{REPL_IP['b']}:{REPL_PORT}", "--mem", mem, "--net", f"tap=tap0,mac={GUEST_MAC}",
             "--qmp", QMP_PATH["secondary"], *extra])

    def start_primary(self, cmdline, mem="128M", extra=()):
        self.lockstep["primary"] = self.hosts["a"].spawn(
            [LOCKSTEP, "primary", "--console", f"file:{CONSOLE_PATH['primary']}", "--kernel", GUEST,
             "--mem", mem, "--net", f"tap=tap0,mac={GUEST_MAC}", "--peer", f"{REPL_IP['b']}:{REPL_PORT}",
             "--qmp", QMP_PATH["primary"], "--cmdline", cmdline, *extra])

    def host_of(self, role):
        return self.hosts["a" if role == "primary" else "b"]

    def qmp_socket(self, role):
        """A socket to lockstep's QMP monitor in its host (for harness.QMP's connect=)."""
        return self.host_of(role).connect_unix(QMP_PATH[role])

    def qmp(self, role, command, **arguments):
        """One command on lockstep's monitor; its return value."""
        return qmp_command(self.qmp_socket(role), command, **arguments)

    def console(self, role):
        r = self.host_of(role).run(["cat", CONSOLE_PATH[role]], timeout=30)
        return r.stdout

    def lockstep_stderr(self, role):
        p = self.lockstep.get(role)
        return p.stderr.decode(errors="replace") if p else ""

    # faults

    def cut(self, host, net):
        self.lan.set_link(self.taps[host, net], up=False)

    def mend(self, host, net):
        self.lan.set_link(self.taps[host, net], up=True)

    def client(self, argv, **kw):
        """Runs a client in the LAN namespace (argv for subprocess)."""
        return ["ip", "netns", "exec", self.lan.ns] + list(argv)

    def close(self):
        for h in self.hosts.values():
            h.close()
        self.lan.close()


__all__ = ["TwoHosts", "VhostError", "CLIENT_IP", "GUEST_IP", "GUEST_MAC", "GUEST", "LOCKSTEP"]
