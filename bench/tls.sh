#!/usr/bin/env bash
# Issue 20 benchmark: what mutual TLS costs `hookctl listen`, against plain TLS, with the same
# client (bench/bench_tls_client.cpp, OpenSSL) in the same run. Two receivers run side by side:
#   tls    --tls-cert/--tls-key
#   mtls   the same, plus --tls-client-ca (the client presents a certificate from that CA)
# both -q, --synchronous normal, --threads 2, on one ECDSA P-256 certificate from a private CA.
# Every measurement runs on both back to back (ABBA order over the rounds), and every figure is
# the median over the rounds:
#   handshake   HANDSHAKES fresh connections one after another (connect, full handshake,
#               GET /healthz, close): client time per connection, receiver CPU per connection
#   post        REQUESTS signed 2 KiB webhooks over 4 kept-alive connections (each stored):
#               client time per request, throughput, receiver CPU per request
#   get         the same with GET /healthz (TLS and HTTP alone, nothing verified or stored)
# Receiver CPU is utime+stime of the listen process from /proc (10 ms ticks; the counts are
# large enough for that to be under 1%). The goal: keep-alive requests with mTLS within 10% of
# plain TLS. Prints the ratios mtls/tls.
# Usage: bench/tls.sh [BUILD_DIR] [ROUNDS] [REQUESTS] [HANDSHAKES]  (default build/release 5
#        20000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
rounds=${2:-5}
requests=${3:-20000}
handshakes=${4:-1000}

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target hookctl bench_tls_client -j2 >/dev/null
hookctl=$build/cmd/hookctl
client=$build/bench/bench_tls_client

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export BENCH_SECRET=bench-secret-value

# A private CA, a server certificate for 127.0.0.1 and a client certificate, as tests/cli does.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
(
  cd "$tmp"
  openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA"
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n' >server.ext
  printf 'basicConstraints=CA:FALSE\n' >client.ext
  for who in server client; do
    openssl req -new "${ec[@]}" -keyout $who.key -out $who.csr -subj "/O=bench/CN=$who"
    openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem \
      -days 2 -extfile $who.ext
  done
) >/dev/null 2>&1

start_listen() { # NAME ARGS...: starts a receiver, sets $port and $pid
  local name=$1
  shift
  "$hookctl" listen -q --bind 127.0.0.1:0 --archive "$tmp/$name.db" --synchronous normal \
    --threads 2 --secret-env BENCH_SECRET --ready-file "$tmp/$name.ready" \
    --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" "$@" 2>"$tmp/$name.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 400); do [ -s "$tmp/$name.ready" ] && break; sleep 0.05; done
  [ -s "$tmp/$name.ready" ] || { echo "bench: listen $name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  port=$(sed -E 's|https://127.0.0.1:([0-9]+)/.*|\1|' "$tmp/$name.ready")
}
start_listen tls
tls_port=$port tls_pid=$pid
start_listen mtls --tls-client-ca "$tmp/ca.pem"
mtls_port=$port mtls_pid=$pid

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)

# run NAME MODE COUNT CONNS: one client run against one receiver; appends a line to $tmp/NAME.MODE
run() {
  local name=$1 mode=$2 count=$3 conns=$4 port pid cert=()
  if [ "$name" = tls ]; then port=$tls_port pid=$tls_pid; else
    port=$mtls_port pid=$mtls_pid cert=("$tmp/client.pem" "$tmp/client.key"); fi
  local before after out
  before=$(cpu_ticks "$pid")
  out=$("$client" 127.0.0.1 "$port" /webhooks/email "$tmp/ca.pem" "$mode" "$count" "$conns" \
    "${cert[@]}")
  after=$(cpu_ticks "$pid")
  python3 - "$out" "$before" "$after" "$ticks_per_s" >>"$tmp/$name.$mode" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
doc["server_cpu_us"] = (int(sys.argv[3]) - int(sys.argv[2])) * 1e6 / int(sys.argv[4]) / doc["count"]
print(json.dumps(doc))
PY
}

# Warm both up (page cache, first connections, the archive's first pages).
for name in tls mtls; do run "$name" get 2000 4; run "$name" handshake 50 1; done
rm -f "$tmp"/*.get "$tmp"/*.handshake

echo "bench/tls.sh: $rounds rounds; handshake x$handshakes, post x$requests and get x$requests" \
  "over 4 keep-alive connections; listen --threads 2 --synchronous normal; $(nproc) cores" >&2
# Each measurement runs against both receivers back to back, tls first in odd rounds and mtls
# first in even ones (ABBA), so drift in the machine's load falls on both alike.
for ((r = 1; r <= rounds; r++)); do
  order=(tls mtls)
  if ((r % 2 == 0)); then order=(mtls tls); fi
  for name in "${order[@]}"; do run "$name" handshake "$handshakes" 1; done
  for name in "${order[@]}"; do run "$name" post "$requests" 4; done
  for name in "${order[@]}"; do run "$name" get "$requests" 4; done
  echo "  round $r/$rounds done ($(cut -d' ' -f1-3 /proc/loadavg) load)" >&2
done

python3 - "$tmp" <<'PY'
import json, statistics, sys
tmp = sys.argv[1]
def load(name, mode):
    with open(f"{tmp}/{name}.{mode}") as f:
        return [json.loads(line) for line in f]
def med(rows, key):
    return statistics.median(r[key] for r in rows)
print(f"{'':21} {'client us/op':>12} {'p90 us':>8} {'ops/s':>7} {'listen CPU us/op':>17}")
labels = {"handshake": "handshake", "post": "keep-alive POST", "get": "keep-alive GET"}
for mode, label in labels.items():
    for name in ("tls", "mtls"):
        rows = load(name, mode)
        print(f"{label:<16} {name:<4} {med(rows, 'us_median'):>12.1f} {med(rows, 'us_p90'):>8.1f} "
              f"{med(rows, 'rate_per_s'):>7.0f} {med(rows, 'server_cpu_us'):>17.1f}")
print()
# Paired: each round measured tls and mtls back to back, so their ratio cancels the drift of
# the machine's load; the median over the rounds, and the range.
print("mtls/tls, median of the rounds' paired ratios [lowest, highest]:")
worst = 0.0
for mode, label in labels.items():
    t, m = load("tls", mode), load("mtls", mode)
    parts = []
    for key, name in (("us_median", "time per op"), ("server_cpu_us", "listen CPU per op")):
        ratios = sorted(b[key] / a[key] for a, b in zip(t, m) if a[key] > 0)
        mid = statistics.median(ratios)
        parts.append(f"{name} x{mid:.3f} [{ratios[0]:.3f}, {ratios[-1]:.3f}]")
        if mode != "handshake":
            worst = max(worst, mid)
    print(f"  {label:<16} " + ", ".join(parts))
print(f"goal (keep-alive requests with mTLS within 10% of plain TLS): "
      f"{'met' if worst <= 1.10 else 'NOT met'} (largest keep-alive ratio x{worst:.3f})")
PY
