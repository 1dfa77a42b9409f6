#!/usr/bin/env bash
# Archive throughput: hookctl::archive against the raw SQLite C API doing the same inserts
# (2 KiB rows, batched transactions, WAL, synchronous=FULL) and the same streamed read,
# side by side in one run. Usage: bench/archive.sh BUILD_DIR [EVENTS]
set -euo pipefail
build=${1:?usage: bench/archive.sh BUILD_DIR [EVENTS]}
events=${2:-50000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cmake --build "$build" --target bench_archive >/dev/null
for batch in 100 1000; do
  "$build/bench/bench_archive" "$dir" "$events" "$batch"
done
