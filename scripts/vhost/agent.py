"""Stage 2 of a virtual test host: PID 1 in the host's real root, which init.sh
set up. It serves requests from the outer machine, one TCP connection
each, on the management NIC (reached from outside through QEMU's user-mode
network, port-forwarded from the outer machine's loopback).

A request is one JSON line {"argv": [...], "env": {...}, "cwd": DIR, "raw": BOOL}.
- framed (default): the command runs with stdin from /dev/null; the agent sends
  frames TYPE(1 byte) LENGTH(4 bytes, big endian) DATA: b"P" the pid (decimal),
  b"1" stdout, b"2" stderr, b"X" the exit status (decimal; -N for signal N).
  Closing the connection kills the command's process group.
- raw: the connection is the command's stdin and stdout (a pipe to a socket
  inside the host, for example); stderr goes to the host's console.
As PID 1 the agent also reaps every orphan.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

PORT = 7100
_children = {}  # pid -> threading.Event set when reaped; status in _status
_status = {}
_lock = threading.Lock()


def log(msg):
    with open("/dev/console", "w") as c:
        c.write(f"vhost-agent: {msg}\n")


def reap_forever():
    while True:
        try:
            pid, st = os.waitpid(-1, 0)
        except ChildProcessError:
            threading.Event().wait(0.05)
            continue
        code = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
        with _lock:
            ev = _children.get(pid)
            if ev is not None:
                _status[pid] = code
                ev.set()


def spawn(req, **kw):
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
           "LANG": "C.UTF-8"}
    env.update(req.get("env", {}))
    with _lock:  # registered before the reaper can see it exit
        proc = subprocess.Popen(req["argv"], env=env, cwd=req.get("cwd", "/"), start_new_session=True, **kw)
        ev = _children[proc.pid] = threading.Event()
    return proc, ev


def send_frame(conn, kind, data):
    conn.sendall(kind + struct.pack(">I", len(data)) + data)


def pump(conn, fd, kind, conn_lock):
    while True:
        data = os.read(fd, 65536)
        if not data:
            return
        with conn_lock:
            send_frame(conn, kind, data)


def serve_framed(conn, req):
    proc, done = spawn(req, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    conn_lock = threading.Lock()
    try:
        send_frame(conn, b"P", str(proc.pid).encode())
        pumps = [threading.Thread(target=pump, args=(conn, p.fileno(), k, conn_lock), daemon=True)
                 for p, k in ((proc.stdout, b"1"), (proc.stderr, b"2"))]
        for t in pumps:
            t.start()
        # a closed connection (the client gave up) ends the command
        watcher = threading.Thread(target=kill_on_hangup, args=(conn, proc.pid, done), daemon=True)
        watcher.start()
        done.wait()
        for t in pumps:
            t.join()
        proc.returncode = _status.pop(proc.pid)  # so Popen never waits for a reused pid
        with conn_lock:
            send_frame(conn, b"X", str(proc.returncode).encode())
    except OSError:
        kill_group(proc.pid)
    finally:
        with _lock:
            _children.pop(proc.pid, None)


def kill_on_hangup(conn, pid, done):
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    if not done.is_set():
        kill_group(pid)


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def serve_raw(conn, req):
    proc, done = spawn(req, stdin=conn.fileno(), stdout=conn.fileno())
    done.wait()
    with _lock:
        _children.pop(proc.pid, None)
        proc.returncode = _status.pop(proc.pid, None)


def serve(conn):
    try:
        f = conn.makefile("rb")
        req = json.loads(f.readline())
        (serve_raw if req.get("raw") else serve_framed)(conn, req)
    except Exception as e:  # one bad request never stops the agent
        log(f"request failed: {e!r}")
    finally:
        conn.close()


def main():
    threading.Thread(target=reap_forever, daemon=True).start()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", PORT))
    srv.listen(64)
    log("ready")
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:
        log(f"agent died: {e!r}")
        sys.stdout.flush()
        os.system("poweroff -f")
