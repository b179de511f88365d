"""Regular expressions the guard's rules are built from (compiled once, no state)."""

from __future__ import annotations

import re

I = re.IGNORECASE


class Prefiltered:
    """A compiled pattern behind a literal check: `search` and `finditer` run the regular expression only
    when the (lower-cased) text holds one of `keys`, substrings that every match must contain. Same
    answers as the pattern itself, without the cost of trying each alternative on lines that cannot match."""

    def __init__(self, pattern: re.Pattern[str], keys: tuple[str, ...]) -> None:
        self.pattern, self.keys = pattern, keys

    def _may(self, text: str) -> bool:
        low = text.lower()
        return any(key in low for key in self.keys)

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text) if self._may(text) else None

    def finditer(self, text: str):  # type: ignore[no-untyped-def]
        return self.pattern.finditer(text) if self._may(text) else iter(())

# ---------------------------------------------------------------- building blocks
SENSITIVE_FILE = re.compile(
    r"(~|\$HOME|\$\{HOME\}|/home/\w+|/root|Path\.home\(\)[^\n]{0,12}|expanduser\(\s*['\"]~)/?['\"]?\s*[,/]?\s*['\"]?"
    r"\.(ssh|aws|gnupg|kube|docker|netrc|git-credentials|pgpass|npmrc|pypirc|config/gcloud)"
    r"|\bid_(rsa|dsa|ecdsa|ed25519)\b|\.aws/credentials|/etc/shadow|\.ssh/|\.gnupg/"
    r"|(?<![\w.-])\.env(?![\w.-])|\bwallet\.dat\b|Login Data|\bkeychain\b|\.git-credentials|\.netrc\b",
    I)
ENV_DUMP = re.compile(
    r"(^|[|;&`\s]|\$\()\s*(?-i:printenv|env|set|export -p)\s*(\||>|$|`|;)|([$<]\(|`)\s*(?-i:printenv|env|set|export -p)\s*(\)|`)"
    r"|os\.environ(?!\s*(\.get\b|\[|\.setdefault|\.pop))|process\.env(?!\s*\.\w|\s*\[)"
    r"|process\s*\[\s*['\"`]env['\"`]\s*\](?!\s*\.\w|\s*\[)|\b(Deno\.env\.toObject|Bun\.env)\b(?!\s*\.\w)"
    r"|/proc/(self|\d+|\$\$)/environ|Get-ChildItem\s+env:|\bENV\.to_h\b",
    I)
SECRET_VAR = r"\$\{?[A-Z0-9_]*(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)[A-Z0-9_]*\}?"
NETWORK = re.compile(
    r"\b(curl|wget|nc|ncat|netcat|socat|scp|sftp|ftp|telnet|sendmail)\b|/dev/(tcp|udp)/"
    r"|requests\.(post|put|patch|get)|\burlopen\b|urllib\.request|http\.client|httpx\.|aiohttp\.|\bhttps?\.(request|get)\s*\("
    r"|\bfetch\(|XMLHttpRequest|\baxios\b|Invoke-WebRequest|Invoke-RestMethod|\biwr\b|\birm\b"
    r"|socket\.(socket|create_connection)|\bsmtplib\b|\bdig\b\s|\bnslookup\b|\bmail\s+-s\b|webhook\.site|ngrok"
    r"|\b(require\s*\(|import\s*\(|from)\s*['\"`](node:)?(https?|http2|net|dgram|tls|node-fetch|undici)['\"`]"
    r"|\bNet::HTTP\b|\bHTTParty\b|\bFaraday\b|\bRestClient\b|\bURI\.open\b|\bopen-uri\b",
    I)
NETWORK = Prefiltered(NETWORK, ("curl", "wget", "nc", "netcat", "socat", "scp", "ftp", "telnet", "sendmail", "/dev/",  # type: ignore[assignment]
                                "requests.", "urlopen", "urllib", "http", "fetch(", "axios", "invoke-", "iwr", "irm",
                                "socket.", "smtplib", "dig", "nslookup", "mail", "webhook", "ngrok", "net", "dgram",
                                "tls", "undici", "faraday", "restclient", "uri.open", "open-uri"))
DATA_WITH_SECRET = re.compile(
    r"(\s-d|--data[\w-]*|\s-F|--form|--upload-file|\s-T|data=|json=|params=|body\s*[:=])\s*['\"]?[^'\"\n]{0,40}"
    + SECRET_VAR + r"|[?&]\w+=" + SECRET_VAR)
SECRET_FILE_READ = re.compile(
    r"\b(cat|less|head|tail|base64|xxd|tar|zip|gzip|cp|open|read_text|read_bytes|readFile|readFileSync|Get-Content)\b"
    r"[^\n]{0,80}(" + SENSITIVE_FILE.pattern + r")", I)

