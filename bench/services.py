#!/usr/bin/env python3
"""Benchmarks of the test guest's TCP/IP services (app=serve, lwIP) with real
clients in a client namespace, each next to a reference figure: the same
client against the same kind of service on the host, over the namespace's
loopback (redis-server, nginx, a Python socket sink). Prints `bench: NAME
VALUE UNIT` lines like bench/run.py. Needs root, redis-tools, redis-server,
wrk, curl and nginx; a reference whose server is missing is skipped.

    NAME                                   what
    services.kv.{guest,host}.{ping,set,get}.rps      redis-benchmark -c 50 requests/s
    services.kv.{guest,host}.{ping,set,get}.p50/p99  their latency
    services.kv.guest_disk.set.rps/p99     SET with every write on the guest's disk
    services.http.{guest,host}.rps         wrk -c 50, 1 KiB bodies, keep-alive
    services.tcp.{guest,host}.to_client    one TCP stream from the server (HTTP body), MB/s
    services.tcp.{guest,host}.from_client  one TCP stream into a discard sink, MB/s
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from guest_net import NetNS6, serve_args  # noqa: E402
from harness import VM, Cleanup  # noqa: E402
from run import emit, machine  # noqa: E402

KV_REQUESTS = 100000
STREAM_BYTES = 256 << 20
HTTP_SECONDS = 5

SINK = r"""
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
srv = socket.socket(family)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
print("ready", flush=True)
c, _ = srv.accept()
while c.recv(1 << 20):
    pass
"""

SEND = r"""
import socket, sys, time
total = int(sys.argv[3])
chunk = b"\x5a" * (1 << 20)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
t0 = time.monotonic()
sent = 0
while sent < total:
    s.sendall(chunk)
    sent += len(chunk)
s.shutdown(socket.SHUT_WR)
s.recv(1)  # returns at the server's FIN: everything was read
print(total / (time.monotonic() - t0) / 1e6)
"""


def in_ns(ns, argv, timeout=300):
    p = subprocess.run(["ip", "netns", "exec", ns.name] + list(argv), capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]}: exit {p.returncode}: {p.stdout[-500:]}{p.stderr[-500:]}")
    return p.stdout


def background(ns, cleanup, argv, ready=None):
    p = subprocess.Popen(["ip", "netns", "exec", ns.name] + list(argv), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)

    def stop():
        if p.poll() is None:
            p.kill()
            p.wait()
    cleanup.add(stop)
    if ready:
        assert ready in p.stdout.readline()
    return p


# ---- one figure each ----

def redis_bench(ns, host, port, label, tests="ping,set,get"):
    """redis-benchmark --csv: "test","rps","avg","min","p50","p95","p99","max"."""
    out = in_ns(ns, ["redis-benchmark", "-h", host, "-p", str(port), "-t", tests, "-n", str(KV_REQUESTS),
                     "-c", "50", "--csv"])
    for row in re.findall(r'^"([A-Z_]+)","([\d.]+)","[\d.]+","[\d.]+","([\d.]+)","[\d.]+","([\d.]+)"', out, re.M):
        test, rps, p50, p99 = row
        name = {"PING_MBULK": "ping"}.get(test, test.lower())
        if test == "PING_INLINE":
            continue
        emit(f"services.kv.{label}.{name}.rps", float(rps), "req/s")
        emit(f"services.kv.{label}.{name}.p50", float(p50), "ms")
        emit(f"services.kv.{label}.{name}.p99", float(p99), "ms")


def http_bench(ns, url, label):
    out = in_ns(ns, ["wrk", "-t", "2", "-c", "50", "-d", f"{HTTP_SECONDS}s", url])
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if "Non-2xx" in out or "Socket errors" in out or not m:
        raise RuntimeError(f"wrk: {out}")
    emit(f"services.http.{label}.rps", float(m.group(1)), "req/s")


def download_bench(ns, url, label):
    out = in_ns(ns, ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url])
    size, secs = out.split()
    if int(size) != STREAM_BYTES:
        raise RuntimeError(f"curl got {size} bytes")
    emit(f"services.tcp.{label}.to_client", int(size) / float(secs) / 1e6, "MB/s")


def upload_bench(ns, host, port, label):
    out = in_ns(ns, ["/usr/bin/python3", "-c", SEND, host, str(port), str(STREAM_BYTES)])
    emit(f"services.tcp.{label}.from_client", float(out), "MB/s")


# ---- the guest ----

def bench_guest(ns, cleanup, tmp):
    vm = VM(cleanup, tmp, serve_args(ns, "echo+kv+http+discard"), netns=ns.name, name="serve")
    vm.wait_console(r"net: up")
    ip = ns.GUEST_IP
    redis_bench(ns, ip, 6379, "guest")
    http_bench(ns, f"http://{ip}/bytes/1024", "guest")
    download_bench(ns, f"http://{ip}/bytes/{STREAM_BYTES}", "guest")
    upload_bench(ns, ip, 9, "guest")
    vm.kill()


def bench_guest_disk(ns, cleanup, tmp):
    disk = os.path.join(tmp, "kv.img")
    with open(disk, "wb") as f:
        f.truncate(512 << 20)
    vm = VM(cleanup, tmp, serve_args(ns, "kv", "kvdisk=1", disk), netns=ns.name, name="serve-disk")
    vm.wait_console(r"net: up")
    out = in_ns(ns, ["redis-benchmark", "-h", ns.GUEST_IP, "-t", "set", "-n", str(KV_REQUESTS // 2),
                     "-c", "50", "--csv"])
    m = re.search(r'^"SET","([\d.]+)","[\d.]+","[\d.]+","([\d.]+)","[\d.]+","([\d.]+)"', out, re.M)
    emit("services.kv.guest_disk.set.rps", float(m.group(1)), "req/s")
    emit("services.kv.guest_disk.set.p99", float(m.group(3)), "ms")
    vm.kill()


# ---- the references on the host, over the namespace's loopback ----

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log stderr crit;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{ listen 127.0.0.1:8080; root {dir}/www; }}
}}
"""


