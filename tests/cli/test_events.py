"""hookctl events: import/export round trip, filters, show, mark, stats, migrate, bad files."""
import json
import os
import shutil
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import SOURCE, TempDirTestCase, run  # noqa: E402

SAMPLE = os.path.join(SOURCE, "examples", "sample-archive.ndjson")

# Version 1 of the schema, as hookctl-events(1) documents it: what an older hookctl wrote.
SCHEMA_V1 = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, received_at_ms INTEGER NOT NULL,
    org_id TEXT NOT NULL DEFAULT '', scheme TEXT NOT NULL DEFAULT '',
    headers TEXT NOT NULL DEFAULT '[]', body BLOB NOT NULL, raw_mime BLOB,
    status TEXT NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'delivered', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    updated_at_ms INTEGER NOT NULL);
CREATE INDEX events_received_at ON events (received_at_ms);
CREATE INDEX events_status ON events (status, received_at_ms);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL DEFAULT '', event_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '', attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    http_status INTEGER NOT NULL DEFAULT 0, latency_ms REAL NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');
CREATE INDEX attempts_event ON attempts (event_id, at_ms);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '', options TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'paused', 'completed', 'aborted', 'failed')),
    total INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    cursor INTEGER NOT NULL DEFAULT 0, created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '');
PRAGMA user_version = 1;
PRAGMA application_id = 1751868276;
"""


def ndjson(data):
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def sample_lines():
    with open(SAMPLE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class EventsTest(TempDirTestCase):
    def archive(self, name="a.db"):
        return os.path.join(self.tmp, name)

    def imported(self, name="a.db"):
        path = self.archive(name)
        run(["events", "import", "--archive", path, SAMPLE], check=0)
        return path

    def ids(self, args):
        proc = run(["events", "list"] + args, check=0)
        return [e["event_id"] for e in ndjson(proc.stdout)]

    # --- import / export -----------------------------------------------------------------

    def test_import_then_export_round_trips(self):
        first = self.archive("first.db")
        proc = run(["events", "import", "--archive", first, SAMPLE], check=0)
        self.assertIn(b"imported 12 event(s)", proc.stderr)
        exported = run(["events", "export", "--archive", first], check=0).stdout
        events = ndjson(exported)
        self.assertEqual(len(events), 12)
        sample = sample_lines()
        for original, out in zip(sample, events):
            self.assertEqual(out["event_id"], original["event_id"])
            self.assertEqual(out["received_at"], original["received_at"])
            self.assertEqual(out["status"], original["status"])
            self.assertEqual(out["org_id"], original["org_id"])
            self.assertEqual(out["headers"], original["headers"])
            self.assertEqual(out["attempts"], original["attempts"])
            self.assertEqual(out["last_error"], original.get("last_error", ""))
            self.assertEqual(out["source"], "import")
            # Same bytes: the payload's compact text, keys in their original order.
            self.assertEqual(json.dumps(out["payload"], separators=(",", ":"), ensure_ascii=False),
                             json.dumps(original["payload"], separators=(",", ":"),
                                        ensure_ascii=False))

        # export -> import -> export gives the same lines (updated_at aside).
        second = self.archive("second.db")
        run(["events", "import", "--archive", second], input=exported, check=0)
        again = ndjson(run(["events", "export", "--archive", second], check=0).stdout)
        for a, b in zip(events, again):
            a.pop("updated_at")
            b.pop("updated_at")
            self.assertEqual(a, b)

        # Importing again: all duplicates, nothing changes.
        proc = run(["events", "import", "--archive", second, "--json"], input=exported, check=0)
        summary = json.loads(proc.stdout)
        self.assertEqual(summary["inserted"], 0)
        self.assertEqual(summary["duplicates"], 12)

    def test_export_keeps_binary_and_non_json_bodies_exact(self):
        lines = [
            {"event_id": "bin", "body_base64": "AP8BAgMEBQ==", "raw_mime_base64": "RnJvbTogYQ0KDQo="},
            {"event_id": "text", "payload": "{\"spaced\": true}\n"},
            {"event_id": "num", "payload": 12.5},
        ]
        path = self.archive()
        run(["events", "import", "--archive", path],
            input="\n".join(json.dumps(l) for l in lines), check=0)
        out = {e["event_id"]: e for e in ndjson(run(["events", "export", "--archive", path]).stdout)}
        self.assertEqual(out["bin"]["body_base64"], "AP8BAgMEBQ==")
        self.assertEqual(out["bin"]["raw_mime_base64"], "RnJvbTogYQ0KDQo=")
        self.assertNotIn("payload", out["bin"])
        self.assertEqual(out["text"]["payload"], "{\"spaced\": true}\n")
        self.assertEqual(out["num"]["payload"], 12.5)
        with sqlite3.connect(path) as db:
            body = db.execute("SELECT body FROM events JOIN event_bodies USING (seq) "
                              "WHERE event_id='bin'").fetchone()[0]
        self.assertEqual(body, b"\x00\xff\x01\x02\x03\x04\x05")

    def test_export_to_a_file(self):
        path = self.imported()
        out = os.path.join(self.tmp, "out.ndjson")
        run(["events", "export", "--archive", path, "--status", "failed", "-o", out], check=0)
        with open(out, encoding="utf-8") as f:
            self.assertEqual(len(f.read().splitlines()), 3)
        self.assertFalse(os.path.exists(out + ".partial"))

    def test_export_to_an_unwritable_place_is_an_environment_error(self):
        path = self.imported()
        for out in (os.path.join(self.tmp, "no-such-folder", "out.ndjson"),
                    os.path.join(self.tmp, "a-folder")):
            os.makedirs(os.path.join(self.tmp, "a-folder"), exist_ok=True)
            with self.subTest(out=out):
                proc = run(["events", "export", "--archive", path, "-o", out])
                self.assertEqual(proc.returncode, 4, proc.stderr)
                self.assertIn(b"--output: cannot write", proc.stderr)
                self.assertEqual(proc.stdout, b"")

    def test_failed_import_leaves_no_new_archive_behind(self):
        path = self.archive("new.db")
        proc = run(["events", "import", "--archive", path, "-"], input='{"event_id":"x"}\n')
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(sorted(os.listdir(self.tmp)), [])
        # An archive that was there before stays, with what it held.
        existing = self.imported("old.db")
        before = self.ids(["--archive", existing])
        proc = run(["events", "import", "--archive", existing, "-"], input="{broken\n")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(self.ids(["--archive", existing]), before)

    def test_bad_import_line_names_the_line_and_imports_nothing(self):
        path = self.archive()
        run(["events", "import", "--archive", path, "-"], input="", check=0)  # an empty archive
        good = '{"event_id":"g1","payload":{}}'
        cases = [
            ("{broken", b"not valid JSON"),
            ('{"payload":{}}', b"event_id"),
            ('{"event_id":"x"}', b"payload"),
            ('{"event_id":"x","payload":{},"status":"lost"}', b"status"),
            ('{"event_id":"x","payload":{},"received_at":"last tuesday"}', b"received_at"),
        ]
        for bad, what in cases:
            data = "\n".join([good, "", bad, '{"event_id":"g2","payload":{}}']) + "\n"
            proc = run(["events", "import", "--archive", path, "-"], input=data)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn(b"stdin line 3", proc.stderr)
            self.assertIn(what, proc.stderr)
            self.assertIn(b"nothing was imported", proc.stderr)
            self.assertEqual(self.ids(["--archive", path]), [])
        bad_file = self.write("bad.ndjson", good + "\n[]\n")
        proc = run(["events", "import", "--archive", path, bad_file])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"bad.ndjson line 2", proc.stderr)

    def test_import_of_a_missing_file_is_an_input_error(self):
        proc = run(["events", "import", "--archive", self.archive(),
                    os.path.join(self.tmp, "nope.ndjson")])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"nope.ndjson", proc.stderr)

    # --- list filters --------------------------------------------------------------------

    def test_list_filters(self):
        path = self.imported()
        a = ["--archive", path]
        self.assertEqual(len(self.ids(a)), 12)
        self.assertEqual(self.ids(a + ["--status", "failed"]), ["evt_0003", "evt_0006", "evt_0010"])
        self.assertEqual(self.ids(a + ["--status", "failed,dead"]),
                         ["evt_0003", "evt_0006", "evt_0007", "evt_0010"])
        self.assertEqual(self.ids(a + ["--status", "failed", "--status", "dead"]),
                         ["evt_0003", "evt_0006", "evt_0007", "evt_0010"])
        self.assertEqual(self.ids(a + ["--org", "org_globex"]), ["evt_0003", "evt_0006", "evt_0009"])
        self.assertEqual(self.ids(a + ["--org", "org_globex", "--status", "received"]),
                         ["evt_0009"])
        self.assertEqual(self.ids(a + ["--since", "2026-11-26"]),
                         ["evt_%04d" % n for n in range(7, 13)])
        self.assertEqual(self.ids(a + ["--until", "2026-11-25T10:00:00Z"]),
                         ["evt_0001", "evt_0002"])
        self.assertEqual(self.ids(a + ["--since", "2026-11-25T10:00:00+00:00",
                                       "--until", "@1764064800"]),  # 2026-11-25T10:00Z .. 10:00Z
                         [])
        self.assertEqual(self.ids(a + ["--limit", "2"]), ["evt_0001", "evt_0002"])
        # Relative times: the sample is less than 1000 days old.
        self.assertEqual(len(self.ids(a + ["--since", "1000d"])), 12)
        self.assertEqual(self.ids(a + ["--until", "1000d"]), [])

    def test_list_output_is_ndjson_without_bodies_off_a_tty(self):
        path = self.imported()
        events = ndjson(run(["events", "list", "--archive", path], check=0).stdout)
        self.assertEqual(len(events), 12)
        self.assertNotIn("payload", events[0])
        self.assertEqual(events[0]["status"], "delivered")
        self.assertEqual(events[2]["last_error"], "http_503")

    def test_bad_filter_values_are_usage_errors(self):
        path = self.imported()
        for args in (["--status", "lost"], ["--since", "someday"], ["--limit", "-3"]):
            proc = run(["events", "list", "--archive", path] + args)
            self.assertEqual(proc.returncode, 2, args)

    # --- show, mark, stats ---------------------------------------------------------------

    def test_show(self):
        path = self.imported()
        proc = run(["events", "show", "--archive", path, "evt_0003"], check=0)
        out = proc.stdout.decode()
        self.assertIn("event_id:    evt_0003", out)
        self.assertIn("status:      failed", out)
        self.assertIn("last_error:  http_503", out)
        self.assertIn("User-Agent: mailparse-webhooks/2.3", out)
        self.assertIn('"subject":"Re: shipping delay"', out)
        doc = json.loads(run(["events", "show", "--archive", path, "evt_0003", "--json"],
                             check=0).stdout)
        self.assertEqual(doc["payload"]["subject"], "Re: shipping delay")
        self.assertEqual(doc["delivery_attempts"], [])
        proc = run(["events", "show", "--archive", path, "evt_9999"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"no event with id 'evt_9999'", proc.stderr)

    def test_mark(self):
        path = self.imported()
        run(["events", "mark", "--archive", path, "evt_0005", "evt_0009", "--status", "dead",
             "--reason", "customer deleted"], check=0)
        self.assertEqual(self.ids(["--archive", path, "--status", "dead"]),
                         ["evt_0005", "evt_0007", "evt_0009"])
        doc = json.loads(run(["events", "show", "--archive", path, "evt_0005", "--json"]).stdout)
        self.assertEqual(doc["status"], "dead")
        self.assertEqual(doc["last_error"], "customer deleted")
        # An unknown id marks nothing.
        proc = run(["events", "mark", "--archive", path, "evt_0001", "evt_nope", "--status",
                    "failed"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"evt_nope", proc.stderr)
        self.assertIn(b"nothing was marked", proc.stderr)
        self.assertNotIn("evt_0001", self.ids(["--archive", path, "--status", "failed"]))
        # Only failed, dead, delivered.
        proc = run(["events", "mark", "--archive", path, "evt_0001", "--status", "received"])
        self.assertEqual(proc.returncode, 2)
        # Delivered with no reason clears last_error.
        run(["events", "mark", "--archive", path, "evt_0003", "--status", "delivered"], check=0)
        doc = json.loads(run(["events", "show", "--archive", path, "evt_0003", "--json"]).stdout)
        self.assertEqual((doc["status"], doc["last_error"]), ("delivered", ""))

    def test_stats(self):
        path = self.imported()
        # Attempts written the way the schema documents it (as replay does).
        with sqlite3.connect(path) as db:
            for i, latency in enumerate([10.0, 20.0, 30.0, 40.0, 500.0]):
                db.execute("INSERT INTO attempts (run_id, event_id, target, attempt, at_ms, "
                           "http_status, latency_ms, outcome, reason) VALUES "
                           "('run_x', 'evt_0003', 't', ?, ?, ?, ?, ?, ?)",
                           (i + 1, 1000 + i, 503 if i < 4 else 200, latency,
                            "retry" if i < 4 else "delivered", "http_503" if i < 4 else ""))
        doc = json.loads(run(["events", "stats", "--archive", path, "--json"], check=0).stdout)
        self.assertEqual(doc["total"], 12)
        self.assertEqual(doc["by_status"],
                         {"received": 3, "delivered": 5, "failed": 3, "dead": 1})
        self.assertEqual(doc["by_org"]["org_acme"], 6)
        self.assertEqual(list(doc["by_org"])[0], "org_acme")
        self.assertEqual(doc["by_day"], {"2026-11-25": 6, "2026-11-26": 6})
        self.assertEqual(doc["attempts"], 5)
        self.assertEqual(doc["attempts_by_outcome"], {"retry": 4, "delivered": 1})
        self.assertEqual(doc["latency_ms"]["count"], 5)
        self.assertEqual(doc["latency_ms"]["p50"], 30.0)
        self.assertEqual(doc["latency_ms"]["p99"], 500.0)
        filtered = json.loads(run(["events", "stats", "--archive", path, "--org", "org_initech",
                                   "--json"], check=0).stdout)
        self.assertEqual(filtered["total"], 3)
        # An unknown run is an input error, not an empty result.
        proc = run(["events", "stats", "--archive", path, "--run", "nope", "--json"], check=2)
        self.assertIn(b"--run nope: no such run", proc.stderr)
        text = run(["events", "stats", "--archive", path], check=0).stdout.decode()
        self.assertIn("events: 12", text)
        self.assertIn("p50 30.0 ms", text)

    # --- schema versions and bad files ----------------------------------------------------

    def test_migrates_a_version_1_archive(self):
        path = self.archive("v1.db")
        with sqlite3.connect(path) as db:
            db.executescript(SCHEMA_V1)
            db.execute("INSERT INTO events (event_id, received_at_ms, body, status, updated_at_ms) "
                       "VALUES ('old', 1764064800000, CAST('{\"a\":1}' AS BLOB), 'failed', 0)")
        db.close()
        # Read-only commands refuse the old schema and say what to do.
        proc = run(["events", "list", "--archive", path])
        self.assertEqual(proc.returncode, 4)
        self.assertIn(b"schema version 1", proc.stderr)
        self.assertIn(b"hookctl events migrate", proc.stderr)
        run(["events", "migrate", "--archive", path], check=0)
        with sqlite3.connect(path) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
            columns = [r[1] for r in db.execute("PRAGMA table_info(events)")]
            self.assertIn("trace_id", columns)
            self.assertNotIn("body", columns)  # version 3 keeps the bytes in event_bodies
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            self.assertIn("requests", tables)
            self.assertIn("event_bodies", tables)
        db.close()
        events = ndjson(run(["events", "export", "--archive", path], check=0).stdout)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["payload"], {"a": 1})
        self.assertEqual(events[0]["status"], "failed")
        # A writer (import) migrates on open too.
        path2 = self.archive("v1b.db")
        with sqlite3.connect(path2) as db:
            db.executescript(SCHEMA_V1)
        db.close()
        run(["events", "import", "--archive", path2, SAMPLE], check=0)
        self.assertEqual(len(self.ids(["--archive", path2])), 12)

    def test_new_archive_is_wal_and_versioned(self):
        path = self.imported()
        with sqlite3.connect(path) as db:
            self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
            self.assertEqual(db.execute("PRAGMA application_id").fetchone()[0], 0x686B6374)
        db.close()

    def test_missing_archive_is_an_environment_error_and_is_not_created(self):
        path = self.archive("missing.db")
        for sub in (["list"], ["stats"], ["export"], ["show", "x"],
                    ["mark", "x", "--status", "dead"]):
            proc = run(["events"] + sub + ["--archive", path])
            self.assertEqual(proc.returncode, 4, sub)
            self.assertIn(b"does not exist", proc.stderr)
            self.assertFalse(os.path.exists(path))

    def test_corrupt_archive_gives_exit_4_and_a_clear_message(self):
        garbage = self.write("garbage.db", bytes((i * 7919) % 256 for i in range(8192)))
        for sub in (["list"], ["stats"], ["export"], ["import", SAMPLE],
                    ["mark", "x", "--status", "dead"], ["migrate"]):
            proc = run(["events"] + sub + ["--archive", garbage])
            self.assertEqual(proc.returncode, 4, (sub, proc.stderr))
            self.assertIn(garbage.encode(), proc.stderr)
            self.assertIn(b"corrupt", proc.stderr)
            self.assertNotIn(b"terminate", proc.stderr)
        # A truncated real archive.
        path = self.imported()
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        with open(path, "r+b") as f:
            f.seek(0)
            f.write(b"\0" * 100)  # the header is gone
        proc = run(["events", "list", "--archive", path])
        self.assertEqual(proc.returncode, 4, proc.stderr)
        # A SQLite file of another program.
        other = self.archive("other.db")
        with sqlite3.connect(other) as db:
            db.execute("CREATE TABLE notes (x)")
        db.close()
        proc = run(["events", "import", "--archive", other, SAMPLE])
        self.assertEqual(proc.returncode, 4)
        self.assertIn(b"not a hookctl archive", proc.stderr)

    def test_archive_path_is_a_directory(self):
        proc = run(["events", "import", "--archive", self.tmp, SAMPLE])
        self.assertEqual(proc.returncode, 4)
        self.assertIn(b"is a directory", proc.stderr)

    def test_read_only_archive_gives_exit_4_when_writing(self):
        import subprocess
        from hookctl_test import HOOKCTL

        path = self.imported()
        os.chmod(path, 0o444)
        os.chmod(self.tmp, 0o755)
        # The user below reads nothing from the clone (which may sit in a private folder, as
        # `mktemp -d` makes): the fixture, and the binary when it cannot reach it, are copied
        # into this test's own folder with modes anyone can read.
        sample = os.path.join(self.tmp, "sample-archive.ndjson")
        shutil.copyfile(SAMPLE, sample)
        os.chmod(sample, 0o644)
        binary = HOOKCTL
        if os.geteuid() == 0:
            # root ignores file modes: run the binary as nobody.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                self.skipTest("running as root without setpriv")
            prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

            def nobody_can(flag, file):
                return subprocess.run(prefix + ["test", flag, file]).returncode == 0

            if not nobody_can("-r", sample):
                self.skipTest(f"the user nobody cannot reach the temporary folder {self.tmp}; "
                              "set TMPDIR to a folder others can enter")
            if not nobody_can("-x", binary):
                binary = os.path.join(self.tmp, "hookctl")
                shutil.copy2(HOOKCTL, binary)
                os.chmod(binary, 0o755)
        else:
            prefix = []

        def as_user(args):
            return subprocess.run(prefix + [binary] + args, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=60)

        for sub in (["import", sample], ["mark", "evt_0001", "--status", "dead"], ["migrate"]):
            proc = as_user(["events"] + sub + ["--archive", path])
            self.assertEqual(proc.returncode, 4, (sub, proc.stderr))
            self.assertIn(b"read-only", proc.stderr)
        # Reading a read-only archive still works.
        proc = as_user(["events", "list", "--archive", path])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(ndjson(proc.stdout)), 12)


if __name__ == "__main__":
    unittest.main()
