"""Man pages: every command registered in the binary has one (subcommands of a command may be
documented in their parent's page), every option its --help shows appears in it, and every page
in man/ renders with groff -ww and man -l without warnings."""
import glob
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import SOURCE, run  # noqa: E402

MAN = os.path.join(SOURCE, "man")
# -h/--help is on every command and documented once, in hookctl(1).
EVERYWHERE = {"-h", "--help"}


def help_sections(text):
    """{section title: [first column of each entry]} of a CLI11 help text."""
    sections, current = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][\w ]*:$", line):
            current = line[:-1]
            sections[current] = []
        elif current and re.match(r"^  \S", line):
            sections[current].append(re.split(r"\s{2,}", line.strip())[0])
    return sections


def help_options(text):
    names = []
    for title, entries in help_sections(text).items():
        if title in ("Subcommands", "Positionals"):
            continue
        for entry in entries:
            names.extend(p for p in entry.split(" ")[0].split(",") if p.startswith("-"))
    return names


def command_tree(path=()):
    """[(path, help text)] for every command, from --help's Subcommands sections."""
    text = run(list(path) + ["--help"], check=0).stdout.decode()
    tree = [(list(path), text)]
    for name in help_sections(text).get("Subcommands", []):
        tree.extend(command_tree(tuple(path) + (name.split(" ")[0],)))
    return tree


def page_text(path):
    """The page's source with escapes resolved enough to search for option names."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"\\f(\[[A-Z]*\]|[A-Z])", "", text)
    return text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")


def pages_for(path):
    """The pages that may document command `path`, most specific first."""
    if not path:
        return [os.path.join(MAN, "hookctl.1")]
    names = ["hookctl"] + path
    return [os.path.join(MAN, "-".join(names[:n]) + ".1") for n in range(len(names), 1, -1)]


def mentions(text, option):
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


class ManPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tree = command_tree()
        cls.pages = sorted(glob.glob(os.path.join(MAN, "*.1")))

    def test_every_command_has_a_page_listing_every_option_its_help_shows(self):
        for path, help_text in self.tree:
            command = " ".join(["hookctl"] + path)
            with self.subTest(command=command):
                # hookctl(1) for the root, hookctl-<command>(1) for a command; a subcommand
                # (events list) in hookctl-events-list(1) or in its parent's page.
                candidates = pages_for(path)
                pages = [p for p in candidates if os.path.exists(p)]
                self.assertTrue(pages, f"{command} has no man page: write "
                                       f"man/{os.path.basename(candidates[0])}")
                text = "\n".join(page_text(p) for p in pages)
                options = [o for o in help_options(help_text) if path == [] or o not in EVERYWHERE]
                self.assertTrue(options or path, "no option parsed from hookctl --help")
                missing = [o for o in options if not mentions(text, o)]
                self.assertEqual(missing, [], f"{command} --help shows options that "
                                              f"{', '.join(os.path.basename(p) for p in pages)} "
                                              f"does not document")

    def test_every_page_renders_without_warnings(self):
        self.assertIn(os.path.join(MAN, "hookctl.1"), self.pages)
        for page in self.pages:
            with self.subTest(page=os.path.basename(page)):
                proc = subprocess.run(["groff", "-man", "-ww", "-z", page], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, timeout=60)
                self.assertEqual(proc.returncode, 0, proc.stderr.decode())
                self.assertEqual(proc.stderr.decode(), "")
                proc = subprocess.run(["man", "--warnings", "-l", page], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, timeout=60,
                                      env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="",
                                               PAGER="cat", MANPAGER="cat"))
                self.assertEqual(proc.returncode, 0, proc.stderr.decode())
                self.assertEqual(proc.stderr.decode(), "")
                self.assertIn(b"NAME", proc.stdout)

    def test_every_page_has_the_sections_an_operator_looks_for(self):
        for page in self.pages:
            name = os.path.basename(page)[:-2]
            with self.subTest(page=name):
                with open(page, encoding="utf-8") as f:
                    source = f.read()
                title = re.search(r"(?m)^\.TH\s+(\S+)\s+1\b", source)
                self.assertIsNotNone(title, "no .TH line for section 1")
                self.assertEqual(title.group(1).strip('"'), name.upper())
                sections = set(m.strip().strip('"') for m in re.findall(r"(?m)^\.SH\s+(.+)$", source))
                required = {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES",
                            "SEE ALSO"}
                if name == "hookctl":
                    required |= {"ENVIRONMENT", "FILES", "CONFIGURATION"}
                self.assertEqual(required - sections, set())
                # NAME: "hookctl-probe \\- what it does" (whatis and apropos read it).
                self.assertIn("\n" + name + " - ", page_text(page))

    def test_see_also_names_pages_that_exist(self):
        for page in self.pages:
            with self.subTest(page=os.path.basename(page)):
                source = page_text(page)
                see_also = source.split(".SH SEE ALSO", 1)[-1]
                for ref in re.findall(r"(hookctl(?:-[a-z]+)*) ?\(1\)", see_also):
                    self.assertTrue(os.path.exists(os.path.join(MAN, ref + ".1")),
                                    f"SEE ALSO names {ref}(1), which man/ does not have")

    def test_hookctl_1_documents_the_exit_codes_and_config_keys(self):
        text = page_text(os.path.join(MAN, "hookctl.1"))
        exit_status = text.split(".SH EXIT STATUS", 1)[1].split(".SH", 1)[0]
        for code in "01234":
            self.assertRegex(exit_status, rf"(?m)^\.B {code}$")
        config = text.split(".SH CONFIGURATION", 1)[1].split(".SH", 1)[0]
        for key in ("url", "scheme", "secret_env", "secret_file", "keyring", "rate", "concurrency",
                    "production"):
            self.assertRegex(config, rf"(?m)^{key} = ", f"the example sets no {key}")
        for command in (p[0] for p, _ in self.tree if len(p) == 1):
            self.assertTrue(mentions(text, command), f"hookctl(1) does not list {command}")


if __name__ == "__main__":
    unittest.main()
