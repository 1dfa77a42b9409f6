"""hookctl listen fault injection: each flag does what it says at the rate it says (within
statistical bounds for a fixed seed), reproducibly, and injected faults are never stored.
Also: durability under SIGKILL and 256 concurrent keep-alive connections."""
import http.client
import math
import signal
import threading
import time
import unittest

from hookctl_test import TempDirTestCase, SANITIZED
from test_listen_common import Receiver, sign, event_body, stored_ids

N = 150 if SANITIZED else 400


def within(count, n, p):
    """True when `count` successes of `n` draws is within 5 standard deviations of p*n."""
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= 5 * sd + 1


class ListenFaultsTest(TempDirTestCase):
    def send_sequentially(self, r, n, prefix):
        """Sends n distinct events one after another (reconnecting after drops); returns the
        list of (event id, status or None for a dropped connection, headers)."""
        out = []
        conn = r.connect()
        for i in range(n):
            event_id = f"{prefix}_{i}"
            body = event_body(event_id)
            try:
                status, headers, _ = r.post(body, conn=conn)
                out.append((event_id, status, headers))
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                out.append((event_id, None, {}))
                conn.close()
                conn = r.connect()
        conn.close()
        return out

    def check_stored_are_the_202s(self, r, results):
        accepted = {eid for eid, status, _ in results if status == 202}
        self.assertEqual(set(stored_ids(r.archive)), accepted)

    def test_fail_rate_at_its_rate_and_reproducible_with_seed(self):
        runs = []
        for name in ("a", "b"):
            r = Receiver(self.tmp, "--fail-rate", "0.3", "--fail-status", "500", "--seed", "7",
                         name=name)
            try:
                results = self.send_sequentially(r, N, "evt_fail")
                m = r.metrics()
            finally:
                r.kill()
            statuses = [s for _, s, _ in results]
            failed = statuses.count(500)
            self.assertEqual(failed + statuses.count(202), N)
            self.assertTrue(within(failed, N, 0.3), failed)
            self.assertEqual(m['hookctl_faults_injected_total{kind="fail"}'], failed)
            self.assertEqual(m['hookctl_requests_total{status="500",reason="fault_fail"}'],
                             failed)
            self.check_stored_are_the_202s(r, results)
            runs.append(statuses)
        self.assertEqual(runs[0], runs[1])  # same seed, same decisions

    def test_throttle_rate_answers_429_with_retry_after(self):
        r = Receiver(self.tmp, "--throttle-rate", "0.2", "--retry-after", "2s", "--seed", "3")
        try:
            results = self.send_sequentially(r, N, "evt_throttle")
            self.check_stored_are_the_202s(r, results)
        finally:
            r.kill()
        throttled = [h for _, s, h in results if s == 429]
        self.assertTrue(within(len(throttled), N, 0.2), len(throttled))
        self.assertTrue(all(h.get("Retry-After") == "2" for h in throttled))

    def test_drop_rate_closes_without_answering(self):
        r = Receiver(self.tmp, "--drop-rate", "0.25", "--seed", "11")
        try:
            results = self.send_sequentially(r, N, "evt_drop")
            m = r.metrics()
            self.check_stored_are_the_202s(r, results)
        finally:
            r.kill()
        dropped = [s for _, s, _ in results].count(None)
        self.assertTrue(within(dropped, N, 0.25), dropped)
        self.assertEqual(m['hookctl_faults_injected_total{kind="drop"}'], dropped)

    def test_latency_range_delays_every_answer(self):
        r = Receiver(self.tmp, "--latency", "100ms-200ms", "--seed", "5")
        try:
            conn = r.connect()
            took = []
            for i in range(12):
                start = time.monotonic()
                status, _, _ = r.post(event_body(f"evt_slow_{i}"), conn=conn)
                took.append(time.monotonic() - start)
                self.assertEqual(status, 202)
            conn.close()
        finally:
            r.kill()
        self.assertGreaterEqual(min(took), 0.099)
        self.assertLess(max(took), 2.0)
        self.assertGreater(max(took) - min(took), 0.01)  # a range, not a constant

    def test_fail_first_fails_the_first_n_requests_of_each_event(self):
        r = Receiver(self.tmp, "--fail-first", "2")
        try:
            conn = r.connect()
            statuses = {}
            for attempt in range(4):
                for eid in ("evt_ff_a", "evt_ff_b"):
                    statuses.setdefault(eid, []).append(
                        r.post(event_body(eid), conn=conn)[0])
            conn.close()
            m = r.metrics()
            self.assertEqual(sorted(stored_ids(r.archive)), ["evt_ff_a", "evt_ff_b"])
        finally:
            r.kill()
        for eid in ("evt_ff_a", "evt_ff_b"):
            self.assertEqual(statuses[eid], [503, 503, 202, 200], eid)
        self.assertEqual(m['hookctl_faults_injected_total{kind="fail_first"}'], 4)


class ListenDurabilityTest(TempDirTestCase):
    def test_every_202_survives_sigkill_while_sending(self):
        r = Receiver(self.tmp)
        accepted = []
        lock = threading.Lock()
        stop = threading.Event()

        def sender(t):
            conn = r.connect(timeout=10)
            for i in range(100000):
                if stop.is_set():
                    break
                eid = f"evt_kill_{t}_{i}"
                try:
                    status, _, _ = r.post(event_body(eid), conn=conn)
                except (OSError, http.client.HTTPException):
                    break
                if status == 202:
                    with lock:
                        accepted.append(eid)
            conn.close()

        threads = [threading.Thread(target=sender, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        target = 200 if SANITIZED else 1500
        while len(accepted) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        r.proc.send_signal(signal.SIGKILL)  # while senders are mid-request
        r.kill()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreater(len(accepted), 50)
        stored = set(stored_ids(r.archive))
        missing = [eid for eid in accepted if eid not in stored]
        self.assertEqual(missing, [], f"{len(missing)} of {len(accepted)} 202s not stored")


class ListenConcurrencyTest(TempDirTestCase):
    def test_256_keep_alive_connections_at_once(self):
        r = Receiver(self.tmp)
        connections = 256
        per_connection = 2 if SANITIZED else 4
        barrier = threading.Barrier(connections, timeout=60)
        statuses = []
        errors = []
        lock = threading.Lock()

        def client(c):
            try:
                conn = r.connect(timeout=60)
                conn.connect()
                barrier.wait()  # every connection is open before anyone sends
                mine = []
                for i in range(per_connection):
                    mine.append(r.post(event_body(f"evt_conc_{c}_{i}"), conn=conn)[0])
                conn.close()
                with lock:
                    statuses.extend(mine)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(c,)) for c in range(connections)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(errors, [])
            self.assertEqual(statuses, [202] * (connections * per_connection))
            self.assertEqual(len(stored_ids(r.archive)), connections * per_connection)
            m = r.metrics()
            # Group commit: fewer transactions than events.
            self.assertLess(m["hookctl_commit_batch_size_count"], connections * per_connection)
        finally:
            r.kill()


if __name__ == "__main__":
    unittest.main()
