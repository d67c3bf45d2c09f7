#!/usr/bin/env bash
# The lockstep demo: installs what is needed, builds, then runs a protected VM
# pair on the built-in test guest. Primary and secondary each get a TAP device
# on one bridge in a private network namespace (two "hosts" on one LAN); a
# client in the same namespace pings the guest and echoes UDP through it while
# the pair checkpoints. Then the primary is killed with SIGKILL and the
# secondary takes over: the same guest, the same address, still answering.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

NS="lockstep-demo-$$"
WORK="$(mktemp -d)"
PIDS=() # lockstep processes (ip netns exec execs them: $! is theirs)
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

GUEST_IP=10.0.2.15
PORT=7000
in_ns() { ip netns exec "$NS" "$@"; }
qmp() { /usr/bin/python3 scripts/qmp.py "$WORK/$1.sock" "${@:2}"; }

ip netns add "$NS"
in_ns sh -c "ip link set lo up && ip link add br0 type bridge && ip link set br0 up &&
	ip addr add 10.0.2.1/24 dev br0 &&
	for t in tap-pri tap-sec; do ip tuntap add dev \$t mode tap && ip link set \$t master br0 && ip link set \$t up; done"

echo "== starting the secondary, then the primary (guest console: $WORK/*-console.log)"
ip netns exec "$NS" build/lockstep secondary --listen 127.0.0.1:$PORT --mem 64M --tap tap-sec \
	--qmp "$WORK/sec.sock" --console "file:$WORK/sec-console.log" &
PIDS+=($!)
ip netns exec "$NS" build/lockstep primary --kernel build/guest/testguest.elf --mem 64M --tap tap-pri \
	--peer 127.0.0.1:$PORT --checkpoint-delay 500 --qmp "$WORK/pri.sock" \
	--console "file:$WORK/pri-console.log" --cmdline "app=net,ip=$GUEST_IP/24" &
PRI=$!
PIDS+=($PRI)
for _ in $(seq 100); do
	[ -S "$WORK/pri.sock" ] && qmp pri query-colo-status 2>/dev/null | grep -q '"primary"' && break
	sleep 0.1
done
echo "primary:   $(qmp pri query-colo-status)"
echo "secondary: $(qmp sec query-colo-status)"

echo "== the client pings the guest and echoes UDP through it while the pair checkpoints"
in_ns ping -c 3 -i 0.3 "$GUEST_IP"
in_ns /usr/bin/python3 scripts/udp_echo.py "$GUEST_IP" "hello, protected guest"
sleep 1
echo "checkpoints so far: $(qmp pri query-colo-stats)"

echo "== SIGKILL to the primary"
kill -9 "$PRI"
wait "$PRI" 2>/dev/null || true
sleep 0.5
echo "secondary: $(qmp sec query-colo-status)"
echo "== the same guest answers, now from the secondary"
in_ns ping -c 3 -i 0.3 -W 2 "$GUEST_IP"
in_ns /usr/bin/python3 scripts/udp_echo.py "$GUEST_IP" "still here after failover"
qmp sec quit >/dev/null
echo "== done"
