"""The checks a configuration must pass for `hermes gateway` to start, shared by `hermes config check`,
`hermes doctor` and `hermes gateway`, so a config that `check` accepts is one the gateway starts with.

`load_config` already refuses unknown keys, bad values and missing `${ENV}` variables; this adds
what only makes sense for a running gateway: the API token's strength (`[api] token` or
$HERMES_API_TOKEN; none at all is fine, one is generated on first start), the `[[teams]]` routes,
and each enabled platform section as its adapter reads it (built, never connected; platform
libraries are imported only for enabled platforms).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.config import Config, ConfigError


async def _ignore(_event: Any) -> None:
    return None


def api_token_problem(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """Why the gateway would refuse its API token, or None (also when there is none yet)."""
    from gateway.api.auth import GENERATE_HINT, TOKEN_ENV, token_problem

    if not config.api.enabled:
        return None
    env = os.environ if environ is None else environ
    configured = config.api.token.strip()
    token, where = (configured, "[api] token") if configured else (env.get(TOKEN_ENV, "").strip(), TOKEN_ENV)
    if not token:
        return None  # the gateway generates one on first start
    problem = token_problem(token)
    if problem is None:
        return None
    return (f"{where}: {problem}. The API, web chat and dashboard can run tools on this machine; generate a "
            f"token with: {GENERATE_HINT}")


def startup_problems(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Everything that would stop `hermes gateway` from starting with `config`, one line each."""
    from gateway.adapter_factory import build_adapters
    from gateway.routing import Router

    problems: list[str] = []
    token = api_token_problem(config, environ)
    if token:
        problems.append(token)
    try:
        Router(config)
    except ValueError as exc:
        problems.append(str(exc))
    for name in ("telegram", "discord", "slack"):  # one at a time, so every bad section is named
        if not getattr(config, name).enabled:
            continue
        only = config.model_copy(update={other: getattr(config, other).model_copy(update={"enabled": False})
                                         for other in ("telegram", "discord", "slack") if other != name})
        try:
            build_adapters(only, _ignore)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def check_startup(config: Config, file: Path, environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError naming the file and every problem `startup_problems` finds."""
    problems = startup_problems(config, environ)
    if problems:
        raise ConfigError(f"{file}: the gateway would not start:\n" + "\n".join(f"  {p}" for p in problems))
