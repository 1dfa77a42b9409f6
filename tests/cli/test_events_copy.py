"""hookctl events copy (issue 17 item 5): events, bodies, raw MIME, runs, run items and attempts
between real SQLite files and a throwaway PostgreSQL 15 (pg_fixture), idempotent and resumable.
Fails, never skips, when PostgreSQL is missing."""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import unittest

from hookctl_test import HOOKCTL, SANITIZED, TempDirTestCase, run
from pg_fixture import PgServer
from test_listen_common import SECRET, SECRET_ENV, Receiver

INTERRUPTED = 1000 if SANITIZED else 3000
PG = None


def setUpModule():
    global PG
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()


def ndjson_events(prefix, count):
    """Events of every shape: JSON, text and binary bodies, raw MIME, headers, statuses, orgs;
    ids not in insertion order."""
    lines = []
    for i in range(count):
        event = {"event_id": f"{prefix}_{(i * 7919) % count:05d}",
                 "received_at": 1_780_000_000 + i,
                 "org_id": f"org_{i % 3}",
                 "headers": [["X-A", str(i)], ["X-A", "again"]],
                 "status": ["received", "failed", "dead"][i % 3],
                 "attempts": i % 4}
        if i % 5 == 0:
            event["body_base64"] = base64.b64encode(bytes([i % 256, 0, 255, 10])).decode()
        elif i % 5 == 1:
            event["payload"] = f"plain text {i} \u00e9"
        else:
            event["payload"] = {"n": i, "subject": f"s{i}"}
        if i % 4 == 0:
            event["raw_mime_base64"] = base64.b64encode(
                f"Subject: m{i}\r\n\r\nbody\r\n".encode()).decode()
        lines.append(json.dumps(event))
    return "\n".join(lines) + "\n"


def exported(archive):
    """events export, one object per event id, seq left out (each archive numbers its own)."""
    out = run(["events", "export", "--archive", archive], check=0).stdout.decode()
    events = {}
    for line in out.splitlines():
        obj = json.loads(line)
        obj.pop("seq")
        events[obj["event_id"]] = json.dumps(obj)
    return events


def sqlite_rows(path, sql):
    with sqlite3.connect(path) as db:
        return sorted(db.execute(sql).fetchall())


def copy(src, dst, *extra, check=0):
    proc = run(["events", "copy", "--from", src, "--to", dst, "--json", *extra], timeout=300)
    if check is not None:
        assert proc.returncode == check, proc.stderr.decode()
    return json.loads(proc.stdout) if proc.returncode == 0 else proc


