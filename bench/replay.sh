#!/usr/bin/env bash
# Issue 5 benchmarks, side by side in one run against `hookctl listen` on loopback:
#  1. rate accuracy and send-time jitter of `hookctl replay --rate R` (1,000/s and 5,000/s);
#  2. unpaced throughput (`--rate max --concurrency 64`, 2 KiB archived events) next to wrk
#     (2 KiB bodies, fresh event id and HMAC per request) and a shell loop of curl + openssl dgst;
#  3. peak memory (max RSS) replaying N and 10 x N archived events: flat means no growth;
#  4. (run after 1) the wake-up latency floor: cyclictest's own lateness, idle and beside a
#     5,000/s run, as an ordinary and as a real-time thread.
# Usage: bench/replay.sh [HOOKCTL_BINARY]
#   env: DURATION (s, default 20), MEM_EVENTS (default 100000: memory is measured replaying
#   MEM_EVENTS/10 and MEM_EVENTS events; the issue asks 1,000,000: MEM_EVENTS=1000000),
#   CURL_LOOP (default 200 requests), SECTIONS (default 1423: which sections to run),
#   RATE_CONCURRENCY (default 256: --concurrency of the rate runs; at 5,000/s a receiver p99 of
#   11 ms already keeps 55 requests in flight, plus the events waiting for their commit, so 64
#   would cap the rate now and then), LISTEN_CPUS and REPLAY_CPUS (e.g. 0 and 1: pin the
#   receiver and the rate runs' replay to CPUs with taskset, to tell the sender's own jitter
#   from two processes sharing the same cores).
# wrk and cyclictest are bench-only tools (Debian packages wrk and rt-tests), installed here
# when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
hookctl=$(realpath "${1:-build/release/cmd/hookctl}")
for tool in wrk:wrk /usr/bin/time:time cyclictest:rt-tests; do  # bench-only tools, from Debian
  command -v "${tool%%:*}" >/dev/null ||
    { apt-get install -y -qq "${tool#*:}" >/dev/null 2>&1 || sudo apt-get install -y -qq "${tool#*:}" >/dev/null; }
done
tmp=$(mktemp -d)
listener=
cleanup() { [ -n "$listener" ] && kill -INT "$listener" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export BENCH_SECRET=bench-secret-value HOOKCTL_SOURCE=$PWD
DURATION=${DURATION:-20} MEM_EVENTS=${MEM_EVENTS:-100000} CURL_LOOP=${CURL_LOOP:-200}
SECTIONS=${SECTIONS:-1423}

start_listen() { # start_listen NAME: sets $url
  rm -f "$tmp/ready"
  ${LISTEN_CPUS:+taskset -c "$LISTEN_CPUS"} \
    "$hookctl" listen --bind 127.0.0.1:0 --ready-file "$tmp/ready" --archive "$tmp/$1.db" \
    --secret-env BENCH_SECRET -q --max-inflight 4096 >/dev/null 2>&1 &
  listener=$!
  for _ in $(seq 200); do [ -s "$tmp/ready" ] && break; sleep 0.05; done
  url=$(cat "$tmp/ready"); case $url in http*) ;; *) url=http://$url ;; esac
}
stop_listen() { kill -INT "$listener"; wait "$listener" || true; listener=; }

make_archive() { # make_archive FILE N
  python3 - "$1" "$2" <<'PY'
import sys, os
sys.path.insert(0, os.path.join(os.environ["HOOKCTL_SOURCE"], "tests", "cli"))
from test_replay import make_archive
path, n = sys.argv[1], int(sys.argv[2])
pad = "x" * (2048 - 120)
def events():
    for i in range(n):
        yield {"event_id": "evt_b%07d" % i, "org_id": "org_bench",
               "body": '{"event_id":"evt_b%07d","org_id":"org_bench","pad":"%s"}' % (i, pad)}
make_archive(path, events())
PY
}

echo "== 1. rate accuracy (${DURATION}s each)"
for rate in 1000 5000; do
  [[ $SECTIONS == *1* ]] || break
  n=$((rate * DURATION))
  make_archive "$tmp/rate$rate.db" "$n"
  start_listen "recv$rate"
  ${REPLAY_CPUS:+taskset -c "$REPLAY_CPUS"} \
    "$hookctl" replay --from "$tmp/rate$rate.db" --to "$url" --rate "$rate/s" --concurrency "${RATE_CONCURRENCY:-256}" \
    --secret-env BENCH_SECRET --no-progress --json >"$tmp/rate$rate.json"
  stop_listen
  python3 - "$tmp/recv$rate.db" "$tmp/rate$rate.db" "$rate" "$tmp/rate$rate.json" <<'PY'
