"""The rotation cutover drill with the real receiver and real senders: `hookctl listen` on
the receiver's keyring, `hookctl sign`/`hookctl send` on the sender's. The receiver's keyring
changes under the running receiver (rotate begin/finish) and is picked up without a restart
and without dropping the open connection; no genuine event is ever rejected."""
import os
import signal
import time
import unittest

from hookctl_test import SANITIZED, SOURCE
from keyring_test import KeyringTestCase
from test_listen_common import Receiver, event_body


class RotateWithListenTest(KeyringTestCase):
    def setUp(self):
        super().setUp()
        self.sender = os.path.join(self.tmp, "sender.json")
        self.receiver = os.path.join(self.tmp, "receiver.json")
        self.n = 0

    def signed(self, body, *, keyring=None, secret_file=None):
        """Headers from `hookctl sign` (mailparse) for `body`, and the fingerprints used."""
        path = self.write(f"body{self.n}.json", body)
        args = ["sign", path] + (["--keyring", keyring] if keyring
                                 else ["--secret-file", secret_file])
        proc, doc = self.hk_json(args)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return doc["headers"], doc["fingerprints"]

    def post(self, conn, *, keyring=None, secret_file=None):
        self.n += 1
        body = event_body(f"evt_rot_{self.n}")
        headers, fingerprints = self.signed(body, keyring=keyring, secret_file=secret_file)
        headers["Content-Type"] = "application/json"
        status, _, data = self.r.post(body, headers, conn=conn)
        return status, fingerprints, data

    def reloads(self):
        return sum(1 for line in self.r.log_lines() if "secrets reloaded" in line.get("msg", ""))

    def wait_reload(self, before):
        deadline = time.monotonic() + (30 if SANITIZED else 10)
        while self.reloads() <= before:
            self.assertLess(time.monotonic(), deadline,
                            "listen did not reload its keyring: " + self.r.stderr())
            time.sleep(0.05)

    def test_cutover_drill_against_listen(self):
        self.hk(["secret", "new", "--keyring", self.sender], check=0)
        a_file = self.write("a.secret", self.export(self.sender), mode=0o600)
        self.hk(["secret", "import", "--keyring", self.receiver, "--secret-file", a_file],
                check=0)
        self.r = Receiver(self.tmp, "--keyring", self.receiver)
        try:
            conn = self.r.connect()
            status, _, data = self.post(conn, keyring=self.sender)
            self.assertEqual(status, 202, data)
            local = conn.sock.getsockname()

            # 1. The sender begins: it dual-signs B then A; the receiver (A only) accepts.
            self.hk(["rotate", "begin", "--keyring", self.sender, "--window", "2h"], check=0)
            status, fingerprints, data = self.post(conn, keyring=self.sender)
            self.assertEqual((status, len(fingerprints)), (202, 2), data)

            # 2. The receiver takes B as primary, A verify-only: picked up while running.
            b_file = self.write("b.secret", self.export(self.sender, "k2"), mode=0o600)
            before = self.reloads()
            self.hk(["rotate", "begin", "--keyring", self.receiver, "--secret-file", b_file,
                     "--window", "2h"], check=0)
            self.wait_reload(before)
            for source in ({"keyring": self.sender}, {"secret_file": b_file},
                           {"secret_file": a_file}):
                with self.subTest(step="receiver on A+B", **source):
                    status, _, data = self.post(conn, **source)
                    self.assertEqual(status, 202, data)

            # 3. Both finish: B only. A-only signatures are now rejected (401).
            before = self.reloads()
            for ring in (self.sender, self.receiver):
                self.hk(["rotate", "finish", "--keyring", ring], check=0)
            self.wait_reload(before)
            status, fingerprints, data = self.post(conn, keyring=self.sender)
            self.assertEqual((status, len(fingerprints)), (202, 1), data)
            status, _, data = self.post(conn, secret_file=a_file)
            self.assertEqual(status, 401, data)

            # The same keep-alive connection served every request: nothing was dropped.
            self.assertEqual(conn.sock.getsockname(), local)
            conn.close()

            # The real libcurl sender on the sender's keyring is accepted too.
            path = self.write("send.json", event_body("evt_rot_send"))
            proc = self.hk(["send", path, "--to", self.r.url, "--keyring", self.sender,
                            "--retries", "0"])
            self.assertEqual(proc.returncode, 0, proc.stderr)

            # SIGHUP reloads as well; an unreadable keyring keeps the current secrets.
            before = self.reloads()
            self.r.proc.send_signal(signal.SIGHUP)
            self.wait_reload(before)
            os.chmod(self.receiver, 0o644)
            deadline = time.monotonic() + (30 if SANITIZED else 10)
            while not any("secrets not reloaded" in l.get("msg", "") for l in self.r.log_lines()):
                self.assertLess(time.monotonic(), deadline, self.r.stderr())
                time.sleep(0.05)
            status, _, data = self.post(None, keyring=self.sender)
            self.assertEqual(status, 202, data)
        finally:
            code, _ = self.r.stop()
        self.assertEqual(code, 0, self.r.stderr())
        # Every genuine event was accepted: the only 401 is the A-only one after finish.
        rejected = [l for l in self.r.log_lines() if l.get("status") == 401]
        self.assertEqual(len(rejected), 1, rejected)

    def test_hookctl_now_judges_the_senders_keyring_in_send_probe_replay_and_trigger(self):
        """HOOKCTL_NOW is the time every command judges keyring windows at (hookctl-rotate(1)):
        after the sender's window has ended at that time, send, probe, replay and trigger sign
        with the new key only, which a receiver that still knows only the old key refuses. With
        the real clock (inside the window) they dual-sign and are accepted."""
        self.hk(["secret", "new", "--keyring", self.sender], check=0)
        a_file = self.write("a.secret", self.export(self.sender), mode=0o600)
        now = int(time.time())
        self.hk(["rotate", "begin", "--keyring", self.sender, "--window", "1h"],
                env={"HOOKCTL_NOW": str(now)}, check=0)
        body = self.write("event.json", event_body("evt_now_1"))
        self.r = Receiver(self.tmp, "--secret-file", a_file)
        try:
            runs = os.path.join(self.tmp, "runs.db")
            commands = {
                "send": ["send", "--to", self.r.url, "--keyring", self.sender, "--retries", "0",
                         body],
                "probe": ["probe", self.r.url, "--keyring", self.sender, "--only",
                          "valid"],
                "replay": ["replay", "--from", os.path.join(SOURCE, "examples", "invoice.eml"),
                           "--to", self.r.url, "--keyring", self.sender, "--archive", runs,
                           "--retries", "0", "--no-progress"],
                "trigger": ["trigger", "message", "--to", self.r.url, "--keyring", self.sender,
                            "--retries", "0"],
            }
            for name, args in commands.items():
                with self.subTest(command=name, clock="real"):
                    proc = self.hk(args)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                with self.subTest(command=name, clock="HOOKCTL_NOW after the window"):
                    proc = self.hk(args, env={"HOOKCTL_NOW": str(now + 3601)})
                    # replay: every attempt refused is the systemic breaker (exit 3).
                    self.assertEqual(proc.returncode, 3 if name == "replay" else 1, proc.stderr)
                    self.assertIn(b"401", proc.stdout + proc.stderr)
        finally:
            self.r.stop()


if __name__ == "__main__":
    unittest.main()
