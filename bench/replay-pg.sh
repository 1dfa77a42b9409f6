#!/usr/bin/env bash
# Issue 17 benchmark: a replay spread over 1, 2 and 4 workers (`replay --from postgres://...`
# plus `replay --join RUN_ID`), `--rate max`, N archived events each time, into nginx answering
# 202 (no work: the target is not what is measured). The archive is a throwaway PostgreSQL 15
# cluster (tests/cli/pg_fixture.py, fsync=on, synchronous_commit=on). For comparison the same
# replay from an SQLite archive, one process (runs of SQLite archives are not shared).
# Prints per configuration: the wall time from the first worker's start to the last one's exit,
# delivered events/s, and CPU per delivered event: the workers' (rusage of the children) and
# PostgreSQL's (every process of the cluster, /proc/PID/stat utime+stime, before and after).
# The claim overhead per event is PostgreSQL's CPU per event plus the workers' CPU per event
# beyond the SQLite replay's: what claiming, leases, the shared schedule and recording attempts
# in PostgreSQL cost.
# Usage: bench/replay-pg.sh [BUILD_DIR]   (default build/release; N=20000 events, CONC=32)
# Bench-only tool (not a test dependency): nginx-light from Debian, installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
hookctl=$(realpath -m "$build/cmd/hookctl")
[ -x "$hookctl" ] || { echo "no $hookctl: build first" >&2; exit 2; }
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  sudo=(); if ((EUID != 0)); then sudo=(sudo); fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    nginx-light >&2
fi

HOOKCTL=$hookctl N=${N:-20000} CONC=${CONC:-32} exec python3 - <<'PY'
import json, os, resource, shutil, signal, socket, subprocess, sys, tempfile, time
sys.path.insert(0, "tests/cli")
from pg_fixture import PgServer

hookctl, n, conc = os.environ["HOOKCTL"], int(os.environ["N"]), os.environ["CONC"]
tick = os.sysconf("SC_CLK_TCK")
env = dict(os.environ, BENCH_SECRET="bench-secret-value")
tmp = tempfile.mkdtemp(prefix="hookctl-bench-replay-pg-")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu(pids):
    """CPU seconds of `pids` and of their children that exited (a backend serving a connection
    that closed is counted in the postmaster's cutime and cstime once reaped)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except OSError:
            pass
    return total / tick


port = free_port()
conf = os.path.join(tmp, "nginx.conf")
with open(conf, "w") as f:
    f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 202; }} }} }}
""")
nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", conf, "-e",
                          os.path.join(tmp, "error.log")], stderr=subprocess.DEVNULL)
target = f"http://127.0.0.1:{port}/hooks"
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
        break
    except OSError:
        time.sleep(0.05)

events = os.path.join(tmp, "events.ndjson")
with open(events, "w") as f:
    body = "x" * 1900
    for i in range(n):
        f.write(json.dumps({"event_id": f"evt_b_{i:07d}", "status": "failed",
                            "payload": {"event_id": f"evt_b_{i:07d}", "text": body}}) + "\n")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def replay(archive, workers, pg=None, db=None):
    """Runs one replay of `archive` with `workers` processes; returns (seconds, worker CPU s,
    PostgreSQL CPU s, delivered)."""
    common = ["--secret-env", "BENCH_SECRET", "--no-progress", "--json", "-q"]
    pg_before = cpu(pg.pids()) if pg else 0
    cpu_before = children_cpu()
    started = time.monotonic()
    first = subprocess.Popen([hookctl, "replay", "--from", archive, "--to", target, "--rate",
                              "max", "--concurrency", conc] + common, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs = [first]
    if workers > 1:
        while not pg.psql(db, "SELECT run_id FROM runs"):
            time.sleep(0.01)
        run_id = pg.psql(db, "SELECT run_id FROM runs")[0][0]
        for _ in range(workers - 1):
            procs.append(subprocess.Popen([hookctl, "replay", "--join", run_id, "--archive",
                                           archive] + common, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE))
    delivered = 0
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            sys.exit(f"bench: a worker exited {p.returncode}: {err.decode()[-500:]}")
        delivered += json.loads(out)["delivered"]
    took = time.monotonic() - started
    time.sleep(0.5)  # the backends of the workers' connections exit and are reaped
    return took, children_cpu() - cpu_before, (cpu(pg.pids()) if pg else 0) - pg_before, delivered


print(f"replay --rate max --concurrency {conc} per worker, {n} events (2 KiB), target nginx "
      "`return 202`; PostgreSQL 15 fsync=on synchronous_commit=on")
print(f"{'archive':<22} {'s':>6} {'events/s':>9} {'workers us/ev':>14} {'pg us/ev':>9} "
      f"{'total us/ev':>12}")
lite = os.path.join(tmp, "bench.db")
subprocess.run([hookctl, "events", "import", "--archive", lite, events], check=True,
               capture_output=True)
took, wcpu, _, delivered = replay(lite, 1)
base = wcpu * 1e6 / delivered
print(f"{'SQLite, 1 process':<22} {took:>6.2f} {delivered / took:>9,.0f} {base:>14.1f} "
      f"{'-':>9} {base:>12.1f}", flush=True)
pg = PgServer(fsync=True)
try:
    for workers in (1, 2, 4):
        db = f"w{workers}"
        uri = pg.create_database(db)
        subprocess.run([hookctl, "events", "import", "--archive", uri, events], check=True,
                       capture_output=True)
        took, wcpu, pcpu, delivered = replay(uri, workers, pg, db)
        if delivered != n:
            sys.exit(f"bench: {delivered} delivered of {n}")
        w_us, p_us = wcpu * 1e6 / delivered, pcpu * 1e6 / delivered
        print(f"{'PostgreSQL, ' + str(workers) + ' worker' + ('s' if workers > 1 else ''):<22} "
              f"{took:>6.2f} {delivered / took:>9,.0f} {w_us:>14.1f} {p_us:>9.1f} "
              f"{w_us + p_us:>12.1f}   claim overhead {w_us + p_us - base:.1f} us/event",
              flush=True)
finally:
    pg.close()
    nginx.send_signal(signal.SIGTERM)
    nginx.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)
PY
