"""hookctl parse: FILE, -, DIR, Maildir, mbox, --pretty, error lines, the attachment store,
and hand-made messages for what the shared corpus lacks."""
import base64
import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import TempDirTestCase, run  # noqa: E402

AT = ["--received-at", "2026-01-01T00:00:00Z"]

SIMPLE = (b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\n"
          b"To: a@example.com, Group: b@example.com, \"C\" <c@example.com>;\n"
          b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\n"
          b"Date: Tue, 3 Mar 2026 10:00:00 +0100\n"
          b"Message-ID: <id1@example.com>\n"
          b"\n"
          b"Hello.\n")


def mixed(boundary, parts, close=True):
    out = (b"From: a@example.com\nSubject: mixed\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\n\n")
    for p in parts:
        out += b"--" + boundary + b"\n" + p + b"\n"
    if close:
        out += b"--" + boundary + b"--\n"
    return out


class ParseCli(TempDirTestCase):
    def parse(self, path, *extra, check=0):
        proc = run(["parse", path] + AT + list(extra), check=check)
        return proc

    def event(self, raw, *extra):
        path = self.write("m.eml", raw)
        return json.loads(self.parse(path, *extra).stdout)

    def test_file_fields(self):
        doc = self.event(SIMPLE, "--org", "org_7")
        self.assertEqual(doc["schema_version"], "1")
        self.assertEqual(doc["type"], "email.received")
        self.assertEqual(doc["event_id"], "evt_" + hashlib.sha256(SIMPLE).hexdigest()[:24])
        self.assertEqual(doc["org_id"], "org_7")
        self.assertEqual(doc["received_at"], "2026-01-01T00:00:00Z")
        self.assertEqual(doc["from"], {"name": "Jürgen", "address": "j@example.com"})
        self.assertEqual([a["address"] for a in doc["to"]],
                         ["a@example.com", "b@example.com", "c@example.com"])
        self.assertEqual(doc["to"][1].get("group"), "Group")
        self.assertEqual(doc["subject"], "Grüße")
        self.assertEqual(doc["date"], "2026-03-03T10:00:00+01:00")
        self.assertEqual(doc["message_id"], "id1@example.com")
        self.assertEqual(doc["text"], "Hello.\n")
        self.assertEqual(doc["raw_mime"]["size"], len(SIMPLE))
        self.assertEqual(doc["raw_mime"]["sha256"], hashlib.sha256(SIMPLE).hexdigest())
        self.assertEqual(doc["headers"][2], ["Subject", "Grüße"])

    def test_stdin_and_pretty(self):
        proc = run(["parse", "-", "--pretty"] + AT, input=SIMPLE, check=0)
        self.assertIn(b'\n  "', proc.stdout)
        self.assertEqual(json.loads(proc.stdout)["subject"], "Grüße")

    def test_directory_maildir_mbox(self):
        os.makedirs(os.path.join(self.tmp, "dir"))
        for i in range(3):
            self.write(f"dir/{i}.eml", SIMPLE.replace(b"Hello", b"Hello %d" % i))
        lines = self.parse(os.path.join(self.tmp, "dir")).stdout.splitlines()
        self.assertEqual([json.loads(x)["text"] for x in lines],
                         ["Hello 0.\n", "Hello 1.\n", "Hello 2.\n"])
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.tmp, "md", sub))
        self.write("md/new/1", SIMPLE)
        self.write("md/cur/2:2,S", SIMPLE.replace(b"Hello", b"Seen"))
        self.write("md/tmp/3", SIMPLE.replace(b"Hello", b"Partial"))
        lines = self.parse(os.path.join(self.tmp, "md")).stdout.splitlines()
        self.assertEqual([json.loads(x)["text"] for x in lines], ["Hello.\n", "Seen.\n"])
        mbox = b"".join(b"From sender@example.com Thu Jan  1 00:00:00 2026\n" +
                        SIMPLE.replace(b"Hello", b"Msg %d" % i) + b"\n" for i in range(4))
        path = self.write("box.mbox", mbox)
        docs = [json.loads(x) for x in self.parse(path).stdout.splitlines()]
        self.assertEqual(len(docs), 4)
        self.assertEqual(docs[3]["text"].strip(), "Msg 3.")
        self.assertEqual(docs[3]["source"], path + "#4")

    def test_error_line_and_exit_1(self):
        os.makedirs(os.path.join(self.tmp, "d"))
        self.write("d/a.eml", SIMPLE)
        self.write("d/b.eml", b"")
        proc = self.parse(os.path.join(self.tmp, "d"), check=1)
        docs = [json.loads(x) for x in proc.stdout.splitlines()]
        self.assertEqual(len(docs), 2)
        self.assertIn("event_id", docs[0])
        self.assertIn("error", docs[1])
        self.assertTrue(docs[1]["source"].endswith("b.eml"))

    def test_jobs_print_in_input_order_with_the_same_results(self):
        # Big messages first, so later small ones finish earlier on other threads.
        os.makedirs(os.path.join(self.tmp, "many"))
        for i in range(40):
            pad = b"x" * (400_000 if i % 7 == 0 else 10)
            raw = mixed(b"b%d" % i, [
                b"Content-Type: text/plain\n\nMessage %d." % i,
                b"Content-Type: application/octet-stream; name=p.bin\n"
                b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(pad)])
            self.write("many/%03d.eml" % i, raw)
        self.write("many/999.eml", b"")  # an error line keeps its place too
        folder = os.path.join(self.tmp, "many")

        def docs(*extra, check=1):
            out = self.parse(folder, *extra, check=check).stdout.splitlines()
            parsed = [json.loads(x) for x in out]
            for d in parsed:
                d.pop("trace_id", None)  # a fresh trace per parse
            return parsed

        one = docs("--jobs", "1")
        four = docs("--jobs", "4")
        self.assertEqual(len(one), 41)
        self.assertEqual([d.get("text") for d in one[:40]], ["Message %d." % i for i in range(40)])
        self.assertIn("error", one[40])
        self.assertEqual(four, one)
        # With a store, every attachment is written once whatever thread parsed it.
        store = os.path.join(self.tmp, "store")
        stored = docs("--jobs", "3", "--attachments-dir", store)
        for d in stored[:40]:
            key = d["attachments"][0]["storage_key"]
            with open(os.path.join(store, key), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), d["attachments"][0]["sha256"])
        names = [n for _, _, fs in os.walk(store) for n in fs]
        self.assertFalse(any(n.startswith(".tmp") for n in names))
        # A broken store stops the run (exit 4) with threads as without.
        blocker = self.write("blocker", b"x")
        proc = self.parse(folder, "--jobs", "2", "--attachments-dir", blocker, check=4)
        self.assertIn(b"blocker", proc.stderr)
        self.assertIn(b"--jobs", self.parse(folder, "--jobs", "0", check=2).stderr)

    def test_empty_input_is_an_input_error(self):
        # Nothing to parse is exit 2 (input error), like a missing file, not 1 (check failed).
        for args, input in ((["-"], b""), ([self.write("empty.eml", b"")], None)):
            with self.subTest(args=args):
                proc = run(["parse"] + args, input=input)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertEqual(proc.stdout, b"")
                self.assertIn(b"the input is empty: no message to parse", proc.stderr)
        # In a folder an empty file is one failed message among others: an error line, exit 1.
        os.makedirs(os.path.join(self.tmp, "d"))
        self.write("d/a.eml", SIMPLE)
        self.write("d/b.eml", b"")
        self.parse(os.path.join(self.tmp, "d"), check=1)

    def test_missing_file_is_usage_error(self):
        proc = self.parse(os.path.join(self.tmp, "nope.eml"), check=2)
        self.assertIn(b"nope.eml", proc.stderr)
        proc = run(["parse", "-", "--received-at", "yesterday"], input=SIMPLE, check=2)
        self.assertIn(b"RFC 3339", proc.stderr)

    def test_attachment_store(self):
        payload = bytes(range(256)) * 40
        raw = mixed(b"b1", [
            b"Content-Type: text/plain\n\nbody",
            b"Content-Type: application/octet-stream; name=x.bin\n"
            b"Content-Disposition: attachment; filename=x.bin\n"
            b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(payload)])
        store = os.path.join(self.tmp, "store")
        path = self.write("a.eml", raw)
        doc = json.loads(self.parse(path, "--attachments-dir", store).stdout)
        att = doc["attachments"][0]
        digest = hashlib.sha256(payload).hexdigest()
        self.assertEqual(att["sha256"], digest)
        self.assertEqual(att["size"], len(payload))
        self.assertEqual(att["storage_key"], f"sha256/{digest[:2]}/{digest[2:]}")
        with open(os.path.join(store, att["storage_key"]), "rb") as f:
            self.assertEqual(f.read(), payload)
        with open(os.path.join(store, doc["raw_mime"]["storage_key"]), "rb") as f:
            self.assertEqual(f.read(), raw)
        self.assertNotIn("content_base64", att)
        # Once: a second run leaves the same files and no temporaries.
        self.parse(path, "--attachments-dir", store)
        names = [n for _, _, fs in os.walk(store) for n in fs]
        self.assertEqual(len(names), 2, names)
        self.assertFalse(any(n.startswith(".tmp") for n in names))
        # Without the store nothing is written and storage_key is null.
        doc = json.loads(self.parse(path).stdout)
        self.assertIsNone(doc["attachments"][0]["storage_key"])
        doc = json.loads(self.parse(path, "--inline-attachments", "1MiB").stdout)
        self.assertEqual(base64.b64decode(doc["attachments"][0]["content_base64"]), payload)
        # An unwritable store is an environment error.
        blocker = self.write("blocker", b"x")
        self.parse(path, "--attachments-dir", blocker, check=4)