class CopyTest(TempDirTestCase):
    def populated(self, name, count):
        db = os.path.join(self.tmp, f"{name}.db")
        src = self.write(f"{name}.ndjson", ndjson_events(name, count))
        run(["events", "import", "--archive", db, src], check=0)
        return db

    def test_sqlite_postgres_sqlite_round_trip_keeps_every_event(self):
        a = self.populated("rt", 120)
        # A run with items and attempts: replay the received events into a real listen.
        target = Receiver(self.tmp, name="target")
        try:
            proc = run(["replay", "--from", a, "--to", target.url, "--status", "received",
                        "--secret-env", SECRET_ENV, "--no-progress"], env={SECRET_ENV: SECRET},
                       timeout=120)
            # Text and binary bodies are dead-lettered (400: not JSON), JSON ones delivered.
            self.assertEqual(proc.returncode, 1, proc.stderr)
        finally:
            target.stop()
        uri = PG.create_database("copy_rt")
        c = os.path.join(self.tmp, "back.db")
        first = copy(a, uri, "--batch", "7")
        self.assertEqual(first["events"], {"read": 120, "copied": 120, "present": 0})
        self.assertEqual(first["runs"]["copied"], 1)
        self.assertEqual(first["run_items"]["copied"], 40)
        self.assertEqual(first["attempts"]["copied"], 40)
        back = copy(uri, c, "--batch", "11")
        self.assertEqual(back["events"]["copied"], 120)

        source = exported(a)
        self.assertEqual(len(source), 120)
        self.assertEqual(exported(uri), source)
        self.assertEqual(exported(c), source)
        for table, cols in (("runs", "*"),
                            ("attempts", "run_id, event_id, target, attempt, at_ms, "
                                         "http_status, latency_ms, outcome, reason, detail"),
                            ("run_items", "run_id, item, event_id, state, attempts")):
            with self.subTest(table=table):
                self.assertEqual(sqlite_rows(c, f"SELECT {cols} FROM {table}"),
                                 sqlite_rows(a, f"SELECT {cols} FROM {table}"))
        # Every item of the copied run points at its event in the copy.
        self.assertEqual(sqlite_rows(c, "SELECT count(*) FROM run_items i JOIN events e ON "
                                        "e.seq = i.seq AND e.event_id = i.event_id"), [(40,)])
        self.assertEqual(PG.psql("copy_rt", "SELECT count(*) FROM run_items i JOIN events e "
                                            "ON e.seq = i.seq AND e.event_id = i.event_id"),
                         [["40"]])
        # The run goes on in the copy: nothing is pending, so a resume has nothing to send.
        runs = run(["events", "runs", "--archive", c, "--json"], check=0).stdout.decode()
        self.assertIn('"completed"', runs)

        # A second copy copies nothing and changes nothing.
        again = copy(a, uri)
        for kind in ("events", "runs", "run_items", "attempts"):
            with self.subTest(kind=kind):
                self.assertEqual(again[kind]["copied"], 0, again)
                self.assertEqual(again[kind]["present"], again[kind]["read"], again)
        self.assertEqual(PG.psql("copy_rt", "SELECT (SELECT count(*) FROM events), (SELECT "
                                            "count(*) FROM attempts), (SELECT count(*) FROM "
                                            "run_items), (SELECT count(*) FROM runs)"),
                         [["120", "40", "40", "1"]])

    def test_sqlite_to_sqlite_keeps_the_export_byte_identical(self):
        a = self.populated("ss", 50)
        b = os.path.join(self.tmp, "b.db")
        proc = run(["events", "copy", "--from", a, "--to", b], check=0)
        self.assertIn(b"done", proc.stderr)
        self.assertEqual(run(["events", "export", "--archive", b], check=0).stdout,
                         run(["events", "export", "--archive", a], check=0).stdout)
        quiet = run(["events", "copy", "--from", a, "--to", b, "--quiet"], check=0)
        self.assertEqual((quiet.stdout, quiet.stderr), (b"", b""))

    def test_interrupted_copy_resumes_to_exactly_the_source(self):
        a = self.populated("big", INTERRUPTED)
        uri = PG.create_database("copy_kill")
        proc = subprocess.Popen([HOOKCTL, "events", "copy", "--from", a, "--to", uri, "--batch",
                                 "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = proc.stderr.readline()  # the first batch is committed
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
        self.assertIn(b"copy ", first)
        stored = int(PG.psql("copy_kill", "SELECT count(*) FROM events")[0][0])
        self.assertGreater(stored, 0)
        self.assertLess(stored, INTERRUPTED, "the copy finished before it was killed")
        resumed = copy(a, uri, "--batch", "500")
        self.assertEqual(resumed["events"]["copied"] + stored, INTERRUPTED)
        self.assertEqual(resumed["events"]["present"], stored)
        self.assertEqual(exported(uri), exported(a))

    def test_encrypted_source_needs_its_key_and_destination_seals_with_its_own(self):
        keys = []
        for name in ("from.key", "to.key"):
            secret = run(["secret", "new", "--kind", "archive", "-q"], check=0).stdout
            path = os.path.join(self.tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, secret)
            os.close(fd)
            keys.append(path)
        a = os.path.join(self.tmp, "sealed.db")
        src = self.write("sealed.ndjson", ndjson_events("enc", 10))
        run(["events", "import", "--archive", a, "--archive-key", keys[0], src], check=0)
        uri = PG.create_database("copy_enc")
        refused = run(["events", "copy", "--from", a, "--to", uri])
        self.assertEqual(refused.returncode, 2, refused.stderr)
        self.assertIn(b"--from-key", refused.stderr)
        copy(a, uri, "--from-key", keys[0], "--to-key", keys[1])
        rows = PG.psql("copy_enc", "SELECT DISTINCT encode(substr(body, 1, 4), 'hex') FROM "
                                   "event_bodies")
        self.assertEqual(rows, [["89484b45"]])
        one = "enc_00003"
        shown = run(["events", "show", "--archive", uri, "--archive-key", keys[1], one, "--json"],
                    check=0).stdout
        original = run(["events", "show", "--archive", a, "--archive-key", keys[0], one,
                        "--json"], check=0).stdout
        self.assertEqual(json.loads(shown)["payload"], json.loads(original)["payload"])
        self.assertEqual(run(["events", "show", "--archive", uri, "--archive-key", keys[0],
                              one]).returncode, 4)

    def test_bad_arguments_exit_2_and_never_echo_a_password(self):
        a = self.populated("bad", 3)
        secret_uri = PG.uri("nowhere").replace("@", ":Pw-never-shown@")
        for args in (["--from", a, "--to", secret_uri], ["--from", secret_uri, "--to", a]):
            with self.subTest(args=args[0]):
                proc = run(["events", "copy", *args])
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertNotIn(b"Pw-never-shown", proc.stdout + proc.stderr)
        same = run(["events", "copy", "--from", a, "--to", a])
        self.assertEqual(same.returncode, 2, same.stderr)
        self.assertIn(b"same archive", same.stderr)


if __name__ == "__main__":
    unittest.main()
