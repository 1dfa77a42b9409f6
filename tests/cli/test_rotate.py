"""Black-box tests of `hookctl rotate begin|status|finish|abort` and the cutover drill with
`hookctl sign` (sender) and `hookctl verify` (receiver), each on its own keyring."""
import json
import os
import subprocess
import time
import unittest

from hookctl_test import HOOKCTL
from keyring_test import KeyringTestCase, assert_no_secret_leaked

MULTI_SCHEMES = ["mailparse", "standard", "stripe"]


class RotateTest(KeyringTestCase):
    def setUp(self):
        super().setUp()
        self.sender = os.path.join(self.tmp, "sender.json")
        self.receiver = os.path.join(self.tmp, "receiver.json")
        self.body = self.write("event.json", b'{"type":"email.received","n":1}')

    def make_pair(self):
        """Sender keyring with A primary; receiver keyring holding the same A."""
        self.hk(["secret", "new", "--keyring", self.sender], check=0)
        a = self.write("a.secret", self.export(self.sender), mode=0o600)
        self.hk(["secret", "import", "--keyring", self.receiver, "--secret-file", a], check=0)
        return a

    def sign(self, scheme, *, keyring=None, secret_file=None, env=None):
        args = ["sign", "--scheme", scheme, self.body]
        args += ["--keyring", keyring] if keyring else ["--secret-file", secret_file]
        proc, doc = self.hk_json(args, env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return doc

    def verify(self, scheme, signed, *, env=None):
        """Verifies with the receiver's keyring; returns (exit code, verdict)."""
        args = ["verify", "--scheme", scheme, self.body, "--keyring", self.receiver]
        for name, value in signed["headers"].items():
            args += ["-H", f"{name}: {value}"]
        proc, doc = self.hk_json(args, env=env)
        self.assertIn(proc.returncode, (0, 1), proc.stderr)
        return proc.returncode, doc

    def fingerprints(self, path):
        return {k["id"]: k["fingerprint"] for k in self.keyring_doc(path)["keys"]}

    def test_cutover_drill_with_sign_and_verify(self):
        a_file = self.make_pair()
        fa = self.fingerprints(self.sender)["k1"]
        for scheme in MULTI_SCHEMES:
            code, verdict = self.verify(scheme, self.sign(scheme, keyring=self.sender))
            self.assertEqual((code, verdict["fingerprint"]), (0, fa))

        # 1. rotate begin on the sender: it dual-signs B then A; the receiver (A only) accepts.
        proc, status = self.hk_json(["rotate", "begin", "--keyring", self.sender, "--window",
                                     "2h"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        fb = status["primary"]["fingerprint"]
        self.assertEqual(status["signing_order"], [fb, fa])
        self.assertEqual(status["verify_only"][0]["seconds_left"], 7200)
        for scheme in MULTI_SCHEMES:
            with self.subTest(step="dual-signed, receiver on A", scheme=scheme):
                signed = self.sign(scheme, keyring=self.sender)
                self.assertEqual(signed["fingerprints"], [fb, fa])
                code, verdict = self.verify(scheme, signed)
                self.assertEqual((code, verdict["fingerprint"], verdict["signatures"]),
                                 (0, fa, 2))

        # 2. The receiver takes B as its primary, A verify-only for the same window.
        b_file = self.write("b.secret", self.export(self.sender, "k2"), mode=0o600)
        self.hk(["rotate", "begin", "--keyring", self.receiver, "--secret-file", b_file,
                 "--window", "2h"], check=0)
        self.assertEqual(self.fingerprints(self.receiver)["k2"], fb)
        for scheme in MULTI_SCHEMES:
            with self.subTest(step="both on A+B", scheme=scheme):
                code, verdict = self.verify(scheme, self.sign(scheme, keyring=self.sender))
                self.assertEqual((code, verdict["fingerprint"]), (0, fb))
                # An old sender still signing with A alone is accepted during the window.
                code, verdict = self.verify(scheme, self.sign(scheme, secret_file=a_file))
                self.assertEqual((code, verdict["fingerprint"]), (0, fa))

        # 3. rotate finish on both: B only; A-only signatures are rejected.
        for ring in (self.sender, self.receiver):
            proc, done = self.hk_json(["rotate", "finish", "--keyring", ring])
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(done["retired_now"], ["k1"])
            self.assertFalse(done["in_progress"])
        for scheme in MULTI_SCHEMES:
            with self.subTest(step="finished", scheme=scheme):
                signed = self.sign(scheme, keyring=self.sender)
                self.assertEqual(signed["fingerprints"], [fb])
                code, verdict = self.verify(scheme, signed)
                self.assertEqual((code, verdict["fingerprint"]), (0, fb))
                code, verdict = self.verify(scheme, self.sign(scheme, secret_file=a_file))
                self.assertEqual(code, 1)
                self.assertEqual(verdict["outcome"], "no_match")
        # finish again: nothing to do, still success (CI reruns are harmless).
        again = self.hk(["rotate", "finish", "--keyring", self.sender], check=0)
        self.assertIn(b"nothing to finish", again.stderr)

    def test_abort_restores_the_old_primary(self):
        self.make_pair()
        fa = self.fingerprints(self.sender)["k1"]
        self.hk(["rotate", "begin", "--keyring", self.sender], check=0)
        proc, status = self.hk_json(["rotate", "abort", "--keyring", self.sender])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(status["restored"], "k1")
        self.assertEqual(status["signing_order"], [fa])
        self.assertFalse(status["in_progress"])
        states = [k["state"] for k in self.keyring_doc(self.sender)["keys"]]
        self.assertEqual(states, ["primary", "retired"])
        signed = self.sign("mailparse", keyring=self.sender)
        self.assertEqual(signed["fingerprints"], [fa])
        self.assertEqual(self.verify("mailparse", signed)[0], 0)
        # Nothing left to abort; after a finish, abort is refused with advice.
        self.assertIn(b"no rotation to abort",
                      self.hk(["rotate", "abort", "--keyring", self.sender], check=2).stderr)
        self.hk(["rotate", "begin", "--keyring", self.sender], check=0)
        self.hk(["rotate", "finish", "--keyring", self.sender], check=0)
        self.assertIn(b"already retired",
                      self.hk(["rotate", "abort", "--keyring", self.sender], check=2).stderr)
        history = [h["what"] for h in self.keyring_doc(self.sender)["keys"][0]["history"]]
        self.assertIn("verify-only -> primary (rotate abort, replaces k2)", history)
        for entry in self.keyring_doc(self.sender)["keys"][0]["history"]:
            self.assertTrue(entry["user"] and entry["host"] and entry["when"].endswith("Z"))

    def test_window_expiry_without_finish(self):
        a_file = self.make_pair()
        now = int(time.time())
        at = lambda t: {"HOOKCTL_NOW": str(t)}
        b_file = self.write("b.secret", "whsec_" + "QkJC" * 10 + "QkI=", mode=0o600)
        for ring in (self.sender, self.receiver):
            self.hk(["rotate", "begin", "--keyring", ring, "--secret-file", b_file, "--window",
                     "1h"], env=at(now), check=0)
        fb = self.fingerprints(self.sender)["k2"]
        # The last second of the window: both sign, A still verifies.
        last = now + 3600
        signed = self.sign("standard", keyring=self.sender, env=at(last))
        self.assertEqual(len(signed["fingerprints"]), 2)
        old = self.sign("standard", secret_file=a_file)
        self.assertEqual(self.verify("standard", old, env=at(last))[0], 0)
        proc, status = self.hk_json(["rotate", "status", "--keyring", self.receiver],
                                    env=at(last))
        self.assertTrue(status["in_progress"])
        self.assertEqual(status["seconds_left"], 0)
        # One second later nobody ran finish, yet A neither signs nor verifies.
        after = now + 3601
        signed = self.sign("standard", keyring=self.sender, env=at(after))
        self.assertEqual(signed["fingerprints"], [fb])
        code, verdict = self.verify("standard", old, env=at(after))
        self.assertEqual((code, verdict["outcome"]), (1, "no_match"))
        self.assertEqual(self.verify("standard", signed, env=at(after))[0], 0)
        out = self.hk(["rotate", "status", "--keyring", self.receiver], env=at(after),
                      check=0).stdout.decode()
        self.assertIn("no rotation in progress", out)
        self.assertIn("NO LONGER: its window ended", out)
        # A new rotation may begin without --force; it retires the expired secret.
        self.hk(["rotate", "begin", "--keyring", self.sender], env=at(after), check=0)
        states = [k["state"] for k in self.keyring_doc(self.sender)["keys"]]
        self.assertEqual(states, ["retired", "verify-only", "primary"])

    def test_verify_now_picks_the_keyring_secrets_of_that_moment(self):
        """`verify --now T` replays a capture from T: the keyring's window is judged at T too."""
        a_file = self.make_pair()
        now = int(time.time())
        b_file = self.write("b.secret", "whsec_" + "QkJC" * 10 + "QkI=", mode=0o600)
        self.hk(["rotate", "begin", "--keyring", self.receiver, "--secret-file", b_file,
                 "--window", "1h"], env={"HOOKCTL_NOW": str(now)}, check=0)
        for t, expected in ((now + 3600, 0), (now + 3601, 1)):
            with self.subTest(at=t - now):
                signed = self.sign("mailparse", secret_file=a_file)
                args = ["verify", "--scheme", "mailparse", self.body, "--keyring",
                        self.receiver, "--now", str(t), "--tolerance", "2h"]
                for name, value in signed["headers"].items():
                    args += ["-H", f"{name}: {value}"]
                proc, verdict = self.hk_json(args)
                self.assertEqual(proc.returncode, expected, proc.stderr)
                if expected:
                    self.assertEqual(verdict["outcome"], "no_match")

    def test_begin_refuses_a_second_rotation_unless_forced(self):
        self.make_pair()
        self.hk(["rotate", "begin", "--keyring", self.sender], check=0)
        with open(self.sender, "rb") as f:
            before = f.read()
        proc = self.hk(["rotate", "begin", "--keyring", self.sender], check=2)
        self.assertIn(b"already in progress", proc.stderr)
        self.assertIn(b"--force", proc.stderr)
        with open(self.sender, "rb") as f:
            self.assertEqual(f.read(), before)
        proc, status = self.hk_json(["rotate", "begin", "--keyring", self.sender, "--force"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(status["signing_order"]), 3)
        # Bad windows and empty keyrings are input errors.
        self.assertIn(b"--window", self.hk(["rotate", "begin", "--keyring", self.receiver,
                                            "--window", "soon"], check=2).stderr)
        self.assertIn(b"longer than zero", self.hk(["rotate", "begin", "--keyring",
                                                    self.receiver, "--window", "0"],
                                                   check=2).stderr)

    def test_generated_successor_keeps_the_family_and_format(self):
        ed = os.path.join(self.tmp, "ed.json")
        self.hk(["secret", "new", "--keyring", ed, "--family", "ed25519"], check=0)
        self.hk(["rotate", "begin", "--keyring", ed], check=0)
        keys = self.keyring_doc(ed)["keys"]
        self.assertEqual([k["family"] for k in keys], ["ed25519", "ed25519"])
        self.assertTrue(keys[1]["secret"].startswith("whsk_"))
        signed = self.sign("standard", keyring=ed)
        self.assertTrue(signed["headers"]["webhook-signature"].startswith("v1a,"))
        self.assertEqual(signed["headers"]["webhook-signature"].count("v1a,"), 2)
        hexring = os.path.join(self.tmp, "hex.json")
        self.hk(["secret", "new", "--keyring", hexring, "--format", "hex"], check=0)
        self.hk(["rotate", "begin", "--keyring", hexring], check=0)
        self.assertRegex(self.keyring_doc(hexring)["keys"][1]["secret"], r"^[0-9a-f]{64}$")

    def test_status_text_names_what_signs_and_time_left(self):
        self.make_pair()
        now = int(time.time())
        self.hk(["rotate", "begin", "--keyring", self.sender, "--window", "90m"],
                env={"HOOKCTL_NOW": str(now)}, check=0)
        out = self.hk(["rotate", "status", "--keyring", self.sender],
                      env={"HOOKCTL_NOW": str(now + 1800)}, check=0).stdout.decode()
        self.assertIn("rotation in progress", out)
        self.assertRegex(out, r"signs: +k2 [0-9a-f]{8} \(primary since")
        self.assertRegex(out, r"verifies: +k1 [0-9a-f]{8} until \S+ \(1h left\)")
        self.assertIn("signers emit: k2", out)
        bad = self.hk(["rotate", "status", "--keyring", self.sender],
                      env={"HOOKCTL_NOW": "yesterday"}, check=2)
        self.assertIn(b"HOOKCTL_NOW", bad.stderr)

    def test_concurrent_begins_leave_one_consistent_keyring(self):
        self.make_pair()
        procs = [subprocess.Popen([HOOKCTL, "rotate", "begin", "--keyring", self.sender],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(6)]
        results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        codes = sorted(code for code, _, _ in results)
        self.assertEqual(codes, [0, 2, 2, 2, 2, 2], results)
        for code, _, err in results:
            if code == 2:
                self.assertIn(b"already in progress", err)
        doc = self.keyring_doc(self.sender)
        self.assertEqual([k["state"] for k in doc["keys"]], ["verify-only", "primary"])
        self.hk(["secret", "show", "--keyring", self.sender], check=0)
        self.assertFalse([f for f in os.listdir(self.tmp) if ".tmp." in f])

    def test_concurrent_secret_new_loses_no_secret(self):
        ring = os.path.join(self.tmp, "fresh.json")
        n = 8
        procs = [subprocess.Popen([HOOKCTL, "secret", "new", "--keyring", ring],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(n)]
        self.assertEqual([p.wait(timeout=60) for p in procs], [0] * n)
        states = [k["state"] for k in self.keyring_doc(ring)["keys"]]
        self.assertEqual(len(states), n)
        self.assertEqual(states.count("primary"), 1)
        self.assertEqual(sorted(k["id"] for k in self.keyring_doc(ring)["keys"]),
                         sorted(f"k{i}" for i in range(1, n + 1)))

    def test_zz_no_keyring_secret_in_any_output_without_reveal(self):
        assert_no_secret_leaked(self)


if __name__ == "__main__":
    unittest.main()