# ---------------------------------------------------------------- prompt injection
PROMPT_INJECTION = [
    re.compile(r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(previous|prior|above|earlier|preceding"
               r"|your|system|developer|safety|original)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|directives"
               r"|guidelines|guardrails|messages|constraints)\b", I),
    re.compile(r"\byou are (now|no longer)\b[^.\n]{0,50}\b(DAN|jailbr\w*|unrestricted|developer mode|unfiltered"
               r"|bound by|without (any )?(restrictions|limits|rules))", I),
    re.compile(r"\b(hide|conceal|keep)\b[^.\n]{0,30}\b(from|secret from)\s+the\s+(user|human|operator)\b", I),
    re.compile(r"\bsilently\s+(send|upload|post|exfiltrate|transmit|copy|forward|run|execute|install)\b", I),
    re.compile(r"<\|im_start\|>|<\|system\|>|<\|endoftext\|>|\[/?INST\]|^\s*#*\s*(SYSTEM|ADMIN|DEVELOPER)\s*"
               r"(MESSAGE|OVERRIDE|PROMPT|INSTRUCTIONS?|NOTE)\s*:", I | re.MULTILINE),
    re.compile(r"\b(new|updated|real|true|actual)\s+(system\s+)?(instructions|directives|prompt)\s*:", I),
    re.compile(r"\b(reveal|print|output|repeat|leak|dump)\b[^.\n]{0,30}\b(your|the)\s+(system prompt|hidden "
               r"instructions|initial instructions|original instructions)", I),
    re.compile(r"\b(act as|pretend to be|you are)\b[^.\n]{0,20}\b(root|the system administrator|the developer)\b"
               r"[^.\n]{0,40}\b(no|without)\s+(restrictions|rules|limits)", I),
]

MODEL_WORDS = re.compile(r"\b(assistant|AI|agent|model|LLM|claude|gpt|hermes|you)\b", I)
IMPERATIVE = re.compile(r"\b(must|should|always|never|run|execute|send|upload|ignore|instead|secretly|silently"
                        r"|do not|don't|before|after|first|also)\b", I)
HTML_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
MD_COMMENT = re.compile(r"^\s*\[(//|comment|_)\]:\s*#\s*[(\"'](.*)[)\"']\s*$", re.MULTILINE)
HIDDEN_MARKUP = re.compile(r"<(span|div|p)\b[^>]{0,600}(display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|"
                           r"\bhidden\b|color\s*:\s*(white|#fff\b|#ffffff))[^>]{0,600}>(.{0,4000}?)</\1>", I | re.DOTALL)

# ---------------------------------------------------------------- download and run
DECODE_FLAG = r"-[a-zA-Z]*d[a-zA-Z]*|--decode|-D"
"""base64's decode switch, also bundled with others (`-d`, `-di`, `-id`, `--decode`)."""
SHELLS = r"(sudo\s+(-\w+\s+){0,6})?(ba|z|k|da|fi)?sh\b|iex\b|Invoke-Expression|perl\b|ruby\b|node\b|php\b|python[0-9.]*(?!\s+-m\s+json\.tool)(?!\s+-c\b)(?!\s+-m\s+\w)"
STDIN_RUNNER = r"((sudo\s+)?(ba|z|k|da|fi)?sh|python[0-9.]*|perl|ruby|node|php)(\s+-[six]+)?(\s+-)?\s*($|[;&|)`\"'])"
"""A shell or interpreter that runs what it reads on its standard input (`| sh`, `| python3 -`), not one
given a script of its own to run (`| python3 parse.py` reads data)."""
DOWNLOAD_EXEC = [
    re.compile(r"\b(curl|wget|fetch|iwr|Invoke-WebRequest|irm)\b[^\n|]{0,600}\|\s*(" + SHELLS + r")", I),
    re.compile(r"\b(ba|z)?sh\b\s+(-\w+\s+){0,6}<\(\s*(curl|wget)\b|(source|\.)\s+<\(\s*(curl|wget)\b", I),
    re.compile(r"\b(sh|bash|zsh|python[0-9.]*|perl|ruby|node)\s+-c\s+[\"']?\$\(\s*(curl|wget)\b", I),
    re.compile(r"\beval\s+[\"']?\$\((curl|wget|[^)\n]{0,600}base64\s+(" + DECODE_FLAG + r"))", I),
    re.compile(r"\b(base64|openssl\s+(base64|enc))\b[^\n|]{0,600}\s(" + DECODE_FLAG + r"|-a\s+-d)\b[^\n|]{0,600}\|\s*(" + SHELLS + r")", I),
    re.compile(r"\b((ba|z|k|da)?sh|python[0-9.]*|perl|ruby|node|php)\s+(-\w+\s+){0,6}-c\s+[\"']?\$\([^)\n]{0,600}(\b(base64|openssl\s+(base64|enc))\b"
               r"[^)\n]{0,600}\s(" + DECODE_FLAG + r")\b|\bxxd\s+-r|\bgunzip\b|\bzcat\b)"
               r"|\b(source|\.|(ba|z|k|da)?sh)\s+<\(\s*[^)\n]{0,600}\b(base64\s[^)\n]{0,100}(" + DECODE_FLAG + r")\b|xxd\s+-r)"
               r"|\b((ba|z|k|da)?sh|python[0-9.]*|perl|ruby|node)\s+<<<\s*[\"']?\$\([^)\n]{0,600}\b(base(64|32)|basenc|openssl|xxd\s+-r"
               r"|uudecode|gunzip|zcat)\b", I),
    re.compile(r"\b(base32|basenc\b[^|\n]{0,100}|uudecode|xxd\s+-r|gzip\s+-\w*d\w*|gunzip|zcat|bzcat|xzcat|unxz|zstd\s+-\w*d\w*|brotli\s+-\w*d\w*)"
               r"\b[^|\n]{0,600}(\s(" + DECODE_FLAG + r")\b[^|\n]{0,600})?\|\s*" + STDIN_RUNNER, I),
    re.compile(r"\b(system|exec|eval|qx|spawn|popen)\b[^\n]{0,100}\b(decode_base64|decode64|strict_decode64|urlsafe_decode64"
               r"|unpack\s*\(?\s*[\"']m)|\b(decode_base64|decode64)\b[^\n]{0,300}\|\s*" + STDIN_RUNNER, I),
    re.compile(r"\|\s*(rev|xxd\s+-r(\s+-p)?|gunzip|zcat)\s*\|\s*(" + SHELLS + r")", I),
    re.compile(r"\b(exec|eval)\s*\(\s*(base64\.b64decode|base64\.\w+decode|codecs\.decode|zlib\.decompress|"
               r"marshal\.loads|bytes\.fromhex|bytearray\.fromhex|requests\.get|urllib|__import__|compile\(|"
               r"atob\(|Buffer\.from|[\"'][^\"']{0,600}[\"']\s*\.decode\(|\w+\.decode\()", I),
    re.compile(r"\b(exec|eval)\s*\([^\n]{0,60}(urlopen|requests\.get|\.read\(\)\.decode|b64decode|fromhex|decompress)", I),
    re.compile(r"new\s+Function\s*\(\s*(atob|Buffer\.from)|child_process[^\n]{0,80}(curl|wget)", I),
    re.compile(r"\b(exec|execSync|execFile|execFileSync|spawn|spawnSync|runInThisContext|runInNewContext|runInContext"
               r"|Function|eval)\s*\(\s*(atob\(|Buffer\.from\([^)\n]{0,2000}['\"](base64|hex)['\"])", I),
    re.compile(r"\bDownloadString\s*\(|\b(IEX|Invoke-Expression)\s*\(|-EncodedCommand\b|powershell[^\n]{0,600}\s-e(nc)?\s+[A-Za-z0-9+/=]{16,}", I),
    re.compile(r"\b(curl|wget)\b[^\n]{0,600}\s(-o|-O|--output)\s*\S+[^\n]{0,600}(&&|;)\s*(\./|sh\s|bash\s|python[0-9.]*\s)\S*", I),
    re.compile(r"\b(pip3?|uv pip|pipx)\s+install\b[^\n]{0,600}\s(https?://\S+\.(py|sh)\b)", I),
]
DOWNLOAD_EXEC.append(re.compile(
    r"\b(printf|echo\s+-[a-zA-Z]*e[a-zA-Z]*)\s+['\"]?(?:[^|\\\n]{0,12}(?:\\x[0-9A-Fa-f]{2}|\\[0-7]{3}|\\u[0-9A-Fa-f]{4})){3}"
    r"[^|\n]{0,2000}\|\s*("
    + SHELLS + r")", I))
DOWNLOAD_EXEC.append(re.compile(
    r"\b(curl|wget)\b[^\n|]{0,600}\|\s*(sudo\s+)?tar\s[^\n]{0,300}(&&|;)\s*(sudo\s+)?(\./|(ba)?sh\s|python[0-9.]*\s)", I))
DOWNLOAD_CHMOD = re.compile(r"\b(curl|wget)\b[^\n]{0,600}(&&|;)\s*chmod\s+(\+x|[0-7]*7[0-7]*)\b", I)

# ---------------------------------------------------------------- destructive
_RM_FLAGS = r"\brm\s+(?=(?:-[a-zA-Z-]+\s+){0,5}?-[a-zA-Z]*[rR])(?:-[a-zA-Z-]+\s+){1,6}"
DESTRUCTIVE = [
    re.compile(_RM_FLAGS + r"[\"']?(/|/\*|~|~/|~/\*|\$HOME|\$\{HOME\}|\$HOME/\*|/(etc|usr|var|bin|boot|lib|lib64"
               r"|home|opt|root|srv|sbin|System|Users)/?\*?|\.\./\.\.(/\S*)?|\*|\.)[\"']?(?=\s|$|;|&|\||`|\)|,|\]|\})"),
    re.compile(r"--no-preserve-root"),
    re.compile(r"\bmkfs(\.\w+)?\s+/dev/|\bwipefs\s+-a|\bdd\b[^\n]{0,600}\bof=/dev/(sd|nvme|hd|xvd|vd|disk|mmcblk)", I),
    re.compile(r">\s*/dev/(sd[a-z]|nvme\d|hd[a-z]|disk\d)"),
    re.compile(r":\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:"),
    re.compile(r"\bshred\b[^\n]{0,600}(/dev/|~|\$HOME|-\w*u\w*\s+/)", I),
    re.compile(r"\bchmod\s+-R\s+0?777\s+/(\s|$)|\bchown\s+-R\s+\S+\s+/(\s|$)"),
    re.compile(r"\bfind\s+(/|~|\$HOME)\s[^\n]{0,600}(-delete|-exec\s+rm\b)"),
    re.compile(r"shutil\.rmtree\(\s*(os\.path\.expanduser\(\s*[\"']~[\"']\s*\)|Path\.home\(\)|[\"']/[\"']|[\"']~)", I),
    re.compile(r"\b(Remove-Item|rd|rmdir|del)\b[^\n]{0,600}(-Recurse|/s)[^\n]{0,600}\b[Cc]:\\\\?(\s|$|\*|[\"'])|\bformat\s+c:", I),
    re.compile(r"\bkill\s+-9\s+-1\b|\bgit\s+push\s+[^\n]{0,600}--mirror\b[^\n]{0,600}--force|\bgit\s+clean\s+-[a-z]*f[a-z]*x[a-z]*\s+/", I),
]
CAUTION_DESTRUCTIVE = [
    re.compile(_RM_FLAGS + r"[\"']?\$\{?\w+\}?/?\*?[\"']?(?=\s|$|;|&|\|)"),
    re.compile(r"\b(DROP\s+(DATABASE|SCHEMA)|TRUNCATE\s+TABLE)\b", I),
    re.compile(r"\bgit\s+push\b[^\n]{0,600}(--force\b|\s-f\b)[^\n]{0,600}\b(main|master)\b", I),
]

# ---------------------------------------------------------------- persistence
RC_FILES = r"(~|\$HOME|\$\{HOME\})/\.(bashrc|bash_profile|profile|zshrc|zprofile|zshenv|bash_login|config/fish/config\.fish)"
RC_WRITE = re.compile(r"(>>?|\btee\s+(-a\s+)?)\s*[\"']?" + RC_FILES + r"|" + RC_FILES + r"[^\n]{0,20}[\"']\s*,\s*[\"']a", I)
AUTHORIZED_KEYS = re.compile(r"authorized_keys", I)
CRON_INSTALL = re.compile(r"\|\s*crontab\s+-\s*($|[;&)|])|\|\s*crontab\s*$|\bcrontab\s+(-u\s+\S+\s+)?(/|\./|~/|\$)\S+|\bcrontab\s+(-u\s+\S+\s+)?[\w.-]+\.(cron|txt|tab)\b"
                          r"|>>?\s*/etc/cron|/var/spool/cron|/etc/crontab", I)
REBOOT = re.compile(r"@reboot\b", I)
PERSISTENCE_DANGEROUS = [
    re.compile(r"/etc/rc\.local|/etc/profile\.d/|/etc/ld\.so\.preload|\bLD_PRELOAD=\S+[^\n]{0,600}>>", I),
    re.compile(r"CurrentVersion\\\\?Run\b|\bschtasks\b[^\n]{0,600}/create[^\n]{0,600}(http|powershell|\.ps1)", I),
    re.compile(r"\.config/autostart/|LaunchAgents/[^\s]{0,600}\.plist[^\n]{0,600}(curl|http|/tmp/)", I),
]
PERSISTENCE_CAUTION = [
    re.compile(r"\bsystemctl\s+(--user\s+)?enable\b|/etc/systemd/system/|\.config/systemd/user/", I),
    re.compile(r"\blaunchctl\s+(load|bootstrap)\b|LaunchAgents/|LaunchDaemons/", I),
    re.compile(r"\bschtasks\b[^\n]{0,600}/create|\bPROMPT_COMMAND=|core\.hooksPath|\.git/hooks/", I),
]
PAYLOAD_RED_FLAGS = re.compile(
    r"\b(curl|wget|nc|ncat|socat|base64|eval|exec)\b|/dev/tcp/|/tmp/\.|/dev/shm/|python[0-9.]*\s+-c"
    r"|\balias\s+(sudo|su|passwd)=|LD_PRELOAD|https?://|\bnohup\b|(~|\$HOME)/\.[\w-]+/[^\s'\"]{0,600}\.(sh|py|bin|elf)\b", I)

# ---------------------------------------------------------------- obfuscation
BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/]{120,}={0,2}(?![A-Za-z0-9+/_-])")
HEX_BLOB = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){32,}(?![0-9A-Fa-f])")
OPAQUE_HEX_MIN = 256
"""Hex that does not decode to text is only worth a mention when this long (digests are shorter)."""
ESCAPED_BYTES = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){12,}|(?:\\[0-7]{3}){12,}|(?:\\u00[0-9A-Fa-f]{2}){12,}")
CHAR_CODES = re.compile(r"(chr\(\s*\d+\s*\)\s*\+?\s*){6,}|String\.fromCharCode\(\s*(\d+\s*,\s*){6,}", I)
EXEC_WORDS = re.compile(r"\b(eval|exec|system|popen|subprocess|os\.system|Function|sh|bash)\b", I)

