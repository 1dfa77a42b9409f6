"""Requests in other tools' formats: `events export --format curl` is a script that, run against
the real `hookctl listen` with the secret in the environment, stores every event (the script
holds no secret); `--format har` then `send --from-har` stores the body byte for byte; `replay
--from FILE.har` delivers every entry and records its run."""
import base64
import json
import os
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import HOOKCTL, SOURCE, TempDirTestCase, run  # noqa: E402
from test_listen_common import SECRET, SECRET_ENV, Receiver  # noqa: E402

ENV = {SECRET_ENV: SECRET}
SAMPLE = os.path.join(SOURCE, "examples", "sample-archive.ndjson")
# Bodies a re-serialiser would change: odd spacing, escapes, non-ASCII, a trailing newline.
ODD_BODIES = [
    b'{"event_id": "evt_odd_1",  "subject":"caf\\u00e9 \\/ \\"quoted\\"", "n":[1, 2.50]}\n',
    '{"event_id":"evt_odd_2","subject":"Grüße — ✓","text":"line 1\\r\\nline 2"}'.encode(),
    b'{\n  "event_id": "evt_odd_3",\n  "html": "<p>it\'s $HOME `x` HOOKCTL_BODY</p>"\n}',
]


def bodies(archive):
    """{event_id: body bytes} of an archive."""
    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT e.event_id, b.body FROM events e JOIN event_bodies b "
                          "USING (seq)").fetchall()
    return {r[0]: bytes(r[1]) for r in rows}


class CurlHarTest(TempDirTestCase):
    def source_archive(self):
        """The sample archive plus events whose bytes must survive exactly."""
        archive = os.path.join(self.tmp, "source.db")
        lines = [json.dumps({"event_id": json.loads(b)["event_id"], "org_id": "acme",
                             "scheme": "mailparse", "status": "failed",
                             "body_base64": base64.b64encode(b).decode(),
                             "headers": [["Content-Type", "application/json"],
                                         ["X-Tenant", "blue"], ["X-Signature", "stale"]]})
                 for b in ODD_BODIES]
        run(["events", "import", "-q", "--archive", archive, SAMPLE], check=0)
        run(["events", "import", "-q", "--archive", archive], input="\n".join(lines) + "\n",
            check=0)
        return archive

    def test_the_curl_script_stores_every_event_with_the_secret_from_the_environment(self):
        archive = self.source_archive()
        script = os.path.join(self.tmp, "events.sh")
        run(["events", "export", "--archive", archive, "--format", "curl", "-o", script],
            check=0)
        with open(script, "rb") as f:
            text = f.read()
        self.assertNotIn(SECRET.encode(), text)
        self.assertTrue(os.stat(script).st_mode & 0o100, "the script is executable")
        receiver = Receiver(self.tmp)
        try:
            env = dict(os.environ, HOOK_SECRET=SECRET,
                       PATH=os.path.dirname(os.path.abspath(HOOKCTL)) + os.pathsep +
                       os.environ.get("PATH", ""))
            proc = subprocess.run(["sh", script, receiver.url], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn(b"failed 0", proc.stderr)
            # A wrong secret in the environment: every request refused, the script says so.
            wrong = subprocess.run(["sh", script, receiver.url],
                                   env=dict(env, HOOK_SECRET="not-the-secret"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(wrong.returncode, 1)
        finally:
            receiver.stop()
        sent, got = bodies(archive), bodies(receiver.archive)
        self.assertEqual(set(got), set(sent))
        for event_id, body in sent.items():
            self.assertEqual(got[event_id], body, event_id)
        self.assertIn(b"202 evt_odd_1", proc.stdout)

    def test_har_export_then_send_from_har_round_trips_the_body_byte_for_byte(self):
        archive = self.source_archive()
        har = os.path.join(self.tmp, "events.har")
        run(["events", "export", "--archive", archive, "--format", "har", "-o", har], check=0)
        with open(har) as f:
            doc = json.load(f)
        entries = doc["log"]["entries"]
        self.assertEqual(doc["log"]["version"], "1.2")
        receiver = Receiver(self.tmp)
        try:
            for n, entry in enumerate(entries, 1):
                proc = run(["send", "--from-har", har, "--entry", str(n), "--to", receiver.url,
                            "--secret-env", SECRET_ENV, "--json"], env=ENV)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(json.loads(proc.stdout)["event_id"],
                                 entry["_hookctl"]["event_id"])
            past = run(["send", "--from-har", har, "--entry", str(len(entries) + 1), "--to",
                        receiver.url, "--secret-env", SECRET_ENV], env=ENV, check=2)
            self.assertIn(f"has {len(entries)} entries".encode(), past.stderr)
        finally:
            receiver.stop()
        sent, got = bodies(archive), bodies(receiver.archive)
        self.assertEqual(set(got), set(sent))
        for event_id, body in sent.items():
            self.assertEqual(got[event_id], body, event_id)

    def test_replay_from_a_har_file_delivers_each_entry_and_records_the_run(self):
        archive = self.source_archive()
        har = os.path.join(self.tmp, "customer.har")
        run(["events", "export", "--archive", archive, "--format", "har", "-o", har], check=0)
        runs = os.path.join(self.tmp, "runs.db")
        receiver = Receiver(self.tmp)
        try:
            proc = run(["replay", "--from", har, "--archive", runs, "--to", receiver.url,
                        "--secret-env", SECRET_ENV, "--rate", "max", "--json"], env=ENV,
                       timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
        finally:
            receiver.stop()
        self.assertEqual(bodies(receiver.archive), bodies(archive))
        listed = [json.loads(line) for line in
                  run(["events", "runs", "--archive", runs, "--json"], check=0).stdout.splitlines()]
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]["source"], "har " + har)
        self.assertEqual(listed[0]["selected"], len(bodies(archive)))
        self.assertEqual(listed[0]["delivered"], len(bodies(archive)))


if __name__ == "__main__":
    unittest.main()
