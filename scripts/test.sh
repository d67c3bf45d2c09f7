#!/usr/bin/env bash
# Sets up (packages + build) and runs every test: C unit tests, then the
# integration tests that start real lockstep processes, guests and clients.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make unit
/usr/bin/python3 -m pytest -q -rs tests/integration
