"""Helpers for the keyring tests (test_secret*.py, test_rotate*.py): every hookctl run is
recorded, and at the end no secret held in any keyring may appear in the output of a run
that did not ask for it with --reveal."""
import glob
import json
import os

from hookctl_test import TempDirTestCase, run

# (args, stdout, stderr) of every run that must not print a keyring secret.
QUIET_RUNS = []
# Every keyring file any test made, read at the end.
SECRETS_SEEN = set()


def may_print_secret(args):
    if "--reveal" in args:
        return True
    # `secret new` without a keyring prints the fresh secret: that is what it is for.
    return args[:2] == ["secret", "new"] and "--keyring" not in args and "--out" not in args


class KeyringTestCase(TempDirTestCase):
    def tearDown(self):
        for path in glob.glob(os.path.join(self.tmp, "**", "*.json"), recursive=True):
            try:
                with open(path, "rb") as f:
                    doc = json.loads(f.read())
            except (ValueError, OSError):
                continue
            if isinstance(doc, dict) and doc.get("format") == "hookctl-keyring":
                for key in doc.get("keys", []):
                    SECRETS_SEEN.add(key["secret"])
        super().tearDown()

    def hk(self, args, **kwargs):
        """Runs hookctl, recording its output for the no-secret-in-output check."""
        args = [str(a) for a in args]
        proc = run(args, **kwargs)
        if not may_print_secret(args):
            QUIET_RUNS.append((args, proc.stdout, proc.stderr))
        return proc

    def hk_json(self, args, **kwargs):
        proc = self.hk(list(args) + ["--json"], **kwargs)
        return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)

    def keyring_doc(self, path):
        with open(path, "rb") as f:
            return json.loads(f.read())

    def export(self, keyring, key_id=None, fmt="raw"):
        """The secret `key_id` (default: the primary) of `keyring`, via secret export --reveal."""
        args = ["secret", "export", "--keyring", keyring, "--reveal", "--format", fmt]
        if key_id:
            args += ["--id", key_id]
        return self.hk(args, check=0).stdout.decode().strip()


def assert_no_secret_leaked(testcase):
    """Fails when any keyring secret appears in a recorded run's output."""
    testcase.assertGreater(len(QUIET_RUNS), 10)
    testcase.assertGreater(len(SECRETS_SEEN), 3)
    for secret in SECRETS_SEEN:
        needles = {secret.encode()}
        for prefix in ("whsec_", "whsk_"):
            if secret.startswith(prefix):
                needles.add(secret[len(prefix):].encode())
        for args, out, err in QUIET_RUNS:
            for needle in needles:
                testcase.assertNotIn(needle, out, f"secret leaked on stdout of {args}")
                testcase.assertNotIn(needle, err, f"secret leaked on stderr of {args}")