# ---------------------------------------------------------------- outside the skill's folder (scripts)
OUTSIDE_TARGET = r"[\"']?(/(?!tmp\b|dev/null|dev/std|proc/self/fd)[A-Za-z]|~/|\$HOME\b|\$\{HOME\}|\.\./\.\./)"
SENSITIVE_TARGET = re.compile(r"^[\"']?(/etc/|/usr/|/bin/|/sbin/|/boot/|/lib|/System/|/Library/"
                              r"|(~|\$HOME|\$\{HOME\})/\.(ssh/authorized_keys|ssh/rc\b|config/autostart|local/bin/(sudo|git|ssh|ls|su)\b))")
"""Targets whose writing is dangerous; other dotfiles in the home folder (a symlinked .zshrc, a deploy
key, known_hosts) are `caution`: shell start-up files are judged by what is written into them."""
SHELL_WRITE = re.compile(r"(?:>>?|\btee\s+(?:-a\s+)?|\b(?:cp|mv|install|ln\s+-s\w*|rsync)\s+(?:-\w+\s+){0,6}\S+\s+)\s*(" + OUTSIDE_TARGET + r"\S*)")
PY_WRITE = re.compile(r"open\(\s*[rfb]?[\"']((/|~)[^\"']{0,600})[\"']\s*,\s*[\"'][wax]|(write_text|write_bytes|shutil\.(copy\w*|move))\("
                      r"[^\n]{0,600}(Path\.home\(\)|expanduser|[\"']/(etc|usr|bin)/)")
