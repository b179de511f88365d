"""The first hour's errors name their cause: a model name without a provider, an api_base without
/v1, a refused key (a configuration problem, not "try again"), a port in use; and clients set up
for the peer agent (`"model": "hermes-agent"`) are served.

Each case goes through the real interface: `hermes chat -q` and `hermes gateway` as processes, the
OpenAI client against the gateway's API, LiteLLM against the fake model server over a socket.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from tests.cli_support import hermes
from tests.conftest import model_config, write_config
from tests.fakes.gateway_harness import TOKEN, api_section, free_port, start_gateway
from tests.fakes.model_server import FakeModelServer, fault, text




async def test_a_model_name_without_a_provider_suggests_the_prefix_and_sends_nothing(
        home: Path, model_server: FakeModelServer) -> None:
    write_config(home, f'[model]\nname = "gpt4o-mini"\napi_base = "{model_server.base_url}"\napi_key = "sk-test"\n')
    code, out, err = await hermes("chat", "-q", "hello", home=home)
    assert code != 0
    assert '"openai/gpt4o-mini"' in err and "no request was sent" in err
    assert "rejected the request" not in err and "Traceback" not in err
    assert len(err) < 800, err  # one sentence, not LiteLLM's wall of text
    assert model_server.requests == []


async def test_an_api_base_without_v1_gets_a_hint_about_v1(home: Path, model_server: FakeModelServer) -> None:
    bare = model_server.base_url.removesuffix("/v1")
    write_config(home, f'[model]\nname = "openai/fake-model"\napi_base = "{bare}"\napi_key = "sk-test"\n'
                       "max_retries = 0\n")
    code, out, err = await hermes("chat", "-q", "hello", home=home)
    assert code != 0
    assert "(404)" in err and f'try api_base = "{bare}/v1"' in err, err


@pytest.mark.parametrize(("status", "to_set"), [
    (401, "check [model] api_key"),                    # a refused key
    (403, "check the key's permissions or [model] name"),  # no access to this model
    (404, "check [model] name"),                        # an unknown model
    (400, "check [model] name and its settings"),      # a bad request
])
async def test_a_permanent_model_error_tells_the_chat_user_it_is_a_configuration_problem(
        home: Path, model_server: FakeModelServer, caplog: pytest.LogCaptureFixture, status: int,
        to_set: str) -> None:
    model_server.add(*[fault(status)] * 3)
    gateway, _ = await start_gateway(home, model_config(model_server, max_retries=2) + api_section(), platforms=())
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="hermes", messages=[{"role": "user", "content": "hi"}])
        message = str(info.value)
        assert "configuration problem" in message and "trying again will not help" in message
        assert "try again in a moment" not in message
        assert len(model_server.requests) == 1  # waiting does not fix it: not retried
        # the admin reads in the gateway's log what to set
        [line] = [r.getMessage() for r in caplog.records if "a configuration problem" in r.getMessage()]
        named = (f"({status}, model openai/fake-model)", f"({status}) to model openai/fake-model",
                 f"model openai/fake-model ({status})")
        assert any(n in line for n in named), line
        assert to_set in line, line
    finally:
        await client.close()
        await asyncio.wait_for(gateway.stop(), 10)


async def test_the_peer_agents_model_name_is_an_alias_of_hermes(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("hello from hermes"))
    gateway, _ = await start_gateway(home, model_config(model_server) + api_section(), platforms=())
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    try:
        listed = [m.id for m in (await client.models.list()).data]
        assert listed[:2] == ["hermes", "hermes-agent"]
        answer = await client.chat.completions.create(model="hermes-agent",
                                                      messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "hello from hermes"
        assert model_server.requests[-1]["model"] == "fake-model"  # the configured model answered
    finally:
        await client.close()
        await asyncio.wait_for(gateway.stop(), 10)


async def test_a_port_in_use_names_the_setting_to_change(home: Path, model_server: FakeModelServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        write_config(home, model_config(model_server) + api_section(port=port))
        code, out, err = await hermes("gateway", home=home, timeout=60)
    assert code == 1
    assert f"127.0.0.1:{port}" in err and "already in use" in err and "[api] port" in err, err
    assert "Errno" not in err and "Traceback" not in err


async def _banner_and_health(home: Path, port: int) -> tuple[str, dict]:
    """Start `hermes gateway`, read its banner (and the model check's line when it came after the
    banner, on a slow machine), ask /healthz once the check is done, stop it with SIGTERM."""
    import json
    import signal
    import urllib.request

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", env={**os.environ, "HERMES_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []

    async def read_until(stream: asyncio.StreamReader, done: Callable[[str], bool]) -> None:
        while True:
            line = (await asyncio.wait_for(stream.readline(), 60)).decode().rstrip("\n")
            assert line or not stream.at_eof(), "the gateway ended early:\n" + "\n".join(lines)
            lines.append(line)
            if done(line):
                return

    async def health() -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        return json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read()))

    try:
        await read_until(process.stdout, lambda line: line.startswith("Stop with Ctrl-C"))
        if "still checking" in "\n".join(lines):
            report = await health()
            assert report["model_check"]["state"] == "unchecked"
            late = asyncio.create_task(read_until(process.stdout, lambda line: "model check:" in line))
            also = asyncio.create_task(read_until(process.stderr, lambda line: "hermes: model check:" in line))
            await asyncio.wait({late, also}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
            late.cancel()
            also.cancel()
        return "\n".join(lines), await health()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def test_the_gateway_checks_the_model_at_start_and_says_so_in_the_banner_and_healthz(
        home: Path, model_server: FakeModelServer) -> None:
    port = free_port()
    model_server.add(fault(401), purpose="probe")
    write_config(home, model_config(model_server) + api_section(port=port))
    banner, health = await _banner_and_health(home, port)
    assert ("openai/fake-model: DID NOT ANSWER" in banner or "model check: openai/fake-model did not answer" in banner) \
        and "api_key" in banner, banner
    assert health["model_check"]["state"] == "failed" and health["model_check"]["permanent"] is True
    assert health["problems"][0].startswith("model: openai/fake-model did not answer")
    assert len(model_server.probes) == 1 and model_server.requests == []  # one probe, no chat traffic

    banner, health = await _banner_and_health(home, port)  # the key works now
    assert "Model:      openai/fake-model (answered)" in banner or "model check: openai/fake-model answered" in banner, \
        banner
    assert health["model_check"]["state"] == "ok" and "problems" not in health
