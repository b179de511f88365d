"""MCP servers end to end: a stdio server written with the SDK, called by the agent through the
fake model; a killed server is restarted; a broken one is reported and skipped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from agent.mcp.manager import McpManager
from gateway.sessions import SessionService
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.mcp_support import mcp_runtime, mcp_settings, stdio_server


def tool_results(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def pid_of(result: str) -> int:
    assert result.startswith("pid "), result
    return int(result.split()[1])


async def test_agent_calls_two_mcp_tools(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server) + stdio_server("fake"))
    model_server.add(
        tool_calls(("fake__add", {"a": 2, "b": 40}), ("fake__shout", {"text": "hello"})),
        text("2 + 40 = 42, and HELLO!"),
    )
    async with mcp_runtime(home) as runtime:
        session = await runtime.store.active_session("cli:local", platform="cli", user_id="local")
        result = await SessionService(runtime).run_turn(session, "add and shout")
    assert result.text == "2 + 40 = 42, and HELLO!"
    offered = {t["function"]["name"]: t["function"] for t in model_server.requests[0]["tools"]}
    assert {"fake__add", "fake__shout", "fake__whoami", "fake__sleep"} <= set(offered)
    add = offered["fake__add"]
    assert add["description"].startswith("Add two integers.")
    assert add["parameters"]["type"] == "object"
    assert set(add["parameters"]["properties"]) == {"a", "b"} and add["parameters"]["required"] == ["a", "b"]
    assert tool_results(model_server.requests[1]) == ["42", "HELLO!"]


async def test_killed_server_is_restarted_on_the_next_call(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server) + mcp_settings(restart_delay=0.05) + stdio_server("fake"))
    model_server.add(tool_calls(("fake__whoami", {})), text("first"),
                     tool_calls(("fake__whoami", {})), text("second"))
    async with mcp_runtime(home) as runtime:
        service = SessionService(runtime)
        session = await runtime.store.active_session("cli:local", platform="cli", user_id="local")
        await service.run_turn(session, "who are you?")
        first_pid = pid_of(tool_results(model_server.requests[1])[-1])
        os.kill(first_pid, signal.SIGKILL)
        await asyncio.sleep(0.1)
        result = await service.run_turn(session, "and now?")
        manager: McpManager = runtime.services["mcp"]
        status = manager.statuses()[0]
    assert result.text == "second"
    second_pid = pid_of(tool_results(model_server.requests[3])[-1])
    assert second_pid != first_pid
    assert status.state == "running" and status.restarts == 1


async def test_supervisor_restarts_a_dead_server_in_the_background(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server) + mcp_settings(restart_delay=0.05, health_interval=0.1)
                 + stdio_server("fake"))
    async with mcp_runtime(home) as runtime:
        manager: McpManager = runtime.services["mcp"]
        server = manager.servers["fake"]
        first_pid = pid_of((await server.call("whoami", {})).content[0].text)
        os.kill(first_pid, signal.SIGKILL)
        for _ in range(200):
            if server.restarts and server.state == "running":
                break
            await asyncio.sleep(0.05)
        assert server.restarts == 1 and server.state == "running"
        # the background restart already happened: this call does not restart again
        second_pid = pid_of((await server.call("whoami", {})).content[0].text)
        assert second_pid != first_pid and server.restarts == 1


async def test_bad_servers_are_reported_and_skipped(home: Path, model_server: FakeModelServer, caplog) -> None:
    crash = ["-c", "import sys; sys.stderr.write('boom: missing API token\\n'); sys.exit(3)"]
    write_config(home, model_config(model_server)
                 + stdio_server("missing", command="/nonexistent/mcp-server")
                 + stdio_server("crashy", args=crash)
                 + stdio_server("fake"))
    model_server.add(tool_calls(("fake__add", {"a": 1, "b": 1})), text("two"))
    with caplog.at_level("WARNING"):
        async with mcp_runtime(home) as runtime:
            manager: McpManager = runtime.services["mcp"]
            states = {s.name: s for s in manager.statuses()}
            session = await runtime.store.active_session("cli:local", platform="cli", user_id="local")
            result = await SessionService(runtime).run_turn(session, "1+1?")
    assert result.text == "two"
    assert tool_results(model_server.requests[1]) == ["2"]
    assert states["fake"].state == "running"
    assert states["missing"].state == "failed" and "/nonexistent/mcp-server" in states["missing"].error
    assert states["crashy"].state == "failed" and "boom: missing API token" in states["crashy"].error
    offered = {t["function"]["name"] for t in model_server.requests[0]["tools"]}
    assert not any(n.startswith(("missing__", "crashy__")) for n in offered)
    logged = caplog.text
    assert "MCP server missing could not start" in logged and "MCP server crashy could not start" in logged


async def test_a_slow_tool_times_out_and_the_server_keeps_working(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server) + stdio_server("fake", timeout=0.5))
    model_server.add(tool_calls(("fake__sleep", {"seconds": 5})), tool_calls(("fake__add", {"a": 3, "b": 4})),
                     text("done"))
    async with mcp_runtime(home) as runtime:
        session = await runtime.store.active_session("cli:local", platform="cli", user_id="local")
        started = asyncio.get_running_loop().time()
        await SessionService(runtime).run_turn(session, "sleep")
        elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 4
    assert tool_results(model_server.requests[1]) == ["Error: fake: sleep timed out after 0.5s"]
    assert tool_results(model_server.requests[2])[-1] == "7"


async def test_no_servers_configured_changes_nothing(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    async with mcp_runtime(home) as runtime:
        assert "mcp" not in runtime.services
        assert not any("__" in n for n in runtime.tools.names())




async def test_hermes_mcp_list(home: Path) -> None:
    from tests.test_cli_chat import hermes

    write_config(home, stdio_server("fake") + stdio_server("missing", command="/nonexistent/mcp-server")
                 + stdio_server("off", enabled=False))
    code, out, err = await hermes("mcp", "list", "--json", home=home)
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["fake"]["state"] == "running" and rows["fake"]["transport"] == "stdio"
    assert {"fake__add", "fake__shout", "fake__whoami", "fake__sleep", "fake__header"} == set(rows["fake"]["tools"])
    assert rows["missing"]["state"] == "failed" and "/nonexistent/mcp-server" in rows["missing"]["error"]
    assert rows["off"]["state"] == "disabled" and rows["off"]["tools"] == []
    code, out, err = await hermes("mcp", "list", home=home)
    assert code == 0, err
    assert "fake  [stdio]  running" in out and "    fake__add" in out and "missing  [stdio]  failed" in out


async def test_streamable_http_server_with_headers(home: Path, model_server: FakeModelServer) -> None:
    import socket

    from tests.mcp_support import FAKE_SERVER

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(sys.executable, str(FAKE_SERVER), "--http", str(port),
                                                   stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(200):  # wait until it listens
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        write_config(home, model_config(model_server)
                     + f'[[mcp.servers]]\nname = "remote"\nurl = "http://127.0.0.1:{port}/mcp"\n'
                     + 'headers = { Authorization = "Bearer s3cret" }\n')
        model_server.add(tool_calls(("remote__add", {"a": 20, "b": 22}), ("remote__header", {"name": "authorization"})),
                         text("ok"))
        async with mcp_runtime(home) as runtime:
            session = await runtime.store.active_session("cli:local", platform="cli", user_id="local")
            await SessionService(runtime).run_turn(session, "add remotely")
        assert tool_results(model_server.requests[1]) == ["42", "Bearer s3cret"]
    finally:
        process.terminate()
        await process.wait()


async def test_a_server_that_never_answers_is_given_up_quickly(home: Path) -> None:
    write_config(home, stdio_server("mute", args=["-c", "import time; time.sleep(30)"], startup_timeout=0.5))
    from gateway.config import load_config
    from gateway.home import Home

    manager = McpManager(load_config(None, Home.from_env()).mcp)
    started = asyncio.get_running_loop().time()
    try:
        await manager.start()
        status = manager.statuses()[0]
    finally:
        await manager.close()
    assert status.state == "failed" and "did not answer within 0.5s" in status.error
    assert asyncio.get_running_loop().time() - started < 8
