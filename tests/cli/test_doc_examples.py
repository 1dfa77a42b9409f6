"""Every documented example runs as written: each `hookctl ...` command of the README's tour and
of every man page's EXAMPLES section is run, in page order, in a sandbox (a temporary HOME,
XDG folders and working folder, the sample files of examples/), and must exit as the page says
(0 unless a roff comment `.\\" example: exit N` before it, or a trailing `# exit N` in the README,
says otherwise).

What the sandbox stands in for, so that examples which name the outside world still run:
- One `hookctl listen` on a free loopback port (scheme auto, the sandbox's secret) is every
  endpoint: a documented loopback URL (http://127.0.0.1:8080/...) keeps its path and gets the
  listener's port, so a wrong path is caught (404); any other URL (https://staging.example.com)
  becomes the listener's URL.
- The configuration file is hookctl(1)'s own CONFIGURATION example, with those URLs.
- Absolute paths (/etc/hookctl/..., /run/secrets/..., /tmp/...) move under the sandbox's root,
  whose folders exist; `~` is the sandbox's HOME.
- A `hookctl listen` example that runs in the foreground is started on a free port, waited for,
  and stopped with SIGTERM (it must exit 0); one started with `&` is stopped at the page's end.
- `export NAME=...` of a secret the sandbox provides keeps the sandbox's value (the listener
  must know it); a run id (run_0123456789abcdef) is a real resumable run made in the sandbox.
- Commands that need a real remote endpoint are marked `.\\" example: remote` in the page source,
  and commands that need the reader's own TLS certificates (--cacert, --cert, --tls-cert; the
  TLS tests run those flags) `.\\" example: certificates`; they are skipped by name, and the
  skipped list is printed.

Every hookctl run goes through a small wrapper that records its exit code (pipelines, `$(...)`,
`<(...)` and background runs included) and passes signals on to it."""
import base64
import glob
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import HOOKCTL, SANITIZED, SOURCE, run  # noqa: E402

MAN = os.path.join(SOURCE, "man")
README = os.path.join(SOURCE, "README.md")
EXAMPLES = os.path.join(SOURCE, "examples")

SECRET = "whsec_" + base64.b64encode(b"doc-examples-secret-0123456789ab").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"doc-examples-older-secret-012345").decode()
# The secret variables the pages use; `export NAME=...` of these keeps the sandbox's value.
SECRET_ENV = {"HOOK_SECRET": SECRET, "WEBHOOK_SECRET": SECRET, "LOCAL_HOOK_SECRET": SECRET,
              "STAGING_SECRET": SECRET, "NEW_SECRET": SECRET, "OLD_SECRET": OTHER_SECRET}
# Files the pages read secrets from (relative to the working folder, or under the root's /run,
# or in HOME), all holding SECRET, mode 0600.
SECRET_FILES = ["stripe.secret", "whsec.txt", "root/run/secrets/svix",
                "home/.config/hookctl/staging.secret"]
RUN_ID = re.compile(r"\brun_[0-9a-f]{16}\b")
ABSOLUTE = re.compile(r"(?<![\w.~$/-])/(etc|run|var|tmp|srv|opt|mnt)/")
URL = re.compile(r"https?://[^\s\"'<>)]+")
HOOKCTL_WORD = re.compile(r"(^|[\s;&|(`$])hookctl(\s|$)")
PAGE_TIMEOUT = 300 if SANITIZED else 120


class Example:
    """One command line of a page (continuation lines joined)."""

    def __init__(self, page, line, text, expect=0, remote=False):
        self.page, self.line, self.text = page, line, text
        self.expect, self.remote = expect, remote

    @property
    def name(self):
        return f"{self.page}:{self.line}: {self.text}"

    @property
    def runs_hookctl(self):
        return not self.text.lstrip().startswith("#") and HOOKCTL_WORD.search(self.text)


def unroff(line):
    """A line of a .nf block as the reader sees it."""
    return (line.replace("\\-", "-").replace("\\e", "\\").replace("\\\\", "\\")
            .replace("\\&", "").replace("\\(aq", "'"))


def join_continued(lines):
    """[(first line number, text)] with lines ending in \\, | , && or || joined to the next."""
    out, buf, start = [], "", None
    for number, text in lines:
        if start is None:
            start = number
        stripped = text.rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1].rstrip() + " "
            continue
        if stripped.endswith(("|", "&&", "||")):
            buf += stripped + " "
            continue
        out.append((start, buf + text.strip() if buf else text))
        buf, start = "", None
    if buf:
        out.append((start, buf.strip()))
    return out