import json, sqlite3, sys
recv, src, rate, summary = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.load(open(sys.argv[4]))
# Send times: the replay's own attempt records (ms), in send order.
sent = sorted(t for (t,) in sqlite3.connect(src).execute("SELECT at_ms FROM attempts"))
arrived = sorted(t for (t,) in sqlite3.connect(recv).execute(
    "SELECT received_at_ms FROM events"))
span = (sent[-1] - sent[0]) / 1000.0
achieved = (len(sent) - 1) / span
# Jitter: each send against its slot on the schedule t0 + i/rate, from these ms timestamps
# alone (t0 best fit: the median offset). The schedule follows replay(1)'s documented rule: when
# more than --burst (default rate/50) slots are overdue after a stall, the older ones are
# dropped and the schedule starts again from there; each such part of the run gets its own t0.
# The drops are counted and printed, not hidden (the rate check shows them too). Slots are
# anchor + k * interval, not a running sum (adding 0.2 ms to a 13-digit Unix ms count 100,000
# times drifts by milliseconds).
interval, burst = 1000.0 / rate, max(1, rate // 50)
anchor, k, dropped, moved, parts = float(sent[0]), 0, 0, 0.0, [[]]
for t in sent:
    slot = anchor + k * interval
    if t - slot > (burst - 1) * interval:
        anchor, k = t - (burst - 1) * interval, 0
        dropped += round((anchor - slot) / interval); moved += anchor - slot; slot = anchor
        parts.append([])
    parts[-1].append(t - slot)
    k += 1
jit = []
for dev in parts:
    mid = sorted(dev)[len(dev) // 2]
    jit += [abs(d - mid) for d in dev]
jit.sort()
p99 = jit[int(len(jit) * 0.99)]
win = 0; j = 0
for i, t in enumerate(arrived):
    while arrived[j] <= t - 1000: j += 1
    win = max(win, i - j + 1)
print(f"rate {rate}/s: sent {len(sent)}, received {len(arrived)}, achieved {achieved:.1f}/s "
      f"({(achieved / rate - 1) * 100:+.2f}%), send jitter p99 {p99:.1f} ms (ms clock; "
      f"{dropped} slots dropped after stalls, moving the schedule {moved:.0f} ms), "
      f"max 1-s window at receiver {win} ({(win / rate - 1) * 100:+.1f}%), "
      f"latency p50/p99 {summary['latency_ms']['p50']:.2f}/{summary['latency_ms']['p99']:.2f} ms")
lag = summary["schedule_lag_ms"]
print(f"  replay's own steady clock: sends left p50 {lag['p50']:.3f} ms, p99 {lag['p99']:.3f} ms, "
      f"max {lag['max']:.1f} ms after their slot")
PY
done

if [[ $SECTIONS == *4* ]]; then
# What any thread on this machine sees: cyclictest wakes every 200 us (a 5,000/s slot) and
# measures how late it runs, first on the idle machine, then beside the 5,000/s run (listen
# and replay at work), as an ordinary thread (SCHED_OTHER, like replay's sender) and as a
# real-time one (SCHED_FIFO 80, which no ordinary thread can delay). A floor for section 1:
# a sender cannot leave on its slot more reliably than a thread that only sleeps and wakes.
echo "== 4. wake-up latency floor (cyclictest -i 200, ${DURATION}s beside the 5,000/s run)"
wake_p99() { # wake_p99 LABEL CYCLICTEST_ARGS...: runs it, prints p50/p99/max of its histogram
  local label=$1; shift
  cyclictest -q -m -t1 -i200 -h 100000 "$@" >"$tmp/cyclic.txt" 2>&1 || { cat "$tmp/cyclic.txt"; return 1; }
  python3 - "$label" "$tmp/cyclic.txt" <<'PY2'
import sys
label, path = sys.argv[1], sys.argv[2]
hist, over = [], 0
for line in open(path):
    if line.startswith("# Histogram Overflows:"):
        over = int(line.split(":")[1].split()[0])
    if line[:1].isdigit():
        us, n = line.split()[:2]
        hist.append((int(us), int(n)))
total = sum(n for _, n in hist) + over
def q(f):
    seen = 0
    for us, n in hist:
        seen += n
        if seen >= f * total:
            return us
    return float("inf")
print(f"  {label}: {total} wake-ups, late p50 {q(0.5)} us, p99 {q(0.99)} us, "
      f"max {max([us for us, n in hist if n] or [0])} us{' (+%d over 100 ms)' % over if over else ''}")
PY2
}
wake_p99 "idle machine, SCHED_OTHER" --policy=other -p0 -D5s
for policy in "other -p0" "fifo -p80"; do
  n=$((5000 * DURATION))
  make_archive "$tmp/wake.db" "$n"
  start_listen recvwake
  "$hookctl" replay --from "$tmp/wake.db" --to "$url" --rate 5000/s --concurrency "${RATE_CONCURRENCY:-256}" \
    --secret-env BENCH_SECRET --no-progress --json >"$tmp/wake.json" &
  replay_pid=$!
  name=${policy%% *}
  # shellcheck disable=SC2086  # $policy is a policy and its priority, two words
  wake_p99 "beside listen + replay at 5,000/s, SCHED_${name^^}" --policy=$policy -D"$((DURATION - 2))s"
  wait "$replay_pid" || true
  stop_listen
  python3 -c "import json; l=json.load(open('$tmp/wake.json'))['schedule_lag_ms']; print('    (that replay, beside the probe: sends left p99 %.3f ms after their slot)' % l['p99'])"
  rm -f "$tmp/wake.db"* "$tmp/recvwake.db"*
done
fi

if [[ $SECTIONS == *2* ]]; then
echo "== 2. unpaced throughput (2 KiB events, concurrency 64)"
n=$((MEM_EVENTS / 2)); [ "$n" -lt 20000 ] && n=20000
make_archive "$tmp/max.db" "$n"
start_listen recvmax
"$hookctl" replay --from "$tmp/max.db" --to "$url" --rate max --concurrency 64 \
  --secret-env BENCH_SECRET --no-progress --json >"$tmp/max.json"
replay_rps=$(python3 -c "import json; d=json.load(open('$tmp/max.json')); print(round(d['achieved_rate'], 1))")
echo "hookctl replay --rate max: $replay_rps req/s ($n events)"
wrk_out=$(BENCH_SECRET=$BENCH_SECRET wrk -t2 -c64 -d10s -s bench/replay-wrk.lua "$url" 2>&1)
wrk_rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {print $2}')
echo "wrk -t2 -c64 -d10s (same receiver): $wrk_rps req/s"
body=$(python3 -c "print('{\"event_id\":\"evt_curl\",\"pad\":\"' + 'x'*2000 + '\"}', end='')")
start=$(date +%s.%N)
for i in $(seq "$CURL_LOOP"); do
  b="${body/evt_curl/evt_curl_$i}"
  ts=$(date +%s)
  sig=$(printf '%s.%s' "$ts" "$b" | openssl dgst -sha256 -hmac "$BENCH_SECRET" | awk '{print $2}')
  curl -sS -o /dev/null -X POST "$url" -H "Content-Type: application/json" \
    -H "X-Signature: $sig" -H "X-Signature-Timestamp: $ts" --data-binary "$b"
done
end=$(date +%s.%N)
curl_rps=$(python3 -c "print(round($CURL_LOOP / ($end - $start), 1))")
echo "shell loop curl + openssl dgst ($CURL_LOOP requests): $curl_rps req/s"
python3 -c "print('ratio replay/wrk = %.2f (goal >= 0.5), replay/curl-loop = %.0fx (goal >= 100x)' % ($replay_rps / $wrk_rps, $replay_rps / $curl_rps))"
stop_listen
fi

[[ $SECTIONS == *3* ]] || exit 0
echo "== 3. memory (max RSS) replaying N and 10 x N archived events, --rate max"
for n in $((MEM_EVENTS / 10)) "$MEM_EVENTS"; do
  make_archive "$tmp/mem$n.db" "$n"
  start_listen "recvmem$n"
  /usr/bin/time -f "%M" -o "$tmp/rss$n" "$hookctl" replay --from "$tmp/mem$n.db" --to "$url" \
    --rate max --concurrency 64 --secret-env BENCH_SECRET --no-progress --json >"$tmp/mem$n.json"
  stop_listen
  rm -f "$tmp/recvmem$n.db"*
  python3 -c "import json; d=json.load(open('$tmp/mem$n.json')); print('%d events: delivered %d, max RSS %d KiB, %.0f req/s' % ($n, d['delivered'], int(open('$tmp/rss$n').read()), d['achieved_rate']))"
done
