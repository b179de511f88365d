"""The files for several processes: the systemd template unit and the compose file with PostgreSQL
and three gateways (`systemd-analyze verify` and `docker compose config` where they are installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.redact import Redactor
from gateway.config import load_config
from gateway.home import Home

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "hermes-gateway@.service"
COMPOSE = DEPLOY / "docker-compose.cluster.yml"


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    return probe.returncode == 0


def test_the_template_gives_each_instance_its_own_home_and_port_and_is_hardened() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    d = _directives(text)
    assert '"HERMES_HOME=/var/lib/hermes/%i"' in d["Environment"]
    assert '"HERMES_API_PORT=%i"' in d["Environment"]
    assert d["ExecStart"] == ["/opt/hermes/bin/hermes gateway --config /etc/hermes/config.toml"]
    assert d["ReadWritePaths"] == ["/var/lib/hermes/%i /var/lib/hermes/workspaces"]
    # one workspaces folder for every instance: a session's next turn may run on any of them
    assert '"HERMES_WORKSPACES_DIR=/var/lib/hermes/workspaces"' in d["Environment"]
    assert d["EnvironmentFile"] == ["-/etc/hermes/cluster.env"]
    assert d["NoNewPrivileges"] == ["yes"] and d["ProtectSystem"] == ["strict"] and d["Restart"] == ["on-failure"]
    assert not Redactor.from_environ({}).contains_secret(text)


def test_a_shared_config_takes_each_instances_port_from_the_unit(tmp_path: Path) -> None:
    """What the template's instances read: one config file, the port from HERMES_API_PORT=%i."""
    config_file = tmp_path / "config.toml"
    config_file.write_text('[api]\nport = "${HERMES_API_PORT}"\ntoken = "${HERMES_API_TOKEN}"\n', encoding="utf-8")
    ports = []
    for instance in ("8765", "8766"):
        home = Home(tmp_path / instance)
        config = load_config(config_file, home, environ={"HERMES_API_PORT": instance,
                                                          "HERMES_API_TOKEN": "t" * 40})
        ports.append(config.api.port)
    assert ports == [8765, 8766]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_an_instance_of_the_template_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    hermes = Path(sys.executable).parent / "hermes"
    unit = tmp_path / "hermes-gateway@.service"
    unit.write_text(TEMPLATE.read_text().replace("/opt/hermes/bin/hermes", str(hermes)))
    instance = tmp_path / "hermes-gateway@8766.service"
    instance.symlink_to(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_compose_file_runs_postgresql_and_three_gateways_on_one_store() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    gateways = {name: s for name, s in services.items() if name.startswith("hermes-")}
    assert sorted(gateways) == ["hermes-1", "hermes-2", "hermes-3"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "healthcheck" in services["postgres"]
    stores = {s["environment"]["HERMES_STORE_URL"] for s in gateways.values()}
    assert len(stores) == 1 and next(iter(stores)).startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in next(iter(stores))
    volumes = [s["volumes"][0].split(":")[0] for s in gateways.values()]
    assert len(set(volumes)) == 3 and all(v in compose["volumes"] for v in volumes)   # a home each
    # and one workspaces volume for all, where HERMES_WORKSPACES_DIR points
    for service in gateways.values():
        assert "hermes-workspaces:/workspaces" in service["volumes"]
        assert service["environment"]["HERMES_WORKSPACES_DIR"] == "/workspaces"
    ports = [s["ports"][0] for s in gateways.values()]
    assert all(p.startswith("127.0.0.1:") for p in ports) and len({p.split(":")[1] for p in ports}) == 3
    for service in gateways.values():
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "HERMES_API_TOKEN" in service["environment"]    # one token for all
        assert "no-new-privileges:true" in service["security_opt"]
    assert not Redactor.from_environ({}).contains_secret(COMPOSE.read_text())


@pytest.mark.skipif(not _compose_available(), reason="the docker compose client is not installed")
def test_docker_compose_config_accepts_the_cluster_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text((DEPLOY / ".env.example").read_text())
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "--env-file", str(env), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "POSTGRES_PASSWORD": "p" * 20, "HERMES_API_TOKEN": "t" * 40})
    assert result.returncode == 0, result.stderr
