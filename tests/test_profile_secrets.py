"""`hermes profile export` carries no literal secret: every kind (keys under secret names, URL
user-info, secret query keys, MCP headers, env and args, DSNs, Slack/Discord/other webhook URLs in
cron jobs, api_base query strings) becomes a `${NAME}` reference, the export lists the names, and
an import with those names set gives back the very same values."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

from gateway.config import load_config
from gateway.cron.jobs import JobStore
from gateway.cron.schedule import parse_schedule
from gateway.home import Home
from gateway.profiles import import_profile
from gateway.store import open_store

SECRETS = {
    "model_key": "plain-model-key-77aa",
    "base_key": "QueryKey5566",
    "searx_pw": "searx-pw-1234",
    "dsn_pw": "dsn-pw-5678",
    "arg_key": "arg-key-9012",
    "env_dsn_pw": "env-dsn-pw-3456",
    "env_token": "env-token-7890",
    "mcp_url_pw": "mcp-url-pw-2468",
    "mcp_query": "mcp-query-1357",
    "bearer": "bearer-hdr-8642",
    "x_api_key": "x-api-key-9753",
    "bot": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",
    "signing": "slack-signing-5a5a5a5a",
    "app_token": "xapp-1-A0000-000000-abcdefabcdef",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "tap_pw": "tap-pw-1122",
    "slack_hook": "T0000/B0000/SlackHookSecret99",
    "discord_hook": "DiscordHookSecretabcdefghijklmn",
    "sig": "sig-value-4433",
    "api_token": "literal-api-token-value-0099887766",
}
S = SECRETS

CONFIG = f"""[model]
name = "openai/gpt-4o-mini"
api_key = "{S['model_key']}"
api_base = "https://llm.example/v1?api_key={S['base_key']}&region=eu"

[api]
token = "{S['api_token']}"

[telegram]
enabled = false
token = "{S['bot']}"

[slack]
enabled = false
signing_secret = "{S['signing']}"
app_token = "{S['app_token']}"

[web_search]
backend = "searxng"
url = "https://searx-user:{S['searx_pw']}@searx.example"

[hub]
github_token = "{S['github']}"
taps = {{ team = "https://gituser:{S['tap_pw']}@git.example/skills.git" }}

[[mcp.servers]]
name = "pg"
command = "mcp-postgres"
args = ["--dsn", "postgres://app:{S['dsn_pw']}@db.internal/app", "--api-key={S['arg_key']}", "-v"]
env = {{ DATABASE_URL = "postgres://app:{S['env_dsn_pw']}@db.internal/app", SERVICE_TOKEN = "{S['env_token']}", LOG_LEVEL = "info" }}

[[mcp.servers]]
name = "docs"
url = "https://mcpuser:{S['mcp_url_pw']}@mcp.example/mcp?token={S['mcp_query']}"
headers = {{ Authorization = "Bearer {S['bearer']}", X-Api-Key = "{S['x_api_key']}", Accept = "application/json" }}
"""

TARGETS = [f"webhook:https://hooks.slack.com/services/{S['slack_hook']}",
           f"webhook:https://discord.com/api/webhooks/123456789/{S['discord_hook']}",
           f"webhook:https://hooks.example/a?sig={S['sig']}"]


async def populate(home: Home) -> None:
    home.ensure()
    home.config_file.write_text(CONFIG, encoding="utf-8")
    store = await open_store(home.state_db)
    try:
        jobs = JobStore(store)
        for index, target in enumerate(TARGETS):
            await jobs.create(name=f"job {index}", schedule=parse_schedule("0 9 * * *", "UTC"),
                              prompt="post the digest", target=target)
    finally:
        await store.close()


def archive_text(path: Path) -> str:
    with tarfile.open(path) as packed:
        parts = [packed.extractfile(m).read().decode() for m in packed.getmembers() if m.isfile()]  # type: ignore[union-attr]
    return "\n".join(parts) + gzip.decompress(path.read_bytes()).decode(errors="replace")


async def test_export_replaces_every_secret_kind_and_import_restores_them(tmp_path: Path) -> None:
    source, target = Home(tmp_path / "a"), Home(tmp_path / "b")
    await populate(source)
    archive = tmp_path / "profile.tar.gz"
    env = {**os.environ, "HERMES_HOME": str(source.root)}
    done = subprocess.run([sys.executable, "-m", "gateway", "profile", "export", str(archive)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    packed = archive_text(archive)
    leaked = [name for name, value in SECRETS.items() if value in packed]
    assert leaked == [], f"exported as is: {leaked}"
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("profile.json").read())  # type: ignore[union-attr]
        jobs = json.loads(tar.extractfile("cron/jobs.json").read())  # type: ignore[union-attr]
    names = manifest["env_names"]
    assert len(names) == len(SECRETS) == len(set(names))
    assert all(name in done.stderr for name in names)             # the CLI tells the user what to set
    assert "application/json" in packed and "LOG_LEVEL" in packed and "region=eu" in packed   # not secrets
    assert all(job["target"].startswith("webhook:https://") and "${" in job["target"] for job in jobs)

    # import elsewhere, with the named secrets set: the same configuration and jobs come back
    report = await import_profile(target, archive)
    assert report.env_names == names
    assert any("not set here yet" in note for note in report.notes)
    with tarfile.open(archive) as tar:
        exported = tomllib.loads(tar.extractfile("config.toml").read().decode())  # type: ignore[union-attr]
    values: dict[str, str] = {}
    pairs = list(zip(strings(exported), strings(tomllib.loads(CONFIG)), strict=True))
    pairs += [(job["target"], TARGETS[int(job["name"].split()[-1])]) for job in jobs]
    for template, original in pairs:
        pattern = re.escape(template)
        for name in re.findall(r"\\\$\\\{([A-Z0-9_]+)\\\}", pattern):
            pattern = pattern.replace(re.escape("${" + name + "}"), f"(?P<{name}>.+?)", 1)
        match = re.fullmatch(pattern, original)
        assert match, (template, original)
        values.update(match.groupdict())
    assert sorted(values.values()) == sorted(SECRETS.values())
    restored = load_config(None, target, environ=dict(values))
    original = load_config(None, source, environ={})
    assert restored.model_dump() == original.model_dump()


def strings(data: object) -> list[str]:
    """Every string in nested config data, in order."""
    if isinstance(data, dict):
        return [s for v in data.values() for s in strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in strings(v)]
    return [data] if isinstance(data, str) else []
