"""Black-box tests of `hookctl sign` and `hookctl verify` on the built binary."""
import base64
import json
import os
import resource
import subprocess
import unittest

from hookctl_test import HOOKCTL, SANITIZED, TempDirTestCase, run, run_json

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = "1614265330"
SW_BODY = b'{"test": 2432232314}'
SCHEMES = ["mailparse", "standard", "svix", "stripe", "github", "slack", "shopify"]
# At least 16 bytes each: shorter secrets draw a warning on stderr (tested on their own).
SECRET_ENV = {"S1": "first-secret-0123456789", "S2": "second-secret-0123456789",
              "W1": "whsec_" + base64.b64encode(b"first-secret-0123456789").decode(),
              "W2": "whsec_" + base64.b64encode(b"second-secret-0123456789").decode()}


def secret_env(scheme, n):
    return ("W" if scheme in ("standard", "svix") else "S") + str(n)


def header_args(headers_text):
    args = []
    for line in headers_text.decode().splitlines():
        args += ["-H", line]
    return args


class SignVerifyTest(TempDirTestCase):
    def test_standard_webhooks_vector_end_to_end(self):
        body = self.write("body.json", SW_BODY)
        out = run(["sign", "--scheme", "standard", "--secret-env", "SW", "--timestamp", SW_TS,
                   "--id", SW_ID, body], env={"SW": SW_SECRET}, check=0)
        self.assertIn(b"webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n",
                      out.stdout)
        self.assertEqual(out.stderr, b"")
        self.assertEqual(len(out.stdout.splitlines()), 3)

    def test_round_trip_every_scheme_one_and_two_secrets(self):
        body = self.write("body.json", b'{"event":"email.received"}')
        for scheme in SCHEMES:
            with self.subTest(scheme=scheme):
                signed = run(["sign", "--scheme", scheme, "--secret-env", secret_env(scheme, 1),
                              body], env=SECRET_ENV, check=0)
                verify = ["verify", body, "--secret-env", secret_env(scheme, 2),
                          "--secret-env", secret_env(scheme, 1)] + header_args(signed.stdout)
                out = run(verify, env=SECRET_ENV, check=0)
                self.assertIn(f"valid (scheme {scheme}, secret".encode(), out.stdout)
                # The wrong secret alone: exit 1 and the reason on stdout.
                wrong = run(["verify", body, "--secret-env", secret_env(scheme, 2)] +
                            header_args(signed.stdout), env=SECRET_ENV, check=1)
                self.assertIn(b"no signature matched (1 signature, 1 secret)", wrong.stdout)

    def test_dual_signing_for_multi_signature_schemes(self):
        body = self.write("body.json", b"{}")
        for scheme in ["mailparse", "standard", "svix", "stripe"]:
            with self.subTest(scheme=scheme):
                proc, doc = run_json(["sign", "--scheme", scheme, "--secret-env",
                                      secret_env(scheme, 2), "--secret-env",
                                      secret_env(scheme, 1), body], env=SECRET_ENV)
                self.assertEqual(proc.returncode, 0)
                self.assertEqual(len(doc["fingerprints"]), 2)
                args = [a for k, v in doc["headers"].items() for a in ("-H", f"{k}: {v}")]
                # A verifier that still holds only the old secret accepts.
                proc, verdict = run_json(["verify", body, "--secret-env",
                                          secret_env(scheme, 1)] + args, env=SECRET_ENV)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertTrue(verdict["valid"])
                self.assertEqual(verdict["signatures"], 2)
                self.assertEqual(verdict["fingerprint"], doc["fingerprints"][1])

    def test_single_signature_scheme_refuses_two_secrets(self):
        body = self.write("body.json", b"{}")
        out = run(["sign", "--scheme", "github", "--secret-env", "S1", "--secret-env", "S2",
                   body], env=SECRET_ENV, check=2)
        self.assertEqual(out.stdout, b"")
        self.assertIn(b"carries one signature", out.stderr)

    def test_json_verdicts_for_each_reason(self):
        body = self.write("body.json", b'{"a":1}')
        signed = run(["sign", "--secret-env", "S1", "--timestamp", "1700000000", body],
                     env=SECRET_ENV, check=0)
        hdrs = header_args(signed.stdout)
        cases = [
            (["--now", "1700000300"], 0, "valid", None),
            (["--now", "1700000301"], 1, "stale_timestamp",
             "timestamp outside tolerance: 301 s (5m1s) in the past, beyond the 300 s tolerance; "
             "the signature matches at that timestamp (secret %s); to check it as of then, pass "
             "--now 1700000000"),
            (["--now", "1699999699"], 1, "stale_timestamp",
             "timestamp outside tolerance: 301 s (5m1s) in the future, beyond the 300 s "
             "tolerance (is the sender's clock ahead?); the signature matches at that timestamp "
             "(secret %s); to check it as of then, pass --now 1700000000"),
            (["--now", "1700000412", "--tolerance", "300s"], 1, "stale_timestamp",
             "timestamp outside tolerance: 412 s (6m52s) in the past, beyond the 300 s tolerance; "
             "the signature matches at that timestamp (secret %s); to check it as of then, pass "
             "--now 1700000000"),
            (["--now", "1700000412", "--tolerance", "10m"], 0, "valid", None),
        ]
        fingerprint = run_json(["verify", body, "--secret-env", "S1", "--now", "1700000000"] +
                               hdrs, env=SECRET_ENV)[1]["fingerprint"]
        for extra, code, outcome, reason in cases:
            with self.subTest(extra=extra):
                proc, doc = run_json(["verify", body, "--secret-env", "S1"] + hdrs + extra,
                                     env=SECRET_ENV)
                self.assertEqual(proc.returncode, code, proc.stderr)
                self.assertEqual(doc["outcome"], outcome)
                self.assertTrue(doc["signature_matches"])
                if reason:
                    self.assertEqual(doc["reason"], reason % fingerprint)
        # Missing header: the signature without its timestamp (hdrs[1] is X-Signature).
        self.assertTrue(hdrs[1].startswith("X-Signature: "))
        proc, doc = run_json(["verify", body, "--secret-env", "S1", "--scheme", "mailparse",
                              "-H", hdrs[1]], env=SECRET_ENV)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(doc["reason"], "missing header X-Signature-Timestamp")

    def test_stale_timestamp_says_how_far_which_way_and_whether_the_signature_matches(self):
        body = self.write("body.json", b'{"a":1}')
        signed = run(["sign", "--secret-env", "S1", "--timestamp", "1700000000", body],
                     env=SECRET_ENV, check=0)
        hdrs = header_args(signed.stdout)
        # Two hours ahead of the verifier's clock: the size and the direction, not "-7200s".
        out = run(["verify", body, "--secret-env", "S1", "--now", "1699992800"] + hdrs,
                  env=SECRET_ENV, check=1)
        line = out.stdout.decode()
        self.assertIn("7200 s (2h) in the future", line)
        self.assertNotIn("-7200", line)
        # Genuine but late: says the signature matches then, and how to check it as of then.
        self.assertIn("the signature matches at that timestamp", line)
        self.assertIn("pass --now 1700000000", line)
        late = run(["verify", body, "--secret-env", "S1", "--now", "1700086400"] + hdrs,
                   env=SECRET_ENV, check=1).stdout.decode()
        self.assertIn("86400 s (24h) in the past", late)
        # Following the advice passes.
        run(["verify", body, "--secret-env", "S1", "--now", "1700000000"] + hdrs,
            env=SECRET_ENV, check=0)
        # The wrong secret at a stale timestamp is a forgery: no --now advice.
        proc, doc = run_json(["verify", body, "--secret-env", "S2", "--now", "1700086400"] +
                             hdrs, env=SECRET_ENV)
        self.assertEqual(proc.returncode, 1)
        self.assertFalse(doc["signature_matches"])
        self.assertIsNone(doc["fingerprint"])
        self.assertIn("no signature matches either", doc["reason"])
        self.assertNotIn("--now", doc["reason"])

    def test_sign_refuses_millisecond_and_negative_timestamps(self):
        body = self.write("body.json", b"{}")
        for flag, value, fragment in (
                ("--timestamp", "1700000000123", "looks like milliseconds: give Unix seconds, "
                                                 "e.g. 1700000000"),
                ("--timestamp", "-1", "is negative"),
                ("--now", "1700000000123", "looks like milliseconds")):
            with self.subTest(flag=flag, value=value):
                args = (["sign", "--secret-env", "S1", flag, value, body] if flag == "--timestamp"
                        else ["verify", body, "--secret-env", "S1", "-H", "X-Signature: ab",
                              "-H", "X-Signature-Timestamp: 5", flag, value])
                out = run(args, env=SECRET_ENV)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertEqual(out.stdout, b"")
                self.assertIn(fragment.encode(), out.stderr)
        # Twelve digits are still seconds (the year 33658), and 0 is the epoch.
        run(["sign", "--secret-env", "S1", "--timestamp", "999999999999", body], env=SECRET_ENV,
            check=0)
        run(["sign", "--secret-env", "S1", "--timestamp", "0", body], env=SECRET_ENV, check=0)

    def test_global_flags_before_or_after_the_command(self):
        body = self.write("body.json", b"{}")
        a = run(["--json", "sign", "--secret-env", "S1", "--timestamp", "5", body],
                env=SECRET_ENV, check=0)
        b = run(["sign", "--secret-env", "S1", "--timestamp", "5", body, "--json"],
                env=SECRET_ENV, check=0)
        self.assertEqual(json.loads(a.stdout), json.loads(b.stdout))

    def test_headers_file_from_a_curl_dump(self):
        body = self.write("body.json", b'{"from":"log"}')
        signed = run(["sign", "--scheme", "stripe", "--secret-env", "S1", body],
                     env=SECRET_ENV, check=0)
        dump = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + \
            signed.stdout.replace(b"Stripe-Signature", b"stripe-signature").replace(b"\n", b"\r\n") + b"\r\n"
        headers = self.write("headers.txt", dump)
        out = run(["verify", body, "--headers-file", headers, "--secret-env", "S1"],
                  env=SECRET_ENV, check=0)
        self.assertIn(b"valid (scheme stripe", out.stdout)

    def test_body_from_stdin_and_curl_format(self):
        signed = run(["sign", "--secret-env", "S1", "--format", "curl", "--url",
                      "http://127.0.0.1:9/hook", "-"], input=b"{}", env=SECRET_ENV, check=0)
        text = signed.stdout.decode()
        self.assertTrue(text.startswith("curl -sS -X POST 'http://127.0.0.1:9/hook'"))
        self.assertIn("--data-binary '@-'", text)
        self.assertIn("-H 'X-Signature: ", text)

    def test_binary_body_with_nul_and_invalid_utf8(self):
        data = b"\x00\xff\xfe\x80binary\x00\n"
        body = self.write("body.bin", data)
        for scheme in SCHEMES:
            with self.subTest(scheme=scheme):
                signed = run(["sign", "--scheme", scheme, "--secret-env",
                              secret_env(scheme, 1), body], env=SECRET_ENV, check=0)
                run(["verify", "-", "--secret-env", secret_env(scheme, 1)] +
                    header_args(signed.stdout), input=data, env=SECRET_ENV, check=0)
                run(["verify", "-", "--secret-env", secret_env(scheme, 1)] +
                    header_args(signed.stdout), input=data[:-1], env=SECRET_ENV, check=1)

    def test_large_body_is_streamed(self):
        size = (20 if SANITIZED else 100) * 1024 * 1024
        path = os.path.join(self.tmp, "big.bin")
        with open(path, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
        signed = run(["sign", "--secret-env", "S1", path], env=SECRET_ENV, check=0)
        env = dict(os.environ, **SECRET_ENV)
        proc = subprocess.run([HOOKCTL, "verify", path, "--secret-env", "S1"] +
                              header_args(signed.stdout), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if not SANITIZED:
            # ru_maxrss of children is the largest child so far; sign ran first and streams too.
            self.assertLess(peak_kib * 1024, size // 4,
                            f"peak RSS {peak_kib} KiB for a {size >> 20} MiB body")


class StartupTest(unittest.TestCase):
    def test_libcurl_and_libpq_are_not_needed_libraries_of_the_executable(self):
        # libcurl and libpq, with their two dozen libraries each, load on first use
        # (http/curl_loader.cpp, archive/postgres/pq_loader.cpp): a function called somewhere
        # but not forwarded there puts its library back among those every command maps at
        # start, `verify` and `sign` included (issue 16).
        dynamic = subprocess.run(["readelf", "-d", HOOKCTL], stdout=subprocess.PIPE,
                                 check=True).stdout.decode()
        needed = [line for line in dynamic.splitlines() if "(NEEDED)" in line]
        self.assertTrue(needed, dynamic)  # a dynamic executable: the check means something
        self.assertFalse([line for line in needed if "libcurl" in line or "libpq" in line],
                         needed)


class BadInputTest(TempDirTestCase):
    def assert_input_error(self, args, fragment, env=None, input=None):
        out = run(args, env=env or SECRET_ENV, input=input, check=2)
        self.assertEqual(out.stdout, b"", out.stdout)
        self.assertIn(fragment.encode(), out.stderr)
        self.assertTrue(out.stderr.startswith(b"hookctl: error: "), out.stderr)
        return out

    def test_missing_body_file(self):
        self.assert_input_error(["sign", "--secret-env", "S1", "/nonexistent/body.json"],
                                "cannot open /nonexistent/body.json")

    def test_unreadable_secret_file(self):
        body = self.write("b", b"{}")
        self.assert_input_error(["sign", "--secret-file", "/nonexistent/secret", body],
                                "/nonexistent/secret")
        if os.geteuid() != 0:  # root reads anything
            secret = self.write("secret", b"x", mode=0o000)
            self.assert_input_error(["sign", "--secret-file", secret, body], "Permission denied")

    def test_empty_secret(self):
        body = self.write("b", b"{}")
        secret = self.write("secret", b"\n", mode=0o600)
        self.assert_input_error(["sign", "--secret-file", secret, body], "is empty")
        for blank in (b"   \n", b"\t \r\n", b" "):
            with self.subTest(blank=blank):
                secret = self.write("secret", blank, mode=0o600)
                self.assert_input_error(["sign", "--secret-file", secret, body],
                                        "is only whitespace")
                self.assert_input_error(["verify", body, "-H", "X-Signature: ab",
                                         "--secret-env", "BLANK"], "is only whitespace",
                                        env={"BLANK": blank.decode()})

    def test_short_secret_is_used_with_a_warning_that_never_shows_it(self):
        body = self.write("b", b"{}")
        secret = self.write("short.secret", b"hunter2\n", mode=0o600)
        out = run(["sign", "--secret-file", secret, body], check=0)
        self.assertIn(b"X-Signature: ", out.stdout)
        self.assertEqual(out.stderr.decode(),
                         f"hookctl: warning: secret from file {secret} is only 7 bytes long: a "
                         "short secret can be guessed offline from one signed request; use at "
                         "least 16 random bytes ('hookctl secret new' makes 32)\n")
        proc, doc = run_json(["sign", "--secret-env", "SHORT", body], env={"SHORT": "hunter2"})
        self.assertEqual(proc.returncode, 0)
        self.assertIn("only 7 bytes", json.loads(proc.stderr)["warning"]["message"])
        self.assertNotIn(b"hunter2", proc.stdout + proc.stderr)
        # Long enough: nothing on stderr.
        self.assertEqual(run(["sign", "--secret-env", "S1", body], env=SECRET_ENV,
                             check=0).stderr, b"")

    def test_secret_file_readable_by_others_is_refused_like_a_keyring(self):
        body = self.write("b", b"{}")
        for mode in (0o644, 0o640, 0o604, 0o660, 0o620):
            with self.subTest(mode=oct(mode)):
                secret = self.write("hook.secret", b"a-long-enough-webhook-secret\n", mode=mode)
                for args in (["sign", "--secret-file", secret, body],
                             ["verify", body, "-H", "X-Signature: ab", "--secret-file", secret],
                             ["send", body, "--to", "http://127.0.0.1:9/", "--secret-file",
                              secret]):
                    out = self.assert_input_error(args, f"permissions {mode:04o} are too open")
                    self.assertIn(f"chmod 600 {secret}".encode(), out.stderr)
                    self.assertNotIn(b"a-long-enough", out.stderr)
        os.chmod(secret, 0o600)
        run(["sign", "--secret-file", secret, body], check=0)
        os.chmod(secret, 0o400)
        run(["sign", "--secret-file", secret, body], check=0)
        # A target's secret_file in the config file follows the same rule.
        os.chmod(secret, 0o644)
        config = self.write("config.toml", '[targets.t]\nurl = "http://127.0.0.1:9/"\n'
                                           f'secret_file = "{secret}"\n')
        self.assert_input_error(["send", body, "--config", config, "--target", "t"],
                                "are too open")
        # A pipe (process substitution, a secret manager's output) has no mode to judge.
        proc = subprocess.run(["bash", "-c", f'"$0" sign --secret-file <(echo piped-secret-0123456789) {body}',
                               HOOKCTL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_malformed_whsec(self):
        body = self.write("b", b"{}")
        out = self.assert_input_error(["sign", "--scheme", "standard", "--secret-env", "BAD",
                                       body], "malformed whsec_ secret",
                                      env={"BAD": "whsec_abc$def!-not-base64-at-all"})
        self.assertNotIn(b"abc$def", out.stderr)

    def test_bad_timestamps(self):
        body = self.write("b", b"{}")
        self.assert_input_error(["sign", "--secret-env", "S1", "--timestamp", "yesterday", body],
                                "--timestamp")
        self.assert_input_error(["sign", "--secret-env", "S1", "--timestamp",
                                 "99999999999999999999999", body], "out of range")
        self.assert_input_error(["verify", body, "--secret-env", "S1", "-H", "X-Signature: ab",
                                 "--now", "12x"], "--now")

    def test_header_block_without_colons(self):
        body = self.write("b", b"{}")
        headers = self.write("h.txt", b"X-Signature abc\nX-Signature-Timestamp 5\n")
        self.assert_input_error(["verify", body, "--secret-env", "S1", "--headers-file",
                                 headers], "line 1")
        self.assert_input_error(["verify", body, "--secret-env", "S1", "-H", "nocolon"],
                                "is not a header")

    def test_signature_header_with_garbage(self):
        body = self.write("b", b"{}")
        self.assert_input_error(["verify", body, "--secret-env", "S1", "-H",
                                 "X-Signature: %%%garbage%%%", "-H",
                                 "X-Signature-Timestamp: 1700000000", "--now", "1700000000"],
                                "malformed signature header X-Signature")
        self.assert_input_error(["verify", body, "--secret-env", "S1", "-H",
                                 "Stripe-Signature: garbage"], "malformed signature header")

    def test_secret_on_argv_is_refused_and_not_echoed(self):
        body = self.write("b", b"{}")
        out = self.assert_input_error(["sign", "--secret", "hunter2-topsecret", body],
                                      "--secret-env")
        self.assertNotIn(b"hunter2", out.stderr)

    def test_no_secret(self):
        body = self.write("b", b"{}")
        self.assert_input_error(["sign", body], "no secret given")

    def test_bad_tolerance_and_scheme(self):
        body = self.write("b", b"{}")
        self.assert_input_error(["verify", body, "--secret-env", "S1", "-H", "X-Signature: a",
                                 "--tolerance", "5 minutes"], "invalid duration")
        self.assert_input_error(["sign", "--scheme", "paypal", "--secret-env", "S1", body],
                                "paypal")

    def test_json_errors_are_json_on_stderr(self):
        out = run(["sign", "--json", "/nonexistent"], env=SECRET_ENV, check=2)
        self.assertEqual(out.stdout, b"")
        self.assertEqual(json.loads(out.stderr)["error"]["code"], 2)

    def test_secrets_never_printed(self):
        body = self.write("b", b"{}")
        outputs = []
        for scheme in SCHEMES:
            for fmt in ["headers", "json", "curl"]:
                p = run(["sign", "--scheme", scheme, "--secret-env", secret_env(scheme, 1),
                         "--format", fmt, "--url", "http://127.0.0.1:9/", body], env=SECRET_ENV)
                outputs.append(p.stdout + p.stderr)
        blob = b"".join(outputs)
        for value in SECRET_ENV.values():
            self.assertNotIn(value.encode(), blob)


if __name__ == "__main__":
    unittest.main()
