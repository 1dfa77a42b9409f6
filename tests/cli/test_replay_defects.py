"""The defects of issue "Replay you can trust" against the real `hookctl listen` on loopback:
every selected event accounted for across seeded fault runs, resume never past --limit, a wrong
secret stops the run without rewriting the dead letters. (Apart from test_replay_faults.py so
that ctest runs the two halves side by side.)"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import test_replay_faults as faults  # noqa: E402
from hookctl_test import HOOKCTL, SANITIZED  # noqa: E402
from test_replay import ENV, make_archive, sample_events  # noqa: E402


class ReplayDefectsTest(faults.ListenReplayCase):
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