def man_examples(path):
    """The EXAMPLES section of a man page: a list of blocks (.nf ... .fi), each a list of
    Examples, with the markers of `.\\" example: remote` and `.\\" example: exit N`."""
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        source = f.read().splitlines()
    blocks, block, in_examples, in_block, marker = [], None, False, False, None
    markers = {}
    raw = []
    for number, line in enumerate(source, 1):
        if line.startswith(".SH"):
            in_examples = line.split(None, 1)[-1].strip().strip('"') == "EXAMPLES"
            continue
        if not in_examples:
            continue
        if line.startswith(".nf"):
            in_block, raw = True, []
            continue
        if line.startswith(".fi"):
            in_block = False
            block = []
            for start, text in join_continued(raw):
                mark = markers.get(start, "")
                expect = int(re.search(r"exit (\d)", mark).group(1)) if "exit" in mark else 0
                block.append(Example(name, start, text, expect,
                                     "remote" in mark or "certificates" in mark))
            blocks.append(block)
            continue
        if not in_block:
            continue
        comment = re.match(r'^\.\\"\s*example:\s*(.*)$', line)
        if comment:
            marker = comment.group(1)
            continue
        if line.startswith("."):
            continue  # .RS, .RE, .PP inside a block
        if marker is not None:
            markers[number] = marker
            marker = None
        raw.append((number, unroff(line)))
    return blocks


def readme_examples():
    """The README's tour: the sh block under '## A 60-second tour'."""
    with open(README, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("## A 60-second tour"))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    block = []
    for number, text in join_continued([(i + 1, lines[i]) for i in range(fence + 1, end)]):
        mark = re.search(r"#.*\bexit (\d)\b", text)
        block.append(Example("README.md", number, text, int(mark.group(1)) if mark else 0))
    return [block]


def all_pages():
    pages = [("README.md", readme_examples())]
    for path in sorted(glob.glob(os.path.join(MAN, "*.1"))):
        pages.append((os.path.basename(path), man_examples(path)))
    return pages


def config_example():
    """hookctl(1)'s CONFIGURATION example, the text of the config file."""
    with open(os.path.join(MAN, "hookctl.1"), encoding="utf-8") as f:
        text = f.read()
    section = text.split(".SH CONFIGURATION", 1)[1].split("\n.SH ", 1)[0]
    block = section.split("\n.nf\n", 1)[1].split("\n.fi", 1)[0]
    return "\n".join(unroff(l) for l in block.splitlines()) + "\n"


# The wrapper every example's `hookctl` resolves to: runs the binary, passes signals on, and
# records (example id, exit code, arguments).
WRAPPER = r"""#!/bin/bash
"$HOOKCTL_REAL" "$@" <&0 &
child=$!
for sig in TERM INT HUP USR1 USR2; do trap "kill -$sig $child 2>/dev/null" "$sig"; done
while kill -0 "$child" 2>/dev/null; do wait "$child"; done
wait "$child"
rc=$?
printf '%s\t%s\t%s\n' "${HOOKCTL_EXAMPLE:-0}" "$rc" "$*" >> "$HOOKCTL_EXAMPLE_LOG"
exit "$rc"
"""

PRELUDE = r"""set -o pipefail
__status() { printf '%s\t%s\n' "$2" "$1" >> "$HOOKCTL_STATUS_LOG"; }
__ready() {  # pid file: wait for a listen to write its ready file
    local i
    for ((i = 0; i < 600; i++)); do
        [[ -s "$2" ]] && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
"""