def bench_host_kv(ns, cleanup):
    if not shutil.which("redis-server"):
        print("bench: services.kv.host skipped: no redis-server", file=sys.stderr)
        return
    background(ns, cleanup, ["redis-server", "--port", "6390", "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--daemonize", "no", "--io-threads", "1"])
    for _ in range(50):
        if "PONG" in subprocess.run(["ip", "netns", "exec", ns.name, "redis-cli", "-p", "6390", "PING"],
                                    capture_output=True, text=True).stdout:
            break
        time.sleep(0.1)
    redis_bench(ns, "127.0.0.1", 6390, "host")


def bench_host_http(ns, cleanup, tmp):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        print("bench: services.http.host skipped: no nginx", file=sys.stderr)
        return
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "small"), "wb") as f:
        f.write(b"x" * 1024)
    with open(os.path.join(www, "big"), "wb") as f:
        f.truncate(STREAM_BYTES)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=tmp))
    background(ns, cleanup, [nginx, "-c", conf, "-e", "stderr"])
    time.sleep(0.5)
    http_bench(ns, "http://127.0.0.1:8080/small", "host")
    download_bench(ns, "http://127.0.0.1:8080/big", "host")


def bench_host_sink(ns, cleanup):
    background(ns, cleanup, ["/usr/bin/python3", "-c", SINK, "127.0.0.1", "9009"], ready="ready")
    upload_bench(ns, "127.0.0.1", 9009, "host")


def main():
    cleanup = Cleanup()
    try:
        ns = NetNS6(cleanup)
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o755)  # nginx reads the files as another user
            for fn, args in ((bench_guest, (ns, cleanup, tmp)), (bench_guest_disk, (ns, cleanup, tmp)),
                             (bench_host_kv, (ns, cleanup)), (bench_host_http, (ns, cleanup, tmp)),
                             (bench_host_sink, (ns, cleanup))):
                try:
                    fn(*args)
                except Exception as e:
                    print(f"bench: {fn.__name__} failed: {e}", file=sys.stderr)
    finally:
        cleanup.run()


if __name__ == "__main__":
    machine()
    main()
