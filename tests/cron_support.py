"""Shared set-up for the cron tests: a Runtime with skills and cron on the fake model server,
a recorder standing in for the gateway's `services["deliver"]`, and a polling wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.llm import import_litellm
from gateway.config import load_config
from gateway.cron.jobs import Job
from gateway.cron.schedule import parse_schedule
from gateway.cron.service import CronService
from gateway.cron.wiring import install_cron
from gateway.home import Home
from gateway.runtime import Runtime
from gateway.skills_wiring import install_skills
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer

TELEGRAM = '[telegram]\nenabled = true\ntoken = "123456:test-token"\n'


@dataclass
class DeliveryRecorder:
    """`async (target, text) -> None`, as the gateway provides it; remembers what it was given."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, target: str, text: str) -> None:
        self.sent.append((target, text))


def write_cron_config(home: Path, server: FakeModelServer, cron: str = "", extra: str = "") -> None:
    text = model_config(server, max_retries=0) + "[cron]\n" + (cron or "timeout = 20") + "\n" + TELEGRAM + extra
    write_config(home, text)


async def open_cron(home: Path, *, start: bool = False) -> tuple[Runtime, CronService, DeliveryRecorder]:
    await asyncio.to_thread(import_litellm)   # seconds on first import: not inside a timed run
    hermes_home = Home.from_env()
    runtime = await Runtime.open(load_config(None, hermes_home), hermes_home)
    if "skill_libraries" not in runtime.services:
        await install_skills(runtime)
    recorder = DeliveryRecorder()
    runtime.services["deliver"] = recorder
    service = install_cron(runtime, min_interval=1, sync_interval=0.1)
    if start:
        await service.start()
    return runtime, service, recorder


async def close_cron(runtime: Runtime, service: CronService) -> None:
    await service.stop(grace=5)
    await runtime.close()


async def add_job_created_at(service: CronService, created: datetime, schedule: str, *, prompt: str,
                             target: str) -> Job:
    """A job as if created at `created` (to simulate time the gateway was down)."""
    parsed = parse_schedule(schedule, "UTC", now=created, min_interval=1)
    return await service.jobs.create(name="backdated", schedule=parsed, prompt=prompt, target=target, owner="cli")


async def wait_for(condition: Callable[[], Any], timeout: float = 8.0, interval: float = 0.05) -> Any:
    """Poll `condition` (sync or async) until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