CREDENTIAL_ACCESS = re.compile(r"\b(glob|open|read\w*|listdir|scandir|iterdir|walk|cat|cp|tar|zip|rglob|copy\w*)\b", I)
OUTSIDE_READ = re.compile(r"\.\./\.\./|Path\.home\(\)|expanduser\(\s*[\"']~|os\.environ\[[\"']HOME|\$HOME\b|\$\{HOME\}|~/"
                          r"|[\"'](/etc/|/root/|/home/|/Users/|/var/lib/)")

# ---------------------------------------------------------------- reverse shells
REVERSE_SHELL = [
    re.compile(r"/dev/(tcp|udp)/[^\s/]+/\d+[^\n]{0,600}(0>&1|>&\s*\d|<&\s*\d|\s-i\b)|(\s-i\b|0<&|exec\s+\d*<>)[^\n]{0,600}/dev/(tcp|udp)/"
               r"|\bexec\s+\d+<>\s*/dev/(tcp|udp)/"),
    re.compile(r"\b(nc|ncat|netcat|nc\.traditional)\b[^\n|;]{0,600}\s-[a-z]*[ec]\s*['\"]?\S*(sh|bash|cmd(\.exe)?|powershell)\b", I),
    re.compile(r"\bmkfifo\b[^\n]{0,600}\b(nc|ncat|netcat|telnet|openssl\s+s_client)\b"
               r"|\b(ba|z)?sh\s+-i\b[^\n]{0,600}\|\s*(nc|ncat|netcat|telnet|openssl)\b"
               r"|\b(nc|ncat|netcat|telnet)\s[^\n|]{0,600}\|\s*(/bin/)?(ba|z)?sh\b", I),
    re.compile(r"\bsocat\b[^\n]{0,600}(exec|system):[^\n]{0,600}\b(sh|bash|pty)\b|\bsocat\b[^\n]{0,600}\btcp[^\n]{0,600}\b(exec|system):", I),
    re.compile(r"\b(socket|fsockopen|TCPSocket|IO::Socket)\b[^\n]{0,600}(dup2|\bexec\b|spawn|/bin/(ba)?sh|popen|\bsystem\b)", I),
    re.compile(r"/inet/tcp/\d+/|\bztcp\b[^\n]{0,200}\b(z|ba)?sh\b|\bsh\s+-i\b[^\n]{0,100}\d<>\s*/dev/tcp/", I),
    re.compile(r"\bs_client\b[^\n]{0,600}\|\s*(/bin/)?(ba)?sh\b|Net\.Sockets\.TCPClient[^\n]{0,600}(iex|Invoke-Expression|GetStream)", I),
]

