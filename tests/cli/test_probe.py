"""hookctl probe: the conformance battery against a correct receiver (a Python one, and the real
`hookctl listen` when it is registered) and against deliberately broken receivers, where exactly
the matching checks fail and the exit code is 1; --json, --junit, --only/--skip, --target."""
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import HOOKCTL, SANITIZED, TempDirTestCase, free_port, run  # noqa: E402

CHECKS = ["valid", "duplicate", "tampered-body", "wrong-secret", "stale-timestamp",
          "future-timestamp", "missing-signature", "malformed-json", "oversized-body", "latency"]
SECRET = "probe-test-secret-0123456789"
ENV = {"PROBE_SECRET": SECRET}
# Generous: CI runs tests in parallel on two shared cores (and under the sanitizers), and a
# slow answer there says nothing about the receiver. The budget logic itself is unit-tested.
BUDGET = ["--latency-budget", "5s" if SANITIZED else "2s"]


class Receiver:
    """A webhook receiver on 127.0.0.1 verifying the mailparse (or github) scheme, with faults:
    any_signature (accepts anything), ignore_timestamps, crash_on_malformed (500),
    hang_on_large (never answers a large body)."""

    def __init__(self, scheme="mailparse", limit=1024 * 1024, any_signature=False,
                 ignore_timestamps=False, crash_on_malformed=False, hang_on_large=False):
        self.scheme, self.limit = scheme, limit
        self.any_signature, self.ignore_timestamps = any_signature, ignore_timestamps
        self.crash_on_malformed, self.hang_on_large = crash_on_malformed, hang_on_large
        self.seen, self.bodies, self.requests = set(), [], 0
        self.stop = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def drain(self, length):
                # Read and drop the body already on its way before closing, as listen's
                # lingering close does: closing with unread data sends a reset, which can
                # reach the client before the 413 it was sent (a flaky "connection reset").
                self.connection.settimeout(5)
                try:
                    while length > 0:
                        chunk = self.rfile.read(min(length, 65536))
                        if not chunk:
                            break
                        length -= len(chunk)
                except OSError:
                    pass

            def too_large(self):
                return int(self.headers.get("Content-Length", "0")) > receiver.limit

            def handle_expect_100(self):
                if self.too_large() and not receiver.hang_on_large:
                    self.answer(413, {"error": "body too large"})
                    self.close_connection = True
                    return False
                return super().handle_expect_100()

            def do_POST(self):
                receiver.requests += 1
                length = int(self.headers.get("Content-Length", "0"))
                if self.too_large():
                    if receiver.hang_on_large:
                        receiver.stop.wait(30)  # a receiver stuck on big bodies
                        self.close_connection = True
                        return
                    self.answer(413, {"error": "body too large"})
                    self.close_connection = True
                    self.drain(length)
                    return
                body = self.rfile.read(length)
                status, doc = receiver.check(self.headers, body)
                self.answer(status, doc)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def check(self, headers, body):
        if not self.any_signature:
            if self.scheme == "github":
                given = headers.get("X-Hub-Signature-256", "")
                want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            else:
                given, ts = headers.get("X-Signature", ""), headers.get("X-Signature-Timestamp", "")
                if not given or not ts.isdigit():
                    return 401, {"error": "missing signature"}
                if not self.ignore_timestamps and abs(time.time() - int(ts)) > 300:
                    return 401, {"error": "stale timestamp"}
                want = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            if not any(hmac.compare_digest(s.strip(), want) for s in given.split(",")):
                return 401, {"error": "bad signature"}
        try:
            event = json.loads(body)
        except ValueError:
            if self.crash_on_malformed:
                return 500, {"error": "Traceback (most recent call last): ..."}
            return 400, {"error": "malformed JSON"}
        self.bodies.append(event)
        key = headers.get("Idempotency-Key", "")
        if key in self.seen:
            return 200, {"status": "duplicate"}
        self.seen.add(key)
        return 202, {"status": "accepted"}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def probe(args, timeout=120, env=ENV):
    return run(["probe"] + list(args), env=env, timeout=timeout)


