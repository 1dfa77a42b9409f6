"""hookctl replay: sources (archive, --query, .eml dir, Maildir, mbox), --dry-run, production
guard, bad inputs, headers of every attempt. Against small Python receivers on 127.0.0.1."""
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import HOOKCTL, SANITIZED, SOURCE, TempDirTestCase, run  # noqa: E402

SECRET = "replay-test-secret"
ENV = {"REPLAY_SECRET": SECRET}


def archive_schema_sql():
    """The archive's migrations, read from the source so the fixture follows the schema."""
    with open(os.path.join(SOURCE, "lib", "hookctl", "archive", "sqlite", "schema.cpp")) as f:
        text = f.read()
    return re.findall(r'R"sql\((.*?)\)sql"', text, re.S)


def make_archive(path, events):
    """Writes a hookctl archive with `events`: dicts with event_id, body and optional status,
    org_id, received_at_ms, raw_mime."""
    db = sqlite3.connect(path)
    migrations = archive_schema_sql()
    for sql in migrations:
        db.executescript(sql)
    db.execute("PRAGMA application_id = %d" % 0x686B6374)
    db.execute("PRAGMA user_version = %d" % len(migrations))
    now = int(time.time() * 1000)
    # Rows in seq order 1..n: each event's body and raw MIME go to event_bodies under its seq.
    rows = [(i + 1, e["event_id"], e.get("received_at_ms", now - 1000 + i), e.get("org_id", ""),
             e.get("status", "failed"), now,
             e["body"].encode() if isinstance(e["body"], str) else e["body"], e.get("raw_mime"))
            for i, e in enumerate(events)]
    db.executemany(
        "INSERT INTO events (seq, event_id, received_at_ms, org_id, status, updated_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)", (r[:6] for r in rows))
    db.executemany("INSERT INTO event_bodies (seq, body, raw_mime) VALUES (?, ?, ?)",
                   ((r[0], r[6], r[7]) for r in rows))
    db.commit()
    db.close()


def make_body(i, size=200, orgs=1):
    return json.dumps({"schema_version": "1", "type": "email.received",
                       "event_id": "evt_%06d" % i, "org_id": "org_%d" % (i % orgs),
                       "text": "x" * size})


def sample_events(n, size=200, status="failed", orgs=1):
    out = []
    for i in range(n):
        body = make_body(i, size, orgs)
        out.append({"event_id": "evt_%06d" % i, "body": body, "status": status,
                    "org_id": "org_%d" % (i % orgs)})
    return out


