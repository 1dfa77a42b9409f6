"""The PostgreSQL archive (issue 17): a throwaway PostgreSQL 15 started by the test (pg_fixture),
the real `listen`, real HTTP on loopback. Fails, never skips, when PostgreSQL is missing."""
import http.client
import json
import os
import signal
import sqlite3
import threading
import time
import unittest

from hookctl_test import SANITIZED, TempDirTestCase, free_port, run
from pg_fixture import PgServer, wait_until
from test_listen_common import SECRET, SECRET_ENV, Receiver, event_body, sign, stored_ids

# Counts are scaled down under ASan+UBSan (HOOKCTL_SANITIZED=1), where listen runs ~10x slower:
# 5,000 events to each of two receivers become 1,000.
TWO_RECEIVERS = 1000 if SANITIZED else 5000
PASSWORD = "S3cretPw-never-shown"

PG = None


def setUpModule():
    global PG
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()


class Sender:
    """Posts signed events to a receiver over keep-alive connections from `threads` threads;
    records each event's status (or the exception's name when the request got no answer)."""

    def __init__(self, receiver, threads=4):
        self.receiver = receiver
        self.threads = threads
        self.status = {}
        self.retry_after = []
        self.lock = threading.Lock()

    def send(self, ids):
        chunks = [ids[i::self.threads] for i in range(self.threads)]
        workers = [threading.Thread(target=self._worker, args=(chunk,)) for chunk in chunks]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return self.status

    def _worker(self, ids, stop=None):
        conn = None
        for event_id in ids:
            if stop is not None and stop.is_set():
                break
            body = event_body(event_id)
            try:
                conn = conn or self.receiver.connect(timeout=30)
                conn.request("POST", self.receiver.path, body=body, headers=sign(body))
                resp = conn.getresponse()
                resp.read()
                result = resp.status
                if result == 503:
                    with self.lock:
                        self.retry_after.append(resp.getheader("Retry-After"))
            except (OSError, http.client.HTTPException) as e:
                result = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.status[event_id] = result
        if conn is not None:
            conn.close()

    def send_until(self, stop, prefix, threads=None):
        """Sends fresh ids `prefix-<n>` from each thread until `stop` is set."""
        def ids(t):
            n = 0
            while True:
                yield f"{prefix}-{t}-{n}"
                n += 1
        workers = [threading.Thread(target=self._worker, args=(ids(t), stop))
                   for t in range(threads or self.threads)]
        for w in workers:
            w.start()
        return workers

    def with_status(self, status):
        with self.lock:
            return {i for i, s in self.status.items() if s == status}


def table_ids(db):
    return {row[0] for row in PG.psql(db, "SELECT event_id FROM events")}


class PasswordTest(TempDirTestCase):
    def test_uri_with_password_refused_and_never_echoed(self):
        PG.create_database("pw")
        uris = [f"postgres://{PG.uri('pw').split('//', 1)[1].replace('@', ':' + PASSWORD + '@')}",
                f"postgresql://127.0.0.1:{PG.port}/pw?user=hookctl&password={PASSWORD}"]
        # With trust authentication any password connects: only the refusal keeps it out.
        for uri in uris:
            for args in (["listen", "--bind", "127.0.0.1:0", "--secret-env", SECRET_ENV,
                          "--archive", uri],
                         ["events", "list", "--archive", uri],
                         ["events", "stats", "--archive", uri, "--json"],
                         ["events", "runs", "--archive", uri],
                         ["replay", "--from", uri, "--to", "http://127.0.0.1:9/",
                          "--secret-env", SECRET_ENV, "--no-progress"]):
                with self.subTest(args=args[:2], uri=uri.split(":", 1)[0]):
                    proc = run(args, env={SECRET_ENV: SECRET}, timeout=30)
                    out = proc.stdout + proc.stderr
                    self.assertEqual(proc.returncode, 2, out)
                    self.assertNotIn(PASSWORD.encode(), out)
                    self.assertNotIn(uri.encode(), out)
                    self.assertIn(b"PGPASSWORD", proc.stderr)
        # Nothing reached the database: no schema was created.
        self.assertEqual(PG.psql("pw", "SELECT to_regclass('events') IS NULL"), [["t"]])

    def test_unreachable_server_exits_4_naming_host_and_database(self):
        port = free_port()
        proc = run(["events", "list", "--archive", f"postgres://hookctl@127.0.0.1:{port}/nodb"],
                   timeout=30)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        err = proc.stderr.decode()
        self.assertIn("127.0.0.1", err)
        self.assertIn(str(port), err)
        self.assertIn("nodb", err)


