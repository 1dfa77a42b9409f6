"""hookctl verify --explain: one fixture per usual mistake (made here with Python's hmac, as a
sender in another language would), and --explain names exactly that cause; a valid signature
says "valid" and tries nothing; exit codes are verify's; no secret is ever printed."""
import base64
import hashlib
import hmac
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import TempDirTestCase, run  # noqa: E402

NOW = 1764160000
BODY = b'{"event_id":"evt_explain","org_id":"acme","subject":"Invoice 42","n":[1,2]}'
RAW_KEY = b"standard-webhooks-key-0123456789"
B64 = base64.b64encode(RAW_KEY).decode()


def mac(key, message):
    return hmac.new(key, message, hashlib.sha256).digest()


def mailparse(key, body, ts=NOW):
    return [("X-Signature", mac(key, f"{ts}.".encode() + body).hex()),
            ("X-Signature-Timestamp", str(ts))]


def standard(key, body, ts=NOW, msg_id="msg_explain", prefix="webhook"):
    sig = base64.b64encode(mac(key, f"{msg_id}.{ts}.".encode() + body)).decode()
    return [(f"{prefix}-id", msg_id), (f"{prefix}-timestamp", str(ts)),
            (f"{prefix}-signature", f"v1,{sig}")]


class VerifyExplainTest(TempDirTestCase):
    def explain(self, headers, body, secret, *args, expect_exit=1, env=None):
        hpath = self.write("headers.txt", "".join(f"{n}: {v}\n" for n, v in headers))
        bpath = self.write("body.json", body)
        full_env = {"EXPLAIN_SECRET": secret}
        full_env.update(env or {})
        proc = run(["verify", bpath, "--headers-file", hpath, "--secret-env", "EXPLAIN_SECRET",
                    "--now", str(NOW), "--explain", "--json"] + list(args), env=full_env)
        self.assertEqual(proc.returncode, expect_exit, proc.stderr)
        for shown in (proc.stdout, proc.stderr):
            stripped = secret.strip()
            self.assertNotIn(stripped.encode(), shown, "the secret was printed")
            if stripped.startswith("whsec_"):
                self.assertNotIn(stripped[6:].encode(), shown)
        return json.loads(proc.stdout)

    def assert_cause(self, doc, cause):
        self.assertEqual(doc["cause"], cause, doc["finding"])
        matched = [t["cause"] for t in doc["evidence"] if t["matched"]]
        self.assertTrue(matched, doc)
        self.assertEqual(set(matched), {cause}, doc["evidence"])

    def test_a_valid_signature_says_valid_and_tries_nothing(self):
        doc = self.explain(mailparse(b"right-secret", BODY), BODY, "right-secret", expect_exit=0)
        self.assertTrue(doc["valid"])
        self.assertEqual(doc["cause"], "valid")
        self.assertEqual(doc["evidence"], [])
        text = run(["verify", self.write("b", BODY), "-H", f"X-Signature: "
                    f"{mac(b'right-secret', f'{NOW}.'.encode() + BODY).hex()}", "-H",
                    f"X-Signature-Timestamp: {NOW}", "--now", str(NOW), "--secret-env", "S",
                    "--explain"], env={"S": "right-secret"}, check=0)
        self.assertTrue(text.stdout.startswith(b"valid (scheme mailparse"), text.stdout)
        self.assertNotIn(b"evidence", text.stdout)

    def test_secret_with_whitespace(self):
        doc = self.explain(mailparse(b"s3cret-value-01", BODY), BODY, "s3cret-value-01  ")
        self.assert_cause(doc, "secret_whitespace")

    def test_secret_with_or_without_the_whsec_prefix(self):
        doc = self.explain(mailparse(("whsec_" + B64).encode(), BODY), BODY, B64)
        self.assert_cause(doc, "secret_prefix")

    def test_secret_decoded_the_wrong_way(self):
        doc = self.explain(standard(B64.encode(), BODY), BODY, "whsec_" + B64, "--scheme",
                           "standard")
        self.assert_cause(doc, "secret_encoding")

    def test_body_reserialised(self):
        obj = json.loads(BODY)
        cases = [
            ("body_key_order", json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),
             json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()),
            ("body_spacing", BODY, json.dumps(obj, indent=2).encode()),
            ("body_escaped_slashes", b'{"url":"https:\\/\\/a.example\\/x"}',
             b'{"url":"https://a.example/x"}'),
            ("body_unicode_escapes", b'{"name":"Jos\\u00e9"}', '{"name":"José"}'.encode()),
            ("body_trailing_newline", BODY, BODY + b"\n"),
            ("body_line_endings", json.dumps(obj, indent=2).replace("\n", "\r\n").encode(),
             json.dumps(obj, indent=2).encode()),
            ("body_form_encoded", b"payload=" + urllib.parse.quote_plus(BODY).encode(), BODY),
        ]
        for cause, signed, received in cases:
            with self.subTest(cause=cause):
                doc = self.explain(mailparse(b"body-secret", signed), received, "body-secret")
                self.assert_cause(doc, cause)

    def test_timestamp_in_milliseconds(self):
        ms = NOW * 1000 + 250
        doc = self.explain(mailparse(b"ms-secret", BODY, ts=ms), BODY, "ms-secret")
        self.assertEqual(doc["outcome"], "stale_timestamp")
        self.assert_cause(doc, "timestamp_milliseconds")

    def test_clock_skew_beyond_the_tolerance_and_by_how_much(self):
        doc = self.explain(mailparse(b"skew-secret", BODY, ts=NOW - 1000), BODY, "skew-secret")
        self.assert_cause(doc, "clock_skew")
        self.assertIn("1000 s in the past: 700 s beyond the 300 s tolerance", doc["finding"])
        self.assertEqual(doc["skew"], 1000)

    def test_wrong_scheme_for_the_headers(self):
        doc = self.explain(standard(RAW_KEY, BODY, prefix="svix"), BODY, "whsec_" + B64,
                           "--scheme", "standard")
        self.assertEqual(doc["outcome"], "missing_header")
        self.assert_cause(doc, "wrong_scheme")
        self.assertIn("--scheme svix", doc["advice"])

    def test_key_that_left_the_keyrings_window(self):
        ring = os.path.join(self.tmp, "ring.json")
        t0 = NOW - 7200
        env = {"HOOKCTL_NOW": str(t0)}
        run(["secret", "new", "-q", "--keyring", ring], env=env, check=0)
        old = run(["secret", "export", "--keyring", ring, "--reveal", "--format", "raw"],
                  check=0).stdout.decode().strip()
        run(["rotate", "begin", "-q", "--keyring", ring, "--window", "1h"], env=env, check=0)
        headers = self.write("h.txt", "".join(f"{n}: {v}\n" for n, v in
                                              mailparse(old.encode(), BODY)))
        proc = run(["verify", self.write("b.json", BODY), "--headers-file", headers,
                    "--keyring", ring, "--now", str(NOW), "--explain", "--json"])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertNotIn(old.encode(), proc.stdout + proc.stderr)
        doc = json.loads(proc.stdout)
        self.assert_cause(doc, "key_outside_window")
        self.assertIn("k1", doc["finding"])

    def test_nothing_explains_another_secret(self):
        doc = self.explain(mailparse(b"their-secret", BODY), BODY, "our-secret")
        self.assertEqual(doc["cause"], "unexplained")
        self.assertFalse(any(t["matched"] for t in doc["evidence"]))
        self.assertGreater(len(doc["evidence"]), 10)

    def test_exit_codes_are_verifys(self):
        doc = self.explain([("X-Signature", "zz"), ("X-Signature-Timestamp", str(NOW))], BODY,
                           "a-secret", expect_exit=2)
        self.assertEqual(doc["cause"], "malformed_header")
        doc = self.explain([("Content-Type", "application/json")], BODY, "a-secret", "--scheme",
                           "mailparse")
        self.assertEqual(doc["cause"], "missing_header")

    def test_text_output_gives_the_finding_first_then_the_evidence(self):
        hpath = self.write("h.txt", "".join(f"{n}: {v}\n" for n, v in
                                            mailparse(b"s3cret-value-01", BODY)))
        proc = run(["verify", self.write("b.json", BODY + b"\n"), "--headers-file", hpath,
                    "--secret-env", "S", "--now", str(NOW), "--explain"],
                   env={"S": "s3cret-value-01"})
        self.assertEqual(proc.returncode, 1)
        lines = proc.stdout.decode().splitlines()
        self.assertTrue(lines[0].startswith("finding: the signature matches with the body "
                                            "without its trailing newline"), lines[0])
        self.assertTrue(lines[0].endswith("[body_trailing_newline]"))
        self.assertTrue(lines[1].startswith("advice: "))
        evidence = lines.index(next(l for l in lines if l.startswith("evidence: ")))
        self.assertTrue(any(l.startswith("  matches ") for l in lines[evidence + 1:]))


if __name__ == "__main__":
    unittest.main()