class Sandbox:
    """A page's world: root/ (for absolute paths), home/, work/ (the working folder)."""

    def __init__(self, template, parent, name, listen_url):
        self.root = os.path.join(parent, re.sub(r"\W", "_", name))
        shutil.copytree(template, self.root, symlinks=True)
        self.work = os.path.join(self.root, "work")
        self.home = os.path.join(self.root, "home")
        self.fs_root = os.path.join(self.root, "root")
        self.listen_url = listen_url
        self.port = re.match(r"http://127\.0\.0\.1:(\d+)/", listen_url).group(1)
        self.log = os.path.join(self.root, "hookctl.log")
        self.status_log = os.path.join(self.root, "status.log")
        self.env = {
            "PATH": os.path.join(self.root, "bin") + os.pathsep + os.environ.get("PATH", ""),
            "HOME": self.home, "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "XDG_DATA_HOME": os.path.join(self.home, ".local", "share"),
            "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
            "LANG": "C.UTF-8", "TMPDIR": os.path.join(self.fs_root, "tmp"),
            "HOOKCTL_REAL": os.path.abspath(HOOKCTL), "HOOKCTL_EXAMPLE_LOG": self.log,
            "HOOKCTL_STATUS_LOG": self.status_log, **SECRET_ENV}
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if key in os.environ:
                self.env[key] = os.environ[key]
        with open(os.path.join(self.home, ".config", "hookctl", "config.toml"), "w") as f:
            f.write(self.substitute(config_example()))

    def substitute(self, text):
        """The text with URLs, absolute paths and run ids of the sandbox."""
        def url(m):
            found = m.group(0)
            host = re.match(r"https?://(\[[^\]]*\]|[^/:]+)", found).group(1)
            if host in ("127.0.0.1", "localhost", "[::1]"):
                return re.sub(r"^https?://[^/]+", "http://127.0.0.1:" + self.port, found)
            return self.listen_url
        text = URL.sub(url, text)
        return ABSOLUTE.sub(lambda m: self.fs_root + "/" + m.group(1) + "/", text)

    def make_folders(self, text):
        """Creates the parent folders of the absolute paths `text` names (after substitute)."""
        for token in re.findall(re.escape(self.fs_root) + r"/[^\s\"'<>|;&)]+", text):
            os.makedirs(os.path.dirname(token), exist_ok=True)

    def resumable_run(self):
        """A run interrupted (SIGINT) after it started: the id of a real run to resume."""
        archive = os.path.join(self.work, ".resumable.db")
        run(["events", "import", "--archive", archive, "-q",
             os.path.join(EXAMPLES, "sample-archive.ndjson")], env=self.env, check=0)
        proc = subprocess.Popen([HOOKCTL, "replay", "--from", archive, "--target", "staging",
                                 "--rate", "4/s"],
                                cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        # Interrupted once the run is recorded (its index file), well before its 4 events at
        # 4/s are sent; at the latest after a second.
        runs = os.path.join(self.env["XDG_STATE_HOME"], "hookctl", "runs")
        deadline = time.monotonic() + (1.0 if not SANITIZED else 3.0)
        while time.monotonic() < deadline and not (os.path.isdir(runs) and os.listdir(runs)):
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode()
        found = RUN_ID.search(out)
        if proc.returncode != 3 or not found:
            raise AssertionError(f"no resumable run for the page's run id: replay exited "
                                 f"{proc.returncode}: {out}")
        return found.group(0)


class DocExamplesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hookctl-doc-examples-")
        cls.template = os.path.join(cls.tmp.name, "template")
        cls.listen = None
        cls.start_listen()
        cls.make_template()

    @classmethod
    def tearDownClass(cls):
        if cls.listen is not None:
            cls.listen.send_signal(signal.SIGTERM)
            try:
                cls.listen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.listen.kill()
                cls.listen.wait()
            cls.listen_log.close()
        cls.tmp.cleanup()

    @classmethod
    def start_listen(cls):
        """The one receiver that stands in for every endpoint the pages name."""
        ready = os.path.join(cls.tmp.name, "listen.url")
        cls.listen_log = open(os.path.join(cls.tmp.name, "listen.log"), "wb")
        cls.listen = subprocess.Popen(
            [HOOKCTL, "listen", "--bind", "127.0.0.1:0", "--scheme", "auto", "--secret-env",
             "HOOK_SECRET", "--archive", os.path.join(cls.tmp.name, "listen.db"),
             "--synchronous", "normal", "--max-body", "1MiB", "--ready-file", ready,
             "--log-format", "json"],
            env=dict(os.environ, HOOK_SECRET=SECRET), stdout=subprocess.DEVNULL,
            stderr=cls.listen_log)
        deadline = time.monotonic() + 60
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if cls.listen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the sandbox's listen did not start")
            time.sleep(0.05)
        with open(ready) as f:
            cls.listen_url = f.read().strip()

    @classmethod
    def make_template(cls):
        """What every page's sandbox starts with."""
        t = cls.template
        for folder in ("bin", "work", "root/tmp", "root/run/secrets", "root/etc/hookctl",
                       "home/.config/hookctl/secrets", "home/.local/state", "home/Maildir/cur",
                       "home/Maildir/new", "home/Maildir/tmp", "home/.cache"):
            os.makedirs(os.path.join(t, folder), exist_ok=True)
        wrapper = os.path.join(t, "bin", "hookctl")
        with open(wrapper, "w") as f:
            f.write(WRAPPER)
        os.chmod(wrapper, 0o755)
        # Secret files: the sandbox's secret, private.
        for name in SECRET_FILES + ["home/.config/hookctl/secrets/staging.whsec"]:
            path = os.path.join(t, name if "/" in name and name.split("/")[0] in ("root", "home")
                                else os.path.join("work", name))
            with open(path, "w") as f:
                f.write(SECRET + "\n")
            os.chmod(path, 0o600)
        # Sample inputs under the names the pages use.
        work = os.path.join(t, "work")
        os.symlink(EXAMPLES, os.path.join(work, "examples"))
        shutil.copy(os.path.join(EXAMPLES, "event.json"), os.path.join(work, "event.json"))
        shutil.copy(os.path.join(EXAMPLES, "event.json"), os.path.join(work, "body.json"))
        with open(os.path.join(EXAMPLES, "invoice.eml"), "rb") as f:
            eml = f.read()
        with open(os.path.join(work, "message.eml"), "wb") as f:
            f.write(eml)
        for i in range(3):
            with open(os.path.join(t, "home", "Maildir", "cur", f"{i}.host:2,S"), "wb") as f:
                f.write(eml.replace(b"Message-ID: <", b"Message-ID: <%d." % i, 1))
        mbox = b"".join(b"From sender@example.org Thu Nov 26 10:00:00 2026\n" +
                        eml.replace(b"Message-ID: <", b"Message-ID: <mbox%d." % i, 1) + b"\n"
                        for i in range(3))
        for name in ("big.mbox", "archive.mbox"):
            with open(os.path.join(work, name), "wb") as f:
                f.write(mbox)
        env = dict(os.environ, **SECRET_ENV)
        # A payload copied from a log, with its headers (signed at 1764160000).
        signed = run(["sign", os.path.join(work, "body.json"), "--secret-env", "HOOK_SECRET",
                      "--timestamp", "1764160000"], env=env, check=0)
        with open(os.path.join(work, "headers.txt"), "wb") as f:
            f.write(signed.stdout)
        # A Stripe delivery as `curl -D stripe-headers.txt -o stripe-body.json` saves it.
        signed = run(["sign", os.path.join(work, "body.json"), "--scheme", "stripe",
                      "--secret-env", "HOOK_SECRET"], env=env, check=0)
        with open(os.path.join(work, "stripe-headers.txt"), "wb") as f:
            f.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
                    signed.stdout.replace(b"\n", b"\r\n") + b"\r\n")
        shutil.copy(os.path.join(work, "body.json"), os.path.join(work, "stripe-body.json"))
        # Archives with failed events, a platform's dead-letter table, keyrings.
        for name in ("events.db", "outage.db"):
            run(["events", "import", "-q", "--archive", os.path.join(work, name),
                 os.path.join(EXAMPLES, "sample-archive.ndjson")], env=env, check=0)
        with sqlite3.connect(os.path.join(work, "dlq.sqlite")) as db:
            db.execute("CREATE TABLE dead_letters (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            db.executemany("INSERT INTO dead_letters VALUES (?, ?)",
                           [(f"dlq_{i}", '{"n": %d}' % i) for i in range(3)])
        for ring in ("work/sender.keyring", "work/receiver.keyring",
                     "root/etc/hookctl/production.keyring"):
            run(["secret", "import", "-q", "--keyring", os.path.join(t, ring), "--secret-env",
                 "HOOK_SECRET"], env=env, check=0)
            os.remove(os.path.join(t, ring) + ".lock")

    def run_page(self, name, blocks):
        """Runs a page's examples in a fresh sandbox; returns (ran, skipped, failures)."""
        box = Sandbox(self.template, self.tmp.name, name, self.listen_url)
        examples = [e for block in blocks for e in block]
        page_text = "\n".join(e.text for e in examples)
        run_id = box.resumable_run() if RUN_ID.search(page_text) else None
        script = [PRELUDE, f"cd {shlex.quote(box.work)}"]
        ran, skipped, provided = [], [], []
        for index, example in enumerate(examples, 1):
            text = box.substitute(example.text)
            if run_id:
                text = RUN_ID.sub(run_id, text)
            box.make_folders(text)
            stripped = text.strip()
            secret_export = re.match(r"^export (\w+)=", stripped)
            if example.remote:
                skipped.append(example)
                continue
            if secret_export and secret_export.group(1) in SECRET_ENV:
                provided.append(example)
                continue
            if stripped in ("set -e", "set -eu", "set -euo pipefail"):
                continue  # every command's status is checked one by one
            if example.runs_hookctl:
                ran.append((index, example))
            script.append(f"export HOOKCTL_EXAMPLE={index}")
            listen = re.match(r"^hookctl\s+listen\b(.*)$", stripped)
            if listen and not stripped.endswith("&"):
                # A receiver in the foreground: start it on a free port, wait, stop it.
                args = listen.group(1)
                ready = os.path.join(box.root, f"ready.{index}")
                extra = ""
                if "--bind" not in args:
                    extra += " --bind 127.0.0.1:0"
                else:
                    args = re.sub(r"(--bind[ =]\S+):\d+", r"\1:0", args)
                if "--ready-file" not in args:
                    extra += f" --ready-file {shlex.quote(ready)}"
                script += [f"hookctl listen{extra}{args} &",
                           f"__ready $! {shlex.quote(ready)} || echo 'not ready' >&2",
                           "kill -TERM $! 2>/dev/null; wait $!", f"__status $? {index}"]
                continue
            script += [text, f"__status $? {index}"]
        script += ["export HOOKCTL_EXAMPLE=0",
                   "for pid in $(jobs -p); do kill -TERM $pid 2>/dev/null; done", "wait"]
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(script)],
                              cwd=box.work, env=box.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=PAGE_TIMEOUT)
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        statuses, records = {}, {}
        if os.path.exists(box.status_log):
            for line in open(box.status_log):
                index, status = line.rstrip("\n").split("\t")
                statuses[int(index)] = int(status)
        if os.path.exists(box.log):
            for line in open(box.log):
                index, status, args = line.rstrip("\n").split("\t", 2)
                records.setdefault(int(index), []).append((int(status), args))
        failures = []
        for index, example in ran:
            got = records.get(index, [])
            if not got:
                failures.append(f"{example.name}\n    ran no hookctl (line status "
                                f"{statuses.get(index)})")
                continue
            wrong = [(s, a) for s, a in got if s != example.expect]
            if wrong or statuses.get(index, example.expect) not in (0, example.expect):
                failures.append(f"{example.name}\n    expected exit {example.expect}, got " +
                                ", ".join(f"{s} (hookctl {a})" for s, a in got) +
                                f"; line status {statuses.get(index)}")
        if failures:
            failures.append(f"--- output of the page's run:\n{output[-6000:]}")
        return ran, skipped, provided, failures

    def test_every_documented_example_runs(self):
        total_ran, all_skipped, all_provided = 0, [], []
        for name, blocks in all_pages():
            if not any(e.runs_hookctl for block in blocks for e in block):
                continue
            with self.subTest(page=name):
                ran, skipped, provided, failures = self.run_page(name, blocks)
                total_ran += len(ran)
                all_skipped += skipped
                all_provided += provided
                self.assertEqual(failures, [], "\n".join(failures))
        print(f"\ndocumented examples: {total_ran} hookctl command lines run, "
              f"{len(all_skipped)} skipped (need a real remote endpoint or certificates):", file=sys.stderr)
        for example in all_skipped:
            print(f"  skipped: {example.name}", file=sys.stderr)
        for example in all_provided:
            print(f"  the sandbox provides the secret of: {example.name}", file=sys.stderr)
        self.assertGreater(total_ran, 50)

    def test_every_page_has_examples_and_marks_only_remote_commands(self):
        for name, blocks in all_pages():
            with self.subTest(page=name):
                examples = [e for block in blocks for e in block]
                self.assertTrue(any(e.runs_hookctl for e in examples),
                                f"{name} has no hookctl command in its examples")
                for example in examples:
                    if example.remote and re.search(r"--(cacert|capath|cert|tls-cert)\b",
                                                    example.text):
                        continue  # needs certificate files of the reader's own CA
                    if example.remote:
                        # Only what names an endpoint outside this machine may be skipped.
                        hosts = re.findall(r"https?://([^/:\s\"']+)", example.text)
                        self.assertTrue(hosts and all(h not in ("127.0.0.1", "localhost")
                                                      for h in hosts),
                                        f"{example.name} is marked remote but names no remote "
                                        f"endpoint")


if __name__ == "__main__":
    unittest.main()
