"""The gateway end to end with an in-memory platform: access, pairing, queueing, /stop, dedup, commands.

The real Gateway runs in the test's loop; the agent reaches the fake model server through the
real LiteLLM over a socket. Only the platform is in memory (tests/fakes/memory_adapter.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from adapters.base import Attachment, DeliveryError, PlatformLimits
from tests.conftest import model_config
from tests.fakes.gateway_harness import api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, hang, text

TELEGRAM = '[telegram]\nallow_users = ["u1", "u2"]\nallow_channels = ["g1"]\n'


def user_texts(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user" and isinstance(m["content"], str)]


async def hermes(*args: str, home: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env={**os.environ, "HERMES_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_allowed_dm_gets_the_agents_streamed_answer(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Paris is the capital of France."))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    try:
        await tg.inject("What is the capital of France?", user="u1")
        await tg.wait_for(lambda: tg.texts() == ["Paris is the capital of France."])
        assert user_texts(model_server.requests[0]) == ["What is the capital of France?"]
        assert model_server.requests[0]["stream"] is True
        assert tg.commands[:2] == [("help", "What I can do and the commands I know"),
                                   ("new", "Start a fresh conversation")]
    finally:
        await gateway.stop()


async def test_long_reply_arrives_in_chunks_within_the_limit(home: Path, model_server: FakeModelServer) -> None:
    code = "\n".join(f"print({i})" for i in range(400))
    answer = "Here you go:\n\n```python\n" + code + "\n```\n\nThat is all."
    model_server.add(text(answer))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM,
                                            limits=PlatformLimits(max_message_chars=2000, min_edit_interval=0.05))
    tg = adapters["telegram"]
    try:
        await tg.inject("write it", user="u1")
        await tg.wait_for(lambda: bool(tg.texts()) and tg.texts()[-1].endswith("That is all."))
        chunks = tg.texts()
        assert len(chunks) >= 3 and all(len(c) <= 2000 for c in chunks)
        assert all(sum(line.startswith("```") for line in c.splitlines()) % 2 == 0 for c in chunks)
        lines = [line for c in chunks for line in c.splitlines() if line.startswith("print(")]
        assert lines == code.splitlines()
    finally:
        await gateway.stop()


async def test_unknown_user_gets_a_pairing_code_then_answers_after_approval(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Welcome aboard."))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    try:
        await tg.inject("hello?", user="stranger", display_name="Eve")
        await tg.wait_for(lambda: len(tg.posted) == 1)
        notice = tg.texts()[0]
        assert "pairing code" in notice and model_server.requests == []  # nothing else, no model call
        code, out, err = await hermes("pairing", "list", "--json", home=home)
        assert code == 0, err
        pending = json.loads(out)
        assert [(p["platform"], p["user_id"], p["display_name"], p["status"]) for p in pending] == \
            [("telegram", "stranger", "Eve", "pending")]
        assert pending[0]["code"] in notice
        code, out, err = await hermes("pairing", "approve", pending[0]["code"], home=home)
        assert code == 0 and "Approved telegram:stranger" in out, err
        await tg.inject("hello again", user="stranger")
        await tg.wait_for(lambda: tg.texts()[-1:] == ["Welcome aboard."])
        code, out, _ = await hermes("pairing", "list", "--json", home=home)
        assert [(g["user_id"], g["status"]) for g in json.loads(out)] == [("stranger", "approved")]
        code, out, err = await hermes("pairing", "approve", "NOPE1234", home=home)
        assert code != 0 and "no pending pairing code" in err and f"searched HERMES_HOME={home}" in err, err
        code, out, err = await hermes("pairing", "revoke", "telegram:stranger", home=home)
        assert code == 0 and "Revoked telegram:stranger" in out
        await tg.inject("still there?", user="stranger")
        await tg.wait_for(lambda: "pairing code" in tg.texts()[-1])
        code, out, _ = await hermes("pairing", "list", "--json", home=home)
        [again] = [p for p in json.loads(out) if p["status"] == "pending"]
        code, out, err = await hermes("pairing", "reject", again["code"], home=home)
        assert code == 0 and "Rejected telegram:stranger" in out, err
        code, out, _ = await hermes("pairing", "list", "--json", home=home)
        assert json.loads(out) == []
    finally:
        await gateway.stop()


async def test_group_messages_need_a_mention_in_an_allowed_channel(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Hi group."))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    try:
        await tg.inject("chatting among ourselves", user="x", chat="g1", dm=False)
        await tg.inject("@bot hello", user="x", chat="other", dm=False, mentioned=True)
        await tg.inject("@bot hello", user="x", chat="g1", dm=False, mentioned=True)
        await tg.wait_for(lambda: tg.texts() == ["Hi group."])
        assert len(model_server.requests) == 1 and tg.posted[0].message.chat_id == "g1"
        assert tg.posted[0].message.reply_to is not None
    finally:
        await gateway.stop()


async def test_message_sent_mid_turn_is_queued_and_answered_next(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("First answer.", delay=0.5), text("Second answer."))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    try:
        await tg.inject("first question", user="u1")
        await tg.wait_for(lambda: len(model_server.requests) == 1)
        await tg.inject("second question", user="u1")
        await tg.inject("/help", user="u1")   # a read-only command is answered at once, even mid-turn
        await tg.wait_for(lambda: "First answer." in tg.texts() and "Second answer." in tg.texts())
        texts = tg.texts()
        assert texts.index("First answer.") < texts.index("Second answer.")
        assert texts[0].startswith("I'm Hermes")
        # the second turn ran after the first finished: its request carries the first exchange
        assert user_texts(model_server.requests[1]) == ["first question", "second question"]
        assert gateway.metrics.queue_depth.labels("telegram")._value.get() == 0
    finally:
        await gateway.stop()


async def test_stop_interrupts_the_running_turn(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(hang(30), text("After the stop."))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    try:
        await tg.inject("do something slow", user="u1")
        await tg.wait_for(lambda: len(model_server.requests) == 1)
        started = asyncio.get_running_loop().time()
        await tg.inject("/stop", user="u1")
        await tg.wait_for(lambda: "Stopped." in tg.texts(), timeout=5)
        assert asyncio.get_running_loop().time() - started < 3
        assert tg.texts() == ["Stopped."]  # one word about it: the stopped turn's own, no "Stopping." first
        await tg.inject("are you there?", user="u1")
        await tg.wait_for(lambda: "After the stop." in tg.texts())
        # the streamed answer shows before the turn has finished saving: wait until it has
        await tg.wait_for(lambda: gateway.health()["busy_sessions"] == 0)
        await tg.inject("/stop", user="u1")
        await tg.wait_for(lambda: "Nothing is running." in tg.texts())
    finally:
        await gateway.stop()


async def test_redelivered_event_is_answered_once_even_after_restart(
        home: Path, model_server: FakeModelServer) -> None:
    config = model_config(model_server) + api_section() + TELEGRAM
    gateway, adapters = await start_gateway(home, config)
    tg = adapters["telegram"]
    try:
        await tg.inject("hi", user="u1", message_id="77")
        await tg.inject("hi", user="u1", message_id="77")
        await tg.wait_for(lambda: len(tg.posted) == 1)
        await asyncio.sleep(0.2)
        assert len(model_server.requests) == 1 and len(tg.posted) == 1
    finally:
        await gateway.stop()
    gateway, adapters = await start_gateway(home, config)
    tg = adapters["telegram"]
    try:
        await tg.inject("hi", user="u1", message_id="77", dedup_key="")
        await tg.inject("new one", user="u1", message_id="78")
        await tg.wait_for(lambda: len(tg.posted) == 1)
        await asyncio.sleep(0.2)
        assert len(model_server.requests) == 2 and user_texts(model_server.requests[1])[-1] == "new one"
    finally:
        await gateway.stop()


async def test_reply_is_retried_after_a_rate_limit(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Delivered anyway."))
    gateway, adapters = await start_gateway(home, model_config(model_server) + "stream = false\n" + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    tg.failures.append(DeliveryError("Too Many Requests", retry_after=0.3))
    try:
        await tg.inject("hi", user="u1")
        await tg.wait_for(lambda: tg.texts() == ["Delivered anyway."])
        assert len(tg.send_attempts) == 2
    finally:
        await gateway.stop()


async def test_commands_new_usage_model_unknown_and_skill_hook(home: Path, model_server: FakeModelServer) -> None:
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    skill = home / "skills" / "ops" / "deploy" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("---\nname: deploy\ndescription: Deploy a site. Use when asked to deploy.\n---\n\n"
                     "1. Run make deploy.\n")
    try:
        await tg.inject("remember: the sky is green", user="u1")
        # the streamed answer shows before the turn ends (and records its usage): wait for the end
        await tg.wait_for(lambda: len(tg.posted) == 1 and not gateway.dispatcher.busy("telegram:dm:u1"))
        await tg.inject("/usage", user="u1")
        await tg.wait_for(lambda: len(tg.posted) == 2)
        assert "1 model call," in tg.texts()[1] and "11 prompt + 7 completion tokens" in tg.texts()[1]
        await tg.inject("/model", user="u1")
        await tg.wait_for(lambda: len(tg.posted) == 3)
        assert "openai/fake-model" in tg.texts()[2]
        await tg.inject("/new", user="u1")
        await tg.wait_for(lambda: len(tg.posted) == 4)
        assert tg.texts()[3] == "Started a fresh conversation."
        await tg.inject("what colour is the sky?", user="u1")
        await tg.wait_for(lambda: len(model_server.requests) == 2)
        assert user_texts(model_server.requests[1]) == ["what colour is the sky?"]  # fresh history
        await tg.wait_for(lambda: len(tg.posted) == 5)
        await tg.inject("/deploy the website", user="u1")
        await tg.wait_for(lambda: len(model_server.requests) == 3)
        request = user_texts(model_server.requests[2])[-1]
        assert request.startswith("Follow the skill deploy") and "1. Run make deploy." in request
        assert request.endswith("Request: the website")
        await tg.wait_for(lambda: len(tg.posted) == 6)
        await tg.inject("/frobnicate now", user="u1")
        await tg.wait_for(lambda: len(tg.posted) == 7)
        # (the /deploy turn used a skill, so a learning review follows it: only chat calls count here)
        assert "I don't know /frobnicate" in tg.texts()[6] and len(model_server.requests_with_purpose("chat")) == 3
    finally:
        await gateway.stop()


async def test_without_a_model_the_gateway_says_how_to_configure_one(home: Path) -> None:
    gateway, adapters = await start_gateway(home, api_section() + TELEGRAM)
    tg = adapters["telegram"]
    try:
        await tg.inject("hello", user="u1")
        await tg.wait_for(lambda: len(tg.posted) == 1)
        assert "no model is configured" in tg.texts()[0] and "[model]" in tg.texts()[0]
    finally:
        await gateway.stop()


async def test_images_go_to_the_model_and_documents_to_the_workspace(
        home: Path, model_server: FakeModelServer) -> None:
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM)
    tg = adapters["telegram"]
    png = b"\x89PNG\r\n\x1a\nfakeimage"
    try:
        await tg.inject("what is this?", user="u1", attachments=(
            Attachment("image", "cat.png", "image/png", len(png), data=png),
            Attachment("document", "../../report.csv", "text/csv", 7, data=b"a,b\n1,2"),
        ))
        await tg.wait_for(lambda: len(tg.posted) == 1)
        last = model_server.requests[0]["messages"][-1]
        parts = last["content"]
        assert parts[0]["type"] == "text" and "what is this?" in parts[0]["text"]
        assert "uploads/report.csv" in parts[0]["text"]
        assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgpmYWtlaW1hZ2U="}}
        saved = list((home / "workspaces").rglob("report.csv"))
        assert len(saved) == 1 and saved[0].read_bytes() == b"a,b\n1,2" and saved[0].parent.name == "uploads"
    finally:
        await gateway.stop()
