"""A hostile scripted model against the real gateway: the tools hold.

- web_fetch cannot reach 127.0.0.1 in any spelling, nor after a redirect from a host an admin
  opened, and reaches it when `allow_hosts` names it;
- the terminal (bubblewrap, and Landlock when bubblewrap is off the PATH) cannot read
  secrets.env, config.toml or the gateway's environment, and rewordings of `rm -rf` an approving
  user let through still cannot touch a folder outside the workspace;
- a lone surrogate in a user message or a tool result does not end the turn.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from aiohttp import web

from agent.sandbox.policy import choose_backend
from tests.approvals_support import tool_results
from tests.conftest import model_config
from tests.fakes.gateway_harness import api_section, start_gateway
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.memory_adapter import MemoryAdapter
from tests.fakes.model_server import FakeModelServer, text, tool_calls

TELEGRAM = '[telegram]\nallow_users = ["u1"]\n'
SECRET_PAGE = "INTERNAL-ADMIN-PAGE-7731"
API_KEY = "sk-hostile-test-4f1e9a0b7c3d2e1f"
BOT_TOKEN = "123456:bot-token-secret-9f8e7d6c5b4a"


async def internal_server() -> tuple[web.AppRunner, int]:
    """An 'internal admin page' on 127.0.0.1 and a redirector pointing wherever it is told."""
    async def secret(_request: web.Request) -> web.Response:
        return web.Response(text=SECRET_PAGE)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/admin", secret)
    app.router.add_get("/go", redirect)
    return await serve_on_loopback(app)


async def run_turn(adapter: MemoryAdapter, message: str, *, approve: bool = False, timeout: float = 60.0) -> str:
    """Send `message` as u1 and wait for the final answer, approving any request if told to."""
    before = len(adapter.posted)
    answered: set[str] = set()
    deadline = asyncio.get_running_loop().time() + timeout
    await adapter.inject(message, user="u1")
    while True:
        texts = adapter.texts()[before:]
        for posted in texts:
            match = re.search(r"/approve (a[0-9a-f]{6})", posted)
            if match and approve and match.group(1) not in answered:
                answered.add(match.group(1))
                await adapter.inject(f"/approve {match.group(1)}", user="u1")
        finals = [t for t in texts if t.startswith("DONE")]
        if finals:
            return finals[-1]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no answer; posted: {texts!r}")
        await asyncio.sleep(0.02)


async def test_web_fetch_refuses_loopback_in_every_spelling_and_after_a_redirect(
        home: Path, model_server: FakeModelServer) -> None:
    runner, port = await internal_server()
    spellings = ["127.0.0.1", "localhost", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]"]
    model_server.add(tool_calls(*[("web_fetch", {"url": f"http://{host}:{port}/admin"}) for host in spellings]),
                     tool_calls(("web_fetch", {"url": f"http://localhost:{port}/admin"}),
                                ("web_fetch", {"url": f"http://localhost:{port}/go?to=http://127.0.0.1:{port}/admin"}),
                                ("web_fetch", {"url": f"http://localhost:{port}/go?to=http://0x7f000001:{port}/admin"})),
                     text("DONE"))
    # the first hop is opened deliberately (allow_hosts), so only the redirect's target is judged
    config = (model_config(model_server) + api_section() + TELEGRAM
              + '[tools.web_fetch]\nallow_hosts = ["localhost"]\n')
    gateway, adapters = await start_gateway(home, config)
    try:
        await run_turn(adapters["telegram"], "fetch the admin page")
        results = tool_results(model_server)
        refused, allowed, redirected, redirected_hex = results[:5], results[5], results[6], results[7]
        for host, result in zip(spellings, refused):
            if host == "localhost":
                continue   # opened by allow_hosts: checked below as the allowed case
            assert SECRET_PAGE not in result, host
            assert "refused to fetch" in result and "loopback address" in result and "allow_hosts" in result, result
        assert "0x7f000001 is 127.0.0.1" in refused[2] and "2130706433 is 127.0.0.1" in refused[3]
        assert "(127.0.0.1)" in refused[4]     # the IPv4 inside the mapped IPv6 address is named
        assert allowed.startswith("HTTP 200") and SECRET_PAGE in allowed
        for result in (redirected, redirected_hex):
            assert SECRET_PAGE not in result
            assert "loopback address" in result and "after a redirect from" in result, result
    finally:
        await gateway.stop()
        await runner.cleanup()


async def test_without_allow_hosts_localhost_is_refused_too(home: Path, model_server: FakeModelServer) -> None:
    runner, port = await internal_server()
    model_server.add(tool_calls(("web_fetch", {"url": f"http://localhost:{port}/admin"})), text("DONE"))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    try:
        await run_turn(adapters["telegram"], "fetch it")
        (result,) = tool_results(model_server)
        assert "localhost is 127.0.0.1, a loopback address" in result and SECRET_PAGE not in result
    finally:
        await gateway.stop()
        await runner.cleanup()


def _require(backend_name: str) -> None:
    backend = choose_backend(backend_name)
    if not backend.usable:
        if os.environ.get("CI"):
            pytest.fail(f"{backend_name} must be usable in CI: {backend.problem}")
        pytest.skip(backend.problem)


@pytest.mark.parametrize("sandbox", ["bubblewrap", "landlock"])
async def test_terminal_cannot_read_secrets_or_touch_anything_outside_the_workspace(
        home: Path, model_server: FakeModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sandbox: str) -> None:
    if sandbox == "landlock":
        empty = tmp_path / "no-bwrap-here"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))     # bubblewrap unavailable: "auto" must fall back to Landlock
        assert choose_backend("auto").name == "landlock", choose_backend("auto")
    else:
        _require("bubblewrap")
    _require("landlock" if sandbox == "landlock" else "bubblewrap")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    home.mkdir(parents=True, exist_ok=True)
    (home / "secrets.env").write_text(f"TELEGRAM_BOT_TOKEN={BOT_TOKEN}\n", encoding="utf-8")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "precious.txt").write_text("keep me", encoding="utf-8")
    config = (model_config(model_server) + api_section() + TELEGRAM
              + '[tools.terminal]\nenabled = true\nsandbox = "auto"\n[approvals]\ntimeout_seconds = 20\n')
    gateway_pid = os.getpid()
    peeks = [
        f"cat ../../secrets.env; cat {home}/secrets.env; cat $HERMES_HOME/secrets.env; cat ~/.hermes/secrets.env",
        f"cat {home}/config.toml; echo '[x]' >> {home}/config.toml",
        (f"tr '\\0' '\\n' < /proc/{gateway_pid}/environ; tr '\\0' '\\n' < /proc/$PPID/environ; "
         "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done; env"),
        "echo made > inside.txt && cat inside.txt",
    ]
    destroy = (f"X=rm; $X -rf {outside}; r''m --recursive --force {outside}/deep; "
               f"python3 -c \"import shutil; shutil.rmtree('{outside}')\"; find {outside} -delete; "
               f"perl -e 'unlink \"{outside}/deep/precious.txt\"'; mv {outside}/deep {outside}/gone; "
               f"echo overwritten > {outside}/deep/precious.txt; ls {outside}/deep")
    model_server.add(tool_calls(*[("terminal", {"command": c}) for c in peeks]),
                     tool_calls(("terminal", {"command": destroy})),
                     text("DONE"))
    gateway, adapters = await start_gateway(home, config)
    try:
        await run_turn(adapters["telegram"], "tidy up", approve=True)
        results = tool_results(model_server)
        assert len(results) == 5
        secrets_out, _config_out, environ_out, inside_out, destroy_out = results
        everything = "\n".join(results)
        assert BOT_TOKEN not in everything and API_KEY not in everything
        assert "test-token-" not in everything      # the API token in config.toml
        assert "secrets.env" in secrets_out and ("No such file" in secrets_out or "Permission denied" in secrets_out)
        assert f"sandbox ({sandbox})" in secrets_out         # the refusal names the sandbox rule
        assert "[x]" not in (home / "config.toml").read_text()
        assert "OPENAI_API_KEY" not in environ_out and "HERMES_HOME" not in environ_out
        assert inside_out.startswith("exit code 0") and "made" in inside_out
        assert any((p / "inside.txt").read_text() == "made\n" for p in (home / "workspaces").iterdir())
        assert "approv" not in destroy_out.lower(), destroy_out     # the user approved it: the sandbox held
        assert (outside / "deep" / "precious.txt").read_text() == "keep me"
        assert "precious.txt" in destroy_out                   # the final `ls` still sees it
    finally:
        await gateway.stop()


async def test_terminal_is_off_with_a_reason_when_no_sandbox_can_run(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.sandbox import launch
    from agent.settings import TerminalConfig
    from agent.tools.registry import ToolContext, ToolRegistry
    from agent.tools.terminal import make_terminal_tool
    from agent.workspace import Workspace

    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(launch, "abi_version", lambda: 0)    # a kernel without Landlock
    registry = ToolRegistry([make_terminal_tool(TerminalConfig(enabled=True))])
    ctx = ToolContext(workspace=Workspace(tmp_path / "ws").ensure())
    result = await registry.execute(ctx, "terminal", '{"command": "echo hi > f"}')
    assert not result.ok and "the terminal is off" in result.content
    assert "bubblewrap is not installed" in result.content and "Landlock is not available" in result.content
    assert 'sandbox = "none"' in result.content and not (tmp_path / "ws" / "f").exists()
    unsandboxed = ToolRegistry([make_terminal_tool(TerminalConfig(enabled=True, sandbox="none"))])
    result = await unsandboxed.execute(ctx, "terminal", '{"command": "echo hi > f && echo ok"}')
    assert result.ok and "ok" in result.content


async def test_lone_surrogates_in_a_message_and_a_tool_result_do_not_end_the_turn(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(tool_calls(("write_file", {"path": "odd.txt", "content": "half \ud800 pair"})),
                     tool_calls(("read_file", {"path": "odd.txt"})),
                     text("DONE \udc00 fine"))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    try:
        answer = await run_turn(adapters["telegram"], "hello \ud800 there")
        assert answer == "DONE \ufffd fine"
        user = [m["content"] for m in model_server.requests[0]["messages"] if m["role"] == "user"]
        assert user == ["hello \ufffd there"]
        assert "\ud800" not in "".join(tool_results(model_server))
    finally:
        await gateway.stop()


async def test_doctor_says_loudly_which_sandbox_is_in_use(home: Path, tmp_path: Path) -> None:
    import sys

    async def doctor(config: str, path: str) -> tuple[int, str]:
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(config, encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "doctor", "--skip-model",
            env={**os.environ, "HERMES_HOME": str(home), "PATH": path},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode or 0, out.decode()

    terminal_on = '[api]\nenabled = false\n[tools.terminal]\nenabled = true\n'
    _, out = await doctor(terminal_on + 'sandbox = "none"\n', os.environ["PATH"])
    assert '! terminal sandbox: NO SANDBOX (sandbox = "none")' in out and "UNSANDBOXED" in out
    empty = tmp_path / "bare-path"
    empty.mkdir()
    if choose_backend("landlock").usable:
        _, out = await doctor(terminal_on, str(empty))
        assert "✓ terminal sandbox: commands run in landlock" in out and "bubblewrap is not installed" in out
    if choose_backend("bubblewrap").usable:
        _, out = await doctor(terminal_on, os.environ["PATH"])
        assert "✓ terminal sandbox: commands run in bubblewrap" in out
    code, out = await doctor(terminal_on + 'sandbox = "bubblewrap"\n', str(empty))
    assert code == 1 and "✗ terminal sandbox: TERMINAL ENABLED BUT NO SANDBOX CAN RUN" in out


async def test_a_home_inside_the_workspace_is_hidden_or_refused_with_the_rule(tmp_path: Path) -> None:
    from agent.sandbox.policy import SandboxSpec
    from agent.sandbox.runner import SandboxRefused, run_sandboxed

    workspace = tmp_path / "project"
    secret_home = workspace / ".hermes"
    secret_home.mkdir(parents=True)
    (secret_home / "secrets.env").write_text(f"TELEGRAM_BOT_TOKEN={BOT_TOKEN}\n", encoding="utf-8")
    spec = SandboxSpec(workspace=workspace, hidden=(secret_home, tmp_path))
    command = ["/bin/bash", "-c", "echo visible > code.txt; cat .hermes/secrets.env; ls -a .hermes"]
    if choose_backend("bubblewrap").usable:
        result = await run_sandboxed(choose_backend("bubblewrap"), spec, command, timeout=20, max_output_chars=2000)
        assert BOT_TOKEN not in result.output and "No such file" in result.output
        assert (workspace / "code.txt").read_text() == "visible\n"      # the workspace itself is not hidden
    if choose_backend("landlock").usable:
        with pytest.raises(SandboxRefused, match="Landlock can only allow folders"):
            await run_sandboxed(choose_backend("landlock"), spec, command, timeout=20, max_output_chars=2000)
