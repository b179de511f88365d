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
from pathlib import Path

import openai
import pytest

from tests.conftest import model_config, write_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, fault, text


async def hermes(*args: str, home: Path, timeout: float = 120) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env={**os.environ, "HERMES_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()


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


async def test_a_refused_key_tells_the_chat_user_it_is_a_configuration_problem(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(*[fault(401)] * 3)
    gateway, _ = await start_gateway(home, model_config(model_server, max_retries=2) + api_section(), platforms=())
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="hermes", messages=[{"role": "user", "content": "hi"}])
        message = str(info.value)
        assert "configuration problem" in message and "trying again will not help" in message
        assert "try again in a moment" not in message
        assert len(model_server.requests) == 1  # a refused key is not retried
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
