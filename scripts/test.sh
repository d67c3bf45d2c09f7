#!/usr/bin/env bash
# Sets up (packages + build) and runs every test: the C unit tests (also under
# valgrind), a short run of every fuzz target, then the integration tests that
# start real lockstep processes, guests and clients.
#
# Where /dev/kvm works, the integration suite runs here. Where it does not (our
# development and CI machines, DESIGN.md §1), it runs inside a virtual test host:
# QEMU-TCG with emulated AMD-V, real KVM inside (scripts/vhost). The two-host
# COLO tests (marker `vhosts`) start their own virtual hosts, so they always run
# here. Every test has a time limit (pytest.ini), so none can hang the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

status=0
step() { # runs a step, remembers a failure, goes on with the rest
	echo "== $*"
	"$@" || { echo "== FAILED: $*"; status=1; }
}

step make fuzz-run FUZZ_SECONDS="${FUZZ_SECONDS:-5}"

PYTEST=(/usr/bin/python3 -m pytest -q -rs -rx)
if /usr/bin/python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null; then
	step make unit
	step make unit-memcheck
	step "${PYTEST[@]}" tests/integration
else
	echo "== /dev/kvm is not usable here: tests that run KVM run inside a virtual test host"
	VHOST=(/usr/bin/python3 scripts/vhost/vhost.py run --cpus 1 --mem 6G --env "CI=${CI:-}" --)
	step make unit-plain
	step make unit-memcheck
	step "${VHOST[@]}" make --no-print-directory unit-kvm
	step "${VHOST[@]}" "${PYTEST[@]}" -m "not vhosts" tests/integration
	step "${PYTEST[@]}" -m vhosts tests/integration
fi
exit $status
