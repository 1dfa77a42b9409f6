"""Black-box tests of `hookctl secret new|show|export|import` and keyring file safety."""
import base64
import json
import os
import re
import stat
import unittest

from hookctl_test import SOURCE
from keyring_test import KeyringTestCase, assert_no_secret_leaked


class SecretTest(KeyringTestCase):
    def test_new_prints_fresh_secrets_in_each_format(self):
        a = self.hk(["secret", "new"], check=0).stdout.decode().strip()
        b = self.hk(["secret", "new"], check=0).stdout.decode().strip()
        self.assertRegex(a, r"^whsec_[A-Za-z0-9+/]{43}=$")
        self.assertEqual(len(base64.b64decode(a[6:])), 32)
        self.assertNotEqual(a, b)
        hexed = self.hk(["secret", "new", "--format", "hex"], check=0).stdout.decode().strip()
        self.assertRegex(hexed, r"^[0-9a-f]{64}$")
        lines = self.hk(["secret", "new", "--family", "ed25519"], check=0).stdout.decode().split()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("whsk_") and lines[1].startswith("whpk_"))
        proc, doc = self.hk_json(["secret", "new", "--family", "ed25519"])
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(doc["family"], "ed25519")
        self.assertRegex(doc["fingerprint"], r"^[0-9a-f]{8}$")
        self.assertEqual(len(base64.b64decode(doc["public_key"][5:])), 32)
        # A fresh ed25519 pair signs and verifies with the standard scheme.
        body = self.write("b.json", b"{}")
        env = {"SK": doc["secret"], "PK": doc["public_key"]}
        signed = self.hk(["sign", "--scheme", "standard", "--secret-env", "SK", body], env=env,
                         check=0)
        args = [a for line in signed.stdout.decode().splitlines() for a in ("-H", line)]
        self.hk(["verify", body, "--secret-env", "PK"] + args, env=env, check=0)

    def test_new_into_keyring_creates_0600_and_never_prints_the_secret(self):
        ring = os.path.join(self.tmp, "ring.json")
        first = self.hk(["secret", "new", "--keyring", ring], check=0)
        self.assertEqual(stat.S_IMODE(os.stat(ring).st_mode), 0o600)
        self.assertRegex(first.stdout.decode(), r"^k1  [0-9a-f]{8}  hmac  primary\n$")
        self.assertIn(b"created keyring", first.stderr)
        proc, doc = self.hk_json(["secret", "new", "--keyring", ring, "--format", "hex"])
        self.assertEqual(proc.returncode, 0)
        self.assertFalse(doc["created"])
        self.assertEqual(doc["key"]["id"], "k2")
        self.assertEqual(doc["key"]["state"], "verify-only")
        self.assertNotIn("secret", doc["key"])
        ring_doc = self.keyring_doc(ring)
        self.assertEqual([k["state"] for k in ring_doc["keys"]], ["primary", "verify-only"])
        self.assertRegex(ring_doc["keys"][1]["secret"], r"^[0-9a-f]{64}$")
        self.assertEqual(ring_doc["keys"][0]["history"][0]["what"],
                         "added as primary (secret new)")
        # --reveal prints it, and it is the one in the file.
        revealed = self.hk(["secret", "new", "--keyring", ring, "--reveal"], check=0)
        secret = revealed.stdout.decode().splitlines()[1]
        self.assertEqual(self.keyring_doc(ring)["keys"][2]["secret"], secret)

    def test_new_out_writes_a_0600_file_and_never_overwrites_without_force(self):
        path = os.path.join(self.tmp, "hook.secret")
        proc = self.hk(["secret", "new", "--out", path], check=0)
        self.assertEqual(proc.stdout, b"")
        self.assertRegex(proc.stderr.decode(), rf"wrote a new hmac secret to {re.escape(path)} "
                                               r"\(mode 0600\), fingerprint [0-9a-f]{8}\n$")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            secret = f.read()
        self.assertRegex(secret, r"^whsec_[A-Za-z0-9+/]{43}=\n$")
        self.assertNotIn(secret.strip().encode(), proc.stdout + proc.stderr)
        # The file works as it is with every command that reads a secret file.
        body = self.write("b.json", b"{}")
        headers = self.write("headers.txt", self.hk(["sign", body, "--secret-file", path],
                                                    check=0).stdout)
        self.hk(["verify", body, "--headers-file", headers, "--secret-file", path], check=0)
        # Never overwritten by accident: its secret may be in use.
        again = self.hk(["secret", "new", "--out", path], check=2)
        self.assertIn(b"already exists", again.stderr)
        self.assertIn(b"--force", again.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), secret)
        os.chmod(path, 0o644)
        self.hk(["secret", "new", "--out", path, "--force"], check=0)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            self.assertNotEqual(f.read(), secret)
        # --json names the file and the fingerprint, not the secret; ed25519 prints the public key.
        pair = os.path.join(self.tmp, "pair.secret")
        proc, doc = self.hk_json(["secret", "new", "--family", "ed25519", "--out", pair])
        self.assertEqual(sorted(doc), ["family", "file", "fingerprint", "public_key"])
        with open(pair) as f:
            self.assertTrue(f.read().startswith("whsk_"))
        self.assertTrue(self.hk(["secret", "new", "--family", "ed25519", "--out",
                                 pair + "2"], check=0).stdout.startswith(b"whpk_"))
        # Usage errors: --force alone, --out with --keyring, a folder that does not exist.
        self.assertIn(b"--force requires --out",
                      self.hk(["secret", "new", "--force"], check=2).stderr)
        self.hk(["secret", "new", "--out", path + "3", "--keyring", path + ".ring"], check=2)
        self.hk(["secret", "new", "--out", os.path.join(self.tmp, "no", "such")], check=4)
        # The man page's example no longer redirects the secret into a world-readable file.
        with open(os.path.join(SOURCE, "man", "hookctl.1")) as f:
            self.assertNotIn("hookctl secret new > ", f.read())

    def test_show_lists_states_and_reveals_only_on_request(self):
        ring = os.path.join(self.tmp, "ring.json")
        self.hk(["secret", "new", "--keyring", ring], check=0)
        self.hk(["secret", "new", "--keyring", ring, "--family", "ed25519"], check=0)
        out = self.hk(["secret", "show", "--keyring", ring, "--history"], check=0).stdout.decode()
        self.assertIn("ID   FINGERPRINT  FAMILY   STATE", out)
        self.assertRegex(out, r"k1 +[0-9a-f]{8} +hmac +primary +yes")
        self.assertRegex(out, r"k2 +[0-9a-f]{8} +ed25519 +verify-only +yes")
        self.assertIn("public key whpk_", out)
        self.assertIn("added as primary (secret new)", out)
        proc, doc = self.hk_json(["secret", "show", "--keyring", ring])
        self.assertEqual([k["id"] for k in doc["keys"]], ["k1", "k2"])
        self.assertTrue(all("secret" not in k for k in doc["keys"]))
        self.assertFalse(doc["rotation_in_progress"])
        proc, shown = self.hk_json(["secret", "show", "--keyring", ring, "--reveal"])
        ring_doc = self.keyring_doc(ring)
        self.assertEqual([k["secret"] for k in shown["keys"]],
                         [k["secret"] for k in ring_doc["keys"]])

    def test_export_needs_reveal_and_prints_each_format(self):
        ring = os.path.join(self.tmp, "ring.json")
        self.hk(["secret", "new", "--keyring", ring], check=0)
        secret = self.keyring_doc(ring)["keys"][0]["secret"]
        refused = self.hk(["secret", "export", "--keyring", ring], check=2)
        self.assertEqual(refused.stdout, b"")
        self.assertIn(b"add --reveal", refused.stderr)
        self.assertEqual(self.export(ring), secret)
        self.assertEqual(self.export(ring, "k1", "env"), "WEBHOOK_SECRET=" + secret)
        doc = json.loads(self.export(ring, fmt="json"))
        self.assertEqual(doc["secret"], secret)
        self.assertEqual(doc["id"], "k1")
        missing = self.hk(["secret", "export", "--keyring", ring, "--id", "k9", "--reveal"],
                          check=2)
        self.assertIn(b"has no secret k9", missing.stderr)
        # An ed25519 public key needs no --reveal.
        self.hk(["secret", "new", "--keyring", ring, "--family", "ed25519"], check=0)
        pub = self.hk(["secret", "export", "--keyring", ring, "--id", "k2", "--public"], check=0)
        self.assertEqual(pub.stdout.decode().strip(), self.keyring_doc(ring)["keys"][1]["public_key"])

    def test_import_reads_text_or_export_json_and_round_trips(self):
        sender = os.path.join(self.tmp, "sender.json")
        receiver = os.path.join(self.tmp, "receiver.json")
        self.hk(["secret", "new", "--keyring", sender], check=0)
        exported = self.write("export.json", self.export(sender, fmt="json"))
        os.chmod(exported, 0o600)
        proc, doc = self.hk_json(["secret", "import", "--keyring", receiver,
                                  "--secret-file", exported])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(doc["created"])
        self.assertEqual(doc["key"]["state"], "primary")
        self.assertEqual(self.keyring_doc(receiver)["keys"][0]["fingerprint"],
                         self.keyring_doc(sender)["keys"][0]["fingerprint"])
        self.assertEqual(stat.S_IMODE(os.stat(receiver).st_mode), 0o600)
        # The same secret twice is refused, naming the id, not the secret.
        again = self.hk(["secret", "import", "--keyring", receiver, "--secret-file", exported],
                        check=2)
        self.assertIn(b"already holds this secret as k1", again.stderr)
        # A plain secret from the environment, verify-only for a day.
        proc, doc = self.hk_json(["secret", "import", "--keyring", receiver, "--secret-env",
                                  "EXTRA", "--window", "24h"], env={"EXTRA": "legacy-secret"},
                                 )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(doc["key"]["state"], "verify-only")
        self.assertEqual(doc["key"]["seconds_left"], 86400)
        # A second primary is refused: that is what a rotation is for.
        refused = self.hk(["secret", "import", "--keyring", receiver, "--secret-env", "X",
                           "--state", "primary"], env={"X": "other"}, check=2)
        self.assertIn(b"rotate begin", refused.stderr)
        # Secrets on argv are refused.
        self.hk(["secret", "import", "--keyring", receiver, "--secret", "oops"], check=2)
        # Signing with the receiver's keyring: the primary first, then the verify-only one.
        proc, signed = self.hk_json(["sign", "--keyring", receiver,
                                     self.write("b.json", b"{}")])
        self.assertEqual(len(signed["fingerprints"]), 2)

    def test_open_permissions_are_refused_by_every_command(self):
        ring = os.path.join(self.tmp, "ring.json")
        self.hk(["secret", "new", "--keyring", ring], check=0)
        body = self.write("b.json", b"{}")
        for mode in (0o644, 0o640, 0o604, 0o660):
            os.chmod(ring, mode)
            before = open(ring, "rb").read()
            for args in (["secret", "show", "--keyring", ring],
                         ["secret", "new", "--keyring", ring],
                         ["rotate", "begin", "--keyring", ring],
                         ["rotate", "status", "--keyring", ring],
                         ["sign", "--keyring", ring, body]):
                with self.subTest(mode=oct(mode), args=args[:2]):
                    proc = self.hk(args, check=2)
                    self.assertEqual(proc.stdout, b"")
                    self.assertIn(f"permissions {mode:04o} are too open".encode(), proc.stderr)
                    self.assertIn(f"chmod 600 {ring}".encode(), proc.stderr)
            self.assertEqual(open(ring, "rb").read(), before)
            self.assertEqual(stat.S_IMODE(os.stat(ring).st_mode), mode)
        os.chmod(ring, 0o600)
        self.hk(["secret", "show", "--keyring", ring], check=0)

    def test_corrupt_keyring_is_refused_and_left_untouched(self):
        ring = os.path.join(self.tmp, "ring.json")
        self.hk(["secret", "new", "--keyring", ring], check=0)
        good = open(ring, "rb").read()
        body = self.write("b.json", b"{}")
        corruptions = {
            "truncated": good[: len(good) // 2],
            "not a keyring": b'{"hello": "world"}\n',
            "empty": b"",
            "two primaries": good.replace(b'"keys": [', b'"keys": [' + self._second_primary(good) + b","),
            "tampered secret": re.sub(rb'"secret": "whsec_(.)', lambda m: b'"secret": "whsec_' + (b"B" if m.group(1) != b"B" else b"C"), good),
        }
        for name, data in corruptions.items():
            with self.subTest(corruption=name):
                with open(ring, "wb") as f:
                    f.write(data)
                os.chmod(ring, 0o600)
                for args in (["secret", "new", "--keyring", ring],
                             ["secret", "import", "--keyring", ring, "--secret-env", "X"],
                             ["rotate", "begin", "--keyring", ring],
                             ["rotate", "finish", "--keyring", ring],
                             ["rotate", "abort", "--keyring", ring],
                             ["secret", "show", "--keyring", ring],
                             ["verify", body, "--keyring", ring, "-H", "X-Signature: 00",
                              "-H", "X-Signature-Timestamp: 1"]):
                    proc = self.hk(args, env={"X": "another-secret"}, check=2)
                    self.assertIn(b"is corrupt", proc.stderr, args)
                    self.assertIn(b"left untouched", proc.stderr)
                    self.assertEqual(open(ring, "rb").read(), data, args)

    @staticmethod
    def _second_primary(good):
        doc = json.loads(good)
        extra = dict(doc["keys"][0])
        extra["id"] = "k7"
        return json.dumps(extra).encode()

    def test_missing_keyring_is_named(self):
        ring = os.path.join(self.tmp, "nope.json")
        for args in (["secret", "show", "--keyring", ring],
                     ["rotate", "status", "--keyring", ring],
                     ["rotate", "begin", "--keyring", ring]):
            proc = self.hk(args, check=2)
            self.assertIn(f"keyring {ring} does not exist".encode(), proc.stderr)
        self.assertFalse(os.path.exists(ring))
        proc = self.hk(["--json", "secret", "show", "--keyring", ring], check=2)
        self.assertEqual(json.loads(proc.stderr)["error"]["code"], 2)

    def test_zz_no_keyring_secret_in_any_output_without_reveal(self):
        assert_no_secret_leaked(self)


if __name__ == "__main__":
    unittest.main()
