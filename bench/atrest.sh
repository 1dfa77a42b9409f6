#!/usr/bin/env bash
# Issue 18 benchmark (email at rest), two parts, each measured side by side in one run:
#  1. listen with an archive key vs without: two receivers (same flags, durable SQLite archive,
#     synchronous=FULL) loaded in turn by wrk with signed bodies of each of SIZES bytes, every
#     request a new event (bench/listen-wrk.lua), ROUNDS rounds alternating which goes first.
#     Prints requests/s and the server's CPU per request for each, and the overhead of the key
#     (goal <= 10%). Two kinds of body: "padded" is the listen benchmark's (a few fields and a
#     run of one letter, which zstd shrinks about 20 times); "mail" is a real parsed email event
#     from the shared corpus (headers, text and HTML; zstd shrinks it 2-3 times), cut to the size.
#     Sealed bodies are compressed before encryption (archive/body_cipher.hpp), so the key's cost
#     includes zstd's and its gain the pages it saves. 2 KiB is the listen benchmark's size; it
#     sits at SQLite's page-packing edge (two 2 KiB rows share a 4 KiB page; 42 bytes more each
#     and they would not).
#  2. events reparse --compare throughput in messages/s vs `hookctl parse --jobs 1` of the same
#     raw MIME (the shared corpus, REPEAT copies), from a clear and from an encrypted archive.
# Usage: bench/atrest.sh [BUILD_DIR] [DURATION]   (default build/release, 5s per wrk run;
#        ROUNDS=3, CONNS=64, SIZES="2048 8192", BODIES="padded mail", REPEAT=5)
# Bench-only tool (not a test dependency): wrk from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build/release}
duration=${2:-5s}
rounds=${ROUNDS:-3}
conns=${CONNS:-64}
sizes=${SIZES:-2048 8192}
bodies=${BODIES:-padded mail}
repeat=${REPEAT:-5}
shared=${HOOKCTL_SHARED:-$root/../shared}

if ! command -v wrk >/dev/null; then
  sudo=(); if ((EUID != 0)); then sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    wrk >&2
fi
hookctl=$(realpath -m "$build/cmd/hookctl")
[ -x "$hookctl" ] || { echo "no $hookctl: build first" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export BENCH_SECRET=bench-secret-value
(umask 077; "$hookctl" secret new --kind archive -q >"$tmp/archive.key")

# --- 1. listen CPU per request, with and without --archive-key ------------------------------
start_listen() { # NAME [extra flags...]; prints the URL, appends the pid to pids
  local name=$1; shift
  "$hookctl" listen -q --bind 127.0.0.1:0 --archive "$tmp/$name.db" --secret-env BENCH_SECRET \
    --ready-file "$tmp/$name.ready" "$@" 2>"$tmp/$name.log" &
  pids+=($!)
  for _ in $(seq 200); do [ -s "$tmp/$name.ready" ] && break; sleep 0.05; done
  [ -s "$tmp/$name.ready" ] || { echo "bench: listen $name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1; }
}
start_listen clear
clear_pid=${pids[-1]}; clear_url=$(cat "$tmp/clear.ready")
start_listen keyed --archive-key "$tmp/archive.key"
keyed_pid=${pids[-1]}; keyed_url=$(cat "$tmp/keyed.ready")

# One wrk run; prints "rps cpu_us_per_request non2xx" (server utime+stime from /proc).
run_wrk() {
  python3 - "$1" "$conns" "$duration" "$2" <<'PY'
import os, re, subprocess, sys
url, conns, duration, pid = sys.argv[1:]
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
before = cpu()
out = subprocess.run(["wrk", "-t2", "-c" + conns, "-d" + duration, "-s", "bench/listen-wrk.lua",
                      url], capture_output=True, text=True, check=True).stdout
used = cpu() - before
total = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
print(rps, round(used * 1e6 / total, 2), int(non2xx.group(1)) if non2xx else 0)
PY
}

# A real parsed email event of about SIZE bytes, without its event_id (the wrk script puts a
# fresh one first): the corpus message whose event is the smallest at least that long, its
# longest text cut until the JSON is SIZE bytes.
mail_body() { # SIZE -> path
  local out=$tmp/mail-$1.json
  "$hookctl" parse "$shared/corpus" --jobs 1 --received-at 2026-01-01T00:00:00Z 2>/dev/null |
    python3 -c '
import json, sys
size, out = int(sys.argv[1]), sys.argv[2]
docs = []
for line in sys.stdin:
    d = json.loads(line)
    d.pop("event_id", None)
    d.pop("raw_mime", None)
    docs.append(d)
text = lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":"))
big = [d for d in docs if len(text(d).encode()) >= size]
d = min(big, key=lambda d: len(text(d).encode()))
def longest(o, path=()):
    best = (0, None)
    items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else []
    for k, v in items:
        if isinstance(v, str):
            cand = (len(v), path + (k,))
        else:
            cand = longest(v, path + (k,))
        best = max(best, cand, key=lambda c: c[0])
    return best
while len(text(d).encode()) > size:
    n, path = longest(d)
    o = d
    for k in path[:-1]:
        o = o[k]
    excess = len(text(d).encode()) - size
    o[path[-1]] = o[path[-1]][: max(0, n - max(excess, 1))]
open(out, "w").write(text(d))
' "$1" "$out"
  echo "$out"
}

