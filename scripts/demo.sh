#!/usr/bin/env bash
# The lockstep demo: installs what is needed, builds, then runs a protected VM
# pair across two virtual test hosts, pulls the power on the primary's host and
# shows the client still being answered (scripts/demo.py says each step).
# Run it as root (it creates a network namespace, bridges and TAP devices);
# it needs no /dev/kvm: the hosts are QEMU-TCG machines with KVM inside.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run it as root (network namespaces, TAP devices)" >&2
	exit 2
fi
bash scripts/setup.sh
exec /usr/bin/python3 scripts/demo.py