class HandMade(TempDirTestCase):
    def event(self, raw):
        path = self.write("m.eml", raw)
        return json.loads(run(["parse", path] + AT, check=0).stdout)

    def test_rfc2231_continuations_with_charset(self):
        raw = mixed(b"b", [
            b"Content-Type: text/plain\n\nsee attached",
            b"Content-Type: application/pdf\n"
            b"Content-Disposition: attachment;\n"
            b" filename*0*=utf-8''%E6%97%A5%E6%9C%AC;\n"
            b" filename*1*=%E8%AA%9E-report;\n"
            b" filename*2=\".pdf\"\n\nPDF"])
        doc = self.event(raw)
        self.assertEqual(doc["attachments"][0]["filename"], "日本語-report.pdf")
        self.assertEqual(doc["text"], "see attached")

    def test_rfc2047_filename(self):
        raw = mixed(b"b", [b"Content-Type: image/png; name=\"=?utf-8?b?w6TDtsO8LnBuZw==?=\"\n"
                           b"Content-ID: <img1@x>\nContent-Disposition: inline\n\nPNG"])
        att = self.event(raw)["attachments"][0]
        self.assertEqual(att["filename"], "äöü.png")
        self.assertEqual(att["content_id"], "img1@x")
        self.assertEqual(att["disposition"], "inline")

    def test_iso_2022_jp_body(self):
        body = "こんにちは世界".encode("iso2022_jp")
        raw = (b"From: a@example.com\nSubject: jp\nContent-Type: text/plain; charset=ISO-2022-JP\n"
               b"Content-Transfer-Encoding: 7bit\n\n" + body + b"\n")
        self.assertEqual(self.event(raw)["text"], "こんにちは世界\n")

    def test_windows_1252_body_and_latin1_label(self):
        body = "“quoted” – café €".encode("cp1252")
        for label in (b"windows-1252", b"iso-8859-1"):
            raw = (b"From: a@example.com\nContent-Type: text/plain; charset=" + label +
                   b"\nContent-Transfer-Encoding: 8bit\n\n" + body)
            self.assertEqual(self.event(raw)["text"], "“quoted” – café €")

    def test_invalid_utf8_replaced_with_warning(self):
        raw = (b"From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\nok \xff\xfe end")
        doc = self.event(raw)
        self.assertEqual(doc["text"], "ok \ufffd\ufffd end")
        self.assertIn("invalid_bytes", [w["code"] for w in doc["warnings"]])

    def test_missing_end_boundary(self):
        raw = mixed(b"zz", [b"Content-Type: text/plain\n\nfirst",
                            b"Content-Type: text/html\n\n<p>second</p>"], close=False)
        doc = self.event(raw)
        self.assertEqual(doc["text"], "first")
        # The second part of a multipart/mixed is not the body (MimeKit's rule): an attachment.
        self.assertEqual([a["content_type"] for a in doc["attachments"]], ["text/html"])
        self.assertIn(doc["attachments"][0]["size"], (13, 14))  # with or without the last LF
        self.assertTrue(doc["warnings"], "a missing end boundary is reported")

    def test_five_level_nesting(self):
        inner = b"Content-Type: text/plain\n\ndeep text"
        for level in range(5):
            b = b"L%d" % level
            inner = (b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\n\n--" + b + b"\n" +
                     inner + b"\n--" + b + b"\nContent-Type: application/x-level; name=l" +
                     str(level).encode() + b"\n\nx\n--" + b + b"--")
        doc = self.event(b"From: a@example.com\nMIME-Version: 1.0\n" + inner + b"\n")
        self.assertEqual(doc["text"], "deep text")
        self.assertEqual(sorted(a["filename"] for a in doc["attachments"]),
                         ["l0", "l1", "l2", "l3", "l4"])

    def test_message_rfc822_is_an_attachment(self):
        raw = mixed(b"b", [b"Content-Type: text/plain\n\nouter",
                           b"Content-Type: message/rfc822\n\n"
                           b"From: inner@example.com\nSubject: inner\n\ninner body"])
        doc = self.event(raw)
        self.assertEqual(doc["text"], "outer")
        self.assertEqual(doc["subject"], "mixed")
        self.assertEqual(doc["attachments"][0]["content_type"], "message/rfc822")
        self.assertGreater(doc["attachments"][0]["size"], 20)

    def test_alternative_and_related(self):
        raw = (b"From: a@example.com\nContent-Type: multipart/alternative; boundary=a\n\n"
               b"--a\nContent-Type: text/plain; charset=utf-8\n\nplain\n"
               b"--a\nContent-Type: multipart/related; boundary=r\n\n"
               b"--r\nContent-Type: text/html\n\n<img src=cid:i1>\n"
               b"--r\nContent-Type: image/gif\nContent-ID: <i1>\n"
               b"Content-Transfer-Encoding: base64\n\nR0lGODlh\n--r--\n--a--\n")
        doc = self.event(raw)
        self.assertEqual(doc["text"], "plain")
        self.assertEqual(doc["html"], "<img src=cid:i1>")
        self.assertEqual(doc["attachments"][0]["content_id"], "i1")
        self.assertEqual(doc["attachments"][0]["size"], 6)

    def test_8bit_header(self):
        raw = "From: Jörg <j@example.com>\nSubject: Grüße aus Köln\n\nx".encode()
        doc = self.event(raw)
        self.assertEqual(doc["subject"], "Grüße aus Köln")
        self.assertEqual(doc["from"]["name"], "Jörg")
        raw = "Subject: Grüße\n\nx".encode("cp1252")
        self.assertEqual(self.event(raw)["subject"], "Grüße")

    def test_only_headers_and_header_without_colon(self):
        doc = self.event(b"From: a@example.com\nSubject: only headers\n")
        self.assertEqual(doc["subject"], "only headers")
        self.assertIsNone(doc["html"])
        doc = self.event(b"From: a@example.com\nthis line has no colon\nSubject: s\n\nbody\n")
        self.assertTrue(doc["warnings"])

    def test_format_flowed(self):
        raw = (b"From: a@example.com\nContent-Type: text/plain; format=flowed\n\n"
               b"This is one \nlong line.\n> quoted \n> too\nend\n")
        self.assertEqual(self.event(raw)["text"], "This is one long line.\n> quoted too\nend\n")

    def test_crlf_and_lf_same_json(self):
        raw = mixed(b"b", [b"Content-Type: text/plain\n\nline one\nline two",
                           b"Content-Type: text/csv; name=a.csv\n\na,b\n1,2"])
        lf = self.event(raw)
        crlf = self.event(raw.replace(b"\n", b"\r\n"))
        for doc in (lf, crlf):
            for key in ("event_id", "trace_id", "raw_mime"):
                doc.pop(key)
        self.assertEqual(lf["text"], crlf["text"])
        self.assertEqual(lf["subject"], crlf["subject"])
        self.assertEqual(lf["headers"], crlf["headers"])
        self.assertEqual([a["filename"] for a in lf["attachments"]],
                         [a["filename"] for a in crlf["attachments"]])


if __name__ == "__main__":
    unittest.main()