# ---------------------------------------------------------------- exfiltration by shell
SECRET_REF = re.compile(
    r"(~|\$HOME|\$\{HOME\}|/home/[\w.-]+|/root|/Users/[\w.-]+)/\.(ssh|aws|gnupg|kube|docker|netrc|git-credentials|pgpass"
    r"|npmrc|pypirc|config/gcloud|password-store|electrum|bitcoin|mozilla|config/google-chrome)\b(?![\w.-]{0,600}\.pub\b)"
    r"(?!/known_hosts|/config\b)|\bid_(rsa|dsa|ecdsa|ed25519)\b(?!\.pub)|\.aws/credentials|/etc/shadow"
    r"|(?<![\w.-])\.env(?![\w.-])|\bwallet\.dat\b|Login Data|\bkeychain\b|\.git-credentials|(?<![\w.-])\.netrc\b"
    r"|\.(bash|zsh)_history\b|\blogins\.json\b|\bkey[34]\.db\b|\.mozilla/firefox|Chrome/[^\s'\"]{0,40}(Cookies|Web Data)"
    r"|\bExodus/|\bElectrum/wallets|\bsecurity\s+(find-generic-password|find-internet-password|dump-keychain)\b"
    r"|(Path\.home\(\)|expanduser\(\s*['\"]~['\"]\s*\))\s*[/,]\s*['\"]\.(ssh|aws|gnupg|kube|netrc)\b"
    r"|expanduser\(\s*['\"]~/\.(ssh|aws|gnupg|kube|netrc)\b(?![\w./-]{0,600}\.pub)", I)