class Receiver:
    """A threaded HTTP/1.1 receiver on 127.0.0.1 that records every request and answers what
    `answer(request_index, headers, body)` says: (status, headers dict[, body bytes])."""

    def __init__(self, answer=None):
        self.requests = []
        self.lock = threading.Lock()
        outer = self
        answer = answer or (lambda i, h, b: (200, {}))

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    index = len(outer.requests)
                    outer.requests.append((time.monotonic(), dict(self.headers), body))
                answered = answer(index, self.headers, body)
                status, headers = answered[0], answered[1]
                payload = (answered[2] if len(answered) > 2 else
                           b'{"ok":%s}' % (b"true" if status < 300 else b"false"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hooks" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def event_ids(self):
        with self.lock:
            return [h.get("Idempotency-Key") for _, h, _ in self.requests]


def verify_ok(headers, body):
    """Checks a mailparse signature with the hookctl binary itself (hookctl verify)."""
    lines = "".join("%s: %s\n" % (k, v) for k, v in headers.items())
    hdr = os.path.join(os.environ.get("TMPDIR", "/tmp"), "hookctl-replay-hdr-%d" % os.getpid())
    with open(hdr, "w") as f:
        f.write(lines)
    proc = subprocess.run([HOOKCTL, "verify", "--secret-env", "REPLAY_SECRET", "--headers-file", hdr,
                           "-"], input=body, env=dict(os.environ, **ENV),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.unlink(hdr)
    return proc.returncode == 0, proc.stderr


class ReplayTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()
        super().tearDown()

    def replay(self, *args, check=None, env=None, timeout=120):
        return run(["replay", "--secret-env", "REPLAY_SECRET", "--no-progress"] + list(args),
                   env=dict(ENV, **(env or {})), check=check, timeout=timeout)

    def test_archive_replay_delivers_failed_events_with_headers(self):
        db = os.path.join(self.tmp, "a.db")
        events = sample_events(30) + [{"event_id": "evt_ok", "body": "{}", "status": "delivered"}]
        make_archive(db, events)
        proc = self.replay("--from", db, "--to", self.receiver.url, "--rate", "max",
                           "--json", check=0)
        summary = json.loads(proc.stdout)
        self.assertEqual(summary["delivered"], 30)
        self.assertEqual(summary["dead"], 0)
        self.assertEqual(sorted(self.receiver.event_ids()), ["evt_%06d" % i for i in range(30)])
        run_id = summary["run_id"]
        _, headers, body = self.receiver.requests[0]
        self.assertEqual(headers["X-Hookctl-Replay-Run"], run_id)
        self.assertRegex(headers["traceparent"], r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
        self.assertTrue(verify_ok(headers, body)[0])
        # Fresh timestamp per attempt, within a few seconds of now.
        self.assertLess(abs(int(headers["X-Signature-Timestamp"]) - time.time()), 30)
        con = sqlite3.connect(db)
        statuses = dict(con.execute("SELECT status, COUNT(*) FROM events GROUP BY status"))
        self.assertEqual(statuses, {"delivered": 31})
        attempts = con.execute("SELECT COUNT(*) FROM attempts WHERE run_id = ? AND "
                               "outcome = 'delivered'", (run_id,)).fetchone()[0]
        self.assertEqual(attempts, 30)
        state = con.execute("SELECT state, total, done FROM runs WHERE run_id = ?",
                            (run_id,)).fetchone()
        self.assertEqual(state, ("completed", 30, 30))

    def test_filters_select_events(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(20, orgs=2))
        self.replay("--from", db, "--to", self.receiver.url, "--rate", "max", "--org", "org_1",
                    "--limit", "4", check=0)
        ids = sorted(self.receiver.event_ids())
        self.assertEqual(ids, ["evt_000001", "evt_000003", "evt_000005", "evt_000007"])

    def test_relative_since_selects_by_time_and_is_stored_resolved(self):
        db = os.path.join(self.tmp, "a.db")
        now = int(time.time() * 1000)
        events = sample_events(4)
        for i, e in enumerate(events):
            e["received_at_ms"] = now - (i * 2 + 1) * 3600 * 1000  # 1h, 3h, 5h, 7h ago
        make_archive(db, events)
        self.replay("--from", db, "--to", self.receiver.url, "--rate", "max", "--since", "4h",
                    check=0)
        self.assertEqual(sorted(self.receiver.event_ids()), ["evt_000000", "evt_000001"])
        con = sqlite3.connect(db)
        plan = json.loads(con.execute("SELECT options FROM runs").fetchone()[0])
        con.close()
        # Stored resolved, about 4 h ago: the run's selection does not move with the clock.
        since = plan["source"]["since_ms"]
        self.assertAlmostEqual(since, now - 4 * 3600 * 1000, delta=120 * 1000)
        proc = run(["events", "list", "--archive", db, "--since", "yesterday", "--until",
                    "tomorrow"], check=2)
        self.assertIn(b"--until: cannot read time 'tomorrow'", proc.stderr)

    def test_permanent_4xx_is_dead_with_reason_and_exit_1(self):
        self.receiver.close()
        self.receiver = Receiver(lambda i, h, b: (422, {}) if h["Idempotency-Key"] == "evt_000002"
                                 else (200, {}))
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(5))
        proc = self.replay("--from", db, "--to", self.receiver.url, "--rate", "max", "--json",
                           check=1)
        summary = json.loads(proc.stdout)
        self.assertEqual((summary["delivered"], summary["dead"]), (4, 1))
        self.assertEqual(summary["dead_reasons"], {"http_422": 1})
        # A permanent failure is not retried.
        self.assertEqual(self.receiver.event_ids().count("evt_000002"), 1)
        con = sqlite3.connect(db)
        row = con.execute("SELECT status, last_error FROM events WHERE event_id = 'evt_000002'"
                          ).fetchone()
        self.assertEqual(row, ("dead", "http_422"))

    def test_retry_after_on_503_is_obeyed(self):
        first_seen = {}

        def answer(i, h, b):
            key = h["Idempotency-Key"]
            if key not in first_seen:
                first_seen[key] = time.monotonic()
                return 503, {"Retry-After": "1"}
            return 200, {}
        self.receiver.close()
        self.receiver = Receiver(answer)
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(3))
        self.replay("--from", db, "--to", self.receiver.url, "--rate", "max", check=0)
        by_id = {}
        for t, h, _ in self.receiver.requests:
            by_id.setdefault(h["Idempotency-Key"], []).append(t)
        for key, times in by_id.items():
            self.assertEqual(len(times), 2, key)
            self.assertGreaterEqual(times[1] - times[0], 0.99, key)
        # Every attempt of one event carries the same trace id (a fresh span id each time),
        # and different events have different traces.
        traces = {}
        for _, h, _ in self.receiver.requests:
            traces.setdefault(h["Idempotency-Key"], set()).add(h["traceparent"].split("-")[1])
        self.assertEqual([len(t) for t in traces.values()], [1, 1, 1])
        self.assertEqual(len(set().union(*traces.values())), 3)

    def test_query_over_a_foreign_table(self):
        db = os.path.join(self.tmp, "dlq.sqlite")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE dead_letters (id TEXT, body TEXT, org TEXT, ts INTEGER)")
        con.executemany("INSERT INTO dead_letters VALUES (?, ?, ?, ?)",
                        [("d%d" % i, json.dumps({"n": i}), "o%d" % (i % 2), 1000 + i)
                         for i in range(6)])
        con.commit()
        con.close()
        runs = os.path.join(self.tmp, "runs.db")
        self.replay("--from", db, "--query",
                    "SELECT id AS event_id, body AS payload, org AS org_id, ts AS received_at "
                    "FROM dead_letters WHERE org = 'o1' ORDER BY ts",
                    "--archive", runs, "--to", self.receiver.url, "--rate", "max", check=0)
        # --rate max sends up to --concurrency at once, so arrival order is not the query's.
        self.assertEqual(sorted(self.receiver.event_ids()), ["d1", "d3", "d5"])
        bodies = {h.get("Idempotency-Key"): json.loads(b) for _, h, b in self.receiver.requests}
        self.assertEqual(bodies, {"d1": {"n": 1}, "d3": {"n": 3}, "d5": {"n": 5}})
        con = sqlite3.connect(runs)
        self.assertEqual(con.execute("SELECT COUNT(*) FROM attempts").fetchone()[0], 3)

    def test_query_errors_exit_2_before_sending(self):
        db = os.path.join(self.tmp, "dlq.sqlite")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE t (id TEXT, body TEXT)")
        con.commit()
        con.close()
        runs = os.path.join(self.tmp, "runs.db")
        proc = self.replay("--from", db, "--query", "SELECT nope FROM missing", "--archive",
                           runs, "--to", self.receiver.url, check=2)
        self.assertIn(b"--query", proc.stderr)
        proc = self.replay("--from", db, "--query", "SELECT id AS event_id FROM t",
                           "--archive", runs, "--to", self.receiver.url, check=2)
        self.assertIn(b"payload", proc.stderr)
        self.assertEqual(self.receiver.requests, [])

    def test_bad_inputs_exit_2_and_send_nothing(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(3))
        config = self.write("config.toml", '[targets.staging]\nurl = "%s"\n'
                            'secret_env = "REPLAY_SECRET"\n' % self.receiver.url)
        cases = [
            (["--from", db, "--target", "nope", "--config", config], b"unknown target 'nope'"),
            (["--from", os.path.join(self.tmp, "missing.db"), "--to", self.receiver.url],
             b"missing.db"),
            (["--from", db, "--to", self.receiver.url, "--rate", "fast"], b"--rate"),
            (["--from", db, "--to", self.receiver.url, "--rate", "0/s"], b"--rate"),
        ]
        for args, needle in cases:
            proc = self.replay(*args, check=2)
            self.assertIn(needle, proc.stderr, args)
        # Missing secret: the variable is not set.
        proc = run(["replay", "--from", db, "--to", self.receiver.url, "--secret-env",
                    "HOOKCTL_NO_SUCH_VAR"], check=2)
        self.assertIn(b"HOOKCTL_NO_SUCH_VAR", proc.stderr)
        self.assertNotIn(SECRET.encode(), proc.stderr)
        # Unreadable source.
        unreadable = self.write("locked.mbox", "From x\n\nhi\n", mode=0o000)
        if os.geteuid() != 0:
            proc = self.replay("--from", unreadable, "--archive", os.path.join(self.tmp, "r.db"),
                               "--to", self.receiver.url, check=2)
        self.assertEqual(self.receiver.requests, [])

    def test_dry_run_sends_nothing(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(25))
        proc = run(["replay", "--from", db, "--to", self.receiver.url, "--rate", "5/s",
                    "--dry-run", "--json"], check=0)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["count"], 25)
        self.assertEqual(len(doc["first"]), 10)
        self.assertEqual(doc["first"][0]["event_id"], "evt_000000")
        self.assertAlmostEqual(doc["estimated_seconds"], 5.0)
        proc = run(["replay", "--from", db, "--to", self.receiver.url, "--dry-run"], check=0)
        self.assertIn(b"25 events matched", proc.stdout)
        self.assertEqual(self.receiver.requests, [])
        con = sqlite3.connect(db)
        self.assertEqual(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0], 0)
        self.assertEqual(con.execute("SELECT COUNT(*) FROM events WHERE status = 'failed'"
                                     ).fetchone()[0], 25)

    def test_production_target_without_yes_and_tty_refuses(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(3))
        config = self.write("config.toml", '[targets.prod]\nurl = "%s"\n'
                            'secret_env = "REPLAY_SECRET"\nproduction = true\n'
                            % self.receiver.url)
        proc = run(["replay", "--from", db, "--target", "prod", "--config", config],
                   env=ENV, check=2)
        self.assertIn(b"production", proc.stderr)
        self.assertIn(b"--yes", proc.stderr)
        self.assertEqual(self.receiver.requests, [])
        run(["replay", "--from", db, "--target", "prod", "--config", config, "--yes",
             "--rate", "max"], env=ENV, check=0)
        self.assertEqual(len(self.receiver.requests), 3)

    def test_target_from_config_with_rate_and_scheme(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(4))
        secret = self.write("secret.txt", "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n", mode=0o600)
        config = self.write("config.toml", '[targets.staging]\nurl = "%s"\nscheme = "standard"\n'
                            'secret_file = "secret.txt"\nrate = "max"\nconcurrency = 2\n'
                            % self.receiver.url)
        del secret
        run(["replay", "--from", db, "--target", "staging", "--config", config], check=0)
        _, headers, _ = self.receiver.requests[0]
        self.assertTrue(headers["webhook-signature"].startswith("v1,"))
        self.assertTrue(headers["webhook-id"].startswith("evt_"))

    def test_ordered_one_in_flight_per_org_in_received_at_order(self):
        state = {"in_flight": {}, "overlap": 0}
        lock = threading.Lock()

        def answer(i, h, b):
            org = json.loads(b)["org_id"]
            with lock:
                state["in_flight"][org] = state["in_flight"].get(org, 0) + 1
                if state["in_flight"][org] > 1:
                    state["overlap"] += 1
            time.sleep(0.01)
            # The first try of evt_000004 fails: its org must wait for the retry.
            status = 503 if h["Idempotency-Key"] == "evt_000004" and i < 8 else 200
            with lock:
                state["in_flight"][org] -= 1
            return status, {}
        self.receiver.close()
        self.receiver = Receiver(answer)
        db = os.path.join(self.tmp, "a.db")
        events = sample_events(24, orgs=3)
        # received_at runs against insertion order: the order must follow received_at.
        for i, e in enumerate(events):
            e["received_at_ms"] = 1_800_000_000_000 - i * 1000
        make_archive(db, events)
        self.replay("--from", db, "--to", self.receiver.url, "--rate", "max", "--concurrency",
                    "8", "--ordered", "--backoff-base", "50ms", check=0)
        self.assertEqual(state["overlap"], 0)
        by_org = {}
        for _, h, b in self.receiver.requests:
            by_org.setdefault(json.loads(b)["org_id"], []).append(h["Idempotency-Key"])
        for org, ids in by_org.items():
            delivered = [k for n, k in enumerate(ids) if k not in ids[n + 1:]]
            self.assertEqual(delivered, sorted(set(ids), reverse=True), org)
        # Orgs went in parallel: with 8 slots the run is not serial across orgs.
        self.assertEqual(len(by_org), 3)

    def test_circuit_breaker_stops_with_exit_3_and_resume_finishes(self):
        self.receiver.close()
        healthy = {"on": False}
        self.receiver = Receiver(lambda i, h, b: (200, {}) if healthy["on"] else (404, {}))
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(50))
        # --systemic-failures 0: every 404 is taken as the event's own failure.
        proc = self.replay("--from", db, "--to", self.receiver.url, "--rate", "100/s",
                           "--concurrency", "2", "--max-failures", "3", "--systemic-failures",
                           "0", "--json", check=3)
        summary = json.loads(proc.stdout)
        self.assertEqual(summary["state"], "tripped")
        self.assertIn("--resume " + summary["run_id"], proc.stderr.decode())
        self.assertLess(len(self.receiver.requests), 10)
        con = sqlite3.connect(db)
        self.assertEqual(con.execute("SELECT state FROM runs").fetchone()[0], "aborted")
        healthy["on"] = True
        # Dead events stay dead in this run; the rest are delivered on resume.
        proc = self.replay("--resume", summary["run_id"], "--archive", db, "--json", check=1)
        resumed = json.loads(proc.stdout)
        dead = con.execute("SELECT COUNT(*) FROM events WHERE status = 'dead'").fetchone()[0]
        self.assertEqual(con.execute("SELECT COUNT(*) FROM events WHERE status = 'delivered'"
                                     ).fetchone()[0], 50 - dead)
        self.assertEqual(resumed["delivered"], 50 - dead)
        self.assertEqual(resumed["run_dead"], dead)
        self.assertGreaterEqual(dead, 3)

    # --- runs you can find, resume and trust -------------------------------------------------

    def test_resume_refuses_selection_flags_and_records_pacing_changes(self):
        self.receiver.close()
        self.receiver = Receiver(lambda i, h, b: (404, {}))  # every attempt: systemic, stops
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(6))
        proc = self.replay("--from", db, "--to", self.receiver.url, "--rate", "max", "--json",
                           check=3)
        run_id = json.loads(proc.stdout)["run_id"]
        for flag in (["--limit", "2"], ["--status", "dead"], ["--from", db],
                     ["--to", self.receiver.url]):
            proc = self.replay("--resume", run_id, "--archive", db, *flag, check=2)
            self.assertIn(flag[0].encode() + b" cannot be given with --resume", proc.stderr)
        self.receiver.close()
        self.receiver = Receiver()
        # The stored target URL points at the old port: a new run on the same selection is
        # what an operator does then; here we check the change is recorded on resume.
        con = sqlite3.connect(db)
        plan = json.loads(con.execute("SELECT options FROM runs").fetchone()[0])
        plan["delivery"]["to"] = self.receiver.url
        con.execute("UPDATE runs SET options = ?", (json.dumps(plan),))
        con.commit()
        proc = self.replay("--resume", run_id, "--archive", db, "--rate", "7/s", "--retries",
                           "2", "--json", check=0)
        self.assertEqual(json.loads(proc.stdout)["run_delivered"], 6)
        plan = json.loads(con.execute("SELECT options FROM runs").fetchone()[0])
        changes = {c["field"]: (c["from"], c["to"]) for c in plan["changes"]}
        self.assertEqual(changes["rate"], ("max", "7/s"))
        self.assertEqual(changes["retries"], ("5", "2"))
        self.assertEqual(plan["pacing"]["rate"], "7/s")
        con.close()

    def test_resume_works_from_another_directory(self):
        os.mkdir(os.path.join(self.tmp, "work"))
        make_archive(os.path.join(self.tmp, "work", "a.db"), sample_events(5))
        self.receiver.close()
        self.receiver = Receiver(lambda i, h, b: (401, {}))
        state = {"XDG_STATE_HOME": os.path.join(self.tmp, "state")}
        proc = subprocess.run(
            [HOOKCTL, "replay", "--from", "a.db", "--to", self.receiver.url, "--rate", "max",
             "--secret-env", "REPLAY_SECRET", "--no-progress", "--json"],
            cwd=os.path.join(self.tmp, "work"), env=dict(os.environ, **ENV, **state),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        run_id = json.loads(proc.stdout)["run_id"]
        # The run id is said when the run starts, with where it is recorded.
        first_line = proc.stderr.decode().splitlines()[0]
        self.assertIn(run_id, first_line)
        self.assertIn("5 events selected", first_line)
        self.receiver.close()
        self.receiver = Receiver()
        con = sqlite3.connect(os.path.join(self.tmp, "work", "a.db"))
        plan = json.loads(con.execute("SELECT options FROM runs").fetchone()[0])
        self.assertEqual(plan["source"]["path"], os.path.join(self.tmp, "work", "a.db"))
        plan["delivery"]["to"] = self.receiver.url
        con.execute("UPDATE runs SET options = ?", (json.dumps(plan),))
        con.commit()
        con.close()
        proc = subprocess.run([HOOKCTL, "replay", "--resume", run_id, "--secret-env",
                               "REPLAY_SECRET", "--no-progress", "--json"], cwd="/",
                              env=dict(os.environ, **ENV, **state), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(self.receiver.requests), 5)

    def test_dry_run_shows_real_sizes_the_window_and_checks_every_option(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(3, size=1000))
        proc = run(["replay", "--from", db, "--to", self.receiver.url, "--since", "2h",
                    "--dry-run", "--json"], check=0)
        doc = json.loads(proc.stdout)
        body = make_body(0, 1000)
        self.assertEqual(doc["first"][0]["bytes"], len(body))
        self.assertRegex(doc["since"], r"^\d{4}-\d\d-\d\dT")
        self.assertEqual(doc["count"], 3)
        for args, needle in ((["--retries", "abc"], b"--retries"),
                             (["--timeout", "0"], b"--timeout"),
                             (["--concurrency", "0"], b"--concurrency")):
            proc = run(["replay", "--from", db, "--to", self.receiver.url, "--dry-run"] + args,
                       check=2)
            self.assertIn(needle, proc.stderr, args)
        self.assertEqual(self.receiver.requests, [])

    def test_a_selection_that_matches_nothing_says_so_and_records_no_run(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(3, status="delivered"))
        proc = self.replay("--from", db, "--to", self.receiver.url, "--since", "1h",
                           "--log-format", "text", check=0)
        self.assertIn(b"0 events matched", proc.stderr)
        self.assertIn(b"status failed|dead, received ", proc.stderr)
        self.assertEqual(sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0],
                         0)

    def test_json_logs_carry_run_event_attempt_status_reason_and_the_receivers_words(self):
        self.receiver.close()
        self.receiver = Receiver(
            lambda i, h, b: (422, {}, b'{"error":"mailbox quota exceeded"}')
            if h["Idempotency-Key"] == "evt_000001" else (200, {}))
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(3))
        proc = self.replay("--from", db, "--to", self.receiver.url, "--rate", "max",
                           "--log-format", "json", check=1)
        lines = [json.loads(line) for line in proc.stderr.decode().splitlines()]
        started = lines[0]
        self.assertIn("started", started["msg"])
        run_id = started["run_id"]
        dead = [l for l in lines if l.get("event_id") == "evt_000001"]
        self.assertEqual(len(dead), 1)
        self.assertEqual((dead[0]["run_id"], dead[0]["attempt"], dead[0]["status"],
                          dead[0]["reason"]), (run_id, 1, 422, "http_422"))
        self.assertIn("mailbox quota exceeded", dead[0]["detail"])
        shown = run(["events", "show", "evt_000001", "--archive", db], check=0)
        self.assertIn(b"mailbox quota exceeded", shown.stdout)

    def test_events_runs_lists_and_shows_runs_and_stats_refuses_an_unknown_run(self):
        db = os.path.join(self.tmp, "a.db")
        make_archive(db, sample_events(4))
        state = {"XDG_STATE_HOME": os.path.join(self.tmp, "state")}
        proc = self.replay("--from", db, "--to", self.receiver.url, "--rate", "max", "--json",
                           env=state, check=0)
        run_id = json.loads(proc.stdout)["run_id"]
        listed = [json.loads(l) for l in run(["events", "runs"], env=state, check=0)
                  .stdout.decode().splitlines()]
        self.assertEqual([r["run_id"] for r in listed], [run_id])
        r = listed[0]
        self.assertEqual((r["state"], r["selected"], r["delivered"], r["dead"], r["pending"]),
                         ("completed", 4, 4, 0, 0))
        self.assertIn("@", r["started_by"])
        self.assertEqual(r["archive"], db)
        shown = json.loads(run(["events", "runs", "show", run_id, "--json"], env=state,
                               check=0).stdout)
        self.assertEqual(shown["plan"]["source"]["path"], db)
        self.assertEqual(shown["attempts"], [{"outcome": "delivered", "reason": "", "count": 4}])
        self.assertIsNone(shown["resume"])
        proc = run(["events", "stats", "--archive", db, "--run", "run_nope"], check=2)
        self.assertIn(b"run_nope", proc.stderr)

    def test_a_foreign_dead_letter_table_needs_no_archive_flag(self):
        dlq = os.path.join(self.tmp, "their.db")
        con = sqlite3.connect(dlq)
        con.execute("CREATE TABLE failures (id TEXT, body TEXT)")
        con.executemany("INSERT INTO failures VALUES (?, ?)",
                        [("f%d" % i, json.dumps({"n": i})) for i in range(4)])
        con.commit()
        con.close()
        with open(dlq, "rb") as f:
            before = f.read()
        state = os.path.join(self.tmp, "state")
        proc = self.replay("--from", dlq, "--query",
                           "SELECT id AS event_id, body AS payload FROM failures",
                           "--to", self.receiver.url, "--rate", "max", "--log-format", "text",
                           env={"XDG_STATE_HOME": state}, check=0)
        runs_db = os.path.join(state, "hookctl", "runs.db")
        self.assertIn(("recorded in " + runs_db).encode(), proc.stderr)
        self.assertEqual(sorted(self.receiver.event_ids()), ["f0", "f1", "f2", "f3"])
        with open(dlq, "rb") as f:
            self.assertEqual(f.read(), before)  # never written
        con = sqlite3.connect(runs_db)
        self.assertEqual(con.execute("SELECT state, total FROM runs").fetchone(),
                         ("completed", 4))
        con.close()


