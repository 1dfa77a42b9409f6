"""hookctl listen at the edges: HTTP answers for slow peers (408), HTTP/1.0 keep-alive, transfer
codings it does not decode (501), repeated signature fields, the key that verified each event,
SIGHUP on a terminal and off one, SIGUSR1, and a bind failure that leaves no archive behind."""
import hashlib
import http.client
import json
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unittest

from hookctl_test import TempDirTestCase, SANITIZED, run
from test_listen_common import (Receiver, sign, event_body, stored_ids, HOOKCTL, SECRET,
                                SECRET_ENV)


def read_until_closed(s, limit=65536):
    """Everything the peer sends until it closes (or `limit` bytes)."""
    data = b""
    while len(data) < limit:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_response(s):
    """One HTTP response with a Content-Length body: (head bytes, body bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        rest += chunk
    return head, rest[:length]


def fingerprint(secret):
    """hookctl's key fingerprint: the first 8 hex of SHA-256 of the key bytes."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


class ListenHttpEdgesTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.r = Receiver(self.tmp, "--header-timeout", "500ms", "--body-timeout", "500ms")
        self.addCleanup(self.r.kill)

    def connect(self):
        s = socket.create_connection((self.r.host, self.r.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def test_slow_headers_or_body_get_408_with_connection_close(self):
        r = self.r
        s = self.connect()
        s.sendall(b"POST /webhooks/email HTTP/1.1\r\nHost: x\r\n")  # never finished
        got = read_until_closed(s)
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
        self.assertIn(b"Connection: close", got)
        s = self.connect()
        body = event_body("evt_slow_body")
        head = (f"POST {r.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in sign(body).items()) + "\r\n").encode()
        s.sendall(head + body[:10])  # the rest never comes
        got = read_until_closed(s)
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
        self.assertIn(b"Connection: close", got)
        # An idle keep-alive connection (no request started) is closed without an answer.
        s = self.connect()
        self.assertEqual(read_until_closed(s), b"")
        reasons = [l.get("reason_code") for l in r.log_lines() if l.get("status") == 408]
        self.assertEqual(sorted(reasons), ["body_timeout", "header_timeout"])
        self.assertEqual(stored_ids(r.archive), [])
        self.assertEqual(r.get("/healthz")[0], 200)  # still serving

    def test_http_1_0_keep_alive_is_honoured(self):
        r = self.r
        s = self.connect()
        for i in range(2):
            body = event_body(f"evt_http10_{i}")
            head = (f"POST {r.path} HTTP/1.0\r\nConnection: keep-alive\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in sign(body).items()) + "\r\n").encode()
            s.sendall(head + body)
            head, answer = read_response(s)
            self.assertIn(b" 202 ", head.split(b"\r\n")[0])
            self.assertIn(b"\r\nConnection: keep-alive", head)
        # Without keep-alive, HTTP/1.0 gets its answer and the connection closes at once.
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        start = time.monotonic()
        got = read_until_closed(s)
        self.assertIn(b" 200 ", got.split(b"\r\n")[0])
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(stored_ids(r.archive), ["evt_http10_0", "evt_http10_1"])

    def test_transfer_codings_other_than_chunked_get_501_and_nothing_is_stored(self):
        import gzip
        r = self.r
        raw = gzip.compress(event_body("evt_gzip"))
        chunked = f"{len(raw):x}\r\n".encode() + raw + b"\r\n0\r\n\r\n"
        s = self.connect()
        head = (f"POST {r.path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in sign(raw).items()) + "\r\n").encode()
        s.sendall(head + chunked)
        got = read_until_closed(s)
        self.assertTrue(got.startswith(b"HTTP/1.1 501"), got)
        self.assertIn(b"gzip", got)
        self.assertEqual(stored_ids(r.archive), [])
        # Plain chunked still works.
        body = event_body("evt_chunked")
        s = self.connect()
        head = (f"POST {r.path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in sign(body).items()) + "\r\n").encode()
        s.sendall(head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        head, _ = read_response(s)
        self.assertIn(b" 202 ", head.split(b"\r\n")[0])
        self.assertEqual(stored_ids(r.archive), ["evt_chunked"])

    def test_repeated_signature_fields_are_one_list(self):
        r = self.r
        body = event_body("evt_two_fields")
        good = sign(body)
        wrong = sign(body, secret="an-old-secret-no-longer-valid")
        ts = good["X-Signature-Timestamp"]
        s = self.connect()
        # The wrong signature first, the matching one in a second field.
        head = (f"POST {r.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                f"X-Signature: {wrong['X-Signature']}\r\nX-Signature: {good['X-Signature']}\r\n"
                f"X-Signature-Timestamp: {ts}\r\n\r\n").encode()
        s.sendall(head + body)
        head, _ = read_response(s)
        self.assertIn(b" 202 ", head.split(b"\r\n")[0])
        # Two timestamps that disagree are refused.
        body = event_body("evt_two_timestamps")
        s.sendall((f"POST {r.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                   f"X-Signature: {sign(body)['X-Signature']}\r\n"
                   f"X-Signature-Timestamp: {ts}\r\nX-Signature-Timestamp: {int(ts) + 1}\r\n"
                   "\r\n").encode() + body)
        head, answer = read_response(s)
        self.assertIn(b" 401 ", head.split(b"\r\n")[0])
        self.assertIn(b"different values", answer)
        self.assertEqual(stored_ids(r.archive), ["evt_two_fields"])


class ListenVerifiedByTest(TempDirTestCase):
    def test_each_event_names_the_key_that_verified_it(self):
        old, new = "rotation-old-secret-0123", "rotation-new-secret-4567"
        r = Receiver(self.tmp, "--secret-env", "OLD_SECRET", "--secret-env", "NEW_SECRET",
                     env={"OLD_SECRET": old, "NEW_SECRET": new})
        self.addCleanup(r.kill)
        for event_id, secret in [("evt_by_old", old), ("evt_by_new", new), ("evt_by_new_2", new)]:
            body = event_body(event_id)
            self.assertEqual(r.post(body, sign(body, secret=secret))[0], 202)
        m = r.metrics()
        self.assertEqual(m[f'hookctl_verified_total{{key="{fingerprint(old)}"}}'], 1)
        self.assertEqual(m[f'hookctl_verified_total{{key="{fingerprint(new)}"}}'], 2)
        lines = {l["event_id"]: l for l in r.log_lines() if l.get("msg") == "request"}
        self.assertEqual(lines["evt_by_old"]["verified_by"], fingerprint(old))
        self.assertEqual(lines["evt_by_new"]["verified_by"], fingerprint(new))
        log = r.stderr()
        self.assertNotIn(old, log)
        self.assertNotIn(new, log)
        with sqlite3.connect(f"file:{r.archive}?mode=ro", uri=True) as db:
            by = dict(db.execute("SELECT event_id, verified_by FROM events"))
        self.assertEqual(by, {"evt_by_old": fingerprint(old), "evt_by_new": fingerprint(new),
                              "evt_by_new_2": fingerprint(new)})
        # events show says it; export carries it and import keeps it.
        proc = run(["events", "show", "--archive", r.archive, "evt_by_old"], check=0)
        self.assertIn(f"verified_by: {fingerprint(old)}".encode(), proc.stdout)
        proc = run(["events", "show", "--archive", r.archive, "evt_by_new", "--json"], check=0)
        self.assertEqual(json.loads(proc.stdout)["verified_by"], fingerprint(new))
        exported = run(["events", "export", "--archive", r.archive], check=0).stdout
        docs = [json.loads(line) for line in exported.splitlines()]
        self.assertEqual({d["event_id"]: d["verified_by"] for d in docs}, by)
        copy = os.path.join(self.tmp, "copy.db")
        run(["events", "import", "--archive", copy, "-"], input=exported, check=0)
        with sqlite3.connect(copy) as db:
            self.assertEqual(dict(db.execute("SELECT event_id, verified_by FROM events")), by)


class ListenSignalsTest(TempDirTestCase):
    def wait_for(self, r, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in r.stderr():
            self.assertLess(time.monotonic(), deadline, r.stderr())
            time.sleep(0.05)

    def test_sigusr1_and_sighup_without_a_terminal_reload(self):
        secret_file = self.write("secret", "first-secret-0123456789\n", mode=0o600)
        r = Receiver(self.tmp, "--secret-file", secret_file)
        self.addCleanup(r.kill)
        for sig, name in [(signal.SIGUSR1, "SIGUSR1"), (signal.SIGHUP, "SIGHUP")]:
            secret = f"{name.lower()}-secret-0123456789"
            # Replace the file without changing its size or time much: the signal reloads it
            # (the file watcher may as well; either way the reload is reported).
            with open(secret_file, "w") as f:
                f.write(secret + "\n")
            r.proc.send_signal(sig)
            self.wait_for(r, f"{name}: secrets reloaded (1 secret)")
            body = event_body(f"evt_{name}")
            self.assertEqual(r.post(body, sign(body, secret=secret))[0], 202)
        self.assertIsNone(r.proc.poll())

    def test_sighup_ignored_at_start_stays_ignored(self):
        r = Receiver(self.tmp, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        self.addCleanup(r.kill)
        r.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertIsNone(r.proc.poll())
        self.assertNotIn("SIGHUP", r.stderr())
        self.assertEqual(r.get("/healthz")[0], 200)

    def test_a_drain_cut_short_exits_cleanly(self):
        # A request still waiting (injected latency) when --drain-timeout ends: listen gives up
        # on it, says so, and exits 0 without touching freed state (checked under ASan).
        r = Receiver(self.tmp, "--latency", "5s", "--drain-timeout", "300ms", "--json")
        self.addCleanup(r.kill)
        conn = r.connect(timeout=10)
        body = event_body("evt_cut")
        conn.request("POST", r.path, body=body, headers=sign(body))
        time.sleep(0.3)  # the request is waiting out its latency
        code, out = r.stop()
        conn.close()
        self.assertEqual(code, 0, r.stderr())
        self.assertFalse(json.loads(out)["drained"])

    def test_terminal_hangup_stops_a_listen_running_on_it(self):
        ready = os.path.join(self.tmp, "tty.ready")
        archive = os.path.join(self.tmp, "tty.db")
        env = dict(os.environ, **{SECRET_ENV: SECRET})
        pid, master = pty.fork()
        if pid == 0:  # the child: a new session whose controlling terminal is the pty
            try:
                os.execve(HOOKCTL, [HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--archive",
                                    archive, "--ready-file", ready, "--secret-env", SECRET_ENV,
                                    "--log-format", "json"], env)
            finally:
                os._exit(127)
        output = []
        closed = threading.Event()

        def drain():  # keep the terminal's buffer from filling up
            while not closed.is_set():
                try:
                    if select.select([master], [], [], 0.1)[0]:
                        output.append(os.read(master, 4096))
                except OSError:
                    return

        reader = threading.Thread(target=drain)
        reader.start()
        status = None
        try:
            deadline = time.monotonic() + (60 if SANITIZED else 20)
            def ready_url():
                if not os.path.exists(ready):
                    return ""
                with open(ready) as f:
                    return f.read().strip()

            while not ready_url():
                self.assertLess(time.monotonic(), deadline, b"".join(output))
                time.sleep(0.05)
            url = ready_url()
            port = int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            body = event_body("evt_tty")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/webhooks/email", body=body, headers=sign(body))
            self.assertEqual(conn.getresponse().status, 202)
            conn.close()
            closed.set()
            reader.join()
            os.close(master)  # the terminal hangs up
            deadline = time.monotonic() + 20
            while status is None and time.monotonic() < deadline:
                done, code = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = code
                time.sleep(0.05)
        finally:
            closed.set()
            if status is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self.assertIsNotNone(status, "listen kept running after its terminal hung up")
        self.assertTrue(os.WIFEXITED(status), status)
        self.assertEqual(os.WEXITSTATUS(status), 0)
        self.assertEqual(stored_ids(archive), ["evt_tty"])
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


class ListenBindFailureTest(TempDirTestCase):
    def test_a_listen_that_cannot_bind_creates_no_archive(self):
        archive = os.path.join(self.tmp, "never.db")
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            proc = subprocess.run([HOOKCTL, "listen", "--bind", f"127.0.0.1:{port}", "--archive",
                                   archive, "--secret-env", SECRET_ENV],
                                  env=dict(os.environ, **{SECRET_ENV: SECRET}),
                                  capture_output=True, timeout=20)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn(b"cannot listen on", proc.stderr)
        self.assertEqual(sorted(os.listdir(self.tmp)), [])


if __name__ == "__main__":
    unittest.main()