class RoundTripTest(TempDirTestCase):
    def test_listen_events_and_replay_on_postgres(self):
        uri = PG.create_database("roundtrip")
        listener = Receiver(self.tmp, archive=uri, name="pg")
        try:
            ids = [f"evt_rt_{i:03d}" for i in range(20)]
            statuses = Sender(listener).send(ids)
            self.assertEqual(set(statuses.values()), {202}, statuses)
            status, _, _ = listener.post(event_body(ids[0]))
            self.assertEqual(status, 200)  # a duplicate
            self.assertEqual(listener.get("/healthz"), (200, "ok\n"))
        finally:
            code, _ = listener.stop()
        self.assertEqual(code, 0, listener.stderr())
        self.assertEqual(table_ids("roundtrip"), set(ids))
        self.assertEqual(PG.psql("roundtrip", "SELECT count(*) FROM event_bodies"), [["20"]])

        listed = run(["events", "list", "--archive", uri, "--json"], check=0).stdout
        self.assertEqual({json.loads(line)["event_id"] for line in listed.splitlines()}, set(ids))
        shown = json.loads(run(["events", "show", "--archive", uri, ids[3], "--json"],
                               check=0).stdout)
        self.assertEqual(shown["payload"], event_body(ids[3]).decode())  # the bytes as sent
        self.assertEqual(shown["source"], "listen")
        stats = json.loads(run(["events", "stats", "--archive", uri, "--json"], check=0).stdout)
        self.assertEqual(stats["total"], 20)
        exported = run(["events", "export", "--archive", uri], check=0).stdout.splitlines()
        self.assertEqual(len(exported), 20)
        run(["events", "mark", "--archive", uri, ids[0], ids[1], "--status", "dead", "--reason",
             "manual"], check=0)
        self.assertEqual(PG.psql("roundtrip", "SELECT event_id, last_error FROM events WHERE "
                                              "status = 'dead' ORDER BY 1"),
                         [[ids[0], "manual"], [ids[1], "manual"]])
        # events import into PostgreSQL: the export of another archive, idempotent.
        # The first line again at the end: in one batch, its first copy is the one stored.
        lines = [line.decode().replace("evt_rt_", "evt_im_") for line in exported[:5]]
        again = json.loads(lines[0])
        again["payload"] = "second copy"
        imported = self.write("more.ndjson", "\n".join(lines + [json.dumps(again)]) + "\n")
        first = json.loads(run(["events", "import", "--archive", uri, imported, "--json"],
                               check=0).stdout)
        self.assertEqual((first["inserted"], first["duplicates"]), (5, 1))
        second = json.loads(run(["events", "import", "--archive", uri, imported, "--json"],
                                check=0).stdout)
        self.assertEqual((second["inserted"], second["duplicates"]), (0, 6))
        self.assertEqual(len(table_ids("roundtrip")), 25)
        stored = json.loads(run(["events", "show", "--archive", uri, again["event_id"],
                                 "--json"], check=0).stdout)
        self.assertEqual(stored["payload"], json.loads(lines[0])["payload"])

        # Replay from the PostgreSQL archive into a second receiver (on SQLite).
        target = Receiver(self.tmp, name="target")
        try:
            proc = run(["replay", "--from", uri, "--to", target.url, "--status", "received",
                        "--secret-env", SECRET_ENV, "--no-progress", "--json"],
                       env={SECRET_ENV: SECRET}, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
        finally:
            target.stop()
        delivered = set(stored_ids(target.archive))
        imported_ids = {json.loads(line)["event_id"].replace("evt_rt_", "evt_im_")
                        for line in exported[:5]}
        self.assertEqual(delivered, set(ids[2:]) | imported_ids)
        rows = PG.psql("roundtrip", "SELECT state, count(*) FROM run_items GROUP BY 1")
        self.assertEqual(rows, [["delivered", str(len(delivered))]])
        runs = run(["events", "runs", "--archive", uri, "--json"], check=0).stdout.decode()
        self.assertIn('"delivered"', runs)
        self.assertEqual(PG.psql("roundtrip", "SELECT count(*) FROM events WHERE status = "
                                              "'delivered'"), [[str(len(delivered))]])


class QueryTest(TempDirTestCase):
    """replay --from postgres://... --query: a foreign dead-letter table replayed in place."""

    def setUp(self):
        super().setUp()
        self.uri = PG.create_database(f"dlq_{self.id().rsplit('.', 1)[1][:40]}")
        self.db = self.uri.rsplit("/", 1)[1]
        PG.psql(self.db, "CREATE TABLE webhook_failures (id text, body text, org text, "
                         "failed_at timestamptz)")
        values = ", ".join(
            "('f%d', '%s', 'o%d', '2026-11-30 12:00:%02d+00')"
            % (i, event_body(f"f{i}", n=i).decode(), i % 2, i) for i in range(8))
        PG.psql(self.db, "INSERT INTO webhook_failures VALUES " + values)

    def replay(self, query, *args, check=None, target=None):
        argv = ["replay", "--from", self.uri, "--query", query, "--archive",
                os.path.join(self.tmp, "runs.db"), "--secret-env", SECRET_ENV, "--no-progress"]
        argv += ["--to", target.url if target else "http://127.0.0.1:9/"]
        proc = run(argv + list(args), env={SECRET_ENV: SECRET}, timeout=120)
        if check is not None:
            self.assertEqual(proc.returncode, check, proc.stderr)
        return proc

    def test_rows_are_delivered_with_their_bytes_and_the_run_recorded(self):
        # A timestamptz received_at is read as its instant (2026-11-30T12:00:01Z for f1).
        dry = json.loads(self.replay("SELECT id AS event_id, body AS payload, failed_at AS "
                                     "received_at FROM webhook_failures WHERE id = 'f1'",
                                     "--dry-run", "--json", check=0).stdout)
        self.assertEqual(dry["count"], 1)
        self.assertEqual(dry["first"][0]["received_at_ms"], 1796040001000)
        target = Receiver(self.tmp, name="target")
        try:
            # payload as text, then as bytea: both are sent as the stored bytes.
            self.replay("SELECT id AS event_id, body AS payload, org AS org_id, failed_at AS "
                        "received_at FROM webhook_failures WHERE org = 'o1' ORDER BY failed_at",
                        "--rate", "max", check=0, target=target)
            self.replay("SELECT id AS event_id, convert_to(body, 'UTF8') AS payload "
                        "FROM webhook_failures WHERE id IN ('f0', 'f2')", check=0, target=target)
        finally:
            target.stop()
        self.assertEqual(sorted(stored_ids(target.archive)), ["f0", "f1", "f2", "f3", "f5", "f7"])
        for event_id in ("f2", "f3"):
            shown = json.loads(run(["events", "show", "--archive", target.archive, event_id,
                                    "--json"], check=0).stdout)
            self.assertEqual(shown["payload"], event_body(event_id, n=int(event_id[1:])).decode())
        con = sqlite3.connect(os.path.join(self.tmp, "runs.db"))
        try:
            self.assertEqual(con.execute("SELECT count(*) FROM attempts").fetchone()[0], 6)
            self.assertEqual(con.execute("SELECT count(*) FROM runs").fetchone()[0], 2)
        finally:
            con.close()
        # The operator's table is untouched, and hookctl created nothing in that database.
        self.assertEqual(PG.psql(self.db, "SELECT count(*) FROM webhook_failures"), [["8"]])
        self.assertEqual(PG.psql(self.db, "SELECT to_regclass('events') IS NULL"), [["t"]])

    def test_bad_queries_exit_2_before_sending_and_write_nothing(self):
        cases = [
            ("SELECT id AS event_id FROM webhook_failures", b"payload"),
            ("SELECT body AS payload FROM webhook_failures WHERE false", b"event_id"),
            ("SELECT id AS event_id, body AS payload FROM no_such_table",
             b'failed: relation "no_such_table" does not exist'),
            ("DELETE FROM webhook_failures RETURNING id AS event_id, body AS payload",
             b"read-only"),
            ("SELECT '' AS event_id, body AS payload FROM webhook_failures", b"empty event_id"),
        ]
        for query, said in cases:
            with self.subTest(query=query):
                proc = self.replay(query, check=2)
                self.assertIn(b"--query", proc.stderr)
                self.assertIn(said, proc.stderr)
        self.assertEqual(PG.psql(self.db, "SELECT count(*) FROM webhook_failures"), [["8"]])

    def test_unreachable_database_exits_4(self):
        port = free_port()
        proc = run(["replay", "--from", f"postgres://hookctl@127.0.0.1:{port}/dlq", "--query",
                    "SELECT 1 AS event_id, 2 AS payload", "--archive",
                    os.path.join(self.tmp, "runs.db"), "--to", "http://127.0.0.1:9/",
                    "--secret-env", SECRET_ENV, "--no-progress"],
                   env={SECRET_ENV: SECRET}, timeout=60)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn(str(port).encode(), proc.stderr)


class EncryptedTest(TempDirTestCase):
    def test_listen_with_archive_key_seals_bodies_in_postgres(self):
        uri = PG.create_database("sealed")
        key = os.path.join(self.tmp, "archive.key")
        secret = run(["secret", "new", "--kind", "archive", "-q"], check=0).stdout
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, secret)
        os.close(fd)
        listener = Receiver(self.tmp, "--archive-key", key, archive=uri, name="sealed")
        try:
            ids = [f"evt_sealed_{i}" for i in range(3)]
            self.assertEqual(set(Sender(listener).send(ids).values()), {202})
        finally:
            listener.stop()
        # Every body in the table is a sealed envelope ("\x89HKE"), none holds the plaintext.
        rows = PG.psql("sealed", "SELECT encode(substr(body, 1, 4), 'hex'), "
                                 "position('evt_sealed' IN encode(body, 'escape')) FROM "
                                 "event_bodies")
        self.assertEqual(rows, [["89484b45", "0"]] * 3)
        shown = json.loads(run(["events", "show", "--archive", uri, "--archive-key", key,
                                ids[1], "--json"], check=0).stdout)
        self.assertEqual(shown["payload"], event_body(ids[1]).decode())
        refused = run(["events", "show", "--archive", uri, ids[1]])
        self.assertEqual(refused.returncode, 4, refused.stderr)


