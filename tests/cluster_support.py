"""Several real `hermes gateway` processes on one PostgreSQL store, for the cluster tests.

Each member has its own HERMES_HOME (its own pid file and HTTP port) and the same config: the
store URL, the fake model, the fake Telegram Bot API. `start_member` returns once the banner is
out, with the process, its pid and its HTTP address; `health(member)` reads its `/healthz`.
The `tg` and `slack` fixtures are the fake platforms the cluster tests share (import them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import model_config, write_config
from tests.fakes.gateway_harness import TOKEN, api_section, gateway_process_with_banner
from tests.fakes.model_server import FakeModelServer, Reply
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.telegram_server import FakeTelegramServer

USER = 42
TAG = re.compile(r"msg-\d+")


def echo(body: dict[str, Any]) -> Reply:
    """The model's answer names the message it answers (`msg-N` in the last user message)."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else " ".join(
                part.get("text", "") for part in content or [] if isinstance(part, dict))
            found = TAG.findall(text)
            return Reply(content=f"answer {found[-1]}" if found else "answer ?")
    return Reply(content="answer ?")


async def add_interval_job(store: Any, seconds: int, *, name: str, prompt: str, target: str) -> str:
    """A cron job that fires every `seconds` (below the CLI's one-minute floor, so a test sees
    several scheduled times in seconds rather than minutes), written to the shared store as
    `hermes cron add` writes one; the members pick it up on their next sync. Returns its id."""
    from gateway.cron.jobs import JobStore
    from gateway.cron.schedule import parse_schedule

    schedule = parse_schedule(f"every {seconds}s", "UTC", min_interval=1)
    job = await JobStore(store).create(name=name, schedule=schedule, prompt=prompt, target=target, owner="cli")
    return job.id


async def pause_and_settle(store: Any, home: Path, job_id: str) -> None:
    """Pause a job (`hermes cron pause`) and wait until no run of it is in flight, past the
    members' next sync: after this the run history no longer changes."""
    run_hermes(home, "cron", "pause", job_id)

    async def settle() -> None:
        deadline = time.monotonic() + 30
        while any(status == "running" for *_, status in await store.cron_run_history()):
            assert time.monotonic() < deadline, "a cron run did not finish within 30 s"
            await asyncio.sleep(0.2)

    await settle()
    await asyncio.sleep(6.0)          # the members sync jobs every 5 s: a run the pause missed starts by now
    await settle()


def scripted_echo(model_server: FakeModelServer, n: int = 400) -> None:
    model_server.add(*([echo] * n), purpose="chat")


def cluster_config(store_url: str, model_server: FakeModelServer, tg: FakeTelegramServer, extra: str = "") -> str:
    return (f'[store]\nurl = "{store_url}"\n' + model_config(model_server) + "stream = false\n" + api_section()
            + f'[telegram]\nenabled = true\ntoken = "{tg.token}"\napi_base = "{tg.api_base}"\n'
              f'poll_timeout = 0.5\nallow_users = ["{USER}"]\n' + extra)


@dataclass
class Member:
    home: Path
    process: asyncio.subprocess.Process
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


async def start_member(home: Path, config_text: str, grace: float = 5) -> Member:
    write_config(home, config_text)
    process, banner = await gateway_process_with_banner(home, grace, timeout=120)
    found = re.search(r"Web chat:\s+(http://\S+/)", banner)
    assert found, banner
    return Member(home, process, found.group(1))


async def start_members(root: Path, config_text: str, count: int) -> list[Member]:
    """`count` members (homes root/member-0 ...) started at once, in that order; if one fails to
    start, the others are stopped and its error raised."""
    started = await asyncio.gather(*(start_member(root / f"member-{i}", config_text) for i in range(count)),
                                   return_exceptions=True)
    members = [m for m in started if isinstance(m, Member)]
    failed = [e for e in started if isinstance(e, BaseException)]
    if failed:
        await asyncio.gather(*(stop_member(m) for m in members))
        raise failed[0]
    return members


async def _get(member: Member, path: str) -> aiohttp.ClientResponse:
    # a process that just started is busy importing LiteLLM on a loaded machine: be patient
    for attempt in range(3):
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    member.url + path, headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=aiohttp.ClientTimeout(total=30)) as response:
                await response.read()
                return response
        except (TimeoutError, aiohttp.ClientError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def health(member: Member) -> dict[str, Any]:
    return dict(await (await _get(member, "healthz")).json())


async def metrics(member: Member) -> str:
    return await (await _get(member, "metrics")).text()


async def stop_member(member: Member) -> None:
    process = member.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def run_hermes(home: Path, *args: str) -> str:
    """`hermes ARGS` on HERMES_HOME=home (a CLI next to the running members); its stdout, checked."""
    done = subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          env={**os.environ, "HERMES_HOME": str(home)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    """The fake Bot API as Telegram treats several pollers of one bot: the second one gets 409."""
    server = await FakeTelegramServer().start()
    server.conflict_on_overlap = True
    yield server
    await server.stop()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackServer]:
    server = await FakeSlackServer().start()
    yield server
    await server.stop()


def kill(member: Member) -> None:
    with contextlib.suppress(ProcessLookupError):
        member.process.send_signal(signal.SIGKILL)


def owner_pid(owner: str) -> int | None:
    """The pid in a process id `host:pid:suffix` (gateway.cluster.node.new_process_id)."""
    parts = owner.split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None
