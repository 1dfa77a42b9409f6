"""hookctl completion: the scripts are generated from the command tree, the checked-in copies in
completions/ are current, every shell accepts them, and they complete what --help lists."""
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from hookctl_test import HOOKCTL, SOURCE, run  # noqa: E402

CHECKED_IN = {"bash": "hookctl.bash", "zsh": "_hookctl", "fish": "hookctl.fish"}

# Completes a line in an interactive zsh run in a pseudo-terminal (zsh/zpty): compinit with the
# folder of _hookctl first in fpath, compadd wrapped to print "<hit>MATCH" for every match, the
# line typed and Tab pressed. Arguments: the folder, the line.
ZSH_CAPTURE = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT='' RPROMPT=''; unsetopt zle_bracketed_paste; fpath=($1 \$fpath)"
zpty -w z "autoload -U compinit; compinit -u -d $1/.zcompdump"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a hits
  builtin compadd -A hits "$@"
  local status_=$?
  (( $#hits )) && print -rl -- "<hit>"${^hits}
  return status_
}'
zpty -w z "bindkey '^I' complete-word; print -r -- '<ready>'"
zpty -r z line '*<ready>*'
zpty -r z line '*<ready>*'
zpty -w -n z "$2"$'\t'
zpty -w -n z $'\C-a'"print -r -- '<done>' #"$'\n'
while zpty -r z line; do
  print -rn -- "$line"
  [[ $line == *'<done>'* ]] && break
done
zpty -d z
"""
REGEN = "cmake --build BUILD --target regen-completions"


@functools.lru_cache(maxsize=None)
def _help_of(path):
    return run(list(path) + ["--help"], check=0).stdout.decode()


def help_of(path):
    """The --help text of command `path` (a list of subcommand names), read once."""
    return _help_of(tuple(path))


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
    """Every option name (-x, --long) the help text lists, in every section."""
    names = []
    for title, entries in help_sections(text).items():
        if title in ("Subcommands", "Positionals"):
            continue
        for entry in entries:
            for part in entry.split(" ")[0].split(","):
                if part.startswith("-"):
                    names.append(part)
    return names


def command_tree(path=()):
    """Every command path, from --help's Subcommands sections, the root first."""
    paths = [list(path)]
    for name in help_sections(help_of(path)).get("Subcommands", []):
        paths.extend(command_tree(tuple(path) + (name.split(" ")[0],)))
    return paths


class CompletionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scripts = {shell: run(["completion", shell], check=0).stdout for shell in CHECKED_IN}
        cls.tmp = tempfile.TemporaryDirectory(prefix="hookctl-completion-")
        cls.paths = {}
        for shell, data in cls.scripts.items():
            cls.paths[shell] = os.path.join(cls.tmp.name, CHECKED_IN[shell])
            with open(cls.paths[shell], "wb") as f:
                f.write(data)
        cls.tree = command_tree()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def bash_complete(self, *words, cwd=None):
        """COMPREPLY of the generated bash function for the command line `words` (the last one
        is the word being completed), through bash's own compgen."""
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                  'COMPREPLY=(); _hookctl; printf "%s\\n" "${COMPREPLY[@]}"')
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "complete",
                               self.paths["bash"], "hookctl"] + list(words),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, cwd=cwd)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        return [w for w in proc.stdout.decode().split("\n") if w]

    def test_checked_in_files_are_current(self):
        for shell, name in CHECKED_IN.items():
            with self.subTest(shell=shell):
                with open(os.path.join(SOURCE, "completions", name), "rb") as f:
                    checked_in = f.read()
                self.assertTrue(
                    checked_in == self.scripts[shell],
                    f"completions/{name} is stale (it differs from `hookctl completion {shell}`): "
                    f"run `{REGEN}` and commit the result")

    def test_shells_accept_the_scripts(self):
        for shell, flag in (("bash", "-n"), ("zsh", "-n"), ("fish", "--no-execute")):
            with self.subTest(shell=shell):
                self.assertIsNotNone(shutil.which(shell), f"{shell} is not installed: run scripts/bootstrap")
                for path in (self.paths[shell], os.path.join(SOURCE, "completions", CHECKED_IN[shell])):
                    proc = subprocess.run([shell, flag, path], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, timeout=30)
                    self.assertEqual(proc.returncode, 0, f"{shell} {flag} {path}: {proc.stderr!r}")

    def test_bash_completes_re_to_replay(self):
        root_commands = [p[0] for p in self.tree if len(p) == 1]
        if "replay" not in root_commands:
            self.skipTest("replay is not registered in cmd/app.cpp yet")
        self.assertIn("replay", self.bash_complete("re"))

    def test_bash_completes_every_command_from_its_prefix(self):
        for path in self.tree[1:]:
            with self.subTest(path=" ".join(path)):
                offered = self.bash_complete(*path[:-1], path[-1][:2])
                self.assertIn(path[-1], offered)
                for other in offered:
                    self.assertTrue(other.startswith(path[-1][:2]), offered)
        self.assertEqual(sorted(self.bash_complete("")),
                         sorted(p[0] for p in self.tree if len(p) == 1))

    def test_bash_offers_every_option_help_shows(self):
        for path in self.tree:
            with self.subTest(path=" ".join(["hookctl"] + path)):
                offered = set(self.bash_complete(*path, "-"))
                shown = set(help_options(help_of(path)))
                self.assertTrue(shown, "no option parsed from --help")
                self.assertEqual(shown - offered, set())
        # The refused --secret is hidden and is never offered.
        self.assertNotIn("--secret", self.bash_complete("verify", "--sec"))
        # Global flags work after the command name too.
        self.assertIn("--json", self.bash_complete("verify", "--js"))

    def test_bash_completes_option_values(self):
        self.assertEqual(self.bash_complete("verify", "--scheme", "s"),
                         ["standard", "svix", "stripe", "slack", "shopify"])
        # '--scheme=st': bash splits the word at '='.
        self.assertEqual(self.bash_complete("verify", "--scheme", "=", "st"), ["standard", "stripe"])
        self.assertEqual(self.bash_complete("sign", "--format", ""), ["headers", "json", "curl"])
        self.assertEqual(self.bash_complete("completion", ""), ["bash", "zsh", "fish"])
        self.assertEqual(self.bash_complete("--log-format", "j"), ["json"])
        # An option's value is skipped when finding the command: --config FILE verify ...
        self.assertEqual(self.bash_complete("--config", "ve", "ve"), ["verify"])
        self.assertEqual(self.bash_complete("--config", "x.toml", "verify", "--scheme", "a"), ["auto"])

    def test_bash_completes_file_arguments(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("body.json", "headers.txt"):
                open(os.path.join(tmp, name), "w").close()
            self.assertEqual(self.bash_complete("verify", "--headers-file", "hea", cwd=tmp),
                             ["headers.txt"])
            self.assertEqual(self.bash_complete("verify", "bo", cwd=tmp), ["body.json"])
            # A value without a known set of values offers nothing, not files.
            self.assertEqual(self.bash_complete("verify", "--tolerance", "", cwd=tmp), [])

    # --- values: paths, fixed words, config targets (every shell) -------------------------

    PATH_FLAGS = [("replay", "--from"), ("replay", "--archive"), ("listen", "--archive"),
                  ("events list", "--archive"), ("events export", "-o"),
                  ("verify", "--headers-file"), ("sign", "--secret-file"),
                  ("verify", "--keyring"), ("probe", "--junit"), ("listen", "--ready-file"),
                  ("", "--config"), ("secret new", "--out")]
    WORD_FLAGS = [("events list", "--status", ["received", "delivered", "failed", "dead"]),
                  ("replay", "--status", ["received", "delivered", "failed", "dead"]),
                  ("", "--log-format", ["text", "json"]),
                  ("listen", "--log-format", ["text", "json"]),
                  ("send", "--scheme", ["mailparse", "standard", "svix", "stripe", "github",
                                        "slack", "shopify"]),
                  ("secret new", "--family", ["hmac", "ed25519", "archive"])]
    CONFIG = ('[targets.staging]\nurl = "https://staging.example.com/hooks"\nsecret_env = "S"\n'
              '[targets.production]\nurl = "https://api.example.com/hooks"\nsecret_env = "S"\n'
              'production = true\n')

    def sandbox(self):
        """A folder with one file and one folder, and an XDG config naming two targets."""
        top = tempfile.mkdtemp(prefix="hookctl-completion-", dir=self.tmp.name)
        tmp = os.path.join(top, "work")
        os.makedirs(os.path.join(tmp, "secrets"))
        open(os.path.join(tmp, "events.db"), "w").close()
        os.makedirs(os.path.join(top, "xdg", "hookctl"))
        with open(os.path.join(top, "xdg", "hookctl", "config.toml"), "w") as f:
            f.write(self.CONFIG)
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(top, "xdg"),
                   PATH=os.path.dirname(os.path.abspath(HOOKCTL)) + os.pathsep +
                   os.environ.get("PATH", ""))
        return tmp, env

    def bash_in(self, tmp, env, *words):
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                  'COMPREPLY=(); _hookctl; printf "%s\\n" "${COMPREPLY[@]}"')
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "complete",
                               self.paths["bash"], "hookctl"] + list(words),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, cwd=tmp,
                              env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual(proc.stderr, b"")
        return [w for w in proc.stdout.decode().split("\n") if w]

    def test_bash_completes_paths_words_and_targets(self):
        tmp, env = self.sandbox()
        for command, flag in self.PATH_FLAGS:
            with self.subTest(command=command, flag=flag):
                words = command.split() + [flag, ""]
                self.assertEqual(sorted(self.bash_in(tmp, env, *words)), ["events.db", "secrets"])
        # Every flag whose value is a FILE, PATH, DIR or SOURCE in --help completes paths.
        for path in self.tree:
            for title, entries in help_sections(help_of(path)).items():
                for entry in entries:
                    parts = entry.split(" ")
                    names = [n for n in parts[0].split(",") if n.startswith("-")]
                    if names and len(parts) > 1 and \
                            parts[1].split("=")[0] in ("FILE", "PATH", "SOURCE"):
                        flag = names[-1]
                        with self.subTest(path=path, flag=flag):
                            self.assertIn("events.db", self.bash_in(tmp, env, *path, flag, "ev"))
        for command, flag, words in self.WORD_FLAGS:
            with self.subTest(command=command, flag=flag):
                self.assertEqual(self.bash_in(tmp, env, *command.split(), flag, ""), words)
        # Statuses join with commas: the word after the last comma is completed.
        self.assertEqual(self.bash_in(tmp, env, "events", "list", "--status", "failed,d"),
                         ["failed,delivered", "failed,dead"])
        self.assertEqual(self.bash_in(tmp, env, "probe", "--only", "tampered-body,wro"),
                         ["tampered-body,wrong-secret"])
        # Targets come from the config file: the default one, or --config as typed.
        for command in ("send", "replay", "probe"):
            with self.subTest(command=command):
                self.assertEqual(sorted(self.bash_in(tmp, env, command, "--target", "")),
                                 ["production", "staging"])
        self.assertEqual(self.bash_in(tmp, env, "send", "--target", "st"), ["staging"])
        other = os.path.join(tmp, "other.toml")
        with open(other, "w") as f:
            f.write('[targets.local]\nurl = "http://127.0.0.1:8080/webhooks/email"\n')
        self.assertEqual(self.bash_in(tmp, env, "--config", other, "send", "--target", ""),
                         ["local"])
        # No config file, or a broken one: nothing offered, nothing printed.
        self.assertEqual(self.bash_in(tmp, dict(env, XDG_CONFIG_HOME=os.path.join(tmp, "none")),
                                      "send", "--target", ""), [])
        self.assertEqual(self.bash_in(tmp, env, "--config", os.path.join(tmp, "events.db"),
                                      "send", "--target", ""), [])

    def test_fish_completes_paths_words_and_targets(self):
        tmp, env = self.sandbox()

        def fish(line):
            proc = subprocess.run(["fish", "--no-config", "-c",
                                   f"source {self.paths['fish']}; complete -C'{line}'"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                                  cwd=tmp, env=env)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            return sorted(line.split("\t")[0] for line in proc.stdout.decode().splitlines())

        self.assertEqual(fish("hookctl send --target "), ["production", "staging"])
        self.assertEqual(fish("hookctl replay --from "), ["events.db", "secrets/"])
        self.assertEqual(fish("hookctl events list --status failed,d"),
                         ["failed,dead", "failed,delivered"])
        self.assertEqual(fish("hookctl listen --log-format "), ["json", "text"])

    def test_zsh_completes_paths_words_and_targets(self):
        tmp, env = self.sandbox()
        zdir = os.path.join(os.path.dirname(tmp), "zfunc")
        os.mkdir(zdir)
        shutil.copy(self.paths["zsh"], zdir)
        # A real interactive zsh in a pseudo-terminal: type the line, press Tab, and record
        # every match compadd is given.
        harness = os.path.join(zdir, "capture.zsh")
        with open(harness, "w") as f:
            f.write(ZSH_CAPTURE)

        def zsh(line):
            proc = subprocess.run(["zsh", "-f", harness, zdir, line], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=30, cwd=tmp, env=env)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            return sorted(set(re.findall(r"<hit>([^\r\n]*)", proc.stdout.decode("utf-8", "replace"))))

        self.assertEqual(zsh("hookctl send --target "), ["production", "staging"])
        self.assertEqual(zsh("hookctl replay --from "), ["events.db", "secrets"])
        self.assertEqual(zsh("hookctl events list --status "),
                         ["dead", "delivered", "failed", "received"])
        self.assertEqual(zsh("hookctl listen --log-format "), ["json", "text"])

    def test_fish_completes_commands_and_values(self):
        def fish_complete(line):
            proc = subprocess.run(["fish", "--no-config", "-c",
                                   f"source {self.paths['fish']}; complete -C'{line}'"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            return [line.split("\t")[0] for line in proc.stdout.decode().splitlines()]

        self.assertIn("verify", fish_complete("hookctl ve"))
        self.assertEqual(sorted(fish_complete("hookctl --json verify --scheme st")),
                         ["standard", "stripe"])
        self.assertEqual(sorted(fish_complete("hookctl completion ")), ["bash", "fish", "zsh"])
        self.assertIn("--headers-file", fish_complete("hookctl verify --hea"))
        self.assertNotIn("--headers-file", fish_complete("hookctl sign --hea"))

    def test_zsh_registers_the_function(self):
        script = (f"autoload -U compinit && compinit -u -d {self.tmp.name}/zcompdump && "
                  f"source {self.paths['zsh']} && print -r -- $_comps[hookctl] && "
                  "whence -w _hookctl_verify")
        proc = subprocess.run(["zsh", "-f", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.decode().split("\n")[:2], ["_hookctl", "_hookctl_verify: function"])

    def test_unknown_shell_is_a_usage_error(self):
        proc = run(["completion", "tcsh"])
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stdout, b"")
        self.assertIn(b"tcsh", proc.stderr)


if __name__ == "__main__":
    unittest.main()