class ManyReceiversTest(TempDirTestCase):
    def test_two_listens_on_one_database_store_each_event_once(self):
        uri = PG.create_database("two")
        a = Receiver(self.tmp, archive=uri, name="a")
        b = Receiver(self.tmp, archive=uri, name="b")
        try:
            ids = [f"evt_two_{i:05d}" for i in range(TWO_RECEIVERS)]
            # Each event to both receivers, at the same time from different threads.
            to_a, to_b = Sender(a), Sender(b)
            ta = threading.Thread(target=to_a.send, args=(ids,))
            tb = threading.Thread(target=to_b.send, args=(list(reversed(ids)),))
            ta.start(), tb.start()
            ta.join(), tb.join()
        finally:
            a.stop()
            b.stop()
        rows = PG.psql("two", "SELECT count(*), count(DISTINCT event_id) FROM events")
        self.assertEqual(rows, [[str(len(ids)), str(len(ids))]])  # every event stored once
        self.assertEqual(table_ids("two"), set(ids))                # none lost
        # Each event got one 202 (the receiver whose insert committed) and one 200 duplicate:
        # the 202s over both receivers are exactly the rows.
        accepted = to_a.with_status(202) | to_b.with_status(202)
        self.assertEqual(len(to_a.with_status(202)) + len(to_b.with_status(202)), len(ids))
        self.assertEqual(accepted, set(ids))
        for event_id in ids:
            self.assertEqual(sorted([to_a.status[event_id], to_b.status[event_id]]), [200, 202],
                             event_id)


