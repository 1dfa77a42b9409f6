"""Shared helpers for the black-box tests: run the built hookctl, find free ports."""
import json
import os
import socket
import subprocess
import tempfile
import unittest

HOOKCTL = os.environ.get("HOOKCTL", "hookctl")
SOURCE = os.environ.get("HOOKCTL_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("HOOKCTL_SHARED", os.path.join(SOURCE, "..", "shared"))
SANITIZED = os.environ.get("HOOKCTL_SANITIZED") == "1"


def run(args, input=None, env=None, timeout=60, check=None):
    """Runs hookctl with `args`; returns CompletedProcess with bytes stdout/stderr."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run([HOOKCTL] + list(args), input=input if input is not None else b"",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                          timeout=timeout)
    if check is not None and proc.returncode != check:
        raise AssertionError(
            f"hookctl {' '.join(args)} exited {proc.returncode}, expected {check}\n"
            f"stdout: {proc.stdout[:2000]!r}\nstderr: {proc.stderr[:2000]!r}")
    return proc


def run_json(args, **kwargs):
    proc = run(list(args) + ["--json"], **kwargs)
    return proc, json.loads(proc.stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempDirTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="hookctl-test-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, data, mode=None):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(path, mode)
        return path
