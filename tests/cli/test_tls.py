"""TLS for private infrastructure (issue 20), with real TLS on loopback: a private CA, a server
certificate and two client certificates (one from the CA, one self-signed), made once for the
file with the openssl CLI. send, replay and probe trust the CA with --cacert (and fail cleanly,
naming --cacert, without it); `listen --tls-client-ca` requires and records client
certificates; `--allow-from` refuses other sources before reading the body; certificates are
reloaded from disk without a restart and without failing requests in flight."""
import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import SANITIZED, TempDirTestCase, run  # noqa: E402
from test_listen_common import (SECRET, SECRET_ENV, Receiver, event_body, sign,  # noqa: E402
                                stored_ids)
from test_replay import make_archive, sample_events  # noqa: E402

CERTS = None  # the directory of the certificates, made once in setUpModule
PASSPHRASE = "client key passphrase 7"
ENV = {SECRET_ENV: SECRET, "REPLAY_SECRET": SECRET, "PROBE_SECRET": SECRET,
       "CLIENT_KEY_PASS": PASSPHRASE}
WAIT = 60 if SANITIZED else 30


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60, cwd=CERTS)


def make_leaf(name, cn, san=None, issuer="ca"):
    """A P-256 key and a certificate for `cn`, issued by `issuer` (None: self-signed)."""
    ext = os.path.join(CERTS, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write(f"subjectAltName={san}\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/O=hookctl test/CN={cn}")
    if issuer:
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey",
                f"{issuer}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                "-extfile", ext)
    else:
        openssl("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key", "-out",
                f"{name}.pem", "-days", "2", "-extfile", ext)
    os.chmod(os.path.join(CERTS, f"{name}.key"), 0o600)


def setUpModule():
    global CERTS
    # Trust is what these tests are about: nothing from the environment running them.
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        os.environ.pop(name, None)
    CERTS = tempfile.mkdtemp(prefix="hookctl-tls-certs-")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=hookctl test CA")
    make_leaf("server", "127.0.0.1", "IP:127.0.0.1,DNS:localhost")
    make_leaf("server2", "127.0.0.1", "IP:127.0.0.1,DNS:localhost")  # for the rotation
    make_leaf("client-a", "client-a", "DNS:client-a.internal")
    make_leaf("client-b", "client-b", issuer=None)  # self-signed: not from the CA
    openssl("pkey", "-in", "client-a.key", "-out", "client-a-enc.key", "-aes256", "-passout",
            f"pass:{PASSPHRASE}")
    os.chmod(os.path.join(CERTS, "client-a-enc.key"), 0o600)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


def client_context(client=None, ca="ca.pem"):
    ctx = ssl.create_default_context(cafile=cert(ca))
    if client:
        ctx.load_cert_chain(cert(f"{client}.pem"), cert(f"{client}.key"))
    return ctx


def fingerprint_of(name):
    with open(cert(name)) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def served_fingerprint(host, port):
    with socket.create_connection((host, port), timeout=10) as s:
        with client_context().wrap_socket(s, server_hostname=host) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def https_post(r, body, ctx, headers=None):
    conn = http.client.HTTPSConnection(r.host, r.port, context=ctx, timeout=20)
    try:
        return r.post(body, headers=headers, conn=conn)
    finally:
        conn.close()


def client_identities(archive):
    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT event_id, client_identity FROM events"))


def tls_receiver(tmp, *args, name="r", server="server"):
    return Receiver(tmp, "--tls-cert", cert(f"{server}.pem"), "--tls-key", cert(f"{server}.key"),
                    *args, name=name)


class TrustTest(TempDirTestCase):
    """send, replay, probe and listen --forward-to trust a private CA with --cacert."""

    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix="hookctl-tls-")
        cls.receiver = tls_receiver(cls._dir.name)

    @classmethod
    def tearDownClass(cls):
        cls.receiver.kill()
        cls._dir.cleanup()

    def setUp(self):
        super().setUp()
        self.event = self.write("event.json", json.dumps({"event_id": f"evt_{self.id()[-20:]}"}))

    def send(self, *args, env=None):
        return run(["send", "--secret-env", SECRET_ENV, "--to", self.receiver.url, "--retries",
                    "0"] + list(args), env=dict(ENV, **(env or {})))

    def test_send_trusts_the_ca_with_cacert_and_fails_cleanly_without(self):
        before = len(stored_ids(self.receiver.archive))
        proc = self.send(self.event)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        err = proc.stderr.decode()
        self.assertIn("not trusted by the system trust store", err)
        self.assertIn("--cacert FILE", err)
        self.assertNotIn("--insecure", err)
        self.assertIn("permanent", err)
        self.assertEqual(len(stored_ids(self.receiver.archive)), before)

        proc = self.send(self.event, "--cacert", cert("ca.pem"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(b"delivered: HTTP 202", proc.stdout)

        # SSL_CERT_FILE is honoured as OpenSSL tools honour it; a CA file that is not PEM is an
        # input error before anything is sent.
        proc = self.send(self.event, env={"SSL_CERT_FILE": cert("ca.pem")})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(b"delivered: HTTP 200", proc.stdout)  # the same event again: duplicate
        proc = self.send(self.event, "--cacert", cert("server.csr"))
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(b"no PEM certificate", proc.stderr)

        # A CA that did not sign the server's certificate: named, not the system store.
        proc = self.send(self.event, "--cacert", cert("client-b.pem"))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"not trusted by --cacert {cert('client-b.pem')}".encode(), proc.stderr)

    def test_target_ca_file_in_the_config(self):
        config = self.write("config.toml",
                            f'[targets.private]\nurl = "{self.receiver.url}"\n'
                            f'secret_env = "{SECRET_ENV}"\nca_file = "{cert("ca.pem")}"\n')
        proc = run(["send", "--config", config, "--target", "private", self.event], env=ENV)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        bad = self.write("bad.toml", f'[targets.private]\nurl = "{self.receiver.url}"\n'
                                     f'secret_env = "{SECRET_ENV}"\nca_file = "missing.pem"\n')
        proc = run(["send", "--config", bad, "--target", "private", self.event], env=ENV)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(b"ca_file of target 'private'", proc.stderr)

    def test_replay_trusts_the_ca_with_cacert(self):
        db = os.path.join(self.tmp, "source.db")
        events = sample_events(3)
        for e in events:
            e["event_id"] = e["event_id"].replace("evt_", "evt_replay_tls_")
            e["body"] = json.dumps({"event_id": e["event_id"], "text": "replayed"})
        make_archive(db, events)
        ids = {e["event_id"] for e in events}
        args = ["replay", "--secret-env", "REPLAY_SECRET", "--no-progress", "--from", db, "--to",
                self.receiver.url, "--rate", "max", "--retries", "0"]
        proc = run(args, env=ENV, timeout=120)
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(ids & set(stored_ids(self.receiver.archive)))
        proc = run(args + ["--cacert", cert("ca.pem")], env=ENV, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(ids <= set(stored_ids(self.receiver.archive)))

    def test_probe_trusts_the_ca_with_cacert(self):
        args = ["probe", self.receiver.url, "--secret-env", "PROBE_SECRET", "--json", "--timeout",
                "20s", "--latency-budget", "10s", "--skip", "oversized-body"]
        proc = run(args, env=ENV, timeout=120)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn(b"--cacert FILE", proc.stderr)
        self.assertNotIn(b"--insecure", proc.stderr)
        proc = run(args + ["--cacert", cert("ca.pem")], env=ENV, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        doc = json.loads(proc.stdout)
        checks = {c["name"]: c for c in doc["checks"]}
        # listen serves TLS 1.2 at the least: the TLS 1.0/1.1 offer is refused.
        self.assertEqual(checks["tls-version"]["status"], "pass", checks["tls-version"])
        self.assertNotIn("mtls-required", checks)

    def test_forward_to_trusts_the_ca_with_cacert(self):
        for trust, outcome in [([], "failed"), (["--cacert", cert("ca.pem")], "delivered")]:
            front = Receiver(self.tmp, "--forward-to", self.receiver.url, *trust,
                             name=f"front{len(trust)}")
            try:
                event_id = f"evt_forward_{outcome}"
                self.assertEqual(front.post(event_body(event_id))[0], 202)
                deadline = time.monotonic() + WAIT
                lines = []
                while time.monotonic() < deadline:
                    lines = [x for x in front.log_lines() if x.get("msg") == "forward"]
                    if lines:
                        break
                    time.sleep(0.05)
                self.assertTrue(lines, front.stderr())
                self.assertEqual(lines[0]["outcome"], outcome, lines[0])
                if outcome == "failed":
                    self.assertIn("--cacert FILE", lines[0]["detail"])
            finally:
                front.stop()
        proc = run(["listen", "--secret-env", SECRET_ENV, "--cacert", cert("ca.pem")], env=ENV)
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"pass --forward-to URL", proc.stderr)


class OldTlsServer:
    """An HTTPS server that still speaks TLS 1.0 and 1.1, accepting every POST (202)."""

    def __init__(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.load_cert_chain(cert("server.pem"), cert("server.key"))

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                data = b'{"status":"accepted"}'
                self.send_response(202)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ProbeTlsVersionTest(TempDirTestCase):
    def test_endpoint_offering_tls_1_1_fails_tls_version(self):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            server = OldTlsServer()
        try:
            proc = run(["probe", server.url, "--secret-env", "PROBE_SECRET", "--cacert",
                        cert("ca.pem"), "--only", "valid,tls-version", "--json"], env=ENV,
                       timeout=120)
        finally:
            server.close()
        self.assertEqual(proc.returncode, 1, proc.stderr + proc.stdout)
        checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
        self.assertEqual(checks["valid"]["status"], "pass")
        self.assertEqual(checks["tls-version"]["status"], "fail", checks["tls-version"])
        self.assertRegex(checks["tls-version"]["got"], r"^accepted TLSv1(\.1)?$")


class MutualTlsTest(TempDirTestCase):
    """listen --tls-client-ca: client certificates required, verified and recorded."""

    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix="hookctl-mtls-")
        cls.receiver = tls_receiver(cls._dir.name, "--tls-client-ca", cert("ca.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.receiver.kill()
        cls._dir.cleanup()

    def send(self, event_id, *args, env=None):
        event = self.write(f"{event_id}.json", json.dumps({"event_id": event_id}))
        return run(["send", "--secret-env", SECRET_ENV, "--to", self.receiver.url, "--retries",
                    "0", "--cacert", cert("ca.pem"), event] + list(args),
                   env=dict(ENV, **(env or {})))

    def refused(self, ctx):
        """True when the receiver refuses the TLS connection of `ctx` (in TLS 1.3 the client
        learns it when it reads)."""
        try:
            status, _, _ = https_post(self.receiver, event_body("evt_never"), ctx)
        except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
            return True
        self.fail(f"accepted with status {status}")

    def test_the_cas_client_is_accepted_and_its_subject_recorded(self):
        status, _, data = https_post(self.receiver, event_body("evt_mtls_a"),
                                     client_context("client-a"))
        self.assertEqual(status, 202, data)
        self.assertEqual(client_identities(self.receiver.archive)["evt_mtls_a"],
                         "CN=client-a,O=hookctl test")
        lines = [x for x in self.receiver.log_lines() if x.get("event_id") == "evt_mtls_a"]
        self.assertEqual(lines[-1]["client_identity"], "CN=client-a,O=hookctl test")

    def test_other_clients_are_refused_in_the_handshake_and_counted(self):
        self.assertTrue(self.refused(client_context("client-b")))
        self.assertTrue(self.refused(client_context()))
        self.assertNotIn("evt_never", stored_ids(self.receiver.archive))
        metrics = {}
        conn = http.client.HTTPSConnection(self.receiver.host, self.receiver.port,
                                           context=client_context("client-a"), timeout=20)
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            if line.startswith("hookctl_tls_client_refused_total"):
                name, value = line.rsplit(" ", 1)
                metrics[name] = float(value)
        conn.close()
        self.assertGreaterEqual(
            metrics.get('hookctl_tls_client_refused_total{reason="tls_untrusted_client"}', 0), 1)
        self.assertGreaterEqual(
            metrics.get('hookctl_tls_client_refused_total{reason="tls_no_client_cert"}', 0), 1)
        reasons = {x.get("reason_code") for x in self.receiver.log_lines()}
        self.assertIn("tls_untrusted_client", reasons)
        self.assertIn("tls_no_client_cert", reasons)

    def test_send_presents_a_client_certificate(self):
        proc = self.send("evt_mtls_send", "--cert", cert("client-a.pem"), "--key",
                         cert("client-a.key"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(client_identities(self.receiver.archive)["evt_mtls_send"],
                         "CN=client-a,O=hookctl test")
        proc = self.send("evt_mtls_none")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(b"--cert FILE --key FILE", proc.stderr)
        self.assertNotIn("evt_mtls_none", stored_ids(self.receiver.archive))

    def test_an_encrypted_key_takes_its_passphrase_from_an_env_var(self):
        proc = self.send("evt_mtls_enc", "--cert", cert("client-a.pem"), "--key",
                         cert("client-a-enc.key"), "--key-passphrase-env", "CLIENT_KEY_PASS")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("evt_mtls_enc", stored_ids(self.receiver.archive))
        proc = self.send("evt_mtls_enc2", "--cert", cert("client-a.pem"), "--key",
                         cert("client-a-enc.key"))
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(b"is encrypted", proc.stderr)
        proc = self.send("evt_mtls_enc3", "--cert", cert("client-a.pem"), "--key",
                         cert("client-a-enc.key"), "--key-passphrase-env", "CLIENT_KEY_PASS",
                         env={"CLIENT_KEY_PASS": "wrong"})
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(b"cannot decrypt", proc.stderr)
        proc = self.send("evt_mtls_enc4", "--cert", cert("client-a.pem"), "--key",
                         cert("client-a-enc.key"), "--key-passphrase", PASSPHRASE)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertNotIn(PASSPHRASE.encode(), proc.stderr)
        self.assertIn(b"--key-passphrase-env", proc.stderr)

    def test_a_key_file_others_can_read_is_refused(self):
        with open(cert("client-a.key")) as f:
            key = self.write("open.key", f.read(), mode=0o644)
        proc = self.send("evt_mtls_open", "--cert", cert("client-a.pem"), "--key", key)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(b"permissions 0644 are too open", proc.stderr)
        self.assertNotIn("evt_mtls_open", stored_ids(self.receiver.archive))

    def test_probe_expect_mtls(self):
        args = ["probe", self.receiver.url, "--secret-env", "PROBE_SECRET", "--json",
                "--cacert", cert("ca.pem"), "--only", "valid,mtls-required", "--expect-mtls"]
        proc = run(args + ["--cert", cert("client-a.pem"), "--key", cert("client-a.key")],
                   env=ENV, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
        self.assertEqual(checks["mtls-required"]["got"], "refused in the TLS handshake")
        # Without a certificate even the valid event is refused: said once, exit 4.
        proc = run(args, env=ENV, timeout=120)
        self.assertEqual(proc.returncode, 4, proc.stderr + proc.stdout)
        self.assertIn(b"requires a client certificate", proc.stderr)


class MutualTlsSubjectTest(TempDirTestCase):
    def test_tls_client_subject_limits_the_accepted_subjects(self):
        r = tls_receiver(self.tmp, "--tls-client-ca", cert("ca.pem"), "--tls-client-subject",
                         "DNS:*.other")
        try:
            with self.assertRaises((ssl.SSLError, ConnectionError, http.client.HTTPException,
                                    OSError)):
                https_post(r, event_body("evt_subject_no"), client_context("client-a"))
        finally:
            r.stop()
        self.assertEqual(stored_ids(r.archive), [])
        self.assertIn("tls_client_subject", r.stderr())
        r = tls_receiver(self.tmp, "--tls-client-ca", cert("ca.pem"), "--tls-client-subject",
                         "DNS:*.other", "--tls-client-subject", "DNS:client-a.internal", name="r2")
        try:
            status, _, data = https_post(r, event_body("evt_subject_yes"),
                                         client_context("client-a"))
            self.assertEqual(status, 202, data)
        finally:
            r.stop()


class AllowFromTest(TempDirTestCase):
    def raw_post(self, r, source, headers, body=b""):
        """POSTs from `source` with `headers`; returns (status, seconds to the answer)."""
        with socket.create_connection((r.host, r.port), timeout=20,
                                      source_address=(source, 0)) as s:
            head = f"POST {r.path} HTTP/1.1\r\nHost: {r.host}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            s.sendall(head.encode() + b"\r\n" + body)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return int(data.split(b" ", 2)[1]) if data else 0

    def test_allow_from_refuses_other_sources_before_the_body(self):
        r = Receiver(self.tmp, "--allow-from", "127.0.0.2/32")
        try:
            body = event_body("evt_allow_no")
            headers = dict(sign(body), **{"Content-Length": str(len(body))})
            self.assertEqual(self.raw_post(r, "127.0.0.1", headers, body), 403)
            # The answer comes from the headers alone: a body announced and never sent.
            big = dict(headers, **{"Content-Length": "1000000"})
            self.assertEqual(self.raw_post(r, "127.0.0.1", big), 403)
            body = event_body("evt_allow_yes")
            headers = dict(sign(body), **{"Content-Length": str(len(body))})
            self.assertEqual(self.raw_post(r, "127.0.0.2", headers, body), 202)
            lines = [x for x in r.log_lines() if x.get("reason_code") == "source_not_allowed"]
            self.assertEqual(len(lines), 2)
            self.assertIn("127.0.0.1 is not in --allow-from", lines[0]["reason"])
        finally:
            r.stop()
        self.assertEqual(stored_ids(r.archive), ["evt_allow_yes"])

    def test_trust_proxy_takes_the_forwarded_client(self):
        r = Receiver(self.tmp, "--allow-from", "127.0.0.2/32", "--trust-proxy", "127.0.0.1")
        try:
            body = event_body("evt_proxied")
            headers = dict(sign(body), **{"Content-Length": str(len(body)),
                                          "X-Forwarded-For": "198.51.100.7, 127.0.0.2"})
            self.assertEqual(self.raw_post(r, "127.0.0.1", headers, body), 202)
            body = event_body("evt_proxied_no")
            headers = dict(sign(body), **{"Content-Length": str(len(body)),
                                          "Forwarded": "for=198.51.100.7"})
            self.assertEqual(self.raw_post(r, "127.0.0.1", headers, body), 403)
            # An untrusted peer cannot claim an allowed address.
            headers["Forwarded"] = "for=127.0.0.2"
            self.assertEqual(self.raw_post(r, "127.0.0.3", headers, body), 403)
            accepted = [x for x in r.log_lines() if x.get("event_id") == "evt_proxied"]
            self.assertEqual(accepted[0]["client"], "127.0.0.2")
        finally:
            r.stop()
        self.assertEqual(stored_ids(r.archive), ["evt_proxied"])

    def test_bad_cidrs_are_usage_errors(self):
        for args, words in [(["--allow-from", "10.0.0.1/8"], b"did you mean 10.0.0.0/8"),
                            (["--trust-proxy", "nonsense"], b"--trust-proxy"),
                            (["--tls-client-subject", "CN=x"], b"needs --tls-client-ca"),
                            (["--tls-client-ca", cert("ca.pem")], b"--tls-cert")]:
            proc = run(["listen", "--bind", "127.0.0.1:0", "--secret-env", SECRET_ENV,
                        "--archive", os.path.join(self.tmp, "x.db")] + args, env=ENV)
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))
            self.assertIn(words, proc.stderr, args)


class RotationTest(TempDirTestCase):
    def replace(self, src, dst):
        """Writes `src`'s bytes over `dst` atomically (a temporary file renamed over it)."""
        tmp = dst + ".tmp"
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, dst)

    def test_a_new_certificate_on_disk_is_served_without_a_restart(self):
        live_cert = os.path.join(self.tmp, "live.pem")
        live_key = os.path.join(self.tmp, "live.key")
        self.replace(cert("server.pem"), live_cert)
        self.replace(cert("server.key"), live_key)
        r = Receiver(self.tmp, "--tls-cert", live_cert, "--tls-key", live_key)
        try:
            old, new = fingerprint_of("server.pem"), fingerprint_of("server2.pem")
            self.assertEqual(served_fingerprint(r.host, r.port), old)
            # A keep-alive connection, and a request in flight: headers and half the body sent.
            kept = http.client.HTTPSConnection(r.host, r.port, context=client_context(),
                                               timeout=30)
            self.assertEqual(r.post(event_body("evt_rot_1"), conn=kept)[0], 202)
            body = event_body("evt_rot_inflight")
            inflight = client_context().wrap_socket(
                socket.create_connection((r.host, r.port), timeout=30), server_hostname=r.host)
            head = f"POST {r.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in sign(body).items())
            inflight.sendall(head.encode() + b"\r\n" + body[:10])

            self.replace(cert("server2.key"), live_key)
            self.replace(cert("server2.pem"), live_cert)
            deadline = time.monotonic() + WAIT
            while served_fingerprint(r.host, r.port) != new:
                self.assertLess(time.monotonic(), deadline, r.stderr())
                time.sleep(0.1)

            inflight.sendall(body[10:])
            answer = inflight.recv(4096)
            inflight.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 202"), answer)
            self.assertEqual(r.post(event_body("evt_rot_2"), conn=kept)[0], 202)
            kept.close()

            # A broken certificate keeps the current one, with a warning.
            with open(live_cert, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\ngarbage\n")
            deadline = time.monotonic() + WAIT
            while "not reloaded, keeping the current ones" not in r.stderr():
                self.assertLess(time.monotonic(), deadline, r.stderr())
                time.sleep(0.1)
            self.assertEqual(served_fingerprint(r.host, r.port), new)
            status, _, _ = https_post(r, event_body("evt_rot_3"), client_context())
            self.assertEqual(status, 202)

            # The reload signal reloads them too.
            self.replace(cert("server.key"), live_key)
            self.replace(cert("server.pem"), live_cert)
            r.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + WAIT
            while "SIGHUP: TLS certificates reloaded" not in r.stderr():
                self.assertLess(time.monotonic(), deadline, r.stderr())
                time.sleep(0.1)
            self.assertEqual(served_fingerprint(r.host, r.port), old)
        finally:
            code, _ = r.stop()
        self.assertEqual(code, 0)
        self.assertEqual(set(stored_ids(r.archive)),
                         {"evt_rot_1", "evt_rot_inflight", "evt_rot_2", "evt_rot_3"})


if __name__ == "__main__":
    unittest.main()
