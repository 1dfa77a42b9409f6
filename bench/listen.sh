#!/usr/bin/env bash
# Issue 4 benchmark, side by side in one run on loopback with wrk (2 KiB signed bodies, every
# request a new event, 64 and 256 connections):
#   hookctl listen  verification on, durable SQLite archive (WAL, synchronous=FULL, group commit)
#   express         the reference receiver (bench/listen-express.js): verify, push to an array
#   nginx           `return 202`, no work at all: the ceiling for HTTP on this machine
# Prints requests/s, p99 latency, non-2xx and the CPU per request of the server and of wrk per
# run, the ratios hookctl/express and hookctl/nginx, checks that archived rows equal the 202s
# hookctl answered, and ends with the floor: the per-request CPU of the work listen cannot skip
# (bench_listen_costs) and how many cores the goals would need at that cost.
# Usage: bench/listen.sh [BUILD_DIR] [DURATION]   (default build/release, 10s)
# Bench-only tools (not test dependencies): wrk and nginx-light from Debian, express from npm
# into bench/.scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
duration=${2:-10s}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if ((${#need[@]})); then
  sudo=(); if ((EUID != 0)); then sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >&2
fi
if [ ! -d bench/.scratch/node_modules/express ]; then
  mkdir -p bench/.scratch
  (cd bench/.scratch && npm install --silent --no-audit --no-fund express@4 >&2)
fi
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target hookctl bench_listen_costs -j2 >/dev/null
hookctl=$build/cmd/hookctl

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export BENCH_SECRET=bench-secret-value

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "bench: nothing listening on port $1" >&2; exit 1
}

# hookctl listen (logs off: -q; the archive on a real file in $tmp)
"$hookctl" listen -q --bind 127.0.0.1:0 --archive "$tmp/bench.db" --secret-env BENCH_SECRET \
  --ready-file "$tmp/ready" 2>"$tmp/hookctl.log" &
pids+=($!)
for _ in $(seq 200); do [ -s "$tmp/ready" ] && break; sleep 0.05; done
hookctl_url=$(cat "$tmp/ready")

express_port=$(free_port)
node bench/listen-express.js "$express_port" 2>"$tmp/express.log" &
pids+=($!)
wait_port "$express_port"

nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 202; }
  }
}
CONF
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx_bin" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" 2>"$tmp/nginx.log" &
pids+=($!)
wait_port "$nginx_port"

# One wrk run against URL, whose server is the process PID (and its children: nginx's workers).
# Prints "rps p99_ms non2xx requests errors server_cpu_us wrk_cpu_us": the last two are CPU
# microseconds per request of the server and of wrk itself (utime+stime from /proc and rusage).
run_wrk() {
  local url=$1 conns=$2 pid=$3
  python3 - "$url" "$conns" "$duration" "$pid" "$tmp/wrk.txt" <<'PY'
import os, re, resource, subprocess, sys
url, conns, duration, pid, log = sys.argv[1:]
tick = os.sysconf("SC_CLK_TCK")
def cpu(p):
    pids = [p] + [c for c in subprocess.run(["pgrep", "-P", p], capture_output=True,
                                            text=True).stdout.split()]
    total = 0
    for q in pids:
        try:
            f = open("/proc/%s/stat" % q).read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / tick
before = cpu(pid)
ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
out = subprocess.run(["wrk", "-t2", "-c" + conns, "-d" + duration, "--latency", "-s",
                      "bench/listen-wrk.lua", url], capture_output=True, text=True,
                     check=True).stdout
ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
server_s = cpu(pid) - before
wrk_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
open(log, "a").write(out)
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
errors = re.search(r"Socket errors:.*", out)
total = int(re.search(r"(\d+) requests in", out).group(1))
print(rps, p99, int(non2xx.group(1)) if non2xx else 0, total,
      errors.group(0).replace(" ", "_") if errors else "-",
      round(server_s * 1e6 / total, 1), round(wrk_s * 1e6 / total, 1))
PY
}

printf '%-8s %5s %12s %9s %8s %10s %10s %10s  %s\n' target conns req/s p99_ms non2xx requests \
  cpu_us/req wrk_us/req errors
declare -A rps p99 cpu wcpu
for conns in 64 256; do
  for target in hookctl express nginx; do
    case $target in
      hookctl) url=$hookctl_url pid=${pids[0]} ;;
      express) url=http://127.0.0.1:$express_port/webhooks/email pid=${pids[1]} ;;
      nginx) url=http://127.0.0.1:$nginx_port/webhooks/email pid=${pids[2]} ;;
    esac
    read -r r p n total errs scpu wcpu < <(run_wrk "$url" "$conns" "$pid")
    rps[$target,$conns]=$r; p99[$target,$conns]=$p; cpu[$target,$conns]=$scpu; wcpu[$target,$conns]=$wcpu
    printf '%-8s %5s %12.0f %9.2f %8s %10s %10s %10s  %s\n' "$target" "$conns" "$r" "$p" "$n" \
      "$total" "$scpu" "$wcpu" "$errs"
  done
done

for conns in 64 256; do
  python3 - "${rps[hookctl,$conns]}" "${rps[express,$conns]}" "${rps[nginx,$conns]}" "$conns" <<'PY'
import sys
h, e, n, c = map(float, sys.argv[1:])
print(f"{int(c)} connections: hookctl/express {h / e:.2f}x (goal >= 5x), "
      f"hookctl/nginx {h / n:.2f}x (ceiling; aim >= 0.5x)")
PY
done
echo "p99 at 256 connections: hookctl ${p99[hookctl,256]} ms (goal <= 10 ms)"

# Every 202 hookctl answered is a row in the archive.
metrics=$(curl -s "${hookctl_url%/webhooks/email}/metrics")
accepted=$(echo "$metrics" | awk -F' ' '/^hookctl_requests_total\{status="202"/ {s += $2} END {print s + 0}')
batches=$(echo "$metrics" | awk '/^hookctl_commit_batch_size_count/ {print $2}')
kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
rows=$(sqlite3 "$tmp/bench.db" 'SELECT count(*) FROM events')
echo "archive: $rows rows, $accepted 202s answered, $batches commits ($([ "$rows" = "$accepted" ] && echo equal || echo MISMATCH))"

# The floor: what the goals would cost in CPU. bench_listen_costs measures, on one thread, the
# work listen cannot skip per request (HMAC verify, nlohmann's pass over the body, the SQLite
# insert in commits of the batch size seen above); nginx's CPU per request is the HTTP floor.
costs=$("$build/bench/bench_listen_costs" "$tmp" 20000 "$(( accepted / (batches > 0 ? batches : 1) ))")
echo "$costs"
python3 - "$costs" "${cpu[nginx,256]}" "${rps[express,256]}" "$(nproc)" \
  "${wcpu[hookctl,256]}" <<'PY'
import re, sys
costs, nginx_us, express_rps, cores, wrk_us = sys.argv[1:]
work_us = float(re.search(r"total ([\d.]+) us", costs).group(1))
need = max(5 * float(express_rps), 256 / 0.010)
floor_us = work_us + float(nginx_us)
print(f"goals need >= {need:,.0f} req/s at 256 connections (5x express, and p99 <= 10 ms: "
      f"mean latency = 256 / rate); at {floor_us:.1f} us of CPU per request (that work + "
      f"nginx's {float(nginx_us):.1f} us of HTTP) the server alone needs "
      f"{need * floor_us / 1e6:.2f} cores, and wrk ({float(wrk_us):.1f} us per request) "
      f"{need * float(wrk_us) / 1e6:.2f} more, on a machine of {cores}")
PY
