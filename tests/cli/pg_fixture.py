"""A throwaway PostgreSQL 15 for the tests: initdb into a temporary directory (trust
authentication, superuser `hookctl`), started with pg_ctl on a Unix socket in that directory and
a free loopback port, stopped and removed at the end.

PostgreSQL refuses to run as root: as root (CI runs the suite so) the server's commands run as
the `postgres` user that Debian's package creates, through runuser, and the directory is handed
to it. Missing binaries are a failure, not a skip: scripts/bootstrap installs them."""
import os
import shutil
import subprocess
import tempfile
import time

from hookctl_test import free_port

BINDIR = os.environ.get("HOOKCTL_PG_BINDIR", "/usr/lib/postgresql/15/bin")
SUPERUSER = "hookctl"


class PgServer:
    def __init__(self, fsync=False):
        """Starts the server. `fsync` False (tests): commits are not flushed to the disk, which
        changes nothing a test can see short of a machine crash; benchmarks pass True."""
        self.bindir = BINDIR
        missing = [b for b in ("initdb", "pg_ctl", "postgres")
                   if not os.access(os.path.join(BINDIR, b), os.X_OK)]
        if missing or shutil.which("psql") is None:
            raise AssertionError(
                f"PostgreSQL 15 is not installed ({', '.join(missing) or 'psql'} missing under "
                f"{BINDIR} or on PATH): run scripts/bootstrap, which installs `postgresql`")
        self.as_root = os.geteuid() == 0
        self.dir = tempfile.mkdtemp(prefix="hookctl-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        if self.as_root:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self._server(["initdb", "-D", self.data, "--auth=trust", "-U", SUPERUSER, "-E", "UTF8",
                      "--locale=C", "--no-sync"], timeout=120)
        self.options = (f"-k {self.dir} -p {self.port} -h 127.0.0.1 "
                        f"-c fsync={'on' if fsync else 'off'} -c max_connections=50 "
                        "-c shared_buffers=32MB")
        self.start()

    def _server(self, argv, timeout=60, check=True):
        cmd = [os.path.join(self.bindir, argv[0])] + argv[1:]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              cwd=self.dir)
        if check and proc.returncode != 0:
            log = ""
            if os.path.exists(self.log):
                with open(self.log, errors="replace") as f:
                    log = f.read()[-2000:]
            raise AssertionError(f"{' '.join(argv[:2])} failed ({proc.returncode}): "
                                 f"{proc.stderr.decode(errors='replace')}\n{log}")
        return proc

    def start(self):
        self._server(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o",
                      self.options, "start"], timeout=90)

    def stop(self, mode="fast"):
        self._server(["pg_ctl", "-D", self.data, "-w", "-t", "60", "-m", mode, "stop"],
                     timeout=90, check=False)

    def pids(self):
        """The server's processes (postmaster and its children)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                main = int(f.readline())
        except (OSError, ValueError):
            return []
        out = [main]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == main:
                        out.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
        return out

    def uri(self, database):
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name):
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def psql(self, database, sql):
        """Runs `sql`; returns its rows as lists of text fields."""
        proc = subprocess.run(
            ["psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
             str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"psql {sql[:80]!r}: {proc.stderr.decode(errors='replace')}")
        text = proc.stdout.decode()
        return [line.split("\t") for line in text.splitlines() if line]

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(condition, timeout=30, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
