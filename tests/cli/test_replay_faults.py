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


class ListenReplayCase(TempDirTestCase):
    """A real `hookctl listen` (or several) and the helpers the replay fault tests share."""

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


class ListenReplayTest(ListenReplayCase):
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


if __name__ == "__main__":
    unittest.main()
