"""`hermes gateway install-service`: a systemd unit for the installed `hermes` and this HERMES_HOME.

By default it writes a user unit, `~/.config/systemd/user/hermes-gateway.service`, and prints the
`systemctl --user` commands that start it (plus `loginctl enable-linger` so it runs without a
login session). `--system` prints a system unit for the current user instead, with the commands
to install it as root. The unit restarts on failure, reloads the configuration with SIGHUP
(`systemctl reload`), gives running turns time to finish on stop, and is sandboxed: no new
privileges, a read-only system and home except HERMES_HOME, a private /tmp.

`deploy/hermes-gateway.service` is `render_unit` for a dedicated `hermes` user with the package
in /opt/hermes (a test keeps the two identical).
"""

from __future__ import annotations

import getpass
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click

UNIT_NAME = "hermes-gateway.service"
STOP_TIMEOUT = 45  # seconds: the gateway's default grace (30 s) plus closing adapters


@dataclass(frozen=True)
class UnitSpec:
    exec_start: list[str]
    home: Path
    system: bool
    user: str = ""
    config: Path | None = None


def _quote(argument: str) -> str:
    """One ExecStart argument, quoted for systemd when needed; `%` and `$` are escaped."""
    escaped = argument.replace("%", "%%").replace("$", "$$")
    if any(c in escaped for c in " \t\"'\\;") or not escaped:
        escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def _env_value(value: str) -> str:
    return '"' + value.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"') + '"'


def hermes_command() -> list[str]:
    """How to run the installed `hermes`: the script beside this interpreter, else `python -m gateway`."""
    beside = Path(sys.executable).parent / "hermes"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside.absolute())]
    found = shutil.which("hermes")
    if found:
        return [str(Path(found).resolve())]
    return [str(Path(sys.executable).absolute()), "-m", "gateway"]


TEMP_ROOTS = (Path("/tmp"), Path("/var/tmp"))


def paths_in_temp(spec: UnitSpec) -> list[Path]:
    """What the service needs that lies under /tmp or /var/tmp, which PrivateTmp= would hide from it."""
    needed = [Path(spec.exec_start[0]), spec.home, *([spec.config] if spec.config else [])]
    return [p for p in needed if any(p == root or root in p.parents for root in TEMP_ROOTS)]


def render_unit(spec: UnitSpec) -> str:
    """The unit file text."""
    command = [*spec.exec_start, "gateway"]
    if spec.config is not None:
        command += ["--config", str(spec.config)]
    in_temp = paths_in_temp(spec)
    private_tmp = (["# PrivateTmp=no: " + ", ".join(map(str, in_temp)) + " lies under a temporary folder, which a "
                    "private /tmp would hide (and a reboot may empty)", "PrivateTmp=no"]
                   if in_temp else ["PrivateTmp=yes"])
    writable = [str(spec.home)]  # a --config file elsewhere stays readable (read-only) under the sandbox
    lines = [
        "# Hermes gateway: written by `hermes gateway install-service`.",
        "# Reload the configuration without dropping connections: systemctl " +
        ("" if spec.system else "--user ") + "reload hermes-gateway",
        "[Unit]",
        "Description=Hermes gateway (chat agent for Telegram, Discord, Slack and the web)",
    ]
    if spec.system:
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += [
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=exec",
    ]
    if spec.system and spec.user:
        lines += [f"User={spec.user}", f"Group={spec.user}"]
    lines += [
        f"Environment={_env_value('HERMES_HOME=' + str(spec.home))}",
        "Environment=PYTHONUNBUFFERED=1",
        "Environment=LITELLM_MODE=PRODUCTION",
        "ExecStart=" + " ".join(_quote(a) for a in command),
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={STOP_TIMEOUT}",
        "Restart=on-failure",
        "RestartSec=5",
        "UMask=0077",
        "# Hardening: the gateway writes only inside HERMES_HOME.",
        "NoNewPrivileges=yes",
        *private_tmp,
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "ReadWritePaths=" + " ".join(_quote(p) for p in writable),
        "ProtectControlGroups=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelTunables=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "RestrictRealtime=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",   # AF_NETLINK: the sandbox loopback (bwrap)
        "SystemCallArchitectures=native",
        "",
        "[Install]",
        "WantedBy=" + ("multi-user.target" if spec.system else "default.target"),
        "",
    ]
    return "\n".join(lines)


def user_unit_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base).expanduser() / "systemd" / "user" / UNIT_NAME


def install_user_unit(text: str, path: Path, *, force: bool) -> None:
    if path.exists() and path.read_text(encoding="utf-8") != text and not force:
        raise FileExistsError(f"{path} exists and differs: pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


@click.command("install-service")
@click.option("--system", "system", is_flag=True,
              help="Print a system-wide unit (run as the current user) and how to install it as root.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Config file the service uses (default: $HERMES_HOME/config.toml).")
@click.option("--force", is_flag=True, help="Replace an existing, different unit file.")
def install_service(system: bool, config_path: Path | None, force: bool) -> None:
    """Write a systemd unit that runs this gateway (a user unit unless --system)."""
    from gateway.home import Home

    home = Home.from_env().ensure()  # ReadWritePaths= must exist or the service cannot start
    spec = UnitSpec(hermes_command(), home.root, system, user=getpass.getuser(),
                    config=config_path.expanduser().resolve() if config_path else None)
    text = render_unit(spec)
    for path in paths_in_temp(spec):
        click.echo(f"hermes: warning: {path} is under a temporary folder: the unit runs it without a private /tmp, "
                   "and a reboot may delete it; install hermes (and HERMES_HOME) somewhere permanent", err=True)
    if system:
        click.echo(text, nl=False)
        click.echo(f"# Install it as root:\n"
                   f"#   hermes gateway install-service --system | sudo tee /etc/systemd/system/{UNIT_NAME}\n"
                   f"#   sudo systemctl daemon-reload && sudo systemctl enable --now hermes-gateway\n"
                   f"#   journalctl -u hermes-gateway -f     # logs also in {home.logs_dir}/hermes.jsonl",
                   err=True)
        return
    path = user_unit_path()
    try:
        install_user_unit(text, path, force=force)
    except OSError as exc:
        click.echo(f"hermes: error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {path}\n"
               "Start it now and at every boot:\n"
               "  systemctl --user daemon-reload\n"
               "  systemctl --user enable --now hermes-gateway\n"
               f"  loginctl enable-linger {spec.user}     # keep it running when you log out\n"
               "Reload the config (allowlists, teams, learning): systemctl --user reload hermes-gateway\n"
               "Logs: journalctl --user -u hermes-gateway -f, and "
               f"{home.logs_dir}/hermes.jsonl")


def deploy_unit() -> str:
    """`deploy/hermes-gateway.service`: a dedicated `hermes` user, the package in /opt/hermes."""
    return render_unit(UnitSpec(["/opt/hermes/bin/hermes"], Path("/var/lib/hermes"), True, user="hermes"))