class CrashTest(TempDirTestCase):
    def test_kill_9_under_load_loses_no_accepted_event(self):
        uri = PG.create_database("crash")
        for attempt in range(5):
            listener = Receiver(self.tmp, archive=uri, name=f"k{attempt}")
            sender = Sender(listener)
            stop = threading.Event()
            workers = sender.send_until(stop, f"evt_k{attempt}")
            wait_until(lambda: len(sender.with_status(202)) >= 50, timeout=30, step=0.01)
            os.killpg(listener.proc.pid, signal.SIGKILL)
            stop.set()
            for w in workers:
                w.join()
            listener.kill()
            accepted = sender.with_status(202)
            self.assertGreaterEqual(len(accepted), 50)
            missing = accepted - table_ids("crash")
            self.assertEqual(missing, set(), f"run {attempt}: 202 without a row")


class ServerDownTest(TempDirTestCase):
    def test_postgres_stopped_under_load_gives_503_then_202_again(self):
        uri = PG.create_database("down")
        listener = Receiver(self.tmp, archive=uri, name="down")
        sender = Sender(listener, threads=2)
        stop = threading.Event()
        try:
            workers = sender.send_until(stop, "evt_before")
            self.assertTrue(wait_until(lambda: len(sender.with_status(202)) >= 50, timeout=30))
            PG.stop("fast")
            stop.set()
            for w in workers:
                w.join()
            before = sender.with_status(202)

            # While the server is down: 503 with Retry-After, never a 202; /healthz says so.
            down = Sender(listener, threads=2)
            down.send([f"evt_down_{i}" for i in range(40)])
            self.assertEqual(set(down.status.values()), {503}, down.status)
            self.assertTrue(all(r == "1" for r in down.retry_after), down.retry_after)
            self.assertTrue(wait_until(lambda: listener.get("/healthz")[0] == 503, timeout=30))
            status, text = listener.get("/healthz")
            self.assertIn("archive unavailable", text)

            PG.start()
            # The same listen recovers by itself: /healthz, then 202s.
            self.assertTrue(wait_until(lambda: listener.get("/healthz")[0] == 200, timeout=30))
            after = Sender(listener, threads=2)
            after.send([f"evt_after_{i}" for i in range(20)])
            self.assertEqual(set(after.status.values()), {202}, after.status)
            self.assertEqual(listener.proc.poll(), None)
        finally:
            stop.set()
            listener.stop()
        rows = table_ids("down")
        self.assertEqual(before - rows, set(), "202 without a row")
        self.assertEqual(after.with_status(202) - rows, set())
        self.assertEqual({i for i in rows if i.startswith("evt_down_")}, set())


if __name__ == "__main__":
    unittest.main()
