"""The systemd unit: the shipped file, `hermes gateway install-service`, and `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.service_install import UnitSpec, deploy_unit, install_service, render_unit

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "hermes-gateway.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                                   reason="systemd-analyze is not installed (apt-get install systemd)")


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)


def test_the_shipped_unit_is_what_install_service_renders_and_is_hardened() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert text == deploy_unit(), "deploy/hermes-gateway.service is stale: regenerate it from deploy_unit()"
    d = _directives(text)
    assert d["Restart"] == ["on-failure"]
    assert d["NoNewPrivileges"] == ["yes"] and d["PrivateTmp"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"] and d["ProtectHome"] == ["read-only"]
    assert d["ReadWritePaths"] == ["/var/lib/hermes"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["User"] == ["hermes"]
    assert '"HERMES_HOME=/var/lib/hermes"' in d["Environment"]
    assert not any(k in text.upper() for k in ("API_KEY=", "TOKEN="))  # no secrets in the unit


@needs_systemd
def test_the_shipped_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify also checks that ExecStart exists: point it at this interpreter's hermes instead of /opt
    hermes = Path(sys.executable).parent / "hermes"
    unit = tmp_path / "hermes-gateway.service"
    unit.write_text(SHIPPED.read_text().replace("/opt/hermes/bin/hermes", str(hermes)))
    result = _verify(unit)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warnings either


def test_install_service_writes_a_user_unit_for_this_hermes_and_home(tmp_path: Path) -> None:
    home = tmp_path / "my home" / "hermes%data"  # a space and a % must be quoted and escaped
    env = {"HERMES_HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    runner = CliRunner()
    result = runner.invoke(install_service, [], env=env)
    assert result.exit_code == 0, result.output
    unit = tmp_path / "xdg" / "systemd" / "user" / "hermes-gateway.service"
    assert f"wrote {unit}" in result.output and "systemctl --user enable --now hermes-gateway" in result.output
    d = _directives(unit.read_text())
    hermes = Path(sys.executable).parent / "hermes"
    assert d["ExecStart"] == [f"{hermes} gateway"]
    assert d["Environment"][0] == f'"HERMES_HOME={str(home).replace("%", "%%")}"'
    assert d["ReadWritePaths"] == [f'"{str(home).replace("%", "%%")}"']
    assert d["WantedBy"] == ["default.target"] and "User" not in d
    assert home.is_dir()  # ReadWritePaths must exist for the service to start

    unit.write_text("# edited by hand\n")
    again = runner.invoke(install_service, [], env=env)
    assert again.exit_code == 1 and "exists and differs: pass --force" in again.output
    assert unit.read_text() == "# edited by hand\n"
    assert runner.invoke(install_service, ["--force"], env=env).exit_code == 0
    assert unit.read_text() != "# edited by hand\n"
    if SYSTEMD_ANALYZE:
        result = _verify(unit)
        assert result.returncode == 0, result.stderr


def test_install_service_system_prints_a_unit_for_the_current_user(tmp_path: Path) -> None:
    env = {"HERMES_HOME": str(tmp_path / "h"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    result = CliRunner().invoke(install_service, ["--system", "--config", str(tmp_path / "c.toml")], env=env)
    assert result.exit_code == 0
    d = _directives(result.stdout)
    assert len(d["User"]) == 1 and d["WantedBy"] == ["multi-user.target"]
    assert d["ExecStart"][0].endswith(f"gateway --config {tmp_path / 'c.toml'}")
    assert "sudo tee /etc/systemd/system/hermes-gateway.service" in result.stderr
    assert not (tmp_path / "xdg").exists()  # --system writes nothing


def test_odd_paths_are_quoted_for_systemd() -> None:
    text = render_unit(UnitSpec(['/opt/my "venv"/bin/hermes'], Path("/srv/h$ome"), False))
    assert _directives(text)["ExecStart"] == ['"/opt/my \\"venv\\"/bin/hermes" gateway']
    assert '"HERMES_HOME=/srv/h$ome"' in text


def test_a_system_unit_for_a_checkout_under_tmp_does_not_hide_it_behind_a_private_tmp(tmp_path: Path) -> None:
    checkout = Path("/tmp/hermes-checkout/.venv/bin/hermes")
    d = _directives(render_unit(UnitSpec([str(checkout)], Path("/var/lib/hermes"), True, user="hermes")))
    assert d["ExecStart"] == [f"{checkout} gateway"] and d["PrivateTmp"] == ["no"]
    kept = _directives(render_unit(UnitSpec(["/opt/hermes/bin/hermes"], Path("/var/lib/hermes"), True, user="hermes")))
    assert kept["PrivateTmp"] == ["yes"]

    home = tmp_path / "home"  # pytest's tmp_path lies under /tmp
    result = CliRunner().invoke(install_service, ["--system"], env={"HERMES_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert _directives(result.stdout)["PrivateTmp"] == ["no"]
    assert f"{home} is under a temporary folder" in result.stderr
