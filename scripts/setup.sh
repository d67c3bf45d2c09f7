#!/usr/bin/env bash
# Installs what lockstep needs to build and test (Debian packages) and builds it.
# Safe to run again: apt-get skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
	build-essential clang libclang-rt-dev   # compiler; clang + libFuzzer for fuzz targets
	libjansson-dev                           # JSON for the QMP monitor
	libxxhash-dev                            # checksums of VM state sections
	libcmocka-dev                            # C unit tests
	libnbd-dev libnbd-bin                    # NBD client library and tools (nbdinfo, nbdcopy):
	                                         #   the NBD server's tests talk to it as real clients
	python3-pytest                           # integration tests
	iproute2 iputils-ping netcat-openbsd     # network namespaces, TAP devices, real clients
	redis-tools curl wrk apache2-utils       # clients of the guest's services (tests, benchmarks)
	redis-server nginx-light                 # host-side reference servers for bench/services.py
	xz-utils                                 # unpacks lwIP's source (scripts/fetch-lwip.sh)
	valgrind                                 # leak checks of unit tests
	python3-pytest-timeout                   # a time limit per integration test
	qemu-system-x86 busybox-static kmod      # virtual test hosts (scripts/vhost): QEMU-TCG with
	socat                                    #   AMD-V, their initramfs, module tree, monitor proxy
	tcpdump                                  # the COLO network tests capture their LAN (diagnosis)
	qemu-utils                               # qemu-img compare: the replicated disk equals the primary's
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The guest's TCP/IP stack: lwIP from Debian's source package, unpacked in build/.
scripts/fetch-lwip.sh

make -j"$(nproc)" all

# The virtual test hosts' kernel, modules and initramfs (cached in build/vhost).
/usr/bin/python3 scripts/vhost/vhost.py prepare >/dev/null
