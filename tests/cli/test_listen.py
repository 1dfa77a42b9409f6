"""hookctl listen: a real receiver on loopback driven by http.client and raw sockets.
Valid, duplicate, bad signature, stale, oversized, metrics, chunked and pipelined requests,
malformed HTTP, header limits, graceful shutdown, 503 when the archive is locked, TLS.
Timeouts, signals and hostile load: test_listen_edges.py and test_listen_limits.py."""
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
import unittest

from hookctl_test import TempDirTestCase, SANITIZED
from test_listen_common import Receiver, sign, event_body, stored_ids, SECRET


class ListenBasicsTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.r = Receiver(self.tmp, "--max-body", "4KiB", "--max-headers", "30")

    def tearDown(self):
        self.r.kill()
        super().tearDown()

    def test_valid_duplicate_bad_stale_oversized_and_metrics(self):
        r = self.r
        body = event_body("evt_basic_1")
        status, headers, data = r.post(body, {**sign(body), "traceparent":
                                              "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                              "00f067aa0ba902b7-01"})
        self.assertEqual(status, 202, data)
        self.assertEqual(json.loads(data), {"status": "accepted", "event_id": "evt_basic_1"})
        self.assertEqual(stored_ids(r.archive), ["evt_basic_1"])

        status, _, data = r.post(body)  # same event id, fresh signature
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(data)["status"], "duplicate")
        self.assertEqual(stored_ids(r.archive), ["evt_basic_1"])

        other = event_body("evt_basic_2")
        bad = sign(other)
        bad["X-Signature"] = "0" * 64
        status, _, data = r.post(other, bad)
        self.assertEqual(status, 401)
        self.assertIn(b"\n", data)
        self.assertEqual(data.count(b"\n"), 1)  # one-line reason

        # Every failed verification is 401 (probe expects the same); the reason code says why.
        status, _, data = r.post(other, sign(other, ts=int(time.time()) - 3600))
        self.assertEqual(status, 401)
        self.assertIn(b"timestamp", data)

        status, _, _ = r.post(other, {"Content-Type": "application/json"})
        self.assertEqual(status, 401)

        big = event_body("evt_big", size=8000)
        status, _, data = r.post(big)
        self.assertEqual(status, 413, data)

        status, _, _ = r.post(other, sign(other), path="/elsewhere")
        self.assertEqual(status, 404)
        self.assertEqual(r.get("/healthz"), (200, "ok\n"))
        self.assertEqual(stored_ids(r.archive), ["evt_basic_1"])

        m = r.metrics()
        self.assertEqual(m['hookctl_requests_total{status="202",reason="accepted"}'], 1)
        self.assertEqual(m['hookctl_requests_total{status="200",reason="duplicate"}'], 1)
        self.assertEqual(m['hookctl_requests_total{status="401",reason="no_match"}'], 1)
        self.assertEqual(m['hookctl_requests_total{status="401",reason="stale_timestamp"}'], 1)
        self.assertEqual(m['hookctl_requests_total{status="401",reason="missing_header"}'], 1)
        self.assertEqual(m['hookctl_requests_total{status="413",reason="too_large"}'], 1)
        self.assertEqual(m['hookctl_verification_failures_total{reason="no_match"}'], 1)
        self.assertEqual(m["hookctl_events_stored_total"], 1)
        self.assertEqual(m["hookctl_duplicates_total"], 1)
        self.assertEqual(m["hookctl_inflight"], 0)
        self.assertGreaterEqual(m["hookctl_commit_batch_size_count"], 2)

        code, _ = r.stop()
        self.assertEqual(code, 0)
        lines = r.log_lines()
        requests = [l for l in lines if l.get("msg") == "request"]
        accepted = [l for l in requests if l["status"] == 202]
        self.assertEqual(len(accepted), 1)
        self.assertEqual(accepted[0]["event_id"], "evt_basic_1")
        self.assertEqual(accepted[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertIn("latency_ms", accepted[0])
        self.assertTrue(any(l.get("msg") == "summary" and l["accepted"] == 1 for l in lines))
        self.assertNotIn(SECRET, r.stderr())

    def test_chunked_pipelined_and_keep_alive(self):
        r = self.r
        conn = r.connect()
        body = event_body("evt_chunked")
        conn.request("POST", r.path, body=iter([body[:10], body[10:]]), headers=sign(body),
                     encode_chunked=True)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 202, resp.read())
        resp.read()
        # The same connection serves the next request (keep-alive).
        status, _, _ = r.post(event_body("evt_keepalive"), conn=conn)
        self.assertEqual(status, 202)
        conn.close()

        # Three pipelined requests in one write: answered in order.
        raw = b""
        for i in range(3):
            b = event_body(f"evt_pipe_{i}")
            h = sign(b)
            raw += (f"POST {r.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(b)}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() + b
        with socket.create_connection((r.host, r.port), timeout=20) as s:
            s.sendall(raw)
            got = b""
            deadline = time.monotonic() + 20
            while got.count(b"HTTP/1.1 ") < 3 or not got.endswith(b"}\n"):
                self.assertLess(time.monotonic(), deadline, got)
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        ids = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"\n")[0])["event_id"]
               for part in got.split(b"HTTP/1.1 ")[1:]]
        self.assertEqual(ids, ["evt_pipe_0", "evt_pipe_1", "evt_pipe_2"])
        self.assertEqual(sorted(stored_ids(r.archive)),
                         sorted(["evt_chunked", "evt_keepalive", "evt_pipe_0", "evt_pipe_1",
                                 "evt_pipe_2"]))

    def raw_exchange(self, data):
        with socket.create_connection((self.r.host, self.r.port), timeout=20) as s:
            s.sendall(data)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got  # the server closed the connection
                got += chunk

    def test_malformed_http_and_header_limits_get_4xx_and_close(self):
        got = self.raw_exchange(b"THIS IS NOT HTTP\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 400"), got)
        many = "".join(f"X-H{i}: v\r\n" for i in range(40))
        got = self.raw_exchange(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
        self.assertTrue(got.startswith(b"HTTP/1.1 431"), got)
        huge = "X-Big: " + "a" * 20000 + "\r\n"
        got = self.raw_exchange(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{huge}\r\n".encode())
        self.assertTrue(got.startswith(b"HTTP/1.1 431"), got)
        got = self.raw_exchange(b"POST /webhooks/email HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: 99999999\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 413"), got)
        # Still serving.
        self.assertEqual(self.r.get("/healthz")[0], 200)


class ListenShutdownTest(TempDirTestCase):
    def test_sigterm_finishes_in_flight_requests_and_exits_0(self):
        r = Receiver(self.tmp, "--latency", "700ms", "--json")
        results = []

        def send(i):
            results.append(r.post(event_body(f"evt_inflight_{i}"))[0])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)  # requests are in flight (answers delayed 700ms)
        r.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        code, out = r.stop()
        self.assertEqual(code, 0, r.stderr())
        self.assertEqual(results, [202] * 4)
        self.assertEqual(len(stored_ids(r.archive)), 4)
        summary = json.loads(out)
        self.assertEqual(summary["accepted"], 4)
        self.assertTrue(summary["drained"])
        # Not accepting any more.
        with self.assertRaises(OSError):
            socket.create_connection((r.host, r.port), timeout=2).close()


