"""hookctl trigger: every built-in scenario, delivered to the real `hookctl listen`, gets the
answer it documents (and is stored as it should be); --set changes the field; --dry-run sends
nothing; an unknown scenario lists the known ones (exit 2); a receiver that answers wrongly is
caught (exit 1)."""
import http.server
import json
import os
import sqlite3
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import TempDirTestCase, run  # noqa: E402
from test_listen_common import SECRET, SECRET_ENV, Receiver  # noqa: E402

ENV = {SECRET_ENV: SECRET}


def stored(archive):
    """{event_id: (org_id, body as JSON)} of every stored event."""
    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT e.event_id, e.org_id, b.body FROM events e "
                          "JOIN event_bodies b USING (seq) ORDER BY e.seq").fetchall()
    return {r[0]: (r[1], json.loads(r[2])) for r in rows}


class AlwaysAccepts(http.server.BaseHTTPRequestHandler):
    """A receiver that checks nothing: every POST gets 202."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class TriggerTest(TempDirTestCase):
    def trigger(self, receiver, scenario, *args, check=0):
        proc = run(["trigger", scenario, "--to", receiver.url, "--secret-env", SECRET_ENV,
                    "--json"] + list(args), env=ENV, timeout=120)
        self.assertEqual(proc.returncode, check, proc.stderr)
        return json.loads(proc.stdout)

    def test_every_scenario_gets_the_answer_it_documents_from_listen(self):
        listed = json.loads(run(["trigger", "--list", "--json"], check=0).stdout)
        names = [s["name"] for s in listed]
        self.assertEqual(len(names), 10)
        for s in listed:
            self.assertIn(s["expected"], ("2xx", "4xx (401 or 403)"))
            self.assertTrue(s["answer"])
        receiver = Receiver(self.tmp)
        try:
            results = {}
            for s in listed:
                with self.subTest(scenario=s["name"]):
                    args = ["--count", "5"] if s["name"] == "burst" else []
                    if s["name"] == "large-attachment":
                        args = ["--size", "3MiB"]
                    doc = self.trigger(receiver, s["name"], *args)
                    results[s["name"]] = doc
                    self.assertTrue(doc["as_documented"], doc)
                    self.assertEqual(doc["expected"], s["expected"])
                    for d in doc["deliveries"]:
                        if s["expected"] == "2xx":
                            self.assertIn(d["status"], (200, 202), d)
                        else:
                            self.assertGreaterEqual(d["status"], 400, d)
                            self.assertLess(d["status"], 500, d)
        finally:
            receiver.stop()
        events = stored(receiver.archive)
        ids = lambda name: [d["event_id"] for d in results[name]["deliveries"]]  # noqa: E731
        # Accepted scenarios are stored, each as it was built; rejected ones are not.
        bounce = events[ids("bounce")[0]][1]
        self.assertEqual(bounce["subject"], "Undelivered Mail Returned to Sender")
        self.assertIn(["Auto-Submitted", "auto-replied"], events[ids("auto-reply")[0]][1]["headers"])
        self.assertEqual(events[ids("large-attachment")[0]][1]["attachments"][0]["size"], 3 << 20)
        self.assertEqual(events[ids("encoded-headers")[0]][1]["subject"],
                         "Résumé et facture n° 42 — ✓")
        self.assertTrue(events[ids("malformed-mime")[0]][1]["warnings"])
        dup = ids("duplicate")
        self.assertEqual(len(dup), 2)
        self.assertEqual(dup[0], dup[1])
        self.assertEqual([d["status"] for d in results["duplicate"]["deliveries"]], [202, 200])
        burst = ids("burst")
        self.assertEqual(len(set(burst)), 5)
        self.assertTrue(all(events[i][0] == "org_trigger" for i in burst))
        for rejected in ("stale-timestamp", "wrong-secret"):
            self.assertNotIn(ids(rejected)[0], events)
        self.assertEqual(len(events), 6 + 1 + 5)  # one per accepted scenario, the dup once

    def test_set_overrides_fields_and_dry_run_sends_nothing(self):
        receiver = Receiver(self.tmp)
        try:
            doc = self.trigger(receiver, "bounce", "--set", "subject=Undeliverable: invoice 4211",
                               "--set", "meta.ticket=8812", "--org", "acme")
            event_id = doc["deliveries"][0]["event_id"]
            dry = run(["trigger", "wrong-secret", "--dry-run", "--to", receiver.url,
                       "--secret-env", SECRET_ENV], env=ENV, check=0)
        finally:
            receiver.stop()
        org, body = stored(receiver.archive)[event_id]
        self.assertEqual(body["subject"], "Undeliverable: invoice 4211")
        self.assertEqual(body["meta"], {"ticket": 8812})
        self.assertEqual(org, "acme")
        text = dry.stdout.decode()
        self.assertTrue(text.startswith("POST " + receiver.url + "\n"), text[:200])
        self.assertIn("\nX-Signature: ", text)
        self.assertIn("\nIdempotency-Key: evt_", text)
        self.assertIn('"schema_version":"1"', text)
        self.assertEqual(len(stored(receiver.archive)), 1)  # the dry run stored nothing

    def test_unknown_scenario_lists_the_known_ones(self):
        proc = run(["trigger", "bounced", "--to", "http://127.0.0.1:9/", "--secret-env",
                    SECRET_ENV], env=ENV, check=2)
        err = proc.stderr.decode()
        self.assertIn("unknown scenario 'bounced'", err)
        for name in ("message", "bounce", "auto-reply", "malformed-mime", "wrong-secret"):
            self.assertIn(name, err)
        bad_set = run(["trigger", "message", "--set", "nothing", "--to", "http://127.0.0.1:9/",
                       "--secret-env", SECRET_ENV], env=ENV, check=2)
        self.assertIn(b"PATH=VALUE", bad_set.stderr)

    def test_a_receiver_that_accepts_a_forged_signature_is_caught(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AlwaysAccepts)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            proc = run(["trigger", "wrong-secret", "--to", url, "--secret-env", SECRET_ENV],
                       env=ENV)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(b"NOT as documented: a conformant receiver answers 4xx (401 or 403)",
                          proc.stdout)
            ok = run(["trigger", "message", "--to", url, "--secret-env", SECRET_ENV], env=ENV)
            self.assertEqual(ok.returncode, 0, ok.stdout)
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    unittest.main()
