"""Configuration: the TOML file, `${ENV}` interpolation for secrets, and strict validation.

Every section is a pydantic model that forbids unknown keys, so a typo is an error that names
the file and the key instead of a setting silently ignored. `${NAME}` is read from the
environment (and from `HERMES_HOME/secrets.env`) when the file is loaded; a variable missing
inside an enabled section is an error that names it, inside a disabled section it reads as "".
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.mcp.settings import McpConfig
from agent.settings import AgentConfig, LearningConfig, MemoryConfig, ModelConfig, Section, ToolsConfig
from agent.tools.web_search_settings import WebSearchConfig
from gateway.home import Home
from gateway.toolsets import ToolsetsConfig

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """A configuration problem, with the file and key it concerns."""


class ApiConfig(Section):
    """`[api]`: web chat, dashboard, OpenAI-compatible endpoint, /healthz, /metrics."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    token: str = ""
    session_hours: float = Field(12.0, gt=0, le=24 * 365, description="a dashboard login lasts this long")
    trusted_proxies: list[str] = Field(default_factory=list, description=(
        "reverse proxies (addresses or networks) whose X-Forwarded-Proto/-For are believed"))

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        from gateway.api.auth import parse_proxies

        parse_proxies(value)
        return value


class ChannelConfig(Section):
    """Per-channel overrides inside a platform section: `[telegram.channels."-100123"]`."""

    allowed: bool = True
    require_mention: bool | None = None
    session_scope: Literal["user", "channel", "thread"] | None = None


class PlatformConfig(Section):
    """The shape shared by `[telegram]`, `[discord]` and `[slack]`."""

    enabled: bool = False
    token: str = ""
    api_base: str = ""
    allow_users: list[str] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
    allow_channels: list[str] = Field(default_factory=list, description="group chats the bot answers in")
    require_mention: bool = True
    session_scope: Literal["user", "channel", "thread"] = "user"
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)

    @field_validator("allow_users", "admins", "allow_channels", mode="before")
    @classmethod
    def _ids_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value


class TelegramConfig(PlatformConfig):
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = Field("", description="public HTTPS URL Telegram posts to; its path is served on [api]")
    webhook_secret: str = Field("", description="16-256 chars of A-Za-z0-9_-, checked on every webhook call")
    poll_timeout: float = Field(30.0, ge=0)
    max_attachment_mb: int = Field(20, ge=0, le=2000, description="larger files are named, not downloaded")


class DiscordConfig(PlatformConfig):
    gateway_url: str = Field("", description="websocket URL, e.g. wss://gateway.discord.gg/ (proxies)")
    shard_count: int = Field(1, ge=1, le=4096, description="gateway shards; each is held by one process "
                                                            "of a cluster (Discord requires more past 2,500 guilds)")
    max_attachment_mb: int = Field(20, ge=0, le=2000, description="larger files are named, not downloaded")


class SlackConfig(PlatformConfig):
    mode: Literal["socket", "http"] = "http"
    app_token: str = Field("", description="xapp-... token, needed for mode = \"socket\"")
    signing_secret: str = ""
    events_path: str = "/slack/events"
    max_attachment_mb: int = Field(20, ge=0, le=2000, description="larger files are named, not downloaded")


class SkillsConfig(Section):
    """`[skills]`: the library and its share of the system prompt."""

    prompt_budget_tokens: int = Field(1_500, ge=100)
    install_bundled: bool = True
    max_skill_chars: int = Field(20_000, ge=1_000, description="largest SKILL.md a review may write")
    embedding_model: str = Field("", description="LiteLLM embedding model for the near-duplicate check; "
                                                 "empty: lexical only")
    embedding_api_base: str = ""
    embedding_api_key: str = Field("", description='e.g. "${OPENAI_API_KEY}"; empty: the provider\'s default')


class HubConfig(Section):
    """`[hub]`: where `hermes skills browse/install/publish` look (taps added by the CLI live in
    HERMES_HOME/hub/taps.json; these are extra)."""

    github_api: str = Field("https://api.github.com", description="REST base; GitHub Enterprise: https://HOST/api/v3")
    github_token: str = Field("", description='e.g. "${GITHUB_TOKEN}"; empty falls back to $GITHUB_TOKEN')
    git_base: str = Field("https://github.com", description="where owner/repo tap shorthands point")
    indexes: list[str] = Field(default_factory=list, description="sites serving /.well-known/skills/index.json")
    taps: dict[str, str] = Field(default_factory=dict, description="name -> git URL or index .json URL")
    allow_http: bool = Field(False, description="allow plain http:// sources (loopback always is)")
    timeout: float = Field(30.0, gt=0)
    max_file_bytes: int = Field(1_000_000, ge=1_000)
    max_total_bytes: int = Field(10_000_000, ge=10_000)


class TeamConfig(Section):
    name: str
    channels: list[str] = Field(default_factory=list, description="platform:channel ids, e.g. slack:C123")
    trajectories_export: bool = Field(False, description="allow `hermes trajectories export --from-sessions`")


class CronConfig(Section):
    """`[cron]`: scheduled jobs."""

    enabled: bool = True
    timezone: str = "UTC"
    grace_seconds: int = Field(3_600, ge=0)
    max_iterations: int = Field(20, ge=1)
    timeout: float = Field(600.0, gt=0)


