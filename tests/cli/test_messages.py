"""Usage errors say what is wrong in the words an operator uses: an unknown command is named
with the closest one, every integer flag says "must be a whole number", an address that cannot
be bound is refused before anything else is printed; all exit 2."""
import json
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import run  # noqa: E402
from test_completion import command_tree, help_of, help_sections  # noqa: E402


def value_flags(path):
    """[(flag, value name)] of command `path` from its --help, e.g. ("--limit", "N")."""
    flags = []
    for title, entries in help_sections(help_of(path)).items():
        if title in ("Subcommands", "Positionals"):
            continue
        for entry in entries:
            parts = entry.split(" ")
            if len(parts) < 2:
                continue
            names = [n for n in parts[0].split(",") if n.startswith("--")]
            if names:
                flags.append((names[0], parts[1].split("=")[0]))
    return flags


class MessagesTest(unittest.TestCase):
    def usage_error(self, args, env=None):
        proc = run(args, env=env)
        self.assertEqual(proc.returncode, 2, (args, proc.stderr))
        self.assertEqual(proc.stdout, b"")
        return proc.stderr.decode()

    def test_unknown_command_is_named_with_the_closest_one(self):
        err = self.usage_error(["frobnicate"])
        self.assertRegex(err, r"^hookctl: error: unknown command 'frobnicate'; the closest is "
                              r"'[a-z]+' \(see 'hookctl --help' for every command\)\n$")
        self.assertNotIn("A subcommand is required", err)
        self.assertIn("did you mean 'sign'?", self.usage_error(["sing"]))
        self.assertIn("did you mean 'verify'?", self.usage_error(["verfiy", "body.json"]))
        self.assertIn("did you mean 'completion'?", self.usage_error(["comp", "bash"]))
        # Global flags before it, with their values, are skipped over.
        self.assertIn("unknown command 'lisen'; did you mean 'listen'?",
                      self.usage_error(["--config", "x.toml", "-q", "lisen"]))
        # The flags people type as commands.
        self.assertIn("unknown command 'help': hookctl has the flag instead: 'hookctl --help'",
                      self.usage_error(["help"]))
        self.assertIn("'hookctl events --help'", self.usage_error(["events", "help"]))
        # A subcommand's subcommand.
        err = self.usage_error(["secret", "shwo", "--keyring", "k"])
        self.assertIn("unknown command 'secret shwo'; did you mean 'secret show'?", err)
        self.assertIn("see 'hookctl secret --help'", err)
        # --json: the same message as a JSON object.
        proc = run(["--json", "frobnicate"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown command 'frobnicate'",
                      json.loads(proc.stderr)["error"]["message"])

    def test_a_missing_command_lists_the_ones_there_are(self):
        self.assertIn("'hookctl secret' needs a command: new, show, export or import",
                      self.usage_error(["secret"]))

    def test_every_integer_flag_asks_for_a_whole_number(self):
        checked = []
        for path in command_tree():
            for flag, value_name in value_flags(path):
                if value_name not in ("N", "CODE"):
                    continue
                for bad in ("abc", "-1"):
                    with self.subTest(command=" ".join(path), flag=flag, value=bad):
                        err = self.usage_error(path + [flag, bad])
                        self.assertRegex(err, rf"^hookctl: error: {flag}: must be a whole number "
                                              rf"(≥ \d+|from \d+ to \d+), not '{re.escape(bad)}'")
                        self.assertNotIn("Could not convert", err)
                        self.assertLess(len(err), 200, err)
                checked.append(" ".join(path + [flag]))
        # The flags the issue named, and that the walk found them at all.
        for expected in ("events list --limit", "parse --jobs", "listen --max-inflight",
                         "listen --fail-status", "replay --concurrency"):
            self.assertIn(expected, checked)

    def test_integer_flags_state_their_range(self):
        self.assertIn("--limit: must be a whole number ≥ 1, not 'abc'",
                      self.usage_error(["events", "list", "--limit", "abc"]))
        self.assertIn("--limit: must be a whole number ≥ 1, not '0'",
                      self.usage_error(["events", "list", "--limit", "0"]))
        self.assertIn("--jobs: must be a whole number from 1 to 256, not '300'",
                      self.usage_error(["parse", "--jobs", "300"]))
        self.assertIn("--max-inflight: must be a whole number ≥ 0, not '1.5'",
                      self.usage_error(["listen", "--max-inflight", "1.5"]))
        self.assertIn("--fail-status: must be a whole number from 100 to 599, not '42'",
                      self.usage_error(["listen", "--fail-status", "42"]))
        # A whole number too large for the flag's type says so.
        self.assertIn("--threads: '99999999999' is too large",
                      self.usage_error(["listen", "--threads", "99999999999"]))

    def test_delivery_duration_flags_name_the_flag_the_value_and_the_forms(self):
        for command in (["send"], ["replay"], ["trigger"], ["probe"]):
            flags = ["--timeout"] if command == ["probe"] else [
                "--timeout", "--connect-timeout", "--backoff-base", "--backoff-max",
                "--max-elapsed"]
            for flag in flags:
                with self.subTest(command=command, flag=flag):
                    err = self.usage_error(command + [flag, "soon"])
                    self.assertRegex(err, rf"^hookctl: error: {flag}: invalid duration 'soon': "
                                          r"use seconds \(300\) or a number with a unit: 250ms, ")
            for flag in [f for f in flags if f in ("--timeout", "--connect-timeout")]:
                with self.subTest(command=command, flag=flag, value="0"):
                    self.assertIn(f"hookctl: error: {flag}: must be a duration above zero, "
                                  "not '0s'", self.usage_error(command + [flag, "0s"]))
        self.assertIn("--retries: must be a whole number from 0 to 1000, not '1001'",
                      self.usage_error(["send", "--retries", "1001"]))

    def test_bad_bind_address_prints_only_the_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            for bind in ("999.1.1.1:80", "[zz]:80", "127.0.0.1:99999", "nohost"):
                with self.subTest(bind=bind):
                    proc = run(["listen", "--bind", bind, "--secret-env", "S", "--archive",
                                os.path.join(tmp, "a.db")], env={"S": "x" * 32})
                    self.assertEqual(proc.returncode, 2, proc.stderr)
                    lines = proc.stderr.decode().splitlines()
                    self.assertEqual(len(lines), 1, lines)
                    self.assertTrue(lines[0].startswith("hookctl: error: --bind: "), lines)
                    self.assertIn(bind, lines[0])
                    self.assertNotIn("loopback", lines[0])
            self.assertEqual(os.listdir(tmp), [])


if __name__ == "__main__":
    unittest.main()
