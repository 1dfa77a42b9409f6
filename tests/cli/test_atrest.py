"""Email at rest: encrypted archive bodies (listen, import, replay, rekey), redacted exports,
and the parser divergence report (events reparse). Real listen, real SQLite files."""
import base64
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import HOOKCTL, SANITIZED, SOURCE, TempDirTestCase, run  # noqa: E402
from test_listen_common import Receiver as Listener, sign  # noqa: E402
from test_replay import ENV as REPLAY_ENV, Receiver as Target, make_archive  # noqa: E402

SAMPLE = os.path.join(SOURCE, "examples", "sample-archive.ndjson")
MAGIC = b"\x89HKE\x01"

MESSAGE = ("From: Zed Quist <zed.quist@private-mail.example>\r\n"
           "To: Help Desk <help@acme.example>\r\n"
           "Subject: %s\r\n"
           "Message-ID: <m%d@private-mail.example>\r\n"
           "Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n"
           "Body number %d says the passphrase is zebra-%d.\r\n")


def ndjson(data):
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def file_bytes(path):
    out = b""
    for p in (path, path + "-wal"):
        if os.path.exists(p):
            with open(p, "rb") as f:
                out += f.read()
    return out


def digest(path):
    return hashlib.sha256(file_bytes(path)).hexdigest()


