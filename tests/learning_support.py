"""Shared set-up for the learning-loop tests: a Runtime with skills and learning installed,
a checkpoint model of its own on the fake server, and scripted skills."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from gateway.config import load_config
from gateway.home import Home
from gateway.learning.install import install_learning
from gateway.learning.loop import LearningLoop
from gateway.runtime import Runtime
from gateway.skills_wiring import install_skills
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer

CHECKPOINT_MODEL = "ckpt-model"

DEPLOY_SKILL = """---
name: deploy-staging
description: Deploy the web app to the staging cluster and run its database migrations. Use when asked to ship or deploy a branch to staging.
---

# Deploy to staging

## When to use
- Someone asks to deploy or ship a branch to staging.

## Procedure
1. Build the image with `make image`.
2. Push it with `make push TAG=staging`.
3. Run migrations with `make migrate ENV=staging` before switching traffic.
4. Switch traffic with `make release ENV=staging`.

## Pitfalls
- Running migrations after the release breaks the old pods: always migrate first.

## Verification
- `curl https://staging.example.test/healthz` answers 200.
"""

PDF_SKILL = """---
name: pdf-report
description: Build the monthly PDF report from the metrics export, with the company logo. Use when asked for the monthly report.
---

# Monthly PDF report

## Procedure
1. Export metrics with `make export`.
2. Render with `make pdf`.
3. Place the logo at 100% opacity in the header.

## Verification
- The PDF opens and has 4 pages.
"""


async def open_runtime(home: Path, server: FakeModelServer, learning: str = "", memory: str = "",
                       checkpoint_model: bool = True) -> tuple[Runtime, LearningLoop]:
    lines = [model_config(server), "[learning]"]
    if checkpoint_model:
        lines.append(f'model = "openai/{CHECKPOINT_MODEL}"')
    lines.append(learning)
    if memory:
        lines += ["[memory]", memory]
    write_config(home, "\n".join(lines) + "\n")
    config = load_config(None, Home.from_env())
    runtime = await Runtime.open(config, Home.from_env())
    if "skill_libraries" not in runtime.services:
        await install_skills(runtime)
    loop = await install_learning(runtime)
    return runtime, loop


def checkpoint_requests(server: FakeModelServer) -> list[dict[str, Any]]:
    return server.requests_for(CHECKPOINT_MODEL)


def user_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in request["messages"] if m["role"] == "user")


async def hermes(*args: str, home: Path, timeout: float = 60) -> tuple[int, str, str]:
    env = {**os.environ, "HERMES_HOME": str(home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()
