#!/usr/bin/env bash
# Issue 17 benchmark: listen on PostgreSQL vs listen on SQLite, same client, same run.
# Two receivers (same flags, durable: SQLite synchronous=FULL; PostgreSQL fsync=on and
# synchronous_commit=on, the server a throwaway PostgreSQL 15 cluster started here by
# tests/cli/pg_fixture.py on a loopback port) are loaded in turn by wrk with signed 2 KiB
# bodies, every request a new event (bench/listen-wrk.lua), ROUNDS rounds alternating which
# goes first. Prints requests/s and server CPU per request: for SQLite listen's own; for
# PostgreSQL listen's plus every process of the cluster (postmaster, the backend serving listen,
# WAL writer, checkpointer...), read from /proc/PID/stat (utime+stime) before and after each run.
# Goal of the issue: PostgreSQL >= 0.5x SQLite's requests/s.
# Usage: bench/listen-pg.sh [BUILD_DIR] [DURATION]   (default build/release, 5s per wrk run;
#        ROUNDS=3, CONNS=64)
# Bench-only tool (not a test dependency): wrk from Debian; PostgreSQL 15 from scripts/bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
duration=${2:-5s}

if ! command -v wrk >/dev/null; then
  sudo=(); if ((EUID != 0)); then sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    wrk >&2
fi
hookctl=$(realpath -m "$build/cmd/hookctl")
[ -x "$hookctl" ] || { echo "no $hookctl: build first" >&2; exit 2; }

HOOKCTL=$hookctl ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-64} DURATION=$duration \
  exec python3 - <<'PY'
import os, re, signal, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, "tests/cli")
from pg_fixture import PgServer

hookctl, rounds, conns, duration = (os.environ["HOOKCTL"], int(os.environ["ROUNDS"]),
                                    os.environ["CONNS"], os.environ["DURATION"])
tick = os.sysconf("SC_CLK_TCK")
env = dict(os.environ, BENCH_SECRET="bench-secret-value")
tmp = tempfile.mkdtemp(prefix="hookctl-bench-pg-")
procs = []


def cpu(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def start_listen(name, archive):
    ready = os.path.join(tmp, name + ".ready")
    log = open(os.path.join(tmp, name + ".log"), "wb")
    p = subprocess.Popen([hookctl, "listen", "-q", "--bind", "127.0.0.1:0", "--archive", archive,
                          "--secret-env", "BENCH_SECRET", "--ready-file", ready],
                         stderr=log, env=env)
    procs.append(p)
    for _ in range(400):
        if os.path.exists(ready) and os.path.getsize(ready):
            break
        if p.poll() is not None:
            sys.exit(f"bench: listen {name} exited: " + open(log.name).read())
        time.sleep(0.05)
    return p, open(ready).read().strip()


pg = PgServer(fsync=True)
try:
    uri = pg.create_database("bench")
    lite, lite_url = start_listen("sqlite", os.path.join(tmp, "bench.db"))
    post, post_url = start_listen("postgres", uri)
    print(f"listen, {conns} connections, {duration} per run, {rounds} rounds, 2048-byte bodies; "
          f"SQLite synchronous=full, PostgreSQL 15 fsync=on synchronous_commit=on")
    print(f"{'round':<6} {'archive':<9} {'req/s':>10} {'cpu_us/req':>11} {'non2xx':>7}")
    results = {"sqlite": [], "postgres": []}
    for r in range(1, rounds + 1):
        order = ["sqlite", "postgres"] if r % 2 else ["postgres", "sqlite"]
        for which in order:
            url = lite_url if which == "sqlite" else post_url
            pids = [lite.pid] if which == "sqlite" else [post.pid] + pg.pids()
            before = cpu(pids)
            out = subprocess.run(["wrk", "-t2", "-c" + conns, "-d" + duration, "-s",
                                  "bench/listen-wrk.lua", url], capture_output=True, text=True,
                                 check=True, env=env).stdout
            used = cpu(pids) - before
            total = int(re.search(r"(\d+) requests in", out).group(1))
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
            non2xx = int(m.group(1)) if m else 0
            per = used * 1e6 / total
            results[which].append((rps, per))
            print(f"{r:<6} {which:<9} {rps:>10,.0f} {per:>11.1f} {non2xx:>7}", flush=True)
    ls = statistics.median(x[0] for x in results["sqlite"])
    lp = statistics.median(x[0] for x in results["postgres"])
    cs = statistics.median(x[1] for x in results["sqlite"])
    cp = statistics.median(x[1] for x in results["postgres"])
    print(f"median req/s: SQLite {ls:,.0f}, PostgreSQL {lp:,.0f}: ratio {lp / ls:.2f}x "
          f"(goal >= 0.5x)")
    print(f"median server CPU per request: SQLite {cs:.1f} us (listen), PostgreSQL {cp:.1f} us "
          f"(listen + PostgreSQL)")
    rows = pg.psql("bench", "SELECT count(*) FROM events")[0][0]
    print(f"PostgreSQL archive: {rows} events stored")
finally:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
    pg.close()
    subprocess.run(["rm", "-rf", tmp])
PY
