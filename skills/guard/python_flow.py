"""Python analysis: the few data flows that make a script dangerous, read from its syntax tree.

- a decoded or downloaded string reaching `exec`/`eval`/`compile`/a shell (`os.system`,
  `subprocess` with a shell) or `marshal`/`pickle.loads`;
- the whole environment (`os.environ`, however it is spelt: `getattr(os, 'envi'+'ron')`,
  `__import__('os').environ`) or a credential file reaching a network call (requests, urllib,
  http.client, httpx, aiohttp, sockets, smtplib, ftplib, boto uploads, curl run by subprocess);
- a reverse shell: an internet socket whose descriptors are handed to a shell (`dup2`, `pty`).

Not flows that matter: one named variable read with `os.environ.get`/`[...]` (an API client's
token), `os.environ.copy()` handed to a subprocess as its environment, a local `AF_UNIX` socket.
String expressions are folded (`python_fold`: concatenation, `join`, `chr`, `bytes.fromhex`,
base64, rot13, reversal) so the scanner can scan what `exec` or `os.system` will really get.
`inert_spans` lists strings that are only shown to people (`python_text`: docstrings, argparse
help, print and log calls).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from skills.guard.python_fold import Folder, dotted_name
from skills.guard.python_text import Segments, inert_spans

SECRET_PATH = re.compile(
    r"(^|[/~'\"\s])\.(ssh|aws|gnupg|kube|docker|netrc|git-credentials|pgpass|pypirc|config/gcloud)(/|$|['\"\s])(?!.*\.pub\b)"
    r"|\bid_(rsa|dsa|ecdsa|ed25519)\b(?!\.pub)|\.aws/credentials|/etc/shadow|(^|/)\.env$|\bwallet\.dat\b|Login Data"
    r"|Cookies$|\.git-credentials|\.netrc\b|keychain", re.IGNORECASE)
NOT_SECRET_PATH = re.compile(r"\.pub$|known_hosts|ssh/config$|\.env\.(example|sample|template)$", re.IGNORECASE)
NETWORK_MODULES = {"requests", "httpx", "urllib", "http", "aiohttp", "socket", "smtplib", "ftplib", "boto3", "paramiko"}
EXEC_NAMES = {"exec", "eval", "compile", "execfile"}
SHELL_CALLS = {"system", "popen", "run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput",
               "spawn", "execv", "execve", "execvp", "execl", "execlp", "create_subprocess_shell", "create_subprocess_exec"}
DECODERS = {"b64decode", "b32decode", "b16decode", "a85decode", "b85decode", "urlsafe_b64decode", "decodebytes",
            "unhexlify", "fromhex", "decompress", "a2b_base64", "a2b_hex", "loads"}
CODE_LOADERS = {"marshal", "pickle", "dill", "cloudpickle", "zlib", "base64", "codecs", "binascii", "bz2", "lzma", "gzip"}
"""Modules whose `loads` gives bytes or objects that can run; `json.loads` or `yaml.safe_load` give data."""
TEXT_CODECS = re.compile(r"rot|hex|base64|b64|zlib|zip|bz2|uu|punycode|unicode_escape|raw_unicode", re.IGNORECASE)
INTERPRETERS = re.compile(r"^(.*/)?(ba|z|k|da|fi)?sh$|^(.*/)?(python[0-9.]*|perl|ruby|node|php|pwsh|powershell|cmd(\.exe)?"
                          r"|osascript|tclsh|lua|deno|bun|sudo|doas|su|env|nohup|timeout|xargs|ssh|nice|setsid|script)$",
                          re.IGNORECASE)
"""Programs that run their arguments as code, or run another program given in them (sudo, env, ssh):
a decoded string handed to them as an argument runs."""
NETWORK_TOOLS = re.compile(r"\b(curl|wget|nc|ncat|socat|scp|rsync|ftp|sendmail)\b")
OS_MODULES = {"os", "posix", "nt"}
ENVIRON_NAMES = {"environ", "environb"}


@dataclass
class PyFinding:
    line: int
    rule: str
    severity: str
    message: str
    text: str


@dataclass
class PyAnalysis:
    findings: list[PyFinding] = field(default_factory=list)
    derived: list[tuple[int, str, str]] = field(default_factory=list)
    """(line, 'python'|'shell', text): strings this code executes, folded, for the scanner to scan."""
    inert_spans: list[tuple[int, int, int, int]] = field(default_factory=list)


class _Flows(Folder):
    def __init__(self, tree: ast.Module, source: str) -> None:
        super().__init__()
        self.tree = tree
        self.segments = Segments(source)
        self.taint: dict[str, set[str]] = {}
        self.modules: dict[str, str] = {}  # alias -> module
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent

    # ------------------------------------------------------------ taint
    def _is_os(self, node: ast.AST) -> bool:
        """`node` is the os module however it is reached: a (renamed) import, `__import__("os")`,
        `importlib.import_module("os")`, `sys.modules["os"]`, `globals()["os"]`, or posix/nt beneath it."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id, node.id) in OS_MODULES
        if isinstance(node, ast.Call) and node.args and (
                isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module")
                or isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"):
            return self.fold(node.args[0]) in OS_MODULES
        if isinstance(node, ast.Subscript) or isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and node.args:
            container = node.value if isinstance(node, ast.Subscript) else node.func.value  # type: ignore[union-attr]
            key = self.fold(node.slice if isinstance(node, ast.Subscript) else node.args[0])  # type: ignore[union-attr]
            if dotted_name(container) == "sys.modules" or self.modules.get(dotted_name(container)) == "sys.modules":
                return key in OS_MODULES
            if isinstance(container, ast.Call) and isinstance(container.func, ast.Name) \
                    and container.func.id in ("globals", "locals", "vars") and not container.args and isinstance(key, str):
                return self.modules.get(key, key) in OS_MODULES
        return False

    def _module_dict(self, node: ast.AST) -> bool:
        """`os.__dict__`, `vars(os)`, `getattr(os, "__dict__")`: the os module's namespace."""
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return self._is_os(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            if node.func.id == "vars":
                return self._is_os(node.args[0])
            if node.func.id == "getattr" and len(node.args) >= 2:
                return self._is_os(node.args[0]) and self.fold(node.args[1]) == "__dict__"
        return False

    def _is_environ(self, node: ast.AST) -> bool:
        """`node` is the whole environment: os.environ or os.environb however it is spelt (`getattr(os,
        "envi" + "ron")`, `vars(os)["environ"]`, `os.__dict__.get("environ")`, `from os import environ as E`,
        `operator.attrgetter("environ")(os)`, `os.__getattribute__("environ")`, `posix.environ`)."""
        if isinstance(node, ast.Attribute) and node.attr in ENVIRON_NAMES:
            return self._is_os(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2:
            return self._is_os(node.args[0]) and self.fold(node.args[1]) in ENVIRON_NAMES
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and node.func.attr in ("__getattribute__", "__getattr__") and self._is_os(node.func.value):
            return self.fold(node.args[0]) in ENVIRON_NAMES
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Call) and node.args \
                and dotted_name(node.func.func).split(".")[-1] == "attrgetter" and node.func.args:
            return self._is_os(node.args[0]) and self.fold(node.func.args[0]) in ENVIRON_NAMES
        if isinstance(node, ast.Name) and self.modules.get(node.id, "").split(".")[-1] in ENVIRON_NAMES \
                and self.modules.get(node.id, "").split(".")[0] in OS_MODULES:
            return True
        if isinstance(node, ast.Subscript) and self._module_dict(node.value):
            return self.fold(node.slice) in ENVIRON_NAMES
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args \
                and self._module_dict(node.func.value):
            return self.fold(node.args[0]) in ENVIRON_NAMES
        return False

    @staticmethod
    def _naming_only(node: ast.AST) -> set[ast.AST]:
        """Nodes that name a path only to leave it out or test for it (`ignore_patterns(".env")`,
        `exclude=[".env"]`, `os.path.exists(".env")`): not a read of it."""
        skipped: set[ast.AST] = set()
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                name = n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id if isinstance(n.func, ast.Name) else ""
                if name in ("ignore_patterns", "exists", "is_file", "isfile", "lexists", "access", "fnmatch", "match"):
                    skipped.update(ast.walk(n))
                for keyword in n.keywords:
                    if keyword.arg in ("exclude", "excludes", "ignore", "ignored", "skip"):
                        skipped.update(ast.walk(keyword.value))
        return skipped

    def _secret_path(self, node: ast.AST) -> bool:
        skipped = self._naming_only(node)
        strings = [s for s in (self.fold(n) for n in ast.walk(node) if n not in skipped) if isinstance(s, str)]
        joined = "/".join(s.strip("/") for s in strings if len(s) < 4096)
        return bool(strings) and bool(SECRET_PATH.search(joined)) and not NOT_SECRET_PATH.search(joined)

    def expr(self, node: ast.AST | None) -> set[str]:
        """Taints of an expression: env, keyfile, decoded, fetched, inet, unix."""
        if node is None:
            return set()
        if self._is_environ(node):
            return {"env"}
        if isinstance(node, ast.Name):
            return set(self.taint.get(node.id, ()))
        if isinstance(node, ast.Subscript):
            if self._is_environ(node.value):
                return set()
            return self.expr(node.value)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.Lambda):
            return set()
        found: set[str] = set()
        for child in ast.iter_child_nodes(node):
            found |= self.expr(child)
        return found

    def _call(self, node: ast.Call) -> set[str]:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        dotted = dotted_name(func)
        if isinstance(func, ast.Attribute) and self._is_environ(func.value):
            return {"env"} if name in ("copy", "items", "keys", "values", "__iter__") else set()
        if name in ("getenv",):
            return set()
        args = [*node.args, *(k.value for k in node.keywords if not (k.arg == "env" and name in SHELL_CALLS))]
        inner: set[str] = set()
        for arg in args:
            inner |= self.expr(arg)
        if isinstance(func, ast.Attribute):
            inner |= self.expr(func.value)
        if name in ("open", "read_text", "read_bytes", "Path", "expanduser", "glob", "iglob", "rglob", "copy", "copyfile",
                    "copytree", "make_archive", "add", "write", "listdir", "walk", "scandir", "iterdir", "load_pem_private_key") \
                and self._secret_path(node):
            inner.add("keyfile")
        if name == "loads" and self.modules.get(dotted.split(".")[0], dotted.split(".")[0]).split(".")[0] not in CODE_LOADERS:
            pass  # json.loads, tomllib.loads...: data parsed, not code decoded
        elif name in DECODERS or name == "decode" and any(TEXT_CODECS.search(str(self.fold(a) or ""))
                                                          for a in [*node.args[1:], *(k.value for k in node.keywords)]) \
                or name == "join" and self.fold(node) is not None \
                and self._codes(node):
            inner.add("decoded")
        if name == "socket" and "socket" in dotted or name == "create_connection":
            family = [self._const_name(a) for a in node.args[:1]] + [self._const_name(k.value) for k in node.keywords
                                                                      if k.arg == "family"]
            inner.add("unix" if "AF_UNIX" in family else "inet")
        if self._is_network(node, dotted, name):
            inner.add("fetched")
        return inner

    @staticmethod
    def _codes(node: ast.Call) -> bool:
        return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "chr" for n in ast.walk(node)) \
            or any(isinstance(n, ast.Name) and n.id == "chr" for n in ast.walk(node))

    @staticmethod
    def _const_name(node: ast.AST) -> str:
        return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""

    def _is_network(self, node: ast.Call, dotted: str, name: str) -> bool:
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            receiver = self.taint.get(node.func.value.id, set())
            if "unix" in receiver and "inet" not in receiver:
                return False  # a local AF_UNIX socket never leaves the machine
        root = dotted.split(".")[0]
        root = self.modules.get(root, root).split(".")[0]
        if root in NETWORK_MODULES and name not in ("socket", "gethostname", "getfqdn", "quote", "urlencode", "urlparse",
                                                    "urljoin", "quote_plus", "HTTPStatus"):
            return True
        if name in ("urlopen", "urlretrieve", "create_connection", "sendall", "sendto", "sendmail", "send_message",
                    "storbinary", "upload_file", "upload_fileobj", "put_object"):
            return True
        if name in ("post", "put", "patch", "request", "send", "get", "stream", "ws_connect") and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            taints = self.expr(receiver) if isinstance(receiver, ast.Name) else set()
            base = dotted_name(receiver).lower()
            return bool(taints & {"inet", "fetched"}) or any(w in base for w in ("session", "client", "http", "conn", "sock", "api"))
        return False

    @staticmethod
    def _argv_lists(bound: dict[str, list[ast.AST]]) -> dict[str, ast.List | ast.Tuple]:
        """Names bound once to a list or tuple literal (`cmd = ["git", "log"]`), for what a call on them runs."""
        return {name: values[0] for name, values in bound.items()
                if len(values) == 1 and isinstance(values[0], (ast.List, ast.Tuple)) and values[0].elts}  # type: ignore[misc]

    def propagate(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.modules[alias.asname or alias.name.split(".")[0]] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        assignments: list[tuple[list[ast.AST], ast.AST]] = []
        mutations: set[int] = set()
        bound: dict[str, list[ast.AST]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                bound.setdefault(node.targets[0].id, []).append(node.value)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name):
                bound.setdefault(node.target.id, []).append(node.value or node)
            if isinstance(node, ast.Assign):
                assignments.append((node.targets, node.value))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None or isinstance(node, ast.NamedExpr):
                assignments.append(([node.target], node.value))
            elif isinstance(node, (ast.For, ast.comprehension)):
                assignments.append(([node.target], node.iter))
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                assignments.append(([node.optional_vars], node.context_expr))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                    and node.func.attr in ("append", "extend", "insert", "add", "update") and node.args:
                assignments.append(([node.func.value], node.args[-1]))  # cmd.extend(["-c", payload]) taints cmd
                mutations.add(id(node.args[-1]))
        self.argv = self._argv_lists(bound)
        for _ in range(4):
            changed = False
            for targets, value in assignments:
                folded = self.fold(value) if id(value) not in mutations else None
                taints = self.expr(value)
                for target in targets:
                    for name_node in ast.walk(target):
                        if not isinstance(name_node, ast.Name):
                            continue
                        if folded is not None and name_node.id not in self.constants and isinstance(targets[0], ast.Name):
                            self.constants[name_node.id] = folded
                            changed = True
                        known = self.taint.setdefault(name_node.id, set())
                        if not taints <= known:
                            known |= taints
                            changed = True
            if not changed:
                break

    # ------------------------------------------------------------ sinks
    def analyse(self) -> PyAnalysis:
        self.propagate()
        result = PyAnalysis()
        dup2_lines: list[int] = []
        shells_with_socket: list[int] = []
        inet = any("inet" in t for t in self.taint.values())
        downloaded_files = self._downloaded_files()
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            dotted = dotted_name(func)
            line = node.lineno
            args = [*node.args, *(k.value for k in node.keywords if k.arg not in ("env",))]
            arg_taints: set[str] = set()
            for arg in args:
                arg_taints |= self.expr(arg)
            if (name == "dup2" or name == "spawn" and "pty" in dotted) and any("inet" in self.expr(a) for a in node.args):
                dup2_lines.append(line)
            if name in SHELL_CALLS and any(k.arg in ("stdin", "stdout", "stderr") and self.expr(k.value) & {"inet"}
                                           for k in node.keywords):
                shells_with_socket.append(line)
            if name in ("read", "read_text", "read_bytes", "readlines", "load_pem_private_key") and "keyfile" in self.expr(node):
                result.findings.append(PyFinding(line, "outside-folder", "dangerous",
                                                 "reads credential files outside the skill's folder",
                                                 self.segment(node) or dotted))
            if self._is_network(node, dotted, name) and arg_taints & {"env", "keyfile"}:
                what = "the whole environment" if "env" in arg_taints else "a credential file"
                result.findings.append(PyFinding(line, "exfiltration", "dangerous", f"sends {what} over the network",
                                                 self.segment(node) or dotted))
            is_exec = name in EXEC_NAMES and isinstance(func, ast.Name) or name in ("loads",) and dotted.split(".")[0] in (
                "marshal", "pickle", "dill")
            is_shell = name in SHELL_CALLS and (dotted.split(".")[0] in ("os", "subprocess", "commands", "asyncio", "pty")
                                                or self.modules.get(name, "").startswith(("os.", "subprocess.")))
            command_taints = self._command_taints(node, is_exec) if is_exec or is_shell else set()
            if command_taints & {"decoded", "fetched"}:
                what = "downloaded" if "fetched" in command_taints else "decoded"
                result.findings.append(PyFinding(line, "download-exec", "dangerous", f"runs {what} code",
                                                 self.segment(node) or dotted))
            if is_shell and arg_taints & {"env", "keyfile"} and any(NETWORK_TOOLS.search(str(self.fold(a) or ""))
                                                                    for a in ast.walk(node)):
                result.findings.append(PyFinding(line, "exfiltration", "dangerous",
                                                 "passes secrets to a network tool",
                                                 self.segment(node) or dotted))
            if (is_exec or is_shell) and downloaded_files and any(self._mentions(a, downloaded_files) for a in node.args):
                result.findings.append(PyFinding(line, "download-exec", "dangerous", "runs a file it downloaded or decoded",
                                                 self.segment(node) or dotted))
            if is_exec or is_shell:
                for arg in node.args[:1]:
                    folded = self.fold(arg)
                    if isinstance(folded, bytes):
                        folded = folded.decode("utf-8", "replace")
                    if isinstance(arg, (ast.List, ast.Tuple)):
                        items = [self.fold(e) for e in arg.elts]
                        folded = " ".join(i if isinstance(i, str) else "X" for i in items)
                    if isinstance(folded, str) and folded.strip():
                        result.derived.append((line, "python" if is_exec else "shell", folded))
        if inet and (dup2_lines or shells_with_socket):
            line = min(dup2_lines + shells_with_socket)
            result.findings.append(PyFinding(line, "reverse-shell", "dangerous",
                                             "connects a socket to a remote host and hands it a shell", "socket + dup2/shell"))
        result.inert_spans = inert_spans(self.tree)
        return result

    def _command_taints(self, node: ast.Call, is_exec: bool) -> set[str]:
        """Taints of what a call runs: exec's code, a shell's command string, `[sh, -c, X]`'s X. An argv
        list (written in place or bound to a name) runs its first item: decoded data passed as an
        argument to another program (`["claude", "-p", query]`) is not run, unless that program is an
        interpreter or shell, which runs its arguments."""
        if not node.args:
            return set()
        first = node.args[0]
        if isinstance(first, ast.Name) and first.id in self.argv and not is_exec:
            first = self.argv[first.id]
        if isinstance(first, (ast.List, ast.Tuple)) and first.elts and not is_exec:
            items = [self.fold(e) for e in first.elts]
            if "-c" in items and items.index("-c") + 1 < len(first.elts):
                return self.expr(first.elts[items.index("-c") + 1])
            program = items[0]
            if not isinstance(program, str) or INTERPRETERS.search(program.strip()):
                return self.expr(first) | (self.expr(node.args[0]) if node.args[0] is not first else set())
            shell = any(k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value for k in node.keywords)
            return self.expr(first) if shell else set()
        return self.expr(first)

    def _downloaded_files(self) -> set[str]:
        files: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                if name == "urlretrieve" and len(node.args) >= 2:
                    files |= self._refs(node.args[1])
                if name in ("write", "write_bytes", "write_text") and node.args and isinstance(node.func, ast.Attribute) \
                        and self.expr(node.args[0]) & {"fetched", "decoded"}:
                    files |= self._refs(node.func.value)
                    receiver = node.func.value
                    if isinstance(receiver, ast.Call) and receiver.args and dotted_name(receiver.func).split(".")[-1] in (
                            "open", "Path", "fdopen", "NamedTemporaryFile"):
                        files |= self._refs(receiver.args[0])  # open("/tmp/x.sh", "w").write(decoded)
                    target = self.parents.get(node)
                    while target is not None and not isinstance(target, ast.With):
                        target = self.parents.get(target)
                    if isinstance(target, ast.With):
                        for item in target.items:
                            if isinstance(item.context_expr, ast.Call) and item.context_expr.args:
                                files |= self._refs(item.context_expr.args[0])
        return {f for f in files if f}

    def _refs(self, node: ast.AST) -> set[str]:
        refs = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        folded = self.fold(node)
        if isinstance(folded, str):
            refs.add(folded)
        return refs

    def _mentions(self, node: ast.AST, refs: set[str]) -> bool:
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id in refs:
                return True
            value = self.fold(n)
            if isinstance(value, str) and any(r and r in value for r in refs if "/" in r or "." in r):
                return True
        return False

    def segment(self, node: ast.AST) -> str:
        """The source text of `node` (for a finding's excerpt)."""
        return self.segments.cut(node)


def analyse(source: str) -> PyAnalysis | None:
    """The flows in Python source, or None when it does not parse (the line rules still apply)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    flows = _Flows(tree, source)
    try:
        return flows.analyse()
    except RecursionError:
        return None
