#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS from a copy of its seed corpus
# (fuzz/corpus/NAME, without the fuzz_ prefix; none is fine), so that a crash
# found by a short run fails the build and the committed corpus stays as it is.
# Usage: scripts/fuzz-run.sh SECONDS TARGET...
set -euo pipefail
seconds=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in "$@"; do
	name=$(basename "$target")
	corpus="$work/$name"
	mkdir -p "$corpus"
	seeds="fuzz/corpus/${name#fuzz_}"
	[ -d "$seeds" ] && cp -r "$seeds/." "$corpus/"
	echo "== $name: ${seconds}s from $(ls "$corpus" | wc -l) seeds"
	"$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="fuzz/crash-$name-" \
		"$corpus" >"$work/$name.log" 2>&1 || {
		tail -40 "$work/$name.log"
		echo "fuzz-run: $name failed (its input is in fuzz/crash-$name-*)"
		exit 1
	}
	grep -E '^stat::number_of_executed_units' "$work/$name.log" || true
done
