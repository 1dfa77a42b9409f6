"""hookctl listen under hostile load and a failing environment (issue 15, items 1-4): the bodies
waiting for their signature check stay within --max-buffered, a locked archive answers 503 within
about a second and recovers at once, a write failure gives the WAL's space back, and running out
of file descriptors backs off and logs once per interval. Each scenario is bounded in size and
time and stops by itself."""
import os
import resource
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import unittest

from hookctl_test import TempDirTestCase, SANITIZED
from test_listen_common import (Receiver, sign, event_body, stored_ids, HOOKCTL, SECRET,
                                SECRET_ENV)

MIB = 1024 * 1024


def vm_kib(pid, field):
    """VmRSS / VmHWM of `pid` in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def request_head(r, length, headers):
    lines = [f"POST {r.path} HTTP/1.1", f"Host: {r.host}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class ListenBodyBudgetTest(TempDirTestCase):
    # Issue 15's scenario at a bounded scale: 64 connections each send a 24 MiB body with a
    # fresh, well-formed, wrong signature and hold back the last byte. Without a budget listen
    # buffers every one of them (RSS about 1.5 GB); with the default --max-buffered (256 MiB)
    # the ones over it get 503 before their body is read.
    CONNECTIONS = 64
    BODY = 24 * MIB
    RSS_LIMIT_KIB = 512 * 1024

    def test_unverified_bodies_stay_within_the_budget_and_good_events_get_through(self):
        env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"} \
            if SANITIZED else None
        r = Receiver(self.tmp, "--threads", "2", env=env)
        self.addCleanup(r.kill)
        body = b"x" * self.BODY
        answers = {}
        conns = []

        def attack(i):
            # A wrong signature that is well formed and timely: only the body can tell it apart.
            headers = sign(b"{}", secret="not-the-receiver's-secret")
            s = socket.create_connection((r.host, r.port), timeout=60)
            conns.append(s)
            try:
                s.sendall(request_head(r, self.BODY, headers))
                view = memoryview(body)[:-1]  # the last byte is held back
                sent = 0
                while sent < len(view):
                    # Stop sending once the receiver has answered (a 503 before the body).
                    if select.select([s], [], [], 0)[0]:
                        break
                    s.sendall(view[sent:sent + MIB])
                    sent += MIB
                readable = select.select([s], [], [], 0.5)[0]
                answers[i] = s.recv(200) if readable else b""
            except OSError as e:  # reset by the receiver after its answer
                answers[i] = repr(e).encode()

        threads = [threading.Thread(target=attack, args=(i,)) for i in range(self.CONNECTIONS)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            # The held connections are still open. Wait until listen has read what it is going
            # to read (its RSS stops growing), then a well-signed event must still get through.
            deadline = time.monotonic() + 20
            last = vm_kib(r.proc.pid, "VmRSS")
            while time.monotonic() < deadline:
                time.sleep(0.5)
                now = vm_kib(r.proc.pid, "VmRSS")
                if now - last < 1024:
                    break
                last = now
            good = event_body("evt_during_attack")
            status, _, _ = r.post(good, sign(good))
            self.assertEqual(status, 202)
            peak = vm_kib(r.proc.pid, "VmHWM")
            refused = [a for a in answers.values() if a.startswith(b"HTTP/1.1 503")]
            metrics = r.metrics()
            sys.stderr.write(f"\nlisten peak RSS (VmHWM) with {self.CONNECTIONS} x "
                             f"{self.BODY // MIB} MiB held bodies: {peak / 1024:.0f} MiB; "
                             f"{len(refused)} answered 503 before their body\n")
        finally:
            for s in conns:
                s.close()
        self.assertLess(peak, self.RSS_LIMIT_KIB, f"peak RSS {peak} KiB")
        self.assertGreater(len(refused), 0)
        self.assertTrue(all(b"Retry-After: 1" in a for a in refused), refused[:1])
        self.assertLessEqual(metrics["hookctl_buffered_bytes"],
                             metrics["hookctl_buffered_bytes_limit"])
        self.assertEqual(metrics["hookctl_buffered_bytes_limit"], 256 * MIB)
        self.assertEqual(metrics['hookctl_requests_total{status="503",reason="buffer_full"}'],
                         len(refused))
        logged = [l for l in r.log_lines() if l.get("reason_code") == "buffer_full"]
        self.assertEqual(len(logged), len(refused))
        self.assertIn("--max-buffered", logged[0]["reason"])
        self.assertEqual(stored_ids(r.archive), ["evt_during_attack"])

    def test_header_checks_refuse_before_the_body_is_read(self):
        r = Receiver(self.tmp)
        try:
            # A stale timestamp and a missing signature are answered 401 as soon as the headers
            # are in: the 24 MiB announced are never sent, yet the answer comes.
            for headers, reason in [(sign(b"{}", ts=int(time.time()) - 3600),
                                     b"timestamp outside tolerance"),
                                    ({"Content-Type": "application/json"},
                                     b"missing header X-Signature")]:
                with socket.create_connection((r.host, r.port), timeout=10) as s:
                    s.sendall(request_head(r, 24 * MIB, headers))
                    got = s.recv(1000)
                self.assertTrue(got.startswith(b"HTTP/1.1 401"), got)
                self.assertIn(b"Connection: close", got)
                self.assertIn(reason, got)
            self.assertEqual(r.metrics()["hookctl_buffered_bytes"], 0)
        finally:
            r.kill()

    def test_max_buffered_must_hold_the_largest_body(self):
        out = subprocess.run([HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--archive",
                              os.path.join(self.tmp, "x.db"), "--secret-env", SECRET_ENV,
                              "--max-body", "25MiB", "--max-buffered", "16MiB"],
                             env=dict(os.environ, **{SECRET_ENV: SECRET}), capture_output=True,
                             timeout=20)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn(b"--max-buffered", out.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.db")))


class ListenLockedArchiveTest(TempDirTestCase):
    def test_locked_archive_answers_503_within_about_a_second_and_recovers_at_once(self):
        r = Receiver(self.tmp)
        try:
            self.assertEqual(r.post(event_body("evt_before_lock"))[0], 202)
            db = sqlite3.connect(r.archive, timeout=5, isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            locked_at = time.monotonic()
            status, headers, _ = r.post(event_body("evt_locked_first"))
            first_503 = time.monotonic() - locked_at
            self.assertEqual(status, 503)
            self.assertEqual(headers.get("Retry-After"), "1")
            # Several at once, while it stays locked: each is answered within about a second,
            # not one lock wait per batch ahead of it.
            results = {}

            def send(i):
                start = time.monotonic()
                status = r.post(event_body(f"evt_locked_{i}"))[0]
                results[i] = (status, time.monotonic() - start)

            threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
                time.sleep(0.1)
            for t in threads:
                t.join(60)
            db.execute("ROLLBACK")
            freed_at = time.monotonic()
            status = r.post(event_body("evt_after_lock"))[0]
            recovered = time.monotonic() - freed_at
            db.close()
            slowest = max(d for _, d in results.values())
            sys.stderr.write(f"\nlocked archive: first 503 after {first_503:.2f}s, slowest of 6 "
                             f"concurrent 503s {slowest:.2f}s, first 202 after unlocking "
                             f"{recovered:.2f}s\n")
            self.assertEqual(status, 202)
            self.assertLess(first_503, 3)
            self.assertEqual(sorted(s for s, _ in results.values()), [503] * 6)
            self.assertLess(slowest, 3)
            self.assertLess(recovered, 3)
            self.assertEqual(stored_ids(r.archive), ["evt_before_lock", "evt_after_lock"])
        finally:
            r.kill()


class ListenDiskFullTest(TempDirTestCase):
    # A file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so writes fail with EFBIG instead of
    # killing the process) stands for a full disk: the WAL cannot grow past it.
    LIMIT = 1 * MIB

    def test_a_failed_write_gives_the_wal_space_back(self):
        def limit_file_size():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.LIMIT, self.LIMIT))

        r = Receiver(self.tmp, "-q", "--synchronous", "normal", preexec_fn=limit_file_size)
        try:
            accepted, first_failure = [], None
            for i in range(400):
                body = event_body(f"evt_fill_{i:04d}", size=6000)
                status = r.post(body)[0]
                if status == 202:
                    accepted.append(f"evt_fill_{i:04d}")
                elif status == 503:
                    first_failure = i
                    break
                else:
                    self.fail(f"unexpected status {status}")
            self.assertIsNotNone(first_failure, "the file-size limit was never reached")
            # The failure checkpointed and truncated the WAL: its space is free again, so the
            # next events are stored (before the fix the WAL stayed full and every one got 503).
            after = []
            for i in range(20):
                event_id = f"evt_after_{i:02d}"
                if r.post(event_body(event_id, size=6000))[0] == 202:
                    after.append(event_id)
            self.assertGreater(len(after), 0, r.stderr())
            # Never a 2xx for an event that was not stored.
            self.assertEqual(set(stored_ids(r.archive)), set(accepted + after))
        finally:
            r.kill()


class ListenOutOfDescriptorsTest(TempDirTestCase):
    NOFILE = 64
    HOLD = 2.5

    def test_accept_failures_back_off_and_are_logged_once_per_interval(self):
        def limit_descriptors():
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.NOFILE, self.NOFILE))

        r = Receiver(self.tmp, "-q", "--threads", "2", preexec_fn=limit_descriptors)
        conns = []
        try:
            if SANITIZED:
                # UBSan checks an object's vtable the first time it meets its type with a pipe;
                # out of descriptors that fails and it reports a false "invalid vptr" on Boost's
                # system error category, fatally. A connection reset first makes listen meet
                # that category while it still has descriptors.
                with socket.create_connection((r.host, r.port), timeout=10) as s:
                    s.sendall(b"POST /webhooks/email HTTP/1.1\r\nContent-Length: 10\r\n\r\n")
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                time.sleep(0.2)
            # More connections than listen has descriptors for: the rest wait in the backlog.
            for _ in range(self.NOFILE + 16):
                conns.append(socket.create_connection((r.host, r.port), timeout=10))
            time.sleep(self.HOLD)
            lines = [l for l in r.log_lines() if "accept failed" in l.get("msg", "")]
            sys.stderr.write(f"\n{len(lines)} 'accept failed' lines in {self.HOLD}s\n")
            # The old loop logged every 100 ms (about 25 lines here); now the first failure and
            # then one line per 10 s.
            self.assertGreaterEqual(len(lines), 1, r.stderr())
            self.assertLessEqual(len(lines), 2, lines)
            for s in conns:
                s.close()
            conns = []
            # Once descriptors are free again it serves (after at most one backoff wait).
            deadline = time.monotonic() + 20
            while True:
                try:
                    if r.get("/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                self.assertLess(time.monotonic(), deadline, r.stderr())
                time.sleep(0.1)
            failures = r.metrics()["hookctl_accept_failures_total"]
        finally:
            for s in conns:
                s.close()
            r.kill()
        self.assertIn("Too many open files", lines[0]["msg"])
        self.assertIn("ulimit -n", lines[0]["msg"])
        self.assertGreater(failures, 0)


if __name__ == "__main__":
    unittest.main()
