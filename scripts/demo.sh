#!/usr/bin/env bash
# The lockstep demo: installs what is needed, builds, then boots the test guest
# on a TAP device inside a private network namespace, pings it, echoes a UDP
# datagram through it, asks it over QMP how it is, and shuts it down.
# (The protected primary/secondary pair joins this demo when COLO lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

NS="lockstep-demo-$$"
WORK="$(mktemp -d)"
VMM_PID=""
cleanup() {
	[ -n "$VMM_PID" ] && kill "$VMM_PID" 2>/dev/null && wait "$VMM_PID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

GUEST_IP=10.0.2.15
ip netns add "$NS"
ip netns exec "$NS" sh -c "ip link set lo up && ip tuntap add dev tap0 mode tap &&
	ip addr add 10.0.2.1/24 dev tap0 && ip link set tap0 up"

echo "== starting the test guest (console follows)"
ip netns exec "$NS" build/lockstep run --kernel build/guest/testguest.elf --mem 64M \
	--net tap=tap0,mac=52:54:00:12:34:56 --qmp "$WORK/qmp.sock" \
	--cmdline "app=net,ip=$GUEST_IP/24" &
VMM_PID=$!
for _ in $(seq 100); do [ -S "$WORK/qmp.sock" ] && break; sleep 0.05; done
sleep 0.3

echo "== ping from the client namespace"
ip netns exec "$NS" ping -c 3 -i 0.2 "$GUEST_IP"

echo "== UDP echo on port 7"
ip netns exec "$NS" /usr/bin/python3 - "$GUEST_IP" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"hello, lockstep", (sys.argv[1], 7))
print("echoed:", s.recvfrom(2048)[0].decode())
PY

echo "== QMP: query-status, then quit"
/usr/bin/python3 - "$WORK/qmp.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
print("greeting:", f.readline().strip())
for cmd in ("qmp_capabilities", "query-status", "quit"):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    print(cmd, "->", f.readline().strip())
PY
wait "$VMM_PID" && VMM_PID=""
echo "== done"
