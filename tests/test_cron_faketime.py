"""A real `hermes gateway` process under libfaketime, its clock standing in the repeated hour of
America/New_York (2026-11-01, 01:29:30 EST: the second pass), with two due jobs:

- `30 1 * * *`: its 01:30 EDT run was missed while the gateway was down; it runs once (catch-up)
  and not again at 01:30 EST, the moment the old scheduler looped forever at;
- `*/15 * * * *`: an interval-style job that last ran at 01:15 EST, due at 01:30 EST.

Throughout, /healthz answers within seconds; SIGTERM (sent to the gateway, faketime's child)
stops it cleanly. Outside CI the test skips when the `faketime` command is missing; .ci/run
installs Debian's package.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.cron.jobs import JobStore
from gateway.cron.schedule import parse_schedule
from gateway.home import Home
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section
from tests.fakes.model_server import FakeModelServer
from tests.store_support import home_store

FAKE_START = "2026-11-01 06:29:30"        # UTC: 01:29:30 EST, the second pass of 01:xx in New York
NY = "America/New_York"
NIGHT_EDT = "2026-11-01T05:30:00.000000+00:00"     # 01:30 EDT
QUARTER_EST = "2026-11-01T06:30:00.000000+00:00"   # 01:30 EST


def _faketime() -> str:
    path = shutil.which("faketime")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the faketime command must be installed in CI (.ci/run installs Debian's faketime)")
        pytest.skip("the faketime command is not installed (apt-get install faketime)")
    return path


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


async def _runs(home: Path) -> list[tuple[str, str, str, str]]:
    """The run history as the gateway wrote it, read through a second store client."""
    async with home_store(home) as store:
        return await store.cron_run_history()


async def _add_jobs(home: Path) -> tuple[str, str]:
    Home(home).ensure()
    async with home_store(home, migrate=True) as store:
        jobs = JobStore(store)
        created = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
        fixed = await jobs.create(name="night", schedule=parse_schedule("30 1 * * *", NY, now=created),
                                  prompt="night report", target="none", owner="cli")
        every = await jobs.create(name="quarter", schedule=parse_schedule("*/15 * * * *", NY, now=created),
                                  prompt="quarter report", target="none", owner="cli")
        # the quarter-hourly job last ran at 01:15 EST, just before the gateway went down
        run_id = await jobs.claim(every.id, datetime(2026, 11, 1, 6, 15, tzinfo=UTC), "schedule")
        assert run_id is not None
        await jobs.finish(run_id, status="ok")
        return fixed.id, every.id


async def test_gateway_in_the_repeated_hour_stays_responsive_and_stops_on_sigterm(
        home: Path, model_server: FakeModelServer) -> None:
    faketime = _faketime()
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(model_config(model_server) + api_section() +
                                      "[cron]\ngrace_seconds = 3600\ntimeout = 300\n", encoding="utf-8")
    fixed_id, every_id = await _add_jobs(home)
    env = {**os.environ, "HERMES_HOME": str(home), "TZ": "UTC"}
    process = await asyncio.create_subprocess_exec(
        faketime, "-f", f"@{FAKE_START}", sys.executable, "-m", "gateway", "gateway", "--grace", "5", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    stderr_task = asyncio.create_task(process.stderr.read())
    try:
        banner = ""
        while "Stop with" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, (await stderr_task).decode()[-3000:]
            banner += line.decode()
        url = re.search(r"Web chat:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        answered = 0
        deadline = time.monotonic() + 240      # the first run imports LiteLLM: slow on a busy machine
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            while True:
                async with http.get(url + "healthz", timeout=aiohttp.ClientTimeout(total=5)) as response:
                    assert response.status == 200, await response.text()
                    answered += 1
                runs = await _runs(home)
                finished = {(job, when) for job, when, _cause, status in runs if status != "running"}
                if {(fixed_id, NIGHT_EDT), (every_id, QUARTER_EST)} <= finished and answered >= 10:
                    break
                assert time.monotonic() < deadline, f"the 01:30 EST run did not finish: {runs}"
                assert process.returncode is None, (await stderr_task).decode()[-3000:]
                await asyncio.sleep(0.5)
        gateway_pids = _children(process.pid)
        assert len(gateway_pids) == 1, gateway_pids
        os.kill(gateway_pids[0], signal.SIGTERM)      # the gateway, not faketime (which would orphan it)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            for pid in _children(process.pid):
                os.kill(pid, signal.SIGKILL)
            process.kill()
            await process.wait()
        stderr_task.cancel()
    runs = await _runs(home)
    night = [(when, cause, status) for job, when, cause, status in runs if job == fixed_id]
    quarter = [(when, cause, status) for job, when, cause, status in runs if job == every_id]
    # the fixed-time job: once, for 01:30 EDT (made up at start); never for 01:30 EST
    assert night == [(NIGHT_EDT, "catchup", "ok")]
    # the interval job: the 01:15 EST run from before, then 01:30 EST on schedule, once
    assert quarter == [("2026-11-01T06:15:00.000000+00:00", "schedule", "ok"), (QUARTER_EST, "schedule", "ok")]
