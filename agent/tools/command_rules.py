"""Which terminal commands ask the user first: destructive ones, found by parsing the command line.

This is a courtesy, not the boundary: the sandbox (`agent.sandbox`) is what keeps a command out
of HERMES_HOME and everything outside the workspace. The approval asks before a command destroys
work INSIDE the workspace (or would, were it unsandboxed), so matching has to see through the
obvious rewordings rather than raw text:

- the line is tokenized like a shell does (`shlex`: quotes removed, so `r''m` is `rm`, `\\rm` is
  `rm`), split into simple commands at `;`, `&&`, `||`, `|`, `&`, parentheses and newlines;
  backticks, `$(...)` and `<(...)` bodies are commands too;
- the program is argv0's basename (`/bin/rm` is `rm`), after simple variable assignments made
  earlier in the line (`X=rm; $X -rf`) and wrappers (`sudo`, `env`, `xargs`, `nohup`, `timeout`,
  `nice`, `command`, `exec`, `busybox`, ...) are seen through; a program named by an unknown
  variable or a substitution asks too;
- flags are read in any order and spelling (`-rf`, `-r -f`, `-fR`, `--recursive --force`);
- shells given code (`bash -c '...'`, `eval ...`) have that code checked the same way;
- text piped into a shell or interpreter, and a shell reading `<(...)`, asks (downloaded or
  decoded code running); so does interpreter code (`python3 -c`, `perl -e`, `node -e`) that deletes.

`dangerous_reason(command, extra_patterns)` returns the rule's name (what an admin's "always
allow" covers), or None.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator

MAX_DEPTH = 4
SEPARATORS = {";", "&", "&&", "|", "||", "|&", "(", ")", ";;", "\n", "{", "}", "!"}
REDIRECTS = re.compile(r"^\d*(>>?|<|<<<?|>&|<&|&>>?|>\|)$")
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox"}
INTERPRETERS = {"python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "deno", "bun",
                "pwsh", "osascript", "tclsh", "Rscript"}
WRAPPERS = {"nohup", "time", "command", "builtin", "exec", "setsid", "stdbuf", "unbuffer", "chronic", "then",
            "do", "else", "nice", "ionice", "timeout", "env", "xargs", "watch", "strace", "ltrace", "chroot", "flock",
            "parallel", "doas", "sudo", "pkexec", "su", "runuser", "busybox"}
PRIVILEGE = {"sudo", "doas", "pkexec", "su", "runuser"}
DELETING_CODE = re.compile(
    r"rmtree|os\.(remove|unlink|rmdir|removedirs)|\.unlink\(|\.rmdir\(|unlink\s*\(?|rmSync|rmdirSync|unlinkSync|"
    r"\brm_rf\b|\brm_r\b|FileUtils\.rm|remove_dir_all|File\.delete|Remove-Item|\brm\s+-|"
    r"(system|popen|exec[a-z]*|run|call|check_output|spawn)\s*\(.*\brm\b", re.IGNORECASE)
RAW_PATTERNS: tuple[tuple[str, str], ...] = (
    (r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:", "fork bomb"),
    (r"\b(DROP|TRUNCATE)\s+(TABLE|DATABASE|SCHEMA)\b", "SQL DROP/TRUNCATE"),
)

Rule = Callable[[str, list[str]], str | None]


def _flags(args: list[str]) -> tuple[set[str], set[str]]:
    """Short flag letters and long flags among `args` (before `--`)."""
    short: set[str] = set()
    long: set[str] = set()
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--"):
            long.add(arg.split("=", 1)[0])
        elif arg.startswith("-") and len(arg) > 1:
            short.update(arg[1:])
    return short, long


def _rm(name: str, args: list[str]) -> str | None:
    if name != "rm":
        return None
    short, long = _flags(args)
    if short & {"r", "R", "f"} or long & {"--recursive", "--force", "--no-preserve-root"}:
        return "rm -r/-f (recursive or forced delete)"
    return None


def _find(name: str, args: list[str]) -> str | None:
    if name != "find":
        return None
    if "-delete" in args:
        return "find -delete"
    for i, arg in enumerate(args):
        if arg in ("-exec", "-execdir", "-ok", "-okdir") and i + 1 < len(args):
            inner = _basename(args[i + 1])
            if inner in ("rm", "shred", "unlink", "rmdir") or inner in SHELLS:
                return "find -exec rm (delete)"
    return None


def _disk(name: str, args: list[str]) -> str | None:
    if name.startswith("mkfs") or name in ("mkswap", "wipefs", "fdisk", "sfdisk", "parted", "shred", "blkdiscard"):
        return f"{name} (wipes or formats data)"
    if name == "dd" and any(a.startswith("of=") for a in args):
        return "dd of= (raw write)"
    return None


def _power(name: str, args: list[str]) -> str | None:
    if name in ("shutdown", "reboot", "halt", "poweroff"):
        return "shutdown/reboot"
    if name in ("systemctl", "init", "telinit") and any(a in ("poweroff", "reboot", "halt", "0", "6") for a in args):
        return "shutdown/reboot"
    return None


def _permissions(name: str, args: list[str]) -> str | None:
    short, long = _flags(args)
    if name == "chmod" and (any(re.fullmatch(r"[0-7]*777", a) or re.search(r"[ao]?\+?[rwx]*w", a) and "o" in a
                                for a in args if not a.startswith("-"))):
        return "chmod 777 (world-writable)"
    if name in ("chmod", "chown", "chgrp") and ("R" in short or "--recursive" in long):
        return f"{name} -R (recursive permission change)"
    return None


def _git(name: str, args: list[str]) -> str | None:
    if name != "git":
        return None
    words = [a for a in args if not a.startswith("-")]
    sub = words[0] if words else ""
    short, long = _flags(args)
    if sub == "push" and ("f" in short or long & {"--force", "--force-with-lease", "--mirror", "--delete"}
                          or any(w.startswith(("+", ":")) for w in words[1:])):
        return "git push --force (rewrites remote history)"
    if sub == "reset" and "--hard" in long:
        return "git reset --hard (discards changes)"
    if sub == "clean" and ("f" in short or "--force" in long):
        return "git clean -f (deletes untracked files)"
    if sub == "branch" and "D" in short:
        return "git branch -D (deletes a branch)"
    if sub in ("checkout", "restore") and "." in words[1:] and ("--" in args or sub == "restore"):
        return "git checkout/restore . (discards changes)"
    return None


def _processes(name: str, args: list[str]) -> str | None:
    short, _long = _flags(args)
    if name in ("killall", "pkill"):
        return f"{name} (kills processes)"
    if name == "kill" and ("9" in short or any(a.upper() in ("-KILL", "-SIGKILL", "-S") for a in args)):
        return "kill -9"
    if name == "crontab" and "r" in short:
        return "crontab -r (deletes the crontab)"
    return None


def _privilege(name: str, args: list[str]) -> str | None:
    return f"{name} (runs as another user)" if name in PRIVILEGE else None


def _code(name: str, args: list[str]) -> str | None:
    if name not in INTERPRETERS and not re.fullmatch(r"python\d(\.\d+)?", name):
        return None
    for i, arg in enumerate(args):
        if arg in ("-c", "-e", "-E", "--eval", "-r", "-p", "--print") and i + 1 < len(args) \
                and DELETING_CODE.search(args[i + 1]):
            return f"{name} code that deletes files"
    return None


RULES: tuple[Rule, ...] = (_rm, _find, _disk, _power, _permissions, _git, _processes, _privilege, _code)


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _tokens(command: str) -> list[str] | None:
    command = re.sub(r"`([^`]*)`", r"$(\1)", command)      # backticks are a command substitution
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace_split = True
    lexer.whitespace = " \t\r"
    lexer.commenters = "#"
    try:
        return [";" if "\n" in token and set(token) <= set(";&|()<>\n") else token for token in lexer]
    except ValueError:
        return None


def _simple_commands(tokens: list[str]) -> Iterator[tuple[list[str], str, list[str]]]:
    """(words, separator before, redirection targets) of each simple command."""
    words: list[str] = []
    targets: list[str] = []
    before = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in SEPARATORS or token.endswith("\n"):
            if words or targets:
                yield words, before, targets
            words, targets, before = [], [], token
        elif token == "<(" or token.endswith("<(") and set(token) <= set("<>&|("):
            words.append("<(")          # process substitution: the body follows as its own command
            yield words, before, targets
            words, targets, before = [], [], "<("
        elif REDIRECTS.match(token) or set(token) <= set("<>&|") and token not in SEPARATORS:
            if token == "<" and i + 1 < len(tokens) and tokens[i + 1] == "(":
                words.append("<(")      # process substitution: the body follows as its own command
                yield words, before, targets
                words, targets, before = [], [], "<("
                i += 2
                continue
            if i + 1 < len(tokens):
                targets.append(("<<" if token.startswith("<<") else "") + tokens[i + 1])
                i += 1
        else:
            words.append(token)
        i += 1
    if words or targets:
        yield words, before, targets


def _expand(word: str, variables: dict[str, str]) -> tuple[str, bool]:
    """`word` with known variables substituted; False when an unknown one remains."""
    known = True

    def sub(match: re.Match[str]) -> str:
        nonlocal known
        name = match.group(1) or match.group(2)
        if name in variables:
            return variables[name]
        known = False
        return match.group(0)

    return VARIABLE.sub(sub, word), known


def _unwrap(words: list[str]) -> tuple[list[str], str | None]:
    """Skip wrappers (`sudo`, `env X=1`, `timeout 5`, `xargs -0`, ...); the privilege rule sees sudo first."""
    while words:
        name = _basename(words[0])
        if name not in WRAPPERS:
            return words, None
        if name in PRIVILEGE:
            return words, f"{name} (runs as another user)"
        rest = words[1:]
        if name == "busybox" and rest and rest[0] not in SHELLS:
            words = rest
            continue
        if name in SHELLS:
            return words, None
        while rest and (rest[0].startswith("-") or ASSIGNMENT.match(rest[0])
                        or (name in ("timeout", "nice", "ionice", "watch", "flock") and re.fullmatch(r"[\d.]+[smhd]?", rest[0]))):
            flag = rest.pop(0)
            if name in ("nice", "ionice", "xargs", "timeout", "flock", "stdbuf", "watch") and flag in (
                    "-n", "-c", "-I", "-d", "-s", "-k", "-P", "-L", "-E", "-i", "-o", "-e", "-w") and rest:
                rest.pop(0)
        words = rest
    return words, None


def _check(command: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return "command nested too deeply to check"
    tokens = _tokens(command)
    if tokens is None:
        return "unparseable command line (unbalanced quotes)"
    variables: dict[str, str] = {}
    commands = list(_simple_commands(tokens))
    for words, before, targets in commands:
        for target in targets:
            if re.match(r"/dev/(sd|nvme|hd|vd|xvd|mmcblk|disk)", target):
                return "raw write to a disk device"
        assignments = []
        while words and ASSIGNMENT.match(words[0]):
            assignments.append(ASSIGNMENT.match(words[0]))
            words = words[1:]
        for match in assignments:
            value, _ = _expand(match.group(2), variables)
            if not words:
                variables[match.group(1)] = value
            if "$(" in value or "`" in match.group(2):
                reason = _check(value.replace("$(", " ").replace(")", " "), depth + 1)
                if reason:
                    return reason
        if not words:
            continue
        expanded: list[str] = []
        for position, word in enumerate(words):
            value, known = _expand(word, variables)
            if position == 0 and value.startswith("$") and not (known is False and re.match(r"\$\{?\w+\}?/", value)):
                return "a command named by a variable or substitution"
            if position == 0 and (" " in value.strip()):
                inner = _check(value + " " + " ".join(words[1:]), depth + 1)
                if inner:
                    return inner
            expanded.append(value)
        words, privileged = _unwrap(expanded)
        if privileged:
            return privileged
        if not words:
            continue
        name = _basename(words[0])
        args = words[1:]
        if name in ("eval", "source", "."):
            reason = _check(" ".join(args), depth + 1)
            if reason:
                return reason
            if any("$" in a for a in args) or (args and args[-1] == "<("):
                return f"{name} of generated code"
        if name in SHELLS:
            if "-c" in args and args.index("-c") + 1 < len(args):
                code = args[args.index("-c") + 1]
                reason = _check(code, depth + 1)
                if reason:
                    return reason
                if "$(" in code or "`" in code:
                    return f"{name} -c of generated code"
            elif args and args[-1] == "<(":
                return f"{name} <(...) (runs downloaded or generated code)"
        if any(t.startswith("<<") for t in targets) and (name in INTERPRETERS or re.fullmatch(r"python\d(\.\d+)?", name)) \
                and DELETING_CODE.search(command):
            return f"{name} code that deletes files"
        piped = before in ("|", "|&")
        if piped and (name in SHELLS or name in INTERPRETERS or re.fullmatch(r"python\d(\.\d+)?", name)):
            script_args = [a for a in args if not a.startswith("-")]
            if not script_args or script_args == ["-"] or "-s" in args or "-" in args:
                return f"text piped into {name} (runs downloaded or decoded code)"
        for rule in RULES:
            reason = rule(name, args)
            if reason:
                return reason
    return None


def dangerous_reason(command: str, extra_patterns: list[str] | tuple[str, ...] = ()) -> str | None:
    """The name of the rule `command` matches when it needs the user's approval, else None."""
    for pattern, name in RAW_PATTERNS:
        if re.search(pattern, command, flags=re.IGNORECASE):
            return name
    for pattern in extra_patterns:
        if re.search(pattern, command, flags=re.IGNORECASE):
            return pattern
    substitutions = re.findall(r"\$\(([^()]*)\)", command)
    for body in substitutions:
        reason = _check(body, 1)
        if reason:
            return reason
    return _check(command, 0)