class StoreConfig(Section):
    """`[store]`: where state lives. The embedded default is SQLite in HERMES_HOME."""

    url: str = Field("", description="sqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB; empty means "
                     "HERMES_STORE_URL, else HERMES_HOME/state.db")
    backend: Literal["sqlite", "postgresql"] = Field("sqlite", description="deprecated: the url says which")
    path: str = Field("", description="deprecated: SQLite file; use url")
    retention_days: int = Field(0, ge=0, description="prune transcripts older than this; 0 keeps all")


class ApprovalsConfig(Section):
    """`[approvals]`: risky tool calls wait for the user's answer in the chat (gateway/approvals.py)."""

    timeout_seconds: float = Field(120.0, gt=0, le=86_400, description="no answer within this time means deny")


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid")

    model: ModelConfig = Field(default_factory=ModelConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    discord: DiscordConfig = Field(default_factory=DiscordConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    skills: SkillsConfig = Field(default_factory=SkillsConfig)
    hub: HubConfig = Field(default_factory=HubConfig)
    teams: list[TeamConfig] = Field(default_factory=list)
    cron: CronConfig = Field(default_factory=CronConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    mcp: McpConfig = Field(default_factory=McpConfig)
    web_search: WebSearchConfig = Field(default_factory=WebSearchConfig)
    toolsets: ToolsetsConfig = Field(default_factory=ToolsetsConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    trajectories_export: bool = Field(False, description="default for sessions outside any [[teams]] entry")

    def with_model(self, name: str | None) -> Config:
        """A copy whose primary model is `name` (the `--model` flag), when given."""
        if not name:
            return self
        return self.model_copy(update={"model": self.model.model_copy(update={"name": name})})


MODEL_HELP = (
    "No model is configured. Set one in the config file:\n"
    '  [model]\n  name = "openai/gpt-4o-mini"   # any LiteLLM model string\n'
    "or pass --model on the command line, and export the provider's key (e.g. OPENAI_API_KEY)."
)


def read_text(path: Path) -> str:
    """A config or secrets file as text; ConfigError naming the line when it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          "save the file as UTF-8") from None


def read_secrets_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a secrets file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ")
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def _interpolate(value: Any, env: dict[str, str], where: str, enabled: bool, file: Path) -> Any:
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in env:
                return env[name]
            if enabled:
                raise ConfigError(
                    f"{file}: {where}: environment variable {name} is not set "
                    f"(export it, or put {name}=... in the secrets file)"
                )
            return ""

        return ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, list):
        return [_interpolate(v, env, f"{where}[{i}]", enabled, file) for i, v in enumerate(value)]
    if isinstance(value, dict):
        section_enabled = enabled and value.get("enabled", True) is not False
        return {k: _interpolate(v, env, f"{where}.{k}" if where else k, section_enabled, file)
                for k, v in value.items()}
    return value


def _format_validation_error(file: Path, error: ValidationError) -> str:
    lines = [f"{file}: invalid configuration:"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  {location}: unknown key (check the spelling against config.example.toml)")
        else:
            lines.append(f"  {location}: {item['msg']} (got {item.get('input')!r})"
                         if item["type"] != "missing" else f"  {location}: {item['msg']}")
    return "\n".join(lines)


TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _format_syntax_error(file: Path, text: str, error: tomllib.TOMLDecodeError) -> str:
    """`FILE:LINE:COLUMN: not valid TOML: what`, and the line itself with a caret under the column."""
    message = str(error)
    match = TOML_POSITION.search(message)
    if match is None:
        return f"{file}: not valid TOML: {message}"
    line, column = int(match.group(1)), int(match.group(2))
    what = TOML_POSITION.sub("", message).strip()
    lines = text.splitlines()
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    return (f"{file}:{line}:{column}: not valid TOML: {what} (line {line})\n"
            f"  {shown}\n  {' ' * max(column - 1, 0)}^")


def parse_config(text: str, file: Path, env: dict[str, str]) -> Config:
    """Parse TOML text into a validated Config; errors name the file and key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_format_syntax_error(file, text, exc)) from exc
    interpolated = _interpolate(raw, env, "", True, file)
    try:
        return Config.model_validate(interpolated)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(file, exc)) from exc


def load_config(path: Path | None, home: Home, environ: dict[str, str] | None = None) -> Config:
    """Load the config file (default `HERMES_HOME/config.toml`); a missing default file means defaults.

    Values in `HERMES_HOME/secrets.env` are added to the process environment when they are not
    already set there (or set but empty), so LiteLLM's own variables (OPENAI_API_KEY, ...) may live in that file.
    """
    env_source = os.environ if environ is None else environ
    secrets = read_secrets_file(home.secrets_file)
    for key, value in secrets.items():
        if not env_source.get(key):  # an empty variable (e.g. `NAME=` in a compose .env) counts as unset
            env_source[key] = value
    env = dict(env_source)
    file = path or home.config_file
    if not file.exists():
        if path is not None:
            raise ConfigError(f"{file}: no such config file")
        return Config()
    return parse_config(read_text(file), file, env)