SECRET_REF = Prefiltered(SECRET_REF, ("/.", "'.", '".', "id_", ".aws", "shadow", ".env", "wallet", "login data",  # type: ignore[assignment]
                                      "keychain", "credentials", "netrc", "_history", "logins", "key3", "key4", "mozilla",
                                      "chrome/", "exodus", "electrum", "security"))
READERS = re.compile(r"^\s*(sudo\s+)?(cat|tac|tar|zip|7z|gzip|bzip2|xz|base64|xxd|od|head|tail|less|more|openssl|gpg"
                     r"|strings|find|grep|jq|awk|sed|cut|sort|dd|cp|rsync)\b", I)
ENV_READERS = re.compile(r"^\s*(env|printenv|set|export\s+-p|compgen\s+-e|declare\s+-x?p)\s*$|/proc/\S*/environ", I)
SENDERS = re.compile(r"\b(curl|wget|nc|ncat|netcat|socat|telnet|sendmail|mailx?|mutt|openssl\s+s_client|ssh\s+\S*@?\S+"
                     r"|gh\s+gist|http|https|xh|aws\s+s3|gsutil|rclone|scp|ftp|tftp|dig|nslookup|host)\b", I)
SEND_ARG = re.compile(r"(\s-d|--data[\w-]*|\s-F|--form|--upload-file|\s-T|\s--body-file|\s-b|--post-file=?|--post-data=?"
                      r"|--body-file=?)\s*['\"]?[^'\"\s]{0,600}@?", I)
IDENTITY_ARG = re.compile(r"(\s-i|--key|--cert|--cacert|--identity|IdentityFile=|--netrc-file|-K)\s*['\"]?\S*$")
PUSH_SECRETS = re.compile(r"\bgit\s+(-C\s+|--git-dir=|--work-tree=)\S*|\bcd\s+|\bgit\s+add\b[^\n]{0,600}|\bcp\s+-\w*r\w*\s+|\brsync\s+"
                          r"|\btar\b[^\n]{0,600}|\bzip\s+-r\b[^\n]{0,600}|\bln\s+-s\w*\s+", I)
REMOTE_SENDERS = re.compile(r"\bgit\s+push\b|\bgh\s+(gist|repo)\s+create\b|\baws\s+s3\s+(cp|sync|mv)\b|\bgsutil\s+(cp|rsync)\b"
                            r"|\brclone\s+(copy|sync)\b|\bscp\b|\brsync\b[^\n]{0,600}\s\S+:|\bcurl\b|\bwget\b[^\n]{0,600}--post|\bnc\b"
                            r"|\bsocat\b|/dev/tcp/|\bftp\b|\bsmbclient\b", I)
REMOTE_SENDERS = Prefiltered(REMOTE_SENDERS, ("git", "gist", "repo", "aws", "gsutil", "rclone", "scp", "rsync",  # type: ignore[assignment]
                                              "curl", "wget", "nc", "socat", "/dev/tcp/", "ftp", "smbclient"))

