#!/usr/bin/env bash
# hookctl parse throughput vs npm mailparser and vs a bare GMime parse, on the shared corpus,
# measured side by side; then peak RSS of hookctl parse on a message with a 50 MB attachment.
# hookctl runs with its default --jobs (one thread per CPU) and with --jobs 1; GMime and
# mailparser are single-threaded. Goals (issue 16, one core): hookctl --jobs 1 >= 5x
# mailparser's throughput and >= 0.6x a bare GMime parse's.
# Usage: bench/parse.sh [BUILD_DIR]   (default build/release; REPEAT=5 copies of the corpus
#        per run, ROUNDS=3 rounds of all the tools, BASELINE=path of another hookctl binary
#        to measure alongside with --jobs 1)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build/release}
hookctl=$(realpath -m "$build/cmd/hookctl")
baseline=${BASELINE:-} # another hookctl to run alongside (--jobs 1), e.g. the one before a change
shared=${HOOKCTL_SHARED:-$root/../shared}
repeat=${REPEAT:-5}
rounds=${ROUNDS:-3}
scratch=$root/bench/.scratch
mkdir -p "$scratch"

[ -x "$hookctl" ] || { echo "no $hookctl: build first" >&2; exit 2; }
if [ ! -x /usr/bin/time ]; then  # GNU time measures the peak RSS (bench-only tool)
  sudo=(); if ((EUID != 0)); then sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq time >&2
fi
if [ ! -d "$scratch/node_modules/mailparser" ]; then
  (cd "$scratch" && npm install --no-audit --no-fund mailparser >/dev/null)
fi
g++ -std=c++20 -O2 "$root/bench/parse_gmime.cpp" -o "$scratch/parse_gmime" \
  $(pkg-config --cflags --libs gmime-3.0)

# The message set: every file of the corpus message folders (not files/ data, not JSON).
set_dir=$scratch/corpus-set
rm -rf "$set_dir"; mkdir -p "$set_dir"
find "$shared/corpus" -type f ! -name '*.json' ! -name 'SOURCE.txt' ! -name '*.md' \
  ! -name '*__files__*' ! -name '*summary.txt' -exec cp -t "$set_dir" {} +
files=("$set_dir"/*)
# hookctl parses the set REPEAT times in one process, as the other two loop REPEAT times in
# theirs: a folder holding REPEAT hard-linked copies of the set. (Its figure still includes
# process start and reading the files, which the other two leave out of their timers.)
repeat_dir=$scratch/corpus-repeat
rm -rf "$repeat_dir"
for r in $(seq "$repeat"); do mkdir -p "$repeat_dir/$r"; ln "${files[@]}" "$repeat_dir/$r/"; done

BASELINE=$baseline python3 - "$hookctl" "$scratch" "$repeat" "$rounds" "$repeat_dir" "${files[@]}" <<'PY'
import os, statistics, subprocess, sys, time, resource, base64
hookctl, scratch, repeat, rounds, repeat_dir, files = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                                     int(sys.argv[4]), sys.argv[5], sys.argv[6:])
total = sum(os.path.getsize(f) for f in files)

def hookctl_run(*extra, binary=hookctl):
    start = time.perf_counter()
    subprocess.run([binary, "parse", repeat_dir, "--received-at", "2026-01-01T00:00:00Z", *extra],
                   stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start

def tool(cmd, **env):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True,
                         env=dict(os.environ, NODE_PATH=os.path.join(scratch, "node_modules"),
                                  **env))
    m, b, s = out.stdout.split()
    return float(s)

gmime = [os.path.join(scratch, "parse_gmime"), str(repeat)] + files
runs = {
    "hookctl parse": lambda: hookctl_run(),
    "hookctl --jobs 1": lambda: hookctl_run("--jobs", "1"),
    "bare GMime parse": lambda: tool(gmime),
    # The same, with GLib's slice allocator as malloc, as hookctl's static build has it.
    "  G_SLICE=malloc": lambda: tool(gmime, G_SLICE="always-malloc"),
    "mailparser": lambda: tool(["node", os.path.join(os.path.dirname(scratch),
                                "parse_mailparser.js"), str(repeat)] + files),
}
baseline = os.environ.get("BASELINE")
if baseline:
    runs["baseline --jobs 1"] = lambda: hookctl_run("--jobs", "1", binary=baseline)
# Every tool runs once per round, in turn, so that load from elsewhere on the machine hits
# all alike; each figure is the tool's best round (the least disturbed), medians shown too.
times = {name: [] for name in runs}
for _ in range(rounds):
    for name, run in runs.items():
        times[name].append(run())
best = {name: min(t) for name, t in times.items()}
n = len(files) * repeat
mb = total * repeat / 1e6
print(f"corpus: {len(files)} files, {total/1e6:.2f} MB, x{repeat}; best of {rounds} rounds "
      f"(median in brackets); hookctl {os.cpu_count()} threads by default")
for name in runs:
    t = best[name]
    print(f"  {name:18s} {n/t:9.1f} files/s {mb/t:8.2f} MB/s ({t:.3f} s) "
          f"[{statistics.median(times[name]):.3f} s]")
t_h, t_1, t_g, t_gm, t_m = (best[k] for k in list(runs)[:5])
print(f"ratio hookctl/mailparser throughput, one thread (--jobs 1): {t_m/t_1:.2f}x (goal >= 5); "
      f"{os.cpu_count()} threads: {t_m/t_h:.2f}x")
print(f"ratio hookctl/bare GMime throughput, one thread (--jobs 1): {t_g/t_1:.2f} (goal >= 0.6); "
      f"{os.cpu_count()} threads: {t_g/t_h:.2f}; against GMime with malloc slices: "
      f"{t_gm/t_1:.2f}")
if baseline:
    t_b = best["baseline --jobs 1"]
    print(f"baseline {baseline} (--jobs 1): {t_m/t_b:.2f}x mailparser, {t_g/t_b:.2f} bare GMime; "
          f"hookctl/baseline throughput {t_b/t_1:.2f}x")

big = os.path.join(scratch, "big.eml")
payload = os.urandom(50 * 1024 * 1024)
with open(big, "wb") as f:
    f.write(b"From: a@example.com\nSubject: big\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/plain\n\nhi\n"
            b"--B\nContent-Type: application/octet-stream; name=big.bin\n"
            b"Content-Transfer-Encoding: base64\n\n")
    f.write(base64.encodebytes(payload))
    f.write(b"--B--\n")
size = os.path.getsize(big)
store = os.path.join(scratch, "store")
# Measured through /usr/bin/time, not wait4() here: a process's peak RSS includes that of the
# process it was forked from (the kernel carries the high-water mark over exec), and this
# Python process holds the 50 MB payload.
start = time.perf_counter()
proc = subprocess.run(["/usr/bin/time", "-f", "%M", hookctl, "parse", big, "--attachments-dir",
                       store], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
took = time.perf_counter() - start
assert proc.returncode == 0, proc.stderr
rss = int(proc.stderr.decode().strip().splitlines()[-1]) * 1024
print(f"50 MB attachment: message {size/1e6:.1f} MB, peak RSS {rss/1e6:.1f} MB "
      f"= {rss/size:.2f}x the message (goal <= 3), {took:.2f} s with --attachments-dir")
os.unlink(big)
PY