for size in $sizes; do
for kind in $bodies; do
export BENCH_BODY_BYTES=$size BENCH_BODY_FILE=
[ "$kind" = mail ] && BENCH_BODY_FILE=$(mail_body "$size")
echo "listen, $conns connections, $duration per run, $rounds rounds, $size-byte $kind bodies, synchronous=full"
printf '%-6s %-6s %10s %12s %7s\n' round key req/s cpu_us/req non2xx
clear_cpu=() keyed_cpu=() clear_rps=() keyed_rps=()
for r in $(seq "$rounds"); do
  order=(clear keyed); ((r % 2 == 0)) && order=(keyed clear)
  for which in "${order[@]}"; do
    if [ "$which" = clear ]; then url=$clear_url pid=$clear_pid; else url=$keyed_url pid=$keyed_pid; fi
    read -r rps cpu non2xx < <(run_wrk "$url" "$pid")
    printf '%-6s %-6s %10.0f %12s %7s\n' "$r" "$which" "$rps" "$cpu" "$non2xx"
    if [ "$which" = clear ]; then clear_cpu+=("$cpu"); clear_rps+=("$rps")
    else keyed_cpu+=("$cpu"); keyed_rps+=("$rps"); fi
  done
done
python3 - "${clear_cpu[*]}" "${keyed_cpu[*]}" "${clear_rps[*]}" "${keyed_rps[*]}" "$size-byte $kind" <<'PY'
import statistics, sys
cc, kc, cr, kr = ([float(x) for x in a.split()] for a in sys.argv[1:5])
mc, mk = statistics.median(cc), statistics.median(kc)
print(f"{sys.argv[5]} bodies: median CPU per request without key {mc:.2f} us, with key "
      f"{mk:.2f} us: overhead {100 * (mk - mc) / mc:+.1f}% (goal <= 10%); "
      f"median req/s {statistics.median(cr):,.0f} vs {statistics.median(kr):,.0f}\n")
PY
done
done
for name in clear keyed; do
  sqlite3 "$tmp/$name.db" "SELECT '$name archive: ' || count(*) || ' rows, ' ||
    (SELECT page_count FROM pragma_page_count) || ' pages of 4 KiB' FROM event_bodies" 2>/dev/null || true
done
kill -TERM "$clear_pid" "$keyed_pid"; wait "$clear_pid" "$keyed_pid" 2>/dev/null || true
python3 - "$tmp/keyed.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
n, sealed, packed = con.execute(
    "SELECT count(*), sum(substr(body, 1, 4) = x'89484b45'), "
    "sum(substr(body, 1, 5) = x'89484b4502') FROM event_bodies").fetchone()
print(f"keyed archive: {n} bodies, {sealed} sealed, {packed} of them compressed first")
PY

# --- 2. reparse --compare vs parse, same raw MIME -------------------------------------------
set_dir=$tmp/corpus-set
mkdir -p "$set_dir"
find "$shared/corpus" -type f ! -name '*.json' ! -name 'SOURCE.txt' ! -name '*.md' \
  ! -name '*__files__*' ! -name '*summary.txt' -exec cp -t "$set_dir" {} +
repeat_dir=$tmp/corpus-repeat
for r in $(seq "$repeat"); do mkdir -p "$repeat_dir/$r"; ln "$set_dir"/* "$repeat_dir/$r/"; done

python3 - "$hookctl" "$tmp" "$repeat" "$repeat_dir" "$set_dir" <<'PY'
import base64, hashlib, json, os, subprocess, sys, time
hookctl, tmp, repeat, repeat_dir, set_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    sys.argv[4], sys.argv[5]
received = "2026-01-01T00:00:00Z"
# The events as today's parser makes them, keyed by the SHA-256 of their raw MIME.
out = subprocess.run([hookctl, "parse", set_dir, "--jobs", "1", "--received-at", received],
                     capture_output=True, check=True).stdout
by_hash = {}
for line in out.splitlines():
    doc = json.loads(line)
    by_hash[doc["raw_mime"]["sha256"]] = doc
lines = []
for r in range(repeat):
    for name in sorted(os.listdir(set_dir)):
        raw = open(os.path.join(set_dir, name), "rb").read()
        doc = by_hash.get(hashlib.sha256(raw).hexdigest())
        if doc is None:
            continue
        lines.append(json.dumps({"event_id": "%s_%d" % (doc["event_id"], r),
                                 "received_at": received, "payload": doc,
                                 "raw_mime_base64": base64.b64encode(raw).decode()}))
src = os.path.join(tmp, "mime.ndjson")
open(src, "w").write("\n".join(lines) + "\n")
key = os.path.join(tmp, "archive.key")
for name, extra in (("clear", []), ("keyed", ["--archive-key", key])):
    subprocess.run([hookctl, "events", "import", "-q", "--archive",
                    os.path.join(tmp, "mime-%s.db" % name), src] + extra, check=True)
n = len(lines)
messages = sum(1 for _ in os.scandir(set_dir)) * repeat

def timed(cmd):
    best = None
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            sys.exit(f"bench: {' '.join(cmd)} exited {proc.returncode}")
        best = took if best is None else min(best, took)
    return best

parse_s = timed([hookctl, "parse", repeat_dir, "--jobs", "1", "--received-at", received])
rows = [("hookctl parse --jobs 1", messages, parse_s)]
for name, extra in (("clear", []), ("keyed", ["--archive-key", key])):
    s = timed([hookctl, "events", "reparse", "--archive", os.path.join(tmp, "mime-%s.db" % name),
               "--compare", "--json"] + extra)
    rows.append((f"events reparse --compare ({name} archive)", n, s))
print(f"\nreparse vs parse, {messages} messages ({repeat} x the corpus), best of 3, one thread")
for label, count, s in rows:
    print(f"{label:44s} {count:6d} msgs {s:7.3f} s {count / s:9.0f} msgs/s "
          f"{(count / s) / (rows[0][1] / rows[0][2]):5.2f}x parse")
PY