UPLOADERS = re.compile(r"\b(gh\s+gist\s+(create|edit)|aws\s+s3\s+(cp|sync|mv)|gsutil\s+(-m\s+)?(cp|rsync|mv)|rclone\s+(copy|sync|move"
                       r"|copyto)|rsync|az\s+storage\s+blob\s+upload(-batch)?|gcloud\s+storage\s+cp)\b", I)
"""Commands that upload the files they are given (to a gist, a bucket, another machine)."""

PASSWORD_PHISHING = re.compile(r"\bosascript\b[^\n]{0,400}\bhidden answer\b|\bdisplay dialog\b[^\n]{0,300}\bhidden answer\b", I)
SECRET_HEADER_VAR = re.compile(r"\$\{?([A-Z][A-Z0-9]*)_[A-Z0-9_]*(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY"
                               r"|CREDENTIAL)[A-Z0-9_]*\}?")
GENERIC_VENDORS = {"API", "APP", "AUTH", "ACCESS", "SECRET", "MY", "USER", "SERVICE", "CLIENT", "BOT", "DEPLOY", "CI",
                   "PRIVATE", "PERSONAL", "BEARER", "SESSION", "REFRESH", "ID", "X"}

# ---------------------------------------------------------------- naming a secret without collecting it
NOT_COLLECTING = re.compile(
    r"--exclude(-from)?[= ]\s*(['\"][^'\"\n]{0,200}['\"]|\S+)|--ignore(-file)?[= ]\s*(['\"][^'\"\n]{0,200}['\"]|\S+)"
    r"|(!\s*|-not\s+)-(i?name|i?path|i?wholename)\s+(['\"][^'\"\n]{0,200}['\"]|\S+)|--glob[= ]\s*['\"]?!\S+"
    r"|\[\[?\s*!?\s*-[efsrwdhL]\s+(['\"][^'\"\n]{0,200}['\"]|\S+)\s*\]\]?|\btest\s+!?\s*-[efsrwdhL]\s+\S+"
    r"|\bgit\s+(check-ignore|rm\s+(-r\s+)?--cached|ls-files\s+--error-unmatch)\s+[^;&|\n]{0,200}"
    r"|\b(echo|printf)\s+[^;&|\n>]{0,200}>>?\s*['\"]?\S*\.(git|docker|npm|vercel|slug|gcloud)ignore\b"
    r"|\bgrep\s+(-\w+\s+){0,4}[^;&|\n]{0,200}\s['\"]?\S*\.(git|docker|npm|vercel|slug|gcloud)ignore\b"
    r"|\b(exists|is_file|isfile|access|lexists)\(\s*['\"][^'\"\n]{0,200}['\"]\s*\)"
    r"|(Path|path)\(\s*['\"][^'\"\n]{0,200}['\"]\s*\)\s*\.(exists|is_file)\(\)"
    r"|\bignore_patterns\([^)\n]{0,300}\)|\b(exclude|ignore|excludes|ignored)\s*[=:]\s*\[[^\]\n]{0,300}\]", re.I)
ZIP_EXCLUDE = re.compile(r"\bzip\b[^;&|\n]{0,300}?\s(?P<x>(-x|--exclude)(\s+(['\"][^'\"\n]{0,200}['\"]|[^\s;&|'\"-]\S*))+)")
"""A credential file named only to leave it out or to test for it: `tar --exclude='.env'`, `! -name .env`,
`zip -x .env`, `[ -f .env ]`, `echo .env >> .gitignore`, `Path(".env").exists()`, `ignore_patterns('.env')`."""

# ---------------------------------------------------------------- git remotes, pushes and ssh commands
FORGES = re.compile(r"(^|\.)(github\.com|githubusercontent\.com|gitlab\.com|bitbucket\.org|codeberg\.org|sr\.ht"
                    r"|dev\.azure\.com|visualstudio\.com|huggingface\.co|gitea\.com|heroku\.com|kernel\.org|sourceforge\.net"
                    r"|salsa\.debian\.org|gitlab\.gnome\.org|googlesource\.com|launchpad\.net|pagure\.io|gitee\.com)$", I)
"""Public git hosts: a push there is publishing, not a push to a machine the skill's author picked."""
TOKEN_HOSTS = {"GITHUB": "github.com", "GH": "github.com", "GITLAB": "gitlab.com", "CI": "gitlab.com",
               "BITBUCKET": "bitbucket.org", "HF": "huggingface.co", "HUGGINGFACE": "huggingface.co",
               "HEROKU": "heroku.com", "CODEBERG": "codeberg.org", "GITEA": "gitea.com", "AZURE": "azure.com"}
