#!/usr/bin/env bash
# Issue 2 and 16 benchmarks, side by side in one run:
#  1. library HMAC-SHA256 verification throughput on a 1 MiB body vs OpenSSL's raw HMAC;
#  2. `hookctl verify` end to end on a 2 KiB body (the whole process: exec, dynamic loader,
#     flags, HMAC), next to `openssl dgst -sha256 -hmac` doing only the HMAC in a process of
#     its own. Goal (issue 16): median <= 1.2x openssl's. Measured twice: with hyperfine
#     (three rounds, the order of the two commands swapped each round, medians of all runs),
#     and by a loop that interleaves single runs and also reports each one's CPU time.
#  3. the shared libraries each of the two loads at start.
# Usage: bench/sign-verify.sh [BUILD_DIR]   (default build/release; builds it if needed)
#        RUNS=300 by default (runs of each command, per method)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
runs=${RUNS:-300}
if [ ! -x "$build/bench/bench_hmac" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
if [ -f "$build/CMakeCache.txt" ]; then # (a folder of copied binaries is used as it is)
  cmake --build "$build" --target hookctl bench_hmac -j2 >/dev/null
fi
hookctl=$(realpath "$build/cmd/hookctl")
if ! command -v hyperfine >/dev/null; then # Debian's package (bench-only tool)
  sudo=(); if ((EUID != 0)); then sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq hyperfine >&2
fi

"$build/bench/bench_hmac"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 2048 /dev/urandom | base64 -w0 | head -c 2048 >"$tmp/body.json"
export BENCH_SECRET=bench-secret-value
"$hookctl" sign --secret-env BENCH_SECRET "$tmp/body.json" >"$tmp/headers.txt"
verify="$hookctl verify $tmp/body.json --headers-file $tmp/headers.txt --secret-env BENCH_SECRET"
dgst="$(command -v openssl) dgst -sha256 -hmac bench-secret-value $tmp/body.json"
$verify >/dev/null # the signature is checked against the clock: fail now, not in the loop

per_round=$(((runs + 2) / 3))
for round in 1 2 3; do
  if ((round == 2)); then first=$dgst second=$verify; else first=$verify second=$dgst; fi
  hyperfine -N --style none --warmup 10 --runs "$per_round" --export-json "$tmp/h$round.json" \
    "$first" "$second" >/dev/null 2>"$tmp/hyperfine.err" || { cat "$tmp/hyperfine.err" >&2; exit 1; }
done
python3 - "$tmp" "$verify" "$dgst" "$runs" <<'PY'
import json, os, statistics, sys, time
tmp, verify, dgst, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
times = {verify: [], dgst: []}
for round in (1, 2, 3):
    for result in json.load(open(os.path.join(tmp, f"h{round}.json")))["results"]:
        times[result["command"]] += result["times"]
hv, ho = (statistics.median(times[c]) * 1000 for c in (verify, dgst))
print(f"verify 2KiB start-up (hyperfine, {len(times[verify])} runs each, 3 rounds in swapped "
      f"order): hookctl verify median {hv:.2f} ms, openssl dgst -hmac median {ho:.2f} ms, "
      f"ratio {hv / ho:.2f} (goal <= 1.2)")

devnull = os.open(os.devnull, os.O_WRONLY)
def once(cmd):
    argv = cmd.split()
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                       (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return (time.perf_counter() - start) * 1000, (usage.ru_utime + usage.ru_stime) * 1000
a, b = [], []
for _ in range(runs):  # interleaved so noise hits both alike
    a.append(once(verify)); b.append(once(dgst))
(wa, ca), (wb, cb) = ([statistics.median(x) for x in zip(*s)] for s in (a, b))
print(f"verify 2KiB start-up (interleaved, {runs} runs each): hookctl verify median "
      f"{wa:.2f} ms wall / {ca:.2f} ms CPU, openssl dgst -hmac {wb:.2f} ms / {cb:.2f} ms, "
      f"ratio {wa / wb:.2f} wall, {ca / cb:.2f} CPU")
PY
count() { ldd "$1" | grep -vc -e linux-vdso -e ld-linux; }
echo "shared libraries loaded at start: hookctl $(count "$hookctl"), openssl" \
  "$(count "$(command -v openssl)")"
