#!/bin/busybox sh
# Stage 1 of a virtual test host (PID 1 in its initramfs): load the modules the
# boot needs, mount the outer machine's root read-only over 9p under a tmpfs
# overlay and the work tree read-write at its own path, give the host fresh
# /run, /tmp and /dev/shm, its loopback and management NIC, then hand over to
# the agent. Every other module loads on demand from the cached module tree
# (the kernel calls modprobe). Parameters: vhost.NAME=VALUE on the command line.
bb=/bin/busybox
$bb mkdir -p /proc /sys /dev /newroot /lower /rw
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev

fail() {
	echo "vhost-init: $*" >/dev/console
	$bb poweroff -f
}
param() { $bb sed -n "s/.*vhost\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
worktree=$(param worktree) modules=$(param modules) name=$(param name) nics=$(param nics)

while read -r mod; do
	$bb insmod "/modules/$mod" || fail "insmod $mod failed"
done </modules/order

opts=trans=virtio,version=9p2000.L,msize=512000
$bb mount -t 9p -o "$opts,ro,cache=loose" hostroot /lower || fail "cannot mount the host root"
$bb mount -t tmpfs -o mode=0755 tmpfs /rw || fail "cannot mount tmpfs"
$bb mkdir -p /rw/upper /rw/work
$bb mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
	|| fail "cannot mount the overlay"
# Fresh /run, /tmp and /dev/shm first: the work tree may live under one of them.
for d in run tmp dev/shm; do $bb mount -t tmpfs -o mode=1777 tmpfs "/newroot/$d"; done
$bb chmod 755 /newroot/run
echo "$name" >/newroot/run/lockstep-vhost # tells benchmarks and tests where they run
$bb mkdir -p /newroot/dev/pts && $bb mount -t devpts devpts /newroot/dev/pts
# Opening this node loads tun (there is no udev to make it from modules.devname).
$bb mkdir -p /dev/net && $bb mknod /dev/net/tun c 10 200
$bb mkdir -p "/newroot$worktree"
$bb mount -t 9p -o "$opts,cache=none" worktree "/newroot$worktree" || fail "cannot mount $worktree"
kver=$($bb uname -r)
$bb mkdir -p "/newroot/lib/modules/$kver"
$bb mount --bind "/newroot$modules" "/newroot/lib/modules/$kver" || fail "no module tree"
$bb hostname "$name"
$bb ip link set lo up
for i in /sys/class/net/*; do # NICs by MAC: vhost.nics=NAME@MAC,...
	mac=$($bb cat "$i/address")
	for nic in $(echo "$nics" | $bb tr , ' '); do
		[ "${nic#*@}" = "$mac" ] && $bb ip link set "${i##*/}" name "${nic%%@*}"
	done
done
$bb ip addr add 10.0.2.15/24 dev mgmt && $bb ip link set mgmt up || fail "no management NIC"
for d in proc sys dev; do $bb mount --move "/$d" "/newroot/$d"; done

exec $bb switch_root /newroot /usr/bin/python3 -I -S "$worktree/scripts/vhost/agent.py"