class MimeSourceTest(TempDirTestCase):
    MESSAGE = ("From: Ann <ann@example.com>\r\nTo: hooks@example.net\r\nSubject: hello %d\r\n"
               "Message-ID: <m%d@example.com>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
               "body %d\r\n")

    def setUp(self):
        super().setUp()
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()
        super().tearDown()

    def check_source(self, path, n):
        runs = os.path.join(self.tmp, "runs.db")
        run(["replay", "--from", path, "--archive", runs, "--to", self.receiver.url,
             "--rate", "max", "--secret-env", "REPLAY_SECRET", "--mime-org", "org_m"],
            env=ENV, check=0)
        self.assertEqual(len(self.receiver.requests), n)
        subjects = sorted(json.loads(b)["subject"] for _, _, b in self.receiver.requests)
        self.assertEqual(subjects, sorted("hello %d" % i for i in range(n)))
        for _, h, b in self.receiver.requests:
            doc = json.loads(b)
            self.assertEqual(h["Idempotency-Key"], doc["event_id"])
            self.assertEqual(doc["org_id"], "org_m")

    def test_eml_directory(self):
        d = os.path.join(self.tmp, "emls")
        os.mkdir(d)
        for i in range(3):
            self.write("emls/%d.eml" % i, self.MESSAGE % (i, i, i))
        self.check_source(d, 3)

    def test_maildir(self):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.tmp, "Maildir", sub))
        for i in range(4):
            self.write("Maildir/%s/%d.host:2,S" % ("cur" if i % 2 else "new", i),
                       self.MESSAGE % (i, i, i))
        self.check_source(os.path.join(self.tmp, "Maildir"), 4)

    def test_mbox(self):
        text = "".join("From ann@example.com Thu Nov 26 10:00:00 2026\n" +
                       (self.MESSAGE % (i, i, i)).replace("\r\n", "\n") + "\n" for i in range(5))
        path = self.write("mail.mbox", text)
        self.check_source(path, 5)


if __name__ == "__main__":
    unittest.main()
