#!/usr/bin/env bash
# events tail -f: commit-to-print latency against a running listen, and the CPU an idle follower
# uses (utime + stime from /proc/<pid>/stat). Events are posted one at a time, spaced so the
# follower is idle (backed off to its 100 ms poll) before each; the latency is from the 202
# (sent after the commit) to the line on the follower's stdout, so it slightly understates
# the true commit-to-print time. Usage: bench/tail.sh BUILD_DIR [EVENTS] [IDLE_SECONDS]
set -euo pipefail
build=${1:?usage: bench/tail.sh BUILD_DIR [EVENTS] [IDLE_SECONDS]}
events=${2:-100}
idle=${3:-10}
hookctl=$(cd "$build" && pwd)/cmd/hookctl
[[ -x "$hookctl" ]] || { echo "bench/tail.sh: no $hookctl: build it first" >&2; exit 2; }
HOOKCTL=$hookctl EVENTS=$events IDLE=$idle python3 - <<'EOF'
import hashlib, hmac, http.client, json, os, signal, statistics, subprocess, tempfile, threading
import time

hookctl, events, idle = os.environ["HOOKCTL"], int(os.environ["EVENTS"]), float(os.environ["IDLE"])
secret = "bench-tail-secret"
tmp = tempfile.TemporaryDirectory(prefix="hookctl-bench-tail-")
archive, ready = os.path.join(tmp.name, "a.db"), os.path.join(tmp.name, "ready")
env = dict(os.environ, BENCH_SECRET=secret)
listen = subprocess.Popen([hookctl, "listen", "--bind", "127.0.0.1:0", "--archive", archive,
                           "--secret-env", "BENCH_SECRET", "--ready-file", ready, "-q"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not os.path.exists(ready):
    time.sleep(0.02)
url = open(ready).read().strip()
host, rest = url.split("//", 1)[1].split("/", 1)
tail = subprocess.Popen([hookctl, "events", "tail", "-f", "-n", "0", "--archive", archive],
                        stdout=subprocess.PIPE)
seen, cond = {}, threading.Condition()

def read():
    for line in tail.stdout:
        with cond:
            seen[line.split()[1].decode()] = time.monotonic()
            cond.notify_all()

threading.Thread(target=read, daemon=True).start()

def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

time.sleep(0.5)
c0, t0 = cpu(tail.pid), time.monotonic()
time.sleep(idle)
c1, t1 = cpu(tail.pid), time.monotonic()
conn = http.client.HTTPConnection(*host.split(":"))
latencies = []
for i in range(events):
    body = json.dumps({"event_id": f"evt_bench_{i}", "org_id": "bench"}).encode()
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    conn.request("POST", "/" + rest, body=body, headers={
        "X-Signature": sig, "X-Signature-Timestamp": ts, "Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    stored = time.monotonic()
    assert resp.status == 202, resp.status
    with cond:
        cond.wait_for(lambda: f"evt_bench_{i}" in seen, timeout=10)
    latencies.append(seen[f"evt_bench_{i}"] - stored)
    time.sleep(0.25)  # past the back-off: the next one finds the follower idle
tail.send_signal(signal.SIGINT)
code = tail.wait(timeout=10)
listen.send_signal(signal.SIGTERM)
listen.wait(timeout=30)
q = statistics.quantiles([l * 1000 for l in latencies], n=100)
print(f"tail -f commit to print over {events} events: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, "
      f"max {max(latencies) * 1000:.1f} ms (bound: 250 ms)")
print(f"tail -f idle: {(c1 - c0) * 1000:.0f} ms CPU over {t1 - t0:.1f} s = "
      f"{(c1 - c0) / (t1 - t0) * 100:.2f}% of a core (bound: 1%)")
print(f"tail -f exit status on SIGINT: {code}")
EOF