GIT_SSH_VALUE = re.compile(r"\b(?P<var>GIT_SSH_COMMAND|GIT_SSH)\s*=\s*(?P<v>\"[^\"\n]*\"|'[^'\n]*'|\S+)"
                           r"|\bcore\.sshCommand[\"']?\s*[= ]\s*(?P<c>\"[^\"\n]*\"|'[^'\n]*'|\S+)", I)
GIT_REMOTE_SET = re.compile(r"\bgit\b[^;&|\n]{0,200}?\bremote\s+(?P<op>add|set-url)\s+(?P<opts>(-[-\w]+\s+){0,4})(?P<name>[\w.-]+)"
                            r"\s+[\"']?(?P<url>[^\"'\s;&|]+)"
                            r"|\bgit\b[^;&|\n]{0,200}?\bconfig\s+(--\w+\s+){0,3}remote\.(?P<cname>[\w.-]+)\.(?P<key>url|pushurl)"
                            r"\s+[\"']?(?P<curl>[^\"'\s;&|]+)", I)
GIT_INSTEAD_OF = re.compile(r"\burl\.[\"']?(?P<to>[^\"'\s]+?)[\"']?\.(?P<push>push)?insteadOf[\"']?\s*[= ]\s*[\"']?(?P<from>[^\"'\s;&|]+)", I)
GIT_PUSH = re.compile(r"\bgit\b(?:\s+(?:-c\s+[^\s\"']*(?:\"[^\"\n]*\"|'[^'\n]*')?[^\s\"']*|-C\s+\S+|--[\w-]+(?:=\S+)?))*"
                      r"\s+push\b(?P<args>[^;&|\n]*)", I)
KEY_CUES = re.compile(r"\s-i\s+[\"']?(~|\$HOME|\$\{HOME\}|/home/[\w.-]+|/root|/Users/[\w.-]+)/\.ssh/"
                      r"|StrictHostKeyChecking[= ]+(no|off|accept-new)|UserKnownHostsFile[= ]+/dev/null|ForwardAgent[= ]+yes", I)
"""The user's own ssh key, or host checking switched off, handed to git for this push."""
SSH_CMD_LEAK = re.compile(r"\b(nc|ncat|netcat|socat|curl|wget|telnet|openssl\s+s_client)\b|/dev/(tcp|udp)/|\bProxyCommand\b"
                          r"|\b(cat|base64|xxd|tar|cp|scp)\b[^\"'\n]{0,80}\.ssh/", I)

# ---------------------------------------------------------------- vendors' own installers
OFFICIAL_INSTALLERS = re.compile(
    r"^https://(sh\.rustup\.rs|get\.k3s\.io|astral\.sh/(uv|ruff)/[\w./-]*install\.(sh|ps1)|bun\.sh/install|deno\.land/install\.sh"
    r"|get\.docker\.com|deb\.nodesource\.com/setup_[\w.]+|rpm\.nodesource\.com/setup_[\w.]+|install\.python-poetry\.org"
    r"|get\.pnpm\.io/install\.sh|fnm\.vercel\.app/install|tailscale\.com/install\.sh|ollama\.com/install\.sh|get\.sdkman\.io"
    r"|starship\.rs/install\.sh|pyenv\.run|install\.determinate\.systems/nix|nixos\.org/nix/install|sh\.vector\.dev"
    r"|cli\.doppler\.com/install\.sh|get\.helm\.sh|raw\.githubusercontent\.com/(Homebrew/install|nvm-sh/nvm|helm/helm"
    r"|ohmyzsh/ohmyzsh|rbenv/rbenv-installer|pyenv/pyenv-installer)/[\w./-]+|get\.rvm\.io|mise\.run|sh\.uv\.dev"
    r"|opencode\.ai/install|claude\.ai/install\.sh|get\.volta\.sh|install\.julialang\.org|get\.jenkins\.io"
    r"|(community\.)?chocolatey\.org/install\.ps1|dl\.cloudsmith\.io/public/[\w.-]+/[\w.-]+/setup\.(deb|rpm|alpine)\.sh"
    r"|packagecloud\.io/install/repositories/[\w.-]+/[\w.-]+/script\.(deb|rpm|python|node|gem)\.sh)(?=[/?]|$)[\w./?=&-]*$")
"""Install scripts that vendors publish on their own domain (rustup, k3s, uv, Homebrew, nvm, Docker, Chocolatey's
install.ps1, the repository set-up scripts Cloudsmith and packagecloud generate for a package repository...):
piped into a shell they are the documented install, judged `caution` (check it), not a hidden payload."""
GITHUB_RELEASE_ASSET = re.compile(
    r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<project>[\w.-]+)/releases/(latest/download|download/(?!\.\./)[\w.${}+-]+)"
    r"/(?P<asset>[\w.${}+-]+\.(sh|ps1))$")
"""A script among a project's GitHub release assets (versioned, published with the project's releases)."""