class AtRestTest(TempDirTestCase):
    def key(self, name="k1.key"):
        """A new archive key file (mode 0600), made by `secret new --kind archive`."""
        proc = run(["secret", "new", "--kind", "archive"], check=0)
        text = proc.stdout.decode().strip()
        self.assertTrue(text.startswith("hkak_"), text)
        return self.write(name, text + "\n", mode=0o600)

    def key_id(self, path):
        """The id an envelope names for the key in `path` (its 8-hex fingerprint)."""
        with open(path) as f:
            raw = base64.b64decode(f.read().strip()[len("hkak_"):])
        return hashlib.sha256(raw).hexdigest()[:8]

    def sealed_rows(self, db):
        con = sqlite3.connect(db)
        rows = con.execute("SELECT seq, body, raw_mime FROM event_bodies ORDER BY seq").fetchall()
        con.close()
        return rows

    def envelope_keys(self, db):
        keys = set()
        for _, body, mime in self.sealed_rows(db):
            for value in (body, mime):
                if value is None:
                    continue
                self.assertTrue(bytes(value).startswith(MAGIC), bytes(value)[:20])
                keys.add(bytes(value)[6:6 + bytes(value)[5]].decode())
        return keys

    def mime_archive(self, db, n, key=None, altered=(), field="subject"):
        """Imports `n` parsed messages with their raw MIME; the stored JSON of the events in
        `altered` has `field` changed, as an older parser might have produced it."""
        lines = []
        for i in range(n):
            raw = (MESSAGE % ("Order %d for Zed" % i, i, i, i)).encode()
            eml = self.write("m%d.eml" % i, raw)
            payload = json.loads(run(["parse", eml, "--org", "org_m"], check=0).stdout)
            if i in altered:
                payload[field] = "altered by the old parser"
            lines.append(json.dumps({
                "event_id": payload["event_id"], "received_at": payload["received_at"],
                "org_id": "org_m", "payload": payload,
                "raw_mime_base64": base64.b64encode(raw).decode()}))
        src = self.write("mime.ndjson", "\n".join(lines) + "\n")
        args = ["events", "import", "--archive", db, src]
        run(args + (["--archive-key", key] if key else []), check=0)
        return [json.loads(line)["event_id"] for line in lines]

    # --- encryption ----------------------------------------------------------------------

    def test_listen_with_a_key_stores_nothing_in_clear_and_reads_back_with_the_key(self):
        key = self.key()
        db = os.path.join(self.tmp, "enc.db")
        listener = Listener(self.tmp, "--archive-key", key, archive=db)
        sent = {}
        try:
            for i in range(5):
                body = json.dumps({
                    "event_id": "evt_%d" % i, "org_id": "org_test",
                    "subject": "Kestrel merger memo %d" % i,
                    "from": {"address": "quill.harrow@secret-corp.example"},
                    "text": "The vault code is marmoset-%d" % i}).encode()
                status, _, _ = listener.post(body, headers=sign(body))
                self.assertIn(status, (200, 202))
                sent["evt_%d" % i] = body
        finally:
            listener.stop()
        blob = file_bytes(db)
        for plain in (b"Kestrel", b"quill.harrow", b"secret-corp", b"marmoset"):
            self.assertNotIn(plain, blob)
        self.assertEqual(self.envelope_keys(db), {self.key_id(key)})
        # Metadata stays in clear: list works without the key.
        listed = ndjson(run(["events", "list", "--archive", db], check=0).stdout)
        self.assertEqual(sorted(e["event_id"] for e in listed), sorted(sent))
        out = ndjson(run(["events", "export", "--archive", db, "--archive-key", key],
                         check=0).stdout)
        self.assertEqual({e["event_id"]: json.dumps(e["payload"]).encode() for e in out}.keys(),
                         sent.keys())
        for e in out:  # the body as received: a string when re-encoding would change it
            payload = e["payload"]
            self.assertEqual(payload if isinstance(payload, str) else json.dumps(payload),
                             sent[e["event_id"]].decode())
        # A redacted export of what listen stored (bodies as received, exported as text)
        # redacts inside them.
        proc = run(["events", "export", "--archive", db, "--archive-key", key, "--redact"],
                   check=0)
        for plain in (b"Kestrel", b"quill.harrow", b"marmoset"):
            self.assertNotIn(plain, proc.stdout)
        for e in ndjson(proc.stdout):
            self.assertTrue(e["payload"]["subject"].startswith("subject_"), e["payload"])
            self.assertEqual(e["payload"]["event_id"], e["event_id"])
        # Without the key: a clear error, exit 4, never garbage.
        proc = run(["events", "show", "--archive", db, "evt_1"], check=4)
        self.assertIn(b"--archive-key", proc.stderr)
        self.assertNotIn(b"\x89HKE", proc.stdout)
        # A plaintext writer is refused, and the file gains nothing in clear.
        proc = run(["events", "import", "--archive", db, SAMPLE], check=4)
        self.assertIn(b"encrypted", proc.stderr)
        self.assertNotIn(b"sender1@example.org", file_bytes(db))

    def test_listen_refuses_to_start_when_its_bodies_could_not_be_stored_as_asked(self):
        key = self.key()
        clear = os.path.join(self.tmp, "clear.db")
        run(["events", "import", "--archive", clear, SAMPLE], check=0)
        encrypted = os.path.join(self.tmp, "enc.db")
        run(["events", "import", "--archive", encrypted, "--archive-key", key, SAMPLE], check=0)
        listen = ["listen", "--bind", "127.0.0.1:0", "--secret-env", "HOOKCTL_ATREST_SECRET"]
        env = {"HOOKCTL_ATREST_SECRET": "atrest-secret"}
        # A key for an archive that holds events in clear: encrypt it first.
        proc = run(listen + ["--archive", clear, "--archive-key", key], env=env, check=4)
        self.assertIn(b"events rekey", proc.stderr)
        # An encrypted archive and no key: refused, rather than a 503 for every event.
        proc = run(listen + ["--archive", encrypted], env=env, check=4)
        self.assertIn(b"--archive-key", proc.stderr)

    def test_a_body_moved_to_another_row_fails_authentication(self):
        key = self.key()
        db = os.path.join(self.tmp, "a.db")
        run(["events", "import", "--archive", db, "--archive-key", key, SAMPLE], check=0)
        con = sqlite3.connect(db)
        con.execute("UPDATE event_bodies SET body = (SELECT body FROM event_bodies WHERE seq = 1)"
                    " WHERE seq = 2")
        con.commit()
        con.close()
        run(["events", "show", "--archive", db, "--archive-key", key, "evt_0001"], check=0)
        proc = run(["events", "show", "--archive", db, "--archive-key", key, "evt_0002"],
                   check=4)
        self.assertIn(b"failed authentication", proc.stderr)
        self.assertIn(b"evt_0002", proc.stderr)
        self.assertEqual(proc.stdout, b"")

    def test_a_wrong_key_exits_4_and_changes_nothing(self):
        key, wrong = self.key("right.key"), self.key("wrong.key")
        db = os.path.join(self.tmp, "a.db")
        run(["events", "import", "--archive", db, "--archive-key", key, SAMPLE], check=0)
        run(["events", "list", "--archive", db], check=0)  # settles the WAL
        before = digest(db)
        for args in (["events", "show", "--archive", db, "evt_0001"],
                     ["events", "export", "--archive", db],
                     ["events", "import", "--archive", db, SAMPLE],
                     ["events", "reparse", "--archive", db, "--compare", "--write"]):
            proc = run(args + ["--archive-key", wrong], check=4)
            self.assertIn(b"is encrypted under archive key", proc.stderr, args)
        self.assertEqual(digest(db), before)
        # A key file others can read is refused before anything is opened (exit 2).
        with open(key) as f:
            text = f.read()
        loose = self.write("loose.key", text, mode=0o644)
        proc = run(["events", "export", "--archive", db, "--archive-key", loose], check=2)
        self.assertIn(b"chmod 600", proc.stderr)
        self.assertNotIn(text.strip().encode(), proc.stderr)

    def test_replay_from_an_encrypted_archive_delivers_byte_identical_payloads(self):
        key = self.key()
        db = os.path.join(self.tmp, "a.db")
        bodies = {}
        for i in range(6):
            # Bytes exactly as signed: odd spacing, non-ASCII, no trailing newline.
            bodies["evt_r%d" % i] = ('{ "event_id":"evt_r%d",  "subject":"Caf\u00e9 %d" }'
                                     % (i, i)).encode()
        src = self.write("r.ndjson", "".join(
            json.dumps({"event_id": k, "received_at": "2026-11-25T08:00:00.000Z",
                        "status": "failed", "body_base64": base64.b64encode(v).decode()}) + "\n"
            for k, v in bodies.items()))
        run(["events", "import", "--archive", db, "--archive-key", key, src], check=0)
        healthy = {"on": False}
        target = Target(lambda i, h, b: (200, {}) if healthy["on"] else (404, {}))
        replay = ["replay", "--secret-env", "REPLAY_SECRET", "--no-progress", "--json"]
        try:
            proc = run(replay + ["--from", db, "--to", target.url, "--rate", "max"],
                       env=REPLAY_ENV)
            self.assertEqual(proc.returncode, 4, proc.stderr)
            self.assertIn(b"--archive-key", proc.stderr)
            self.assertEqual(target.requests, [])
            # Stopped by a systemic failure, then resumed: the key is given again (it is
            # never stored in the run).
            proc = run(replay + ["--from", db, "--archive-key", key, "--to", target.url,
                                 "--rate", "max", "--concurrency", "1"], env=REPLAY_ENV,
                       check=3)
            run_id = json.loads(proc.stdout)["run_id"]
            healthy["on"] = True
            run(replay + ["--resume", run_id, "--archive", db], env=REPLAY_ENV, check=4)
            run(replay + ["--resume", run_id, "--archive", db, "--archive-key", key],
                env=REPLAY_ENV, check=0)
            got = {h["Idempotency-Key"]: b for _, h, b in target.requests if b}
            delivered = [h["Idempotency-Key"] for _, h, _ in target.requests[-6:]]
        finally:
            target.close()
        self.assertEqual(got, bodies)
        self.assertEqual(sorted(delivered), sorted(bodies))

    def test_rekey_killed_then_run_again_ends_with_every_body_under_the_new_key(self):
        db = os.path.join(self.tmp, "big.db")
        n = 3000
        make_archive(db, [{"event_id": "evt_%05d" % i, "body": '{"n":%d,"who":"ann"}' % i,
                           "raw_mime": b"From: ann@example.org\r\n\r\nhi %d\r\n" % i}
                          for i in range(n)])
        old, new = self.key("old.key"), self.key("new.key")
        # Encrypting a clear archive is a rekey with no old key.
        run(["events", "rekey", "--archive", db, "--archive-key", old], check=0)
        self.assertEqual(self.envelope_keys(db), {self.key_id(old)})
        self.assertNotIn(b"ann@example.org", file_bytes(db))

        proc = subprocess.Popen([HOOKCTL, "events", "rekey", "--archive", db, "--archive-key",
                                 new, "--old-key", old, "--batch", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        progressed = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                con = sqlite3.connect(db, timeout=5)
                row = con.execute("SELECT value FROM archive_meta WHERE key = 'rekey'").fetchone()
                con.close()
            except sqlite3.OperationalError:
                row = None
            if row and json.loads(row[0]).get("bodies_after", 0) > 10:
                progressed = True
                break
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        self.assertTrue(progressed, "the rekey finished before it could be killed: raise n")
        keys = self.envelope_keys(db)
        self.assertEqual(keys, {self.key_id(old), self.key_id(new)})
        # The new key alone cannot read the rows not moved yet, and says which key they need.
        proc = run(["events", "export", "--archive", db, "--archive-key", new], check=4)
        self.assertIn(self.key_id(old).encode(), proc.stderr)

        proc = run(["events", "rekey", "--archive", db, "--archive-key", new, "--old-key", old],
                   check=0)
        self.assertIn(b"resumed", proc.stderr)
        self.assertEqual(self.envelope_keys(db), {self.key_id(new)})
        out = ndjson(run(["events", "export", "--archive", db, "--archive-key", new],
                         check=0).stdout)
        self.assertEqual(len(out), n)
        self.assertEqual(out[1234]["payload"], {"n": 1234, "who": "ann"})
        self.assertEqual(base64.b64decode(out[7]["raw_mime_base64"]),
                         b"From: ann@example.org\r\n\r\nhi 7\r\n")
        # The old key no longer opens the archive.
        run(["events", "export", "--archive", db, "--archive-key", old], check=4)

    def test_secret_new_kind_archive_in_a_keyring_is_a_usable_archive_key(self):
        ring = os.path.join(self.tmp, "archive-keys.json")
        run(["secret", "new", "--kind", "archive", "--keyring", ring], check=0)
        self.assertEqual(os.stat(ring).st_mode & 0o777, 0o600)
        db = os.path.join(self.tmp, "a.db")
        run(["events", "import", "--archive", db, "--archive-key", ring, SAMPLE], check=0)
        self.assertNotIn(b"sender1@example.org", file_bytes(db))
        shown = json.loads(run(["events", "show", "--archive", db, "--archive-key", ring,
                                "evt_0001", "--json"], check=0).stdout)
        self.assertEqual(shown["payload"]["from"]["address"], "sender1@example.org")

    # --- redaction ---------------------------------------------------------------------

    def test_redacted_export_has_no_address_imports_and_keeps_equal_addresses_equal(self):
        db = os.path.join(self.tmp, "a.db")
        run(["events", "import", "--archive", db, SAMPLE], check=0)
        proc = run(["events", "export", "--archive", db, "--redact",
                    "--redact-fields", "org_id"], check=0)
        self.assertIn(b"redacted", proc.stderr)
        out = proc.stdout
        addresses = set()
        subjects = set()
        with open(SAMPLE) as f:
            for line in f:
                p = json.loads(line)["payload"]
                for m in [p.get("from")] + p.get("to", []) + p.get("cc", []):
                    if m:
                        addresses.add(m["address"])
                        if m.get("name"):
                            subjects.add(m["name"])
                subjects.add(p["subject"])
        self.assertTrue(addresses)
        for value in addresses | subjects:
            self.assertNotIn(value.encode(), out, value)
        events = ndjson(out)
        self.assertEqual(len(events), 12)
        # support@example.com is the recipient of several events: one token everywhere.
        tos = [e["payload"]["to"][0]["address"] for e in events]
        self.assertEqual(len(set(tos)), 1, tos)
        self.assertTrue(tos[0].endswith("@redacted.invalid"))
        senders = [e["payload"]["from"]["address"] for e in events]
        self.assertGreater(len(set(senders)), 1)
        self.assertTrue(all(e["payload"]["org_id"].startswith("org_id_") for e in events))
        with open(SAMPLE) as f:
            self.assertEqual([e["event_id"] for e in events],
                             [json.loads(line)["event_id"] for line in f])
        # It imports, and replays.
        redacted = self.write("redacted.ndjson", out)
        copy = os.path.join(self.tmp, "vendor.db")
        run(["events", "import", "--archive", copy, redacted], check=0)
        target = Target()
        try:
            run(["replay", "--from", copy, "--to", target.url, "--rate", "max",
                 "--status", "received", "--status", "delivered", "--status", "failed",
                 "--status", "dead", "--secret-env", "REPLAY_SECRET", "--no-progress"], env=REPLAY_ENV,
                check=0)
            self.assertEqual(len(target.requests), 12)
        finally:
            target.close()
        # A new export has new tokens (a random key per export), unless --redact-key is given.
        again = ndjson(run(["events", "export", "--archive", db, "--redact"], check=0).stdout)
        self.assertNotEqual(again[0]["payload"]["from"], events[0]["payload"]["from"])
        pseudonyms = self.write("pseudonyms.key", "vendor-ticket-4711-key\n", mode=0o600)
        first, second = (ndjson(run(["events", "export", "--archive", db, "--redact",
                                     "--redact-key", pseudonyms], check=0).stdout)
                         for _ in range(2))
        self.assertEqual(first, second)
        run(["events", "export", "--archive", db, "--redact-key", pseudonyms], check=2)

    # --- reparse -----------------------------------------------------------------------

    def test_reparse_compare_reports_exactly_the_altered_events_and_field(self):
        key = self.key()
        db = os.path.join(self.tmp, "m.db")
        ids = self.mime_archive(db, 10, key=key, altered=(2, 7))
        proc = run(["events", "reparse", "--archive", db, "--archive-key", key, "--compare",
                    "--json"])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        report = json.loads(proc.stdout)
        self.assertEqual(report["compared"], 10)
        self.assertEqual(sorted(e["event_id"] for e in report["events"]),
                         sorted([ids[2], ids[7]]))
        for e in report["events"]:
            self.assertEqual(e["fields"], ["subject"])
        self.assertEqual(report["fields"]["subject"]["divergent"], 2)
        self.assertEqual(sum(f["divergent"] for f in report["fields"].values()), 2)
        self.assertAlmostEqual(report["divergence"], 0.2)
        # Within the allowed share: exit 0; the table names the field.
        proc = run(["events", "reparse", "--archive", db, "--archive-key", key, "--compare",
                    "--max-divergence", "20%"], check=0)
        self.assertIn(b"subject", proc.stdout)
        self.assertIn(ids[2].encode(), proc.stdout)
        # --write stores the new parse beside the old, never in its place.
        run(["events", "reparse", "--archive", db, "--archive-key", key, "--write"], check=0)
        shown = json.loads(run(["events", "show", "--archive", db, "--archive-key", key,
                                ids[2], "--json"], check=0).stdout)
        self.assertEqual(shown["payload"]["subject"], "altered by the old parser")
        self.assertEqual(len(shown["reparses"]), 1)
        self.assertEqual(shown["reparses"][0]["version"], 1)
        self.assertEqual(shown["reparses"][0]["payload"]["subject"], "Order 2 for Zed")
        unchanged = json.loads(run(["events", "show", "--archive", db, "--archive-key", key,
                                    ids[3], "--json"], check=0).stdout)
        self.assertEqual(unchanged["reparses"], [])
        # A second --write stores nothing new.
        proc = run(["events", "reparse", "--archive", db, "--archive-key", key, "--write"],
                   check=0)
        self.assertIn(b"stored 0 new parse", proc.stdout)
        self.assertNotIn(b"Order 2 for Zed", file_bytes(db))


if __name__ == "__main__":
    unittest.main()
