"""hookctl replay against the real `hookctl listen` on loopback: injected faults (503, 429 with
Retry-After, dropped connections), kill -9 and --resume, and rate accuracy."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import HOOKCTL, SANITIZED, TempDirTestCase, run  # noqa: E402
from test_replay import ENV, make_archive, sample_events  # noqa: E402


def listen_available():
    proc = subprocess.run([HOOKCTL, "listen", "--help"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    return proc.returncode == 0 and b"--ready-file" in proc.stdout


class ListenReplayTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        if not listen_available():
            self.skipTest("hookctl listen is not built into this binary")
        self.listener = None

    def tearDown(self):
        if self.listener is not None and self.listener.poll() is None:
            self.listener.send_signal(signal.SIGINT)
            try:
                self.listener.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.listener.kill()
                self.listener.wait()
        super().tearDown()

    def start_listen(self, *faults, bind="127.0.0.1:0"):
        ready = os.path.join(self.tmp, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.receiver_db = os.path.join(self.tmp, "receiver.db")
        self.listener = subprocess.Popen(
            [HOOKCTL, "listen", "--bind", bind, "--ready-file", ready, "--archive",
             self.receiver_db, "--secret-env", "REPLAY_SECRET", "--log-format", "json", "-q"]
            + list(faults), env=dict(os.environ, **ENV), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            self.assertIsNone(self.listener.poll(), "listen exited early")
            self.assertLess(time.monotonic(), deadline, "listen did not become ready")
            time.sleep(0.05)
        with open(ready) as f:
            url = f.read().strip()
        return url if url.startswith("http") else "http://" + url

    def stop_listen(self):
        self.listener.send_signal(signal.SIGINT)
        self.listener.wait(timeout=30)

    def receiver(self):
        return sqlite3.connect(self.receiver_db)

    def test_faults_every_event_delivered_once(self):
        n = 300 if SANITIZED else 2000
        source = os.path.join(self.tmp, "source.db")
        make_archive(source, sample_events(n))
        url = self.start_listen("--fail-rate", "0.2", "--fail-status", "503",
                                "--throttle-rate", "0.05", "--retry-after", "1s",
                                "--drop-rate", "0.02", "--seed", "11")
        proc = run(["replay", "--from", source, "--to", url, "--rate", "max", "--concurrency",
                    "64", "--retries", "30", "--backoff-base", "20ms", "--backoff-max", "500ms",
                    "--secret-env", "REPLAY_SECRET", "--no-progress", "--json"], env=ENV,
                   timeout=300, check=0)
        summary = json.loads(proc.stdout)
        self.assertEqual(summary["delivered"], n)
        self.assertEqual(summary["dead"], 0)
        self.assertGreater(summary["retried"], n * 0.2)
        self.stop_listen()
        db = self.receiver()
        self.assertEqual(db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events"
                                    ).fetchone(), (n, n))
        # That no request leaves during a Retry-After pause is the engine's logic: a unit test
        # checks it on fake time (tests/unit/replay/test_engine.cpp). Here: the 429s happened.
        src = sqlite3.connect(source)
        self.assertGreater(src.execute("SELECT COUNT(*) FROM attempts WHERE http_status = 429"
                                       ).fetchone()[0], 0)
        # The archive of the replay agrees: all delivered, every attempt recorded.
        src = sqlite3.connect(source)
        self.assertEqual(src.execute("SELECT COUNT(*) FROM events WHERE status = 'delivered'"
                                     ).fetchone()[0], n)
        self.assertEqual(src.execute("SELECT COUNT(*) FROM attempts").fetchone()[0],
                         summary["sent"])

    def test_kill_9_and_resume_delivers_all_with_bounded_duplicates(self):
        n = 200 if SANITIZED else 1000
        concurrency = 8
        source, _, replay = self.replay_under_way(n, concurrency, "5ms", "400/s", n // 3)
        replay.send_signal(signal.SIGKILL)
        replay.wait()
        run_id = sqlite3.connect(source).execute("SELECT run_id FROM runs").fetchone()[0]
        sent, summary = self.resume_all(source, run_id, n)
        self.assertEqual(summary["run_id"], run_id)
        # Only what the first invocation had not finished is sent again.
        self.assertLess(summary["sent"], n)
        self.assertEqual(self.receiver().execute(
            "SELECT COUNT(DISTINCT event_id) FROM events").fetchone()[0], n)
        # Re-sent after the kill: at most the requests that were in flight (the replay's own
        # attempt records count every request it sent across both invocations).
        self.assertLessEqual(sent - n, concurrency)

    def replay_under_way(self, n, concurrency, latency, rate, received):
        """Replays n archived events to listen --latency LATENCY; returns (source, url, the
        replay process) once the receiver holds `received` events."""
        source = os.path.join(self.tmp, "source.db")
        make_archive(source, sample_events(n))
        url = self.start_listen("--latency", latency)
        replay = self.start_replay(source, url, concurrency, rate)
        self.wait_received(replay, received)
        return source, url, replay

    def replay_env(self):
        """The environment of the replays: the secret, and run state under this test's tmp."""
        return dict(os.environ, **ENV, XDG_STATE_HOME=os.path.join(self.tmp, "state"))

    def start_replay(self, source, url, concurrency, rate):
        return subprocess.Popen(
            [HOOKCTL, "replay", "--from", source, "--to", url, "--rate", rate,
             "--concurrency", str(concurrency), "--secret-env", "REPLAY_SECRET",
             "--no-progress"], env=self.replay_env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)

    def wait_received(self, replay, count):
        deadline = time.monotonic() + 60
        while True:
            self.assertLess(time.monotonic(), deadline)
            self.assertIsNone(replay.poll(), "replay finished before it could be stopped")
            try:
                got = self.receiver().execute("SELECT COUNT(*) FROM events").fetchone()[0]
            except sqlite3.Error:
                got = 0
            if got >= count:
                return
            time.sleep(0.05)

    def resume_all(self, source, run_id, n):
        """Resumes RUN_ID to the end and checks all n events were delivered and stored once;
        returns (requests the run sent across every invocation, the resume's JSON summary)."""
        # --resume alone finds the run through $XDG_STATE_HOME/hookctl/runs/RUN_ID.
        proc = subprocess.run([HOOKCTL, "replay", "--resume", run_id, "--secret-env",
                               "REPLAY_SECRET", "--no-progress", "--json"],
                              env=self.replay_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        summary = json.loads(proc.stdout)
        self.stop_listen()
        db = self.receiver()
        self.assertEqual(db.execute("SELECT COUNT(*) FROM events").fetchone()[0], n)
        src = sqlite3.connect(source)
        self.assertEqual(src.execute("SELECT COUNT(*) FROM events WHERE status = 'delivered'"
                                     ).fetchone()[0], n)
        self.assertEqual(src.execute("SELECT state FROM runs").fetchone()[0], "completed")
        return src.execute("SELECT COUNT(*) FROM attempts").fetchone()[0], summary

    def test_sigint_finishes_in_flight_then_resume_sends_the_rest_once(self):
        n, concurrency = 300, 8
        source, _, replay = self.replay_under_way(n, concurrency, "150ms", "100/s", 40)
        interrupted = time.monotonic()
        replay.send_signal(signal.SIGINT)
        _, err = replay.communicate(timeout=30)
        # The requests in flight (150 ms each) finish; nothing new starts.
        self.assertLess(time.monotonic() - interrupted, 5)
        self.assertEqual(replay.returncode, 3, err)
        run_id = sqlite3.connect(source).execute("SELECT run_id FROM runs").fetchone()[0]
        self.assertIn(b"interrupted", err)
        self.assertIn(b"--resume " + run_id.encode(), err)
        src = sqlite3.connect(source)
        self.assertEqual(src.execute("SELECT state FROM runs").fetchone()[0], "paused")
        # Every request sent before the exit was answered and recorded as delivered.
        attempts = src.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        delivered = src.execute("SELECT COUNT(*) FROM events WHERE status = 'delivered'"
                                ).fetchone()[0]
        self.assertEqual(attempts, delivered)
        self.assertEqual(self.receiver().execute("SELECT COUNT(*) FROM events").fetchone()[0],
                         delivered)
        self.assertLess(delivered, n)
        src.close()
        # The resumed run sends each remaining event once: no request is repeated.
        self.assertEqual(self.resume_all(source, run_id, n)[0], n)

    def test_second_sigint_exits_at_once_and_stays_resumable(self):
        n, concurrency = 300, 8
        source, url, replay = self.replay_under_way(n, concurrency, "20s", "100/s", 1)
        time.sleep(0.5)  # requests are now waiting out the 20 s latency
        interrupted = time.monotonic()
        replay.send_signal(signal.SIGINT)
        time.sleep(0.2)
        replay.send_signal(signal.SIGINT)
        _, err = replay.communicate(timeout=30)
        self.assertLess(time.monotonic() - interrupted, 10)  # did not wait out the 20 s
        self.assertEqual(replay.returncode, 3, err)
        self.assertIn(b"interrupted again", err)
        run_id = sqlite3.connect(source).execute("SELECT run_id FROM runs").fetchone()[0]
        self.stop_listen()
        # The same receiver, now without the latency, on the port the run targets.
        self.start_listen(bind=url.split("//")[1].split("/")[0])
        # Re-sent: at most the requests that were in flight when it exited.
        self.assertLessEqual(self.resume_all(source, run_id, n)[0] - n, concurrency)

    # --- the defects of issue "Replay you can trust", against the real listen -----------------

    def start_listeners(self, count, *faults):
        """Starts `count` listens with `faults`, seeds 1..count; returns their URLs."""
        urls = []
        self.extra_listeners = []
        for seed in range(1, count + 1):
            ready = os.path.join(self.tmp, "ready-%d" % seed)
            proc = subprocess.Popen(
                [HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--ready-file", ready, "--archive",
                 os.path.join(self.tmp, "receiver-%d.db" % seed), "--secret-env",
                 "REPLAY_SECRET", "-q", "--seed", str(seed)] + list(faults),
                env=dict(os.environ, **ENV), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            self.extra_listeners.append(proc)
            self.addCleanup(lambda p=proc: (p.send_signal(signal.SIGINT), p.wait(timeout=30)))
            deadline = time.monotonic() + 30
            while not os.path.exists(ready):
                self.assertIsNone(proc.poll(), "listen exited early")
                self.assertLess(time.monotonic(), deadline, "listen did not become ready")
                time.sleep(0.05)
            with open(ready) as f:
                url = f.read().strip()
            urls.append(url if url.startswith("http") else "http://" + url)
        return urls

    def ledger(self, db, run_id):
        con = sqlite3.connect(db)
        rows = dict(con.execute("SELECT state, COUNT(*) FROM run_items WHERE run_id = ? "
                                "GROUP BY state", (run_id,)).fetchall())
        state = con.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
        con.close()
        return state, rows.get("delivered", 0), rows.get("dead", 0), rows.get("pending", 0)

    def test_every_selected_event_is_accounted_for_across_50_seeded_fault_runs(self):
        """listen --fail-rate 0.5 --throttle-rate 0.3 --retry-after, 12 failed events, --rate
        50/s, short backoff: a run that exits 0 delivered all 12; one that exits 1 settled them
        all (some dead); any other exit leaves a resumable run whose resume settles them."""
        from concurrent.futures import ThreadPoolExecutor
        runs = 20 if SANITIZED else 50
        urls = self.start_listeners(5, "--fail-rate", "0.5", "--throttle-rate", "0.3",
                                    "--retry-after", "1s")

        def one(i):
            source = os.path.join(self.tmp, "s%d.db" % i)
            make_archive(source, sample_events(12))
            env = dict(os.environ, **ENV, XDG_STATE_HOME=os.path.join(self.tmp, "state%d" % i))
            args = [HOOKCTL, "replay", "--from", source, "--to", urls[i % len(urls)], "--rate",
                    "50/s", "--backoff-base", "100ms", "--backoff-max", "400ms",
                    "--secret-env", "REPLAY_SECRET", "--no-progress", "--json"]
            first = subprocess.run(args, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=120)
            summary = json.loads(first.stdout)
            run_id = summary["run_id"]
            codes = [first.returncode]
            for _ in range(5):
                state, delivered, dead, pending = self.ledger(source, run_id)
                if codes[-1] in (0, 1):
                    break
                resumed = subprocess.run(
                    [HOOKCTL, "replay", "--resume", run_id, "--secret-env", "REPLAY_SECRET",
                     "--no-progress", "--json"], env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, timeout=120)
                codes.append(resumed.returncode)
            return source, run_id, codes, first.stderr

        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(one, range(runs)))
        for source, run_id, codes, stderr in results:
            state, delivered, dead, pending = self.ledger(source, run_id)
            self.assertEqual(delivered + dead + pending, 12, (run_id, codes))
            self.assertEqual(pending, 0, (run_id, codes, stderr[-2000:]))
            self.assertEqual(state, "completed", (run_id, codes))
            self.assertIn(codes[-1], (0, 1), codes)
            self.assertEqual(codes[-1] == 0, dead == 0, codes)
            for code in codes[:-1]:
                self.assertIn(code, (3, 4), codes)  # stopped resumably, then resumed
            con = sqlite3.connect(source)
            statuses = dict(con.execute("SELECT status, COUNT(*) FROM events GROUP BY status"))
            con.close()
            self.assertEqual(statuses.get("delivered", 0), delivered, run_id)
            self.assertEqual(statuses.get("dead", 0), dead, run_id)

    def test_resume_after_sigint_or_kill_9_never_sends_beyond_the_limit(self):
        for how, limit in ((signal.SIGINT, 40), (signal.SIGKILL, 60)):
            with self.subTest(how=how):
                self.tearDown()
                self.setUp()
                source = os.path.join(self.tmp, "source.db")
                make_archive(source, sample_events(200))
                url = self.start_listen()
                replay = subprocess.Popen(
                    [HOOKCTL, "replay", "--from", source, "--to", url, "--rate", "20/s",
                     "--limit", str(limit), "--secret-env", "REPLAY_SECRET", "--no-progress"],
                    env=self.replay_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                self.wait_received(replay, 10)
                replay.send_signal(how)
                replay.wait(timeout=30)
                run_id = sqlite3.connect(source).execute("SELECT run_id FROM runs").fetchone()[0]
                proc = subprocess.run([HOOKCTL, "replay", "--resume", run_id, "--secret-env",
                                       "REPLAY_SECRET", "--no-progress", "--json"],
                                      env=self.replay_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, timeout=120)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.stop_listen()
                got = self.receiver().execute("SELECT COUNT(*) FROM events").fetchone()[0]
                self.assertEqual(got, limit)  # the run's selection, all of it, and no more
                state, delivered, dead, pending = self.ledger(source, run_id)
                self.assertEqual((state, delivered, dead, pending), ("completed", limit, 0, 0))
                # The attempts: every selected event once, plus at most the concurrency (8)
                # re-sent after the interruption.
                sent = sqlite3.connect(source).execute("SELECT COUNT(*) FROM attempts"
                                                       ).fetchone()[0]
                self.assertLessEqual(sent, limit + 8)

    def test_a_wrong_secret_stops_the_run_and_rewrites_no_dead_letter(self):
        source = os.path.join(self.tmp, "source.db")
        events = sample_events(200)
        make_archive(source, events)
        con = sqlite3.connect(source)
        con.execute("UPDATE events SET last_error = 'http_503 from the outage', attempts = 1")
        con.commit()
        con.close()
        url = self.start_listen()  # verifies with REPLAY_SECRET
        proc = subprocess.run(
            [HOOKCTL, "replay", "--from", source, "--to", url, "--rate", "max",
             "--secret-env", "WRONG_SECRET", "--no-progress", "--json"],
            env=dict(self.replay_env(), WRONG_SECRET="not-the-receivers-secret"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(proc.returncode, 3, proc.stderr)
        summary = json.loads(proc.stdout)
        self.assertEqual(summary["state"], "tripped")
        self.assertIn("http_401", summary["reason"])
        self.assertIn("--resume " + summary["run_id"], summary["resume"])
        self.assertIn(b"check the secret", proc.stderr)
        self.assertLessEqual(summary["sent"], 3 + 8)  # the first attempts and those in flight
        con = sqlite3.connect(source)
        # No event dead-lettered, every last_error as it was; the attempts are recorded.
        self.assertEqual(con.execute("SELECT COUNT(*) FROM events WHERE status != 'failed' OR "
                                     "last_error != 'http_503 from the outage'").fetchone()[0], 0)
        self.assertEqual(con.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'failed' AND "
                                     "reason = 'http_401'").fetchone()[0], summary["sent"])
        self.assertEqual(con.execute("SELECT state FROM runs").fetchone()[0], "aborted")
        detail = con.execute("SELECT detail FROM attempts LIMIT 1").fetchone()[0]
        self.assertTrue(detail, "the receiver's answer is kept with the attempt")
        self.assertNotIn("not-the-receivers-secret", detail)
        con.close()
        # With the right secret the resume finishes the same 200.
        proc = subprocess.run([HOOKCTL, "replay", "--resume", summary["run_id"],
                               "--secret-env", "REPLAY_SECRET", "--no-progress", "--json"],
                              env=self.replay_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["run_delivered"], 200)

if __name__ == "__main__":
    unittest.main()