class ListenArchiveFailureTest(TempDirTestCase):
    def test_locked_archive_gives_503_never_2xx_and_max_inflight_429(self):
        r = Receiver(self.tmp, "--max-inflight", "2")
        try:
            self.assertEqual(r.post(event_body("evt_before_lock"))[0], 202)
            # Another process holds the write lock: each batch waits for it about a second.
            db = sqlite3.connect(r.archive, timeout=1, isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            statuses, stop = [], threading.Event()

            def keep_sending(n):
                i = 0
                while not stop.is_set():
                    statuses.append(r.post(event_body(f"evt_locked_{n}_{i}"))[0])
                    i += 1

            threads = [threading.Thread(target=keep_sending, args=(n,)) for n in range(2)]
            for t in threads:
                t.start()
            # While two events wait for the commit, a third is over the bound: 429.
            over = None
            deadline = time.monotonic() + 30
            while over is None or over[0] != 429:
                self.assertLess(time.monotonic(), deadline, over)
                if r.metrics()["hookctl_inflight"] >= 2:
                    over = r.post(event_body("evt_over_bound"))
                else:
                    time.sleep(0.01)
            stop.set()
            for t in threads:
                t.join(60)
            db.execute("ROLLBACK")
            db.close()
            self.assertIn("Retry-After", over[1])
            self.assertGreater(len(statuses), 0)
            self.assertEqual(set(statuses), {503})
            self.assertEqual(stored_ids(r.archive), ["evt_before_lock"])
            # The archive is free again: the same events are now stored.
            self.assertEqual(r.post(event_body("evt_locked_0_0"))[0], 202)
        finally:
            r.kill()


class ListenTlsTest(TempDirTestCase):
    def test_https_with_tls_1_2_minimum(self):
        cert = os.path.join(self.tmp, "cert.pem")
        key = os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        r = Receiver(self.tmp, "--tls-cert", cert, "--tls-key", key)
        try:
            self.assertTrue(r.url.startswith("https://127.0.0.1:"), r.url)
            ctx = ssl.create_default_context(cafile=cert)
            body = event_body("evt_tls")
            import http.client
            conn = http.client.HTTPSConnection(r.host, r.port, context=ctx, timeout=20)
            status, _, data = r.post(body, conn=conn)
            conn.close()
            self.assertEqual(status, 202, data)
            self.assertEqual(stored_ids(r.archive), ["evt_tls"])
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.load_verify_locations(cert)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            try:
                old.set_ciphers("ALL:@SECLEVEL=0")
            except ssl.SSLError:
                pass
            with self.assertRaises((ssl.SSLError, OSError)):
                with socket.create_connection((r.host, r.port), timeout=10) as s:
                    with old.wrap_socket(s, server_hostname="127.0.0.1"):
                        pass
        finally:
            r.kill()



class ListenForwardTest(TempDirTestCase):
    def test_forward_to_records_delivered_and_failed(self):
        import hashlib
        import hmac
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        seen = []

        class App(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Signature-Timestamp"]
                mac = hmac.new(SECRET.encode(), ts.encode() + b"." + body,
                               hashlib.sha256).hexdigest()
                seen.append((json.loads(body)["event_id"], mac == self.headers["X-Signature"],
                             self.headers.get("Idempotency-Key")))
                self.send_response(500 if b"please_fail" in body else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        app = ThreadingHTTPServer(("127.0.0.1", 0), App)
        threading.Thread(target=app.serve_forever, daemon=True).start()
        r = Receiver(self.tmp, "--forward-to",
                     f"http://127.0.0.1:{app.server_address[1]}/app")
        try:
            self.assertEqual(r.post(event_body("evt_fwd_ok"))[0], 202)
            self.assertEqual(r.post(event_body("evt_fwd_bad", note="please_fail"))[0], 202)
            code, _ = r.stop()  # forwards the queue (with retries) before exiting
            self.assertEqual(code, 0, r.stderr())
        finally:
            r.kill()
            app.shutdown()
            app.server_close()
        self.assertIn(("evt_fwd_ok", True, "evt_fwd_ok"), seen)
        self.assertGreaterEqual(sum(1 for e in seen if e[0] == "evt_fwd_bad"), 2)  # retried
        with sqlite3.connect(f"file:{r.archive}?mode=ro", uri=True) as db:
            status = dict(db.execute("SELECT event_id, status FROM events"))
        self.assertEqual(status, {"evt_fwd_ok": "delivered", "evt_fwd_bad": "failed"})

if __name__ == "__main__":
    unittest.main()
