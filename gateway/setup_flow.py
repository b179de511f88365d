"""What `hermes setup` writes: a provider's minimal `[model]`, its key in secrets.env, a platform.

Kept apart from the prompts (gateway/cli/setup_cmd.py) so the interactive and the scripted runs
write the same thing. Idempotent: config.toml is edited in place with tomlkit, so comments, other
sections and keys set by hand stay; a secret already in secrets.env is replaced, never appended
twice; the file stays readable by its owner only (0600). Keys are referenced from the config as
`"${NAME}"`, never written into config.toml. Run again, it starts from what is there: the current
provider, model and api_base are the defaults (`current_model`), and a key already in secrets.env
is kept unless a new one is given.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit


@dataclass(frozen=True)
class Provider:
    """One choice of `hermes setup`: the model string it suggests and how it is reached."""

    label: str
    model: str
    key_env: str = ""             # the variable LiteLLM reads for this provider ("" = no key)
    api_base: str = ""
    needs_prefix: str = ""        # model names of this provider start with it ("openai/" for vLLM)
    dummy_key: str = ""           # servers that want some key but check none (vLLM, LM Studio)


PROVIDERS: dict[str, Provider] = {
    "openai": Provider("OpenAI", "openai/gpt-4o-mini", key_env="OPENAI_API_KEY"),
    "anthropic": Provider("Anthropic", "anthropic/claude-3-5-haiku-latest", key_env="ANTHROPIC_API_KEY"),
    "openrouter": Provider("OpenRouter", "openrouter/openai/gpt-4o-mini", key_env="OPENROUTER_API_KEY"),
    # ollama_chat/ uses /api/chat, which has tools; ollama/ goes to /api/generate, which has none
    "ollama": Provider("Ollama", "ollama_chat/llama3.1", api_base="http://localhost:11434",
                       needs_prefix="ollama_chat/"),
    "vllm": Provider("vLLM or LM Studio", "openai/served-model-name", api_base="http://localhost:8000/v1",
                     needs_prefix="openai/", dummy_key="dummy"),
    "openai-compatible": Provider("another OpenAI-compatible server", "openai/model-name",
                                  key_env="OPENAI_COMPATIBLE_API_KEY", api_base="http://localhost:8080/v1",
                                  needs_prefix="openai/"),
}

PLATFORM_TOKENS = {"telegram": "TELEGRAM_BOT_TOKEN", "discord": "DISCORD_BOT_TOKEN", "slack": "SLACK_BOT_TOKEN"}


class SetupError(ValueError):
    """A choice `hermes setup` cannot write; the text says which and why."""


@dataclass
class SetupChoices:
    provider: str
    model: str = ""
    api_base: str | None = None
    api_key: str = ""
    platform: str = ""
    platform_token: str = ""
    platform_user: str = ""
    extra_secrets: dict[str, str] = field(default_factory=dict)
    # secrets.env as it is: a key kept there counts as given
    stored_secrets: dict[str, str] = field(default_factory=dict)


def model_name(provider: Provider, typed: str) -> str:
    """The LiteLLM model string for what the user typed (the provider's prefix added when missing)."""
    name = typed.strip() or provider.model
    if provider.needs_prefix and not name.startswith(provider.needs_prefix):
        if provider.needs_prefix == "ollama_chat/" and name.startswith("ollama/"):
            name = name.removeprefix("ollama/")
        name = provider.needs_prefix + name
    return name


def api_base_problem(provider_id: str, api_base: str) -> str:
    """'' when `api_base` looks right for the provider, else what is wrong with it."""
    if not api_base:
        return "" if provider_id in ("openai", "anthropic", "openrouter") else "this provider needs an api_base URL"
    if not api_base.startswith(("http://", "https://")):
        return f"{api_base!r} is not an http:// or https:// URL"
    if provider_id in ("vllm", "openai-compatible") and not api_base.rstrip("/").endswith("/v1"):
        return f"an OpenAI-compatible api_base ends in /v1 (try {api_base.rstrip('/')}/v1)"
    return ""


def resolve(choices: SetupChoices) -> tuple[dict[str, Any], dict[str, str]]:
    """([model] table, secrets to store) for the choices; raises SetupError on a bad choice."""
    if choices.provider not in PROVIDERS:
        raise SetupError(f"unknown provider {choices.provider!r}; one of: {', '.join(PROVIDERS)}")
    provider = PROVIDERS[choices.provider]
    api_base = provider.api_base if choices.api_base is None else choices.api_base.strip()
    problem = api_base_problem(choices.provider, api_base)
    if problem:
        raise SetupError(f"api_base: {problem}")
    model: dict[str, Any] = {"name": model_name(provider, choices.model), "api_base": api_base}
    secrets: dict[str, str] = dict(choices.extra_secrets)
    key = choices.api_key.strip()
    if provider.key_env and key:
        secrets[provider.key_env] = key
        model["api_key"] = "${" + provider.key_env + "}"
    elif provider.key_env and not (os.environ.get(provider.key_env)
                                   or choices.stored_secrets.get(provider.key_env)):
        raise SetupError(f"{provider.label} needs an API key: pass --api-key or export {provider.key_env}")
    elif provider.key_env:
        model["api_key"] = "${" + provider.key_env + "}"
    elif provider.dummy_key:
        model["api_key"] = key or provider.dummy_key
    else:
        model["api_key"] = ""
    if choices.platform:
        if choices.platform not in PLATFORM_TOKENS:
            raise SetupError(f"unknown platform {choices.platform!r}; one of: {', '.join(PLATFORM_TOKENS)}")
        if not choices.platform_token.strip():
            raise SetupError(f"{choices.platform} needs its bot token (--platform-token)")
        secrets[PLATFORM_TOKENS[choices.platform]] = choices.platform_token.strip()
    return model, secrets


def current_model(path: Path) -> tuple[str, str, str]:
    """(provider, model name, api_base) of the `[model]` a config.toml has, the provider as `hermes
    setup` would have chosen it; empty strings when there is no readable config or no model."""
    try:
        section = tomlkit.parse(path.read_text(encoding="utf-8")).get("model") or {}
    except (OSError, tomlkit.exceptions.ParseError):
        return "", "", ""
    name, api_base, key = (str(section.get(k) or "") for k in ("name", "api_base", "api_key"))
    if not name:
        return "", "", ""
    by_key = [pid for pid, p in PROVIDERS.items() if p.key_env and key == "${" + p.key_env + "}"]
    if by_key:
        provider = by_key[0]
    elif name.startswith(("ollama_chat/", "ollama/")):
        provider = "ollama"
    elif name.startswith("anthropic/"):
        provider = "anthropic"
    elif name.startswith("openrouter/"):
        provider = "openrouter"
    elif api_base:
        provider = "vllm" if key == PROVIDERS["vllm"].dummy_key else "openai-compatible"
    else:
        provider = "openai"
    return provider, name, api_base


def write_config(path: Path, model: dict[str, Any], platform: str = "", user_id: str = "") -> str:
    """Set `[model]` (and enable `platform` with `user_id` allowed) in config.toml, keeping the rest.
    Returns the new text."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise SetupError(f"{path}: not valid TOML ({exc}); fix or move it, then run hermes setup again") from exc
    section = document.get("model")
    if section is None:
        section = tomlkit.table()
        document["model"] = section
    for key, value in model.items():
        section[key] = value
    if platform:
        table = document.get(platform)
        if table is None:
            table = tomlkit.table()
            document[platform] = table
        table["enabled"] = True
        table["token"] = "${" + PLATFORM_TOKENS[platform] + "}"
        if user_id:
            allowed = [str(u) for u in table.get("allow_users", [])]
            if user_id not in allowed:
                allowed.append(user_id)
            table["allow_users"] = allowed
            admins = [str(u) for u in table.get("admins", [])]
            if user_id not in admins:
                admins.append(user_id)
            table["admins"] = admins
    api = document.get("api")
    if api is None:
        api = tomlkit.table()
        document["api"] = api
    if not str(api.get("token", "")).strip():  # the web chat's login: generated into secrets.env
        api["token"] = "${HERMES_API_TOKEN}"
    new_text = tomlkit.dumps(document)
    _write_private(path, new_text, mode=0o600 if not path.exists() else None)
    return new_text


def write_secrets(path: Path, values: dict[str, str]) -> list[str]:
    """Set NAME=value lines in secrets.env (replacing earlier ones), mode 0600; returns the names set."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    remaining = dict(values)
    out: list[str] = []
    for line in lines:
        name = line.strip().removeprefix("export ").partition("=")[0].strip()
        if name in remaining:
            out.append(f"{name}={remaining.pop(name)}")
        else:
            out.append(line)
    out += [f"{name}={value}" for name, value in remaining.items()]
    _write_private(path, "\n".join(out) + "\n", mode=0o600)
    return sorted(values)


def _write_private(path: Path, text: str, mode: int | None) -> None:
    """Replace `path` atomically; `mode` (e.g. 0600) is applied before the new file is visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = mode if mode is not None else (path.stat().st_mode & 0o777)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, keep)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
