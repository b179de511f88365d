"""One set of checks for `config check`, `doctor` and `gateway`, and the CLI's small promises: the pid
file removed on a clean stop, errors naming CLI commands, `--output` everywhere, plurals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.fakes.gateway_harness import TOKEN, api_section
from tests.test_gateway_process import start


async def hermes(*args: str, home: Path, timeout: float = 90, cwd: Path | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "HERMES_HOME": str(home)}
    env.pop("HERMES_API_TOKEN", None)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", *args, env=env, cwd=cwd,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, out.decode(), err.decode()


REFUSED = [
    ('[api]\nport = 0\ntoken = "short"\n', ["[api] token", "at least 24"]),
    ('[api]\nport = 0\ntoken = "changeme-changeme-changeme-changeme"\n', ["[api] token", "placeholder"]),
    (api_section() + '[telegram]\nenabled = true\ntoken = "123:abc"\nmode = "webhook"\n', ["telegram", "webhook_url"]),
    (api_section() + '[slack]\nenabled = true\ntoken = "xoxb-1"\nmode = "socket"\nsigning_secret = "s"\n',
     ["slack", "app_token"]),
    (api_section() + '[[teams]]\nname = "ops"\nchannels = ["no-colon"]\n', ["teams", "no-colon"]),
]


@pytest.mark.parametrize(("config", "words"), REFUSED, ids=["short", "placeholder", "webhook", "socket", "teams"])
async def test_what_the_gateway_refuses_config_check_and_doctor_refuse_too(home: Path, config: str,
                                                                           words: list[str]) -> None:
    write_config(home, config)
    check = await hermes("config", "check", home=home)
    doctor = await hermes("doctor", "--skip-model", home=home)
    gateway = await hermes("gateway", home=home, timeout=60)
    for name, (code, out, err) in {"config check": check, "doctor": doctor, "gateway": gateway}.items():
        assert code != 0, (name, out, err)
        assert all(word in out + err for word in words), (name, words, out, err)
    assert check[0] == 2 and gateway[0] == 2
    assert "✗ gateway start" in doctor[1] and "no [api] token" not in doctor[1]
    assert not (home / "gateway.pid").exists()


async def test_a_config_check_accepts_is_one_the_gateway_starts_with(home: Path) -> None:
    write_config(home, api_section())
    code, out, err = await hermes("config", "check", home=home)
    assert code == 0, err
    doctor_code, doctor_out, _ = await hermes("doctor", "--skip-model", home=home)
    assert "gateway start" not in doctor_out and "api token" not in doctor_out
    assert "terminal user: cli:local" in doctor_out and "memories/users/cli/local/USER.md" in doctor_out
    process, _url, _banner = await start(home)
    try:
        assert (home / "gateway.pid").read_text().strip() == str(process.pid)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert not (home / "gateway.pid").exists()  # a clean stop leaves no pid file


async def test_a_toml_syntax_error_names_the_line_everywhere(home: Path) -> None:
    write_config(home, '[model]\nname = "openai/x"\napi_key = sk-unquoted\n')
    code, out, err = await hermes("config", "check", home=home)
    assert code == 2 and "config.toml:3:" in err and "api_key = sk-unquoted" in err
    code, out, err = await hermes("doctor", "--skip-model", home=home)
    assert code == 1 and "fix: fix line 3 of" in out and "key named above" not in out
    code, out, err = await hermes("chat", "-q", "hi", home=home, cwd=home)
    assert code == 2 and "config.toml:3:" in err


async def test_doctor_hints_name_real_options(home: Path) -> None:
    write_config(home, "[api]\nenabled = false\n")
    code, out, err = await hermes("doctor", home=home)
    assert code == 1
    fixes = [line for line in out.splitlines() if line.strip().startswith("fix:")]
    assert fixes and not any("--model" in line for line in fixes)  # doctor has no --model
    assert any("[model] name" in line for line in fixes)


async def test_cli_errors_name_cli_commands_and_plurals_are_right(home: Path) -> None:
    code, out, err = await hermes("skills", "show", "no-such-skill", home=home)
    assert code == 1
    assert "hermes skills list" in err and "hermes skills search" in err and "skill_search" not in err
    code, out, err = await hermes("skills", "search", "daily", "status", "report", home=home)
    assert code == 0 and out.splitlines()[0].startswith("daily-report")

    from skills.library import SkillLibrary

    library = SkillLibrary(home / "skills")
    await library.record_use("daily-report")
    code, out, err = await hermes("skills", "list", home=home)
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "    1 use " in rows["daily-report"] and "0 uses" in rows["log-triage"]
    assert "1 uses" not in out


async def test_commands_writing_a_file_take_output(home: Path, tmp_path: Path) -> None:
    write_config(home, "[api]\nenabled = false\n")
    code, out, err = await hermes("profile", "export", "--output", str(tmp_path / "a.tar.gz"), home=home)
    assert code == 0, err
    code, out, err = await hermes("profile", "export", str(tmp_path / "b.tar.gz"), home=home)  # the old way
    assert code == 0, err
    for name in ("a.tar.gz", "b.tar.gz"):
        with tarfile.open(tmp_path / name) as archive:
            assert archive.getnames()
    code, out, err = await hermes("profile", "export", str(tmp_path / "c.tar.gz"), "-o", str(tmp_path / "d.tar.gz"),
                                  home=home)
    assert code == 2 and "--output" in err
    code, out, err = await hermes("profile", "export", home=home)
    assert code == 2 and "--output" in err
    for command in (["backup", "create"], ["trajectories", "export"], ["trajectories", "compress"],
                    ["profile", "export"]):
        code, out, err = await hermes(*command, "--help", home=home)
        assert "--output" in out and "-o" in out, command


async def test_whoami_json(home: Path) -> None:
    code, out, err = await hermes("whoami", "--json", home=home)
    assert code == 0 and '"id": "cli:local"' in out and '"exists": false' in out
    assert TOKEN not in out


async def test_config_check_says_what_a_model_name_without_a_provider_needs(home: Path) -> None:
    write_config(home, '[model]\nname = "gpt4o-mini"\n' + api_section())
    code, out, err = await hermes("config", "check", home=home)
    assert code == 0, err                              # the gateway starts with it (and says so too)
    assert "warning: [model] name 'gpt4o-mini' names no provider" in out and '"openai/gpt4o-mini"' in out
    write_config(home, '[model]\nname = "openai/gpt-4o-mini"\n' + api_section())
    code, out, _ = await hermes("config", "check", home=home)
    assert code == 0 and "warning" not in out