class ProbeTest(TempDirTestCase):
    def run_json(self, url, *extra, expect):
        proc = probe([url, "--secret-env", "PROBE_SECRET", "--json", "--timeout", "3s"] + BUDGET
                     + list(extra))
        self.assertEqual(proc.returncode, expect, (proc.stderr + proc.stdout).decode())
        doc = json.loads(proc.stdout)
        self.assertEqual([c["name"] for c in doc["checks"]], CHECKS)
        return doc

    def statuses(self, doc, status):
        return {c["name"] for c in doc["checks"] if c["status"] == status}

    def test_correct_receiver_passes_every_check(self):
        with Receiver(limit=26 * 1024 * 1024) as receiver:
            # The default --max-body: 26 MiB and one byte.
            doc = self.run_json(receiver.url, expect=0)
        self.assertEqual(self.statuses(doc, "pass"), set(CHECKS), doc)
        self.assertEqual((doc["passed"], doc["failed"], doc["skipped"]), (10, 0, 0))
        self.assertEqual(doc["url"], receiver.url)
        by_name = {c["name"]: c for c in doc["checks"]}
        self.assertEqual(by_name["valid"]["got"], '202: {"status": "accepted"}')
        self.assertIn("duplicate", by_name["duplicate"]["detail"])
        self.assertTrue(by_name["oversized-body"]["got"].startswith("413"))
        # Every event that reached the application is a marked test event.
        self.assertTrue(receiver.bodies)
        for event in receiver.bodies:
            self.assertEqual(event["type"], "hookctl.probe")
            self.assertTrue(event["event_id"].startswith("evt_probe_"))
            self.assertNotIn("from", event)

    def test_receiver_accepting_any_signature_fails_the_signature_checks(self):
        with Receiver(any_signature=True) as receiver:
            doc = self.run_json(receiver.url, "--max-body", "2MiB", expect=1)
        self.assertEqual(self.statuses(doc, "fail"),
                         {"tampered-body", "wrong-secret", "missing-signature", "stale-timestamp",
                          "future-timestamp"})
        for check in doc["checks"]:
            if check["status"] == "fail":
                self.assertEqual(check["expected"], "4xx (401 or 403)")
                self.assertTrue(check["got"].startswith("20"), check)
                self.assertIn("accepted", check["detail"])
        self.assertEqual(doc["failed"], 5)
        self.assertEqual(doc["passed"], 5)

    def test_receiver_ignoring_timestamps_fails_the_replay_window_checks(self):
        with Receiver(ignore_timestamps=True) as receiver:
            doc = self.run_json(receiver.url, "--max-body", "2MiB", expect=1)
        self.assertEqual(self.statuses(doc, "fail"), {"stale-timestamp", "future-timestamp"})
        self.assertEqual(doc["passed"], 8)

    def test_receiver_crashing_on_malformed_json_fails_that_check(self):
        with Receiver(crash_on_malformed=True) as receiver:
            doc = self.run_json(receiver.url, "--max-body", "2MiB", expect=1)
        self.assertEqual(self.statuses(doc, "fail"), {"malformed-json"})
        failed = [c for c in doc["checks"] if c["name"] == "malformed-json"][0]
        self.assertTrue(failed["got"].startswith("500"), failed)
        self.assertIn("server error", failed["detail"])

    def test_receiver_hanging_on_large_bodies_fails_oversized_without_hanging(self):
        with Receiver(hang_on_large=True) as receiver:
            started = time.monotonic()
            proc = probe([receiver.url, "--secret-env", "PROBE_SECRET", "--json", "--timeout", "2s",
                          "--max-body", "4MiB"] + BUDGET, timeout=60)
            elapsed = time.monotonic() - started
        self.assertEqual(proc.returncode, 1, proc.stderr + proc.stdout)
        doc = json.loads(proc.stdout)
        self.assertEqual(self.statuses(doc, "fail"), {"oversized-body"})
        failed = [c for c in doc["checks"] if c["name"] == "oversized-body"][0]
        self.assertIn("no answer within 2000 ms", failed["got"])
        self.assertLess(elapsed, 30)

    def test_junit_has_one_testcase_per_check(self):
        junit = os.path.join(self.tmp, "probe.xml")
        with Receiver(any_signature=True) as receiver:
            proc = probe([receiver.url, "--secret-env", "PROBE_SECRET", "--junit", junit,
                          "--max-body", "2MiB", "--skip", "latency"] + BUDGET)
        self.assertEqual(proc.returncode, 1, proc.stderr + proc.stdout)
        root = ET.parse(junit).getroot()
        suites = root.findall("testsuite")
        self.assertEqual(len(suites), 1)
        cases = suites[0].findall("testcase")
        self.assertEqual([c.get("name") for c in cases], CHECKS)
        failed = {c.get("name") for c in cases if c.find("failure") is not None}
        skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
        self.assertEqual(failed, {"tampered-body", "wrong-secret", "missing-signature",
                                  "stale-timestamp", "future-timestamp"})
        self.assertEqual(skipped, {"latency"})
        self.assertEqual(suites[0].get("tests"), "10")
        self.assertEqual(suites[0].get("failures"), "5")
        self.assertEqual(suites[0].get("skipped"), "1")
        message = cases[2].find("failure").get("message")
        self.assertRegex(message, r"^expected 4xx \(401 or 403\), got 20\d")
        # The table went to stdout as well.
        table = proc.stdout.decode()
        for name in CHECKS:
            self.assertRegex(table, rf"(?m)^{re.escape(name)} +(pass|fail|skip) ")
        self.assertIn("4 passed, 5 failed, 1 skipped", table)

    def test_only_and_skip_select_checks(self):
        with Receiver(hang_on_large=True) as receiver:
            doc = self.run_json(receiver.url, "--skip", "oversized-body", expect=0)
            self.assertEqual(self.statuses(doc, "skip"), {"oversized-body"})
            skipped = [c for c in doc["checks"] if c["status"] == "skip"][0]
            self.assertIn("not selected", skipped["detail"])
            doc = self.run_json(receiver.url, "--only", "valid,wrong-secret", "--only", "latency",
                                expect=0)
            self.assertEqual(self.statuses(doc, "pass"), {"valid", "wrong-secret", "latency"})
            self.assertEqual(doc["skipped"], 7)
            requests_before = receiver.requests
            doc = self.run_json(receiver.url, "--only", "missing-signature", expect=0)
            # The valid event (the control that makes a rejection mean something), then the check.
            self.assertEqual(receiver.requests - requests_before, 2)
        proc = probe(["http://127.0.0.1:9/", "--secret-env", "PROBE_SECRET", "--only", "nonsense"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"nonsense", proc.stderr)
        proc = probe(["http://127.0.0.1:9/", "--secret-env", "PROBE_SECRET", "--only", "valid",
                      "--skip", "valid"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"no check", proc.stderr)

    def test_scheme_without_timestamps_skips_the_timestamp_checks(self):
        with Receiver(scheme="github") as receiver:
            doc = self.run_json(receiver.url, "--scheme", "github", "--max-body", "2MiB", expect=0)
        self.assertEqual(self.statuses(doc, "skip"), {"stale-timestamp", "future-timestamp"})
        self.assertEqual(doc["passed"], 8)

    def test_target_from_the_config_file(self):
        with Receiver() as receiver:
            config = self.write("config.toml", f"""
[targets.local]
url = "{receiver.url}"
scheme = "mailparse"
secret_env = "PROBE_SECRET"
""")
            proc = probe(["--config", config, "--target", "local", "--json", "--max-body", "2MiB",
                          "--timeout", "3s"] + BUDGET)
            self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
            self.assertEqual(json.loads(proc.stdout)["passed"], 10)
            proc = probe(["--config", config, "--target", "elsewhere"])
            self.assertEqual(proc.returncode, 2)
            self.assertIn(b"elsewhere", proc.stderr)
            # A production target needs --yes (no TTY here to type its name at).
            prod = self.write("prod.toml", f"""
[targets.prod]
url = "{receiver.url}"
secret_env = "PROBE_SECRET"
production = true
""")
            requests_before = receiver.requests
            proc = probe(["--config", prod, "--target", "prod", "--only", "valid"])
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn(b"--yes", proc.stderr)
            self.assertEqual(receiver.requests, requests_before)
            proc = probe(["--config", prod, "--target", "prod", "--only", "valid", "--yes"])
            self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
            self.assertEqual(receiver.requests, requests_before + 1)

    def test_input_and_environment_errors(self):
        proc = probe(["--secret-env", "PROBE_SECRET"])
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stdout, b"")
        proc = probe(["http://127.0.0.1:9/", "--secret", SECRET])
        self.assertEqual(proc.returncode, 2)
        self.assertNotIn(SECRET.encode(), proc.stderr + proc.stdout)
        proc = probe(["http://127.0.0.1:9/"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"secret", proc.stderr)
        # Nothing listens on a port just freed: the endpoint is unreachable, exit 4.
        proc = probe([f"http://127.0.0.1:{free_port()}/hooks", "--secret-env", "PROBE_SECRET"])
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn(b"cannot reach", proc.stderr)
        self.assertEqual(proc.stdout, b"")


def listen_registered():
    help_text = run(["--help"]).stdout.decode()
    return re.search(r"(?m)^  listen\s", help_text) is not None


class ProbeAgainstListenTest(TempDirTestCase):
    @unittest.skipUnless(listen_registered(), "hookctl listen is not registered yet")
    def test_real_listen_passes_every_check(self):
        ready = os.path.join(self.tmp, "ready")
        archive = os.path.join(self.tmp, "archive.db")
        log_path = os.path.join(self.tmp, "listen.log")
        env = dict(os.environ, **ENV)
        with open(log_path, "wb") as log:
            listener = subprocess.Popen(
                [HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--ready-file", ready, "--archive",
                 archive, "--secret-env", "PROBE_SECRET"],
                env=env, stdout=subprocess.DEVNULL, stderr=log)

        def listen_log():
            with open(log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")

        try:
            deadline = time.monotonic() + 30
            def ready_url():
                if not os.path.exists(ready):
                    return ""
                with open(ready) as f:
                    return f.read().strip()

            while not ready_url():
                self.assertIsNone(listener.poll(), f"listen exited: {listen_log()}")
                self.assertLess(time.monotonic(), deadline, "listen did not become ready")
                time.sleep(0.05)
            url = ready_url().split()[0]
            proc = probe([url, "--secret-env", "PROBE_SECRET", "--json", "--timeout", "10s"]
                         + BUDGET, timeout=120)
            doc = json.loads(proc.stdout)
            not_passed = [c for c in doc["checks"] if c["status"] != "pass"]
            self.assertEqual(not_passed, [], f"listen log: {listen_log()}")
            # listen answers each rejection with the status probe expects (hookctl-listen(1)):
            # no check passes with a note that another status would say why more precisely.
            noted = [c for c in doc["checks"] if "more precisely" in c["detail"]]
            self.assertEqual(noted, [])
            self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
            self.assertEqual(doc["passed"], 10)
        finally:
            listener.terminate()
            try:
                listener.wait(timeout=20)
            except subprocess.TimeoutExpired:
                listener.kill()
                listener.wait(timeout=10)


if __name__ == "__main__":
    unittest.main()
