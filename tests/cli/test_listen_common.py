"""Helpers for the `hookctl listen` tests: start a receiver on a free loopback port, sign
requests with Python's hmac (the mailparse scheme), read the archive with sqlite3."""
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

from hookctl_test import HOOKCTL, SANITIZED

SECRET = "listen-test-secret-0123456789"
SECRET_ENV = "HOOKCTL_LISTEN_TEST_SECRET"


def sign(body, ts=None, secret=SECRET):
    """mailparse headers for `body` (bytes) at Unix time `ts`."""
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Signature": mac, "X-Signature-Timestamp": str(ts),
            "Content-Type": "application/json"}


def event_body(event_id, size=0, **extra):
    doc = {"event_id": event_id, "org_id": "org_test", "subject": "hello"}
    doc.update(extra)
    body = json.dumps(doc)
    if size > len(body):
        doc["pad"] = "x" * (size - len(body) - 10)
        body = json.dumps(doc)
    return body.encode()


class Receiver:
    """A `hookctl listen` process on 127.0.0.1:0, ready when its --ready-file appears. It runs in
    a session of its own, without a controlling terminal (what SIGHUP does depends on one: see
    hookctl-listen(1)), and `preexec_fn` runs in the child before exec (resource limits)."""

    def __init__(self, tmp, *args, archive=None, env=None, name="r", preexec_fn=None):
        self.archive = archive or os.path.join(tmp, f"{name}.db")
        self.ready = os.path.join(tmp, f"{name}.ready")
        self.log_path = os.path.join(tmp, f"{name}.log")
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        full_env = dict(os.environ)
        full_env[SECRET_ENV] = SECRET
        if env:
            full_env.update(env)
        self.log = open(self.log_path, "wb")
        argv = [HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--archive", self.archive,
                "--ready-file", self.ready, "--log-format", "json"]
        if not any(a.startswith("--secret") or a == "--keyring" for a in args):
            argv += ["--secret-env", SECRET_ENV]
        self.proc = subprocess.Popen(argv + list(args), stdout=subprocess.PIPE, stderr=self.log,
                                     env=full_env, start_new_session=True,
                                     preexec_fn=preexec_fn)
        deadline = time.monotonic() + (60 if SANITIZED else 20)
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None:
                raise AssertionError(f"listen exited {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("listen did not become ready: " + self.stderr())
            time.sleep(0.02)
        with open(self.ready) as f:
            self.url = f.read().strip()
        hostport = self.url.split("//", 1)[1].split("/", 1)[0]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.path = "/" + self.url.split("//", 1)[1].split("/", 1)[1]

    def stderr(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_lines(self):
        out = []
        for line in self.stderr().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def connect(self, timeout=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post(self, body, headers=None, conn=None, path=None):
        """POSTs `body`; returns (status, response headers, body bytes)."""
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.request("POST", path or self.path, body=body,
                         headers=headers if headers is not None else sign(body))
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), data
        finally:
            if own:
                conn.close()

    def get(self, path):
        conn = self.connect()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def metrics(self):
        status, text = self.get("/metrics")
        assert status == 200, status
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the receiver and waits; returns (exit code, stdout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=timeout)
        self.log.close()
        return self.proc.returncode, out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)
        self.log.close()


def stored_ids(archive):
    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]


class ListenUsageTest(unittest.TestCase):
    """Bad flags and environments fail at start with the documented exit codes."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hookctl-listen-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def run_listen(self, *args, timeout=20):
        env = dict(os.environ)
        env[SECRET_ENV] = SECRET
        return subprocess.run([HOOKCTL, "listen", "--archive", os.path.join(self.tmp, "u.db"),
                               "--secret-env", SECRET_ENV] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              timeout=timeout)

    def test_bad_flags_exit_2(self):
        for args, words in [(["--bind", "nonsense"], "HOST:PORT"),
                            (["--bind", "127.0.0.1:0", "--fail-rate", "1.5"], "probability"),
                            (["--bind", "127.0.0.1:0", "--latency", "2s-1s"], "maximum"),
                            (["--bind", "127.0.0.1:0", "--max-body", "lots"], "--max-body"),
                            (["--bind", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem",
                              "--tls-key", "/nonexistent.key"], "--tls-cert")]:
            proc = self.run_listen(*args)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertIn(words, proc.stderr.decode(), args)

    def test_secret_on_argv_is_refused_and_not_echoed(self):
        proc = subprocess.run([HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--secret",
                               "hunter2-secret"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=20)
        self.assertEqual(proc.returncode, 2)
        self.assertNotIn(b"hunter2-secret", proc.stderr)

    def test_port_in_use_exits_4(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            proc = self.run_listen("--bind", f"127.0.0.1:{port}")
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn(b"cannot listen on", proc.stderr)

    def test_corrupt_archive_exits_4(self):
        path = os.path.join(self.tmp, "corrupt.db")
        with open(path, "wb") as f:
            f.write(b"this is not a sqlite database" * 100)
        proc = subprocess.run([HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--archive", path,
                               "--secret-env", SECRET_ENV], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=dict(os.environ, **{SECRET_ENV: SECRET}),
                              timeout=20)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn(path.encode(), proc.stderr)


if __name__ == "__main__":
    unittest.main()
