"""Model worker processes (`[agent] model_workers`): real worker processes running the real
LiteLLM against the fake model server over loopback."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import openai
import pytest

from agent.llm import ContextWindowExceeded, LLMClient, LLMError
from agent.model_pool import ModelWorkerPool
from agent.settings import ModelConfig
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, context_overflow, fault, hang, text, tool_calls


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_pool_answers_streams_retries_and_survives_a_dead_worker(model_server: FakeModelServer) -> None:
    pool = ModelWorkerPool(2)
    await pool.start()
    config = ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test",
                         retry_base_delay=0.01, stream=False)
    llm = LLMClient(config, caller=pool)
    try:
        await pool.wait_ready(60)
        pids = [w.pid for w in pool.status()]
        assert len(set(pids)) == 2 and all(pid and _alive(pid) for pid in pids)

        model_server.add(text("plain answer"))
        answer = await llm.complete([{"role": "user", "content": "hi"}])
        assert answer.message == {"role": "assistant", "content": "plain answer"}
        assert (answer.prompt_tokens, answer.completion_tokens) == (11, 7)

        deltas: list[str] = []

        async def on_delta(piece: str) -> None:
            deltas.append(piece)

        model_server.add(text("streamed through a worker process"))
        streamed = await llm.complete([{"role": "user", "content": "stream"}], on_delta=on_delta, stream=True)
        assert streamed.message["content"] == "streamed through a worker process"
        assert "".join(deltas) == "streamed through a worker process" and len(deltas) > 1

        model_server.add(tool_calls(("read_file", {"path": "notes.md"})))
        called = await llm.complete([{"role": "user", "content": "read it"}],
                                    tools=[{"type": "function", "function": {
                                        "name": "read_file", "description": "Read a file.",
                                        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}])
        assert called.message["tool_calls"][0]["function"]["name"] == "read_file"
        assert model_server.requests[-1]["tools"][0]["function"]["name"] == "read_file"

        before = len(model_server.requests)
        model_server.add(fault(429), text("after the rate limit"))
        assert (await llm.complete([{"role": "user", "content": "again"}])).message["content"] == "after the rate limit"
        assert len(model_server.requests) - before == 2  # retried once, in the gateway's client

        model_server.add(context_overflow())
        with pytest.raises(ContextWindowExceeded):
            await llm.complete([{"role": "user", "content": "too long"}])

        # a worker killed in the middle of a call: the call is retried on the other worker
        model_server.add(hang(3.0), text("answered by the surviving worker"))
        before = len(model_server.requests)
        call = asyncio.create_task(llm.complete([{"role": "user", "content": "slow"}]))
        for _ in range(1000):  # kill only once the worker's request reached the model (it holds the hang)
            busy = [w for w in pool.status() if w.in_flight]
            if busy and len(model_server.requests) > before:
                break
            await asyncio.sleep(0.01)
        victim = busy[0].pid
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        result = await asyncio.wait_for(call, 30)
        assert result.message["content"] == "answered by the surviving worker"
        await pool.wait_ready(60)  # the dead worker was replaced
        assert sum(w.restarts for w in pool.status()) == 1
        assert victim not in [w.pid for w in pool.status()]
    finally:
        pids = [w.pid for w in pool.status() if w.pid]
        await pool.close()
    assert pids and not any(_alive(pid) for pid in pids)  # no worker outlives the pool


async def test_a_cancelled_call_frees_the_worker_for_the_next_one(model_server: FakeModelServer) -> None:
    pool = ModelWorkerPool(1)
    await pool.start()
    config = ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test", stream=False)
    llm = LLMClient(config, caller=pool)
    try:
        model_server.add(hang(30.0), text("the next answer"))
        slow = asyncio.create_task(llm.complete([{"role": "user", "content": "slow"}]))
        for _ in range(500):
            if model_server.requests:
                break
            await asyncio.sleep(0.02)
        slow.cancel()  # what /stop does to a running turn
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert pool.status()[0].in_flight == 0
        started = asyncio.get_running_loop().time()
        answer = await llm.complete([{"role": "user", "content": "next"}])
        assert answer.message["content"] == "the next answer"
        assert asyncio.get_running_loop().time() - started < 5  # not stuck behind the 30 s call
        assert pool.status()[0].restarts == 0  # the worker was told to cancel, not killed
    finally:
        await pool.close()


async def test_a_model_that_keeps_failing_reports_every_attempt(model_server: FakeModelServer) -> None:
    pool = ModelWorkerPool(1)
    await pool.start()
    config = ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test",
                         max_retries=1, retry_base_delay=0.01, stream=False)
    try:
        model_server.add(fault(500), fault(500))
        with pytest.raises(LLMError) as error:
            await LLMClient(config, caller=pool).complete([{"role": "user", "content": "hi"}])
        assert "openai/fake-model" in str(error.value) and "InternalServerError" in str(error.value)
        assert len(model_server.requests) == 2
    finally:
        await pool.close()


async def test_workers_that_never_start_fail_calls_at_once_with_the_reason(model_server: FakeModelServer) -> None:
    pool = ModelWorkerPool(1, python="/bin/false")  # exits with status 1 before it is ready
    await pool.start()
    config = ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test",
                         retry_base_delay=0.01, stream=False)
    try:
        with pytest.raises(LLMError) as error:
            await asyncio.wait_for(LLMClient(config, caller=pool).complete([{"role": "user", "content": "hi"}]), 20)
        assert "ModelWorkerUnavailable" in str(error.value) and "exited with status 1" in str(error.value)
        assert not model_server.requests
    finally:
        await pool.close()


async def test_gateway_with_model_workers_answers_over_the_api(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Hello from a model worker."), text("Streaming from a worker too."))
    config = model_config(model_server) + "[agent]\nmodel_workers = 1\n" + api_section()
    gateway, _ = await start_gateway(home, config, platforms=())
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    try:
        answer = await client.chat.completions.create(
            model="hermes", user="alice", messages=[{"role": "user", "content": "Say hello"}])
        assert answer.choices[0].message.content == "Hello from a model worker."
        stream = await client.chat.completions.create(
            model="hermes", user="alice", stream=True, messages=[{"role": "user", "content": "Stream please"}])
        pieces = [chunk.choices[0].delta.content async for chunk in stream
                  if chunk.choices and chunk.choices[0].delta.content]
        assert "".join(pieces) == "Streaming from a worker too." and len(pieces) > 1
        async with aiohttp.ClientSession() as http:
            async with http.get(gateway.url + "healthz", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                health = await response.json()
        assert health["model_workers"] == {"size": 1, "ready": 1, "in_flight": 0, "restarts": 0}
        worker_pid = gateway.runtime.model_pool.status()[0].pid  # type: ignore[union-attr]
    finally:
        await client.close()
        await gateway.stop()
    assert worker_pid is not None and not _alive(worker_pid)
