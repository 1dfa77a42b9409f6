"""hookctl send: signed delivery of one payload, retries, Retry-After, permanent 4xx, .eml,
targets and the production guard, errors. Against small Python receivers on 127.0.0.1."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import TempDirTestCase, run  # noqa: E402
from test_replay import ENV, SECRET, Receiver, verify_ok  # noqa: E402

EVENT = json.dumps({"schema_version": "1", "event_id": "evt_send_1",
                    "trace_id": "0af7651916cd43dd8448eb211c80319c", "subject": "hi"})


class SendTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = None
        self.event = self.write("event.json", EVENT)

    def tearDown(self):
        if self.receiver:
            self.receiver.close()
        super().tearDown()

    def send(self, *args, check=None, env=None):
        return run(["send", "--secret-env", "REPLAY_SECRET"] + list(args),
                   env=dict(ENV, **(env or {})), check=check)

    def test_delivers_signed_with_idempotency_key_and_traceparent(self):
        self.receiver = Receiver()
        proc = self.send("--to", self.receiver.url, self.event, "--json", check=0)
        doc = json.loads(proc.stdout)
        self.assertTrue(doc["delivered"])
        self.assertEqual(doc["status"], 200)
        self.assertEqual(len(doc["attempts"]), 1)
        self.assertIn('"ok":true', doc["body"])
        _, headers, body = self.receiver.requests[0]
        self.assertEqual(body, EVENT.encode())
        self.assertEqual(headers["Idempotency-Key"], "evt_send_1")
        self.assertTrue(headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-"))
        self.assertTrue(verify_ok(headers, body)[0])
        text = self.send("--to", self.receiver.url, self.event, check=0)
        self.assertIn(b"delivered: HTTP 200", text.stdout)

    def test_retries_with_fresh_signatures_and_obeys_retry_after(self):
        self.receiver = Receiver(lambda i, h, b: (429, {"Retry-After": "1"}) if i == 0 else
                                 (500, {}) if i == 1 else (200, {}))
        proc = self.send("--to", self.receiver.url, self.event, "--backoff-base", "50ms",
                         "--json", check=0)
        doc = json.loads(proc.stdout)
        self.assertEqual([a["status"] for a in doc["attempts"]], [429, 500, 200])
        times = [t for t, _, _ in self.receiver.requests]
        self.assertGreaterEqual(times[1] - times[0], 0.99)
        self.assertLess(times[2] - times[1], 0.5)
        for _, headers, body in self.receiver.requests:
            self.assertTrue(verify_ok(headers, body)[0])

    def test_permanent_4xx_is_not_retried_exit_1(self):
        self.receiver = Receiver(lambda i, h, b: (400, {}))
        proc = self.send("--to", self.receiver.url, self.event, check=1)
        self.assertIn(b"not delivered: HTTP 400", proc.stdout)
        self.assertIn(b"permanent", proc.stderr)
        self.assertEqual(len(self.receiver.requests), 1)

    def test_retries_exhausted_exit_1(self):
        self.receiver = Receiver(lambda i, h, b: (503, {}))
        self.send("--to", self.receiver.url, self.event, "--retries", "2", "--backoff-base",
                  "10ms", check=1)
        self.assertEqual(len(self.receiver.requests), 3)

    def test_unreachable_target_is_retried_then_not_delivered(self):
        self.receiver = Receiver()
        url = self.receiver.url
        self.receiver.close()
        self.receiver = None
        proc = self.send("--to", url, self.event, "--retries", "1", "--backoff-base", "10ms",
                         "--json", check=1)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["reason"], "connect_error")
        self.assertEqual(len(doc["attempts"]), 2)

    def test_eml_is_parsed_to_the_event_json(self):
        self.receiver = Receiver()
        eml = self.write("m.eml", "From: a@example.com\r\nTo: b@example.com\r\n"
                                  "Subject: parsed\r\nMessage-ID: <x@y>\r\n\r\nhello\r\n")
        self.send("--to", self.receiver.url, eml, "--org", "org_e", check=0)
        doc = json.loads(self.receiver.requests[0][2])
        self.assertEqual(doc["subject"], "parsed")
        self.assertEqual(doc["org_id"], "org_e")
        self.assertEqual(self.receiver.requests[0][1]["Idempotency-Key"], doc["event_id"])

    def test_target_production_guard_and_errors(self):
        self.receiver = Receiver()
        config = self.write("config.toml",
                            '[targets.prod]\nurl = "%s"\nsecret_env = "REPLAY_SECRET"\n'
                            'production = true\n' % self.receiver.url)
        proc = run(["send", "--target", "prod", "--config", config, self.event], env=ENV,
                   check=2)
        self.assertIn(b"production", proc.stderr)
        self.assertEqual(self.receiver.requests, [])
        run(["send", "--target", "prod", "--config", config, "--yes", self.event], env=ENV,
            check=0)
        self.assertEqual(len(self.receiver.requests), 1)
        for args, needle in [
            (["--target", "nope", "--config", config], b"unknown target"),
            (["--to", "ftp://x"], b"http://"),
            (["--to", self.receiver.url, "--retries", "lots"], b"--retries"),
            (["--to", self.receiver.url, "--config", config, "--target", "prod"], b"both"),
        ]:
            proc = self.send(*args, self.event, check=2)
            self.assertIn(needle, proc.stderr, args)
        proc = run(["send", "--to", self.receiver.url, "--secret-env", "HOOKCTL_UNSET_VAR",
                    self.event], check=2)
        self.assertIn(b"HOOKCTL_UNSET_VAR", proc.stderr)
        bad = self.write("bad.json", "{not json")
        self.send("--to", self.receiver.url, bad, check=2)
        self.send("--to", self.receiver.url, os.path.join(self.tmp, "missing.json"), check=2)
        self.assertEqual(len(self.receiver.requests), 1)
        self.assertNotIn(SECRET.encode(), proc.stderr)

    def test_refusals_name_the_flags_that_fix_them(self):
        # The library says what is missing; send adds the flags to pass, word for word as before.
        config = self.write("config.toml",
                            '[targets.prod]\nurl = "http://127.0.0.1:9/"\n'
                            'secret_env = "REPLAY_SECRET"\nproduction = true\n'
                            '[targets.bare]\nurl = "http://127.0.0.1:9/"\n')
        missing = os.path.join(self.tmp, "missing.toml")
        url = "http://127.0.0.1:9/"
        for args, message in [
            (["--target", "prod", "--config", config],
             "target 'prod' is marked production = true: pass --yes to confirm (no terminal to "
             "ask on, so nothing was sent)"),
            (["--target", "nope", "--config", config],
             f"unknown target 'nope' in {config}: known targets are bare, prod; pass --config "
             "FILE or --to URL"),
            (["--target", "prod", "--config", missing],
             f"cannot read config file {missing}: no such file; pass --config FILE"),
            (["--target", "bare", "--config", config],
             "no secret to sign with: pass --secret-env NAME, --secret-file PATH or --keyring "
             "FILE, or set secret_env/secret_file/keyring on the target"),
            (["--to", url],
             "no secret to sign with: pass --secret-env NAME, --secret-file PATH or --keyring "
             "FILE"),
            (["--to", "ftp://x"], "--to ftp://x: not an http:// or https:// URL"),
            ([], "no destination: pass --to URL or --target NAME"),
            (["--to", url, "--target", "prod", "--config", config],
             "--to and --target both given: pass one of them"),
        ]:
            proc = run(["send"] + args + [self.event], env=ENV, check=2)
            self.assertIn(f"hookctl: error: {message}\n".encode(), proc.stderr, args)


if __name__ == "__main__":
    unittest.main()
