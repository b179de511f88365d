"""Scheduled runs inside a running Runtime: firing and delivery, pause/resume, restarts, misfires
within and outside grace, no overlap, failures delivered, skills loaded. The real APScheduler,
the real LiteLLM against the fake model server, the real SQLite store."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cron.scheduler import JobBusy
from tests.cron_support import add_job_created_at, close_cron, open_cron, wait_for, write_cron_config
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.model_server import FakeModelServer, fault, text, tool_calls


def user_prompts(server: FakeModelServer) -> list[str]:
    return [r["messages"][-1]["content"] for r in server.requests if r["messages"][-1]["role"] == "user"]


async def test_interval_job_fires_and_results_reach_file_and_platform_targets(
        home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    model_server.default_text = "Errors yesterday: 3 (all timeouts)."
    runtime, service, recorder = await open_cron(home, start=True)
    try:
        report = home / "reports" / "errors.md"
        to_file = await service.create("every 1s", prompt="Summarise yesterday's errors", deliver="file:reports/errors.md",
                                       name="errors", owner="cli")
        to_chat = await service.create("every 1s", prompt="Post the error summary", deliver="telegram:-100777",
                                       owner="cli")
        await wait_for(lambda: report.exists() and "Errors yesterday: 3" in report.read_text())
        await wait_for(lambda: recorder.sent)
    finally:
        await close_cron(runtime, service)
    assert recorder.sent[0] == ("telegram:-100777", "Errors yesterday: 3 (all timeouts).")
    body = report.read_text()
    assert body.startswith("## errors · ")
    # each run is a fresh headless session that was given the job's prompt
    assert any(p.endswith("Summarise yesterday's errors") and "Scheduled run of job 'errors'" in p
               for p in user_prompts(model_server))
    runtime2, service2, _ = await open_cron(home)
    try:
        runs = await service2.runs(to_file.id)
        assert runs and runs[-1].status == "ok" and runs[-1].tokens == 18
        assert runs[-1].output_excerpt == "Errors yesterday: 3 (all timeouts)."
        chat_session = await runtime2.store.get_session((await service2.runs(to_chat.id))[-1].session_id)
        assert chat_session is not None and chat_session.key.startswith(f"cron:{to_chat.id}:")
        assert (chat_session.platform, chat_session.chat_id) == ("telegram", "-100777")
    finally:
        await runtime2.close()


async def test_pause_and_resume(home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    runtime, service, recorder = await open_cron(home, start=True)
    try:
        job = await service.create("every 1s", prompt="tick", deliver="telegram:42", owner="cli")
        await wait_for(lambda: len(recorder.sent) >= 1)
        await service.pause(job.id)
        await asyncio.sleep(0.2)            # a run already under way may finish
        paused_count = len(recorder.sent)
        await asyncio.sleep(2.2)
        assert len(recorder.sent) == paused_count, "a paused job fired"
        assert (await service.get(job.id)).state == "paused"
        await service.resume(job.id)
        await wait_for(lambda: len(recorder.sent) > paused_count, timeout=4)
    finally:
        await close_cron(runtime, service)


async def test_missed_run_within_grace_runs_once_and_a_restart_does_not_repeat_it(
        home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server, cron="timeout = 20\ngrace_seconds = 3600")
    runtime, service, recorder = await open_cron(home)
    # an hourly job whose last five runs fell while the gateway was down, the latest 10 s ago
    created = datetime.now(UTC) - timedelta(hours=5, seconds=10)
    job = await add_job_created_at(service, created, "every 1h", prompt="hourly digest", target="telegram:42")
    await service.start()
    try:
        await wait_for(lambda: recorder.sent)
        await asyncio.sleep(0.5)
    finally:
        await close_cron(runtime, service)
    assert len(recorder.sent) == 1, "missed runs must coalesce into one"
    assert len(model_server.requests) == 1

    # restart right after the run: nothing runs again
    runtime, service, recorder = await open_cron(home, start=True)
    try:
        await asyncio.sleep(1.0)
        runs = await service.runs(job.id)
    finally:
        await close_cron(runtime, service)
    assert recorder.sent == []
    assert len(model_server.requests) == 1
    assert [(r.cause, r.status) for r in runs] == [("catchup", "ok")]
    expected = created + timedelta(hours=5)
    assert datetime.fromisoformat(runs[0].scheduled_time) == expected


async def test_missed_run_outside_grace_is_skipped_with_a_log_line(
        home: Path, model_server: FakeModelServer, caplog: pytest.LogCaptureFixture) -> None:
    write_cron_config(home, model_server, cron="timeout = 20\ngrace_seconds = 60")
    runtime, service, recorder = await open_cron(home)
    created = datetime.now(UTC) - timedelta(days=1, hours=2)   # daily; last run due 2 h ago
    job = await add_job_created_at(service, created, "every 1d", prompt="daily digest", target="telegram:42")
    with caplog.at_level(logging.WARNING, logger="gateway.cron.scheduler"):
        await service.start()
        await asyncio.sleep(0.5)
    try:
        runs = await service.runs(job.id)
    finally:
        await close_cron(runtime, service)
    assert recorder.sent == [] and model_server.requests == []
    assert [(r.cause, r.status) for r in runs] == [("missed", "skipped")]
    assert any(f"cron job {job.id}" in m and "skipping the run missed" in m and "grace is 60s" in m
               for m in caplog.messages)


async def test_no_overlap_when_a_run_is_slower_than_the_interval(
        home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    model_server.latency = 1.6              # each run takes longer than the 1 s interval
    runtime, service, recorder = await open_cron(home, start=True)
    try:
        job = await service.create("every 1s", prompt="slow work", deliver="none", owner="cli")
        await wait_for(lambda: service.scheduler.lock_for(job.id).locked(), timeout=3)
        with pytest.raises(JobBusy, match="never runs twice at once"):
            await service.run_now(job.id)
        await asyncio.sleep(3.6)
    finally:
        await close_cron(runtime, service)
    runtime, service, _ = await open_cron(home)
    try:
        runs = [r for r in await service.runs(job.id) if r.status != "skipped"]
    finally:
        await runtime.close()
    assert len(runs) >= 2
    spans = sorted((r.started_at, r.finished_at or 1e18) for r in runs)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, "two runs of one job overlapped"


async def test_failure_is_delivered_and_recorded(home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    model_server.add(fault(500))
    runtime, service, recorder = await open_cron(home)
    try:
        job = await service.create("0 9 * * *", prompt="report", deliver="telegram:42", name="morning", owner="cli")
        outcome = await (await service.run_now(job.id))
        runs = await service.runs(job.id)
    finally:
        await close_cron(runtime, service)
    assert outcome is not None and outcome.status == "error"
    assert len(recorder.sent) == 1
    target, message = recorder.sent[0]
    assert target == "telegram:42" and message.startswith("⚠️ Scheduled job 'morning' failed:")
    assert runs[0].status == "error" and "500" in runs[0].error and runs[0].cause == "manual"


async def test_platform_delivery_failure_is_recorded(home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    runtime, service, recorder = await open_cron(home)

    async def broken(target: str, text: str) -> None:
        raise ConnectionError("telegram unreachable")

    runtime.services["deliver"] = broken
    try:
        job = await service.create("0 9 * * *", prompt="report", deliver="telegram:42", owner="cli")
        outcome = await (await service.run_now(job.id))
    finally:
        await close_cron(runtime, service)
    assert outcome is not None and outcome.status == "undelivered"  # it ran; nobody got the result
    assert "telegram unreachable" in outcome.delivery_error


async def test_skill_body_is_loaded_into_the_run(home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    model_server.add(text("Daily report: all green."))
    runtime, service, recorder = await open_cron(home)
    try:
        job = await service.create("0 9 * * 1-5", skill="daily-report", prompt="for the ops team",
                                   deliver="telegram:42", owner="cli")
        outcome = await (await service.run_now(job.id))
    finally:
        await close_cron(runtime, service)
    assert outcome is not None and outcome.text == "Daily report: all green."
    request = user_prompts(model_server)[0]
    assert '<skill name="daily-report">' in request and "Request: for the ops team" in request
    assert recorder.sent == [("telegram:42", "Daily report: all green.")]


async def test_webhook_target_receives_json(home: Path, model_server: FakeModelServer) -> None:
    from aiohttp import web

    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/hermes", hook)
    runner, port = await serve_on_loopback(app)
    write_cron_config(home, model_server)
    model_server.add(text("Backups verified."))
    runtime, service, _ = await open_cron(home)
    try:
        job = await service.create("every 1d", prompt="check backups", deliver=f"webhook:http://127.0.0.1:{port}/hooks/hermes",
                                   owner="cli")
        await (await service.run_now(job.id))
    finally:
        await close_cron(runtime, service)
        await runner.cleanup()
    assert len(received) == 1
    assert received[0]["text"] == "Backups verified." and received[0]["job_id"] == job.id
    assert received[0]["status"] == "ok"


async def test_checkpoint_runs_inside_the_cron_session_before_the_run_ends(
        home: Path, model_server: FakeModelServer) -> None:
    from gateway.learning.install import install_learning

    write_cron_config(home, model_server, extra='[learning]\nmodel = "openai/ckpt-model"\n'
                                                 "end_of_turn_min_tool_calls = 1\n")
    model_server.add(tool_calls(("list_files", {"path": "."})), text("Nothing to report."), model="fake-model")
    runtime, service, recorder = await open_cron(home)
    await install_learning(runtime)
    try:
        job = await service.create("0 9 * * *", skill="daily-report", deliver="telegram:42", owner="cli")
        outcome = await (await service.run_now(job.id))
        assert outcome is not None and outcome.status == "ok"
        # the run is over only once its checkpoint is: the checkpoint model saw the cron session
        assert model_server.requests_for("ckpt-model")
        rows = await runtime.store.checkpoint_rows()
        assert [r["session_id"] for r in rows] == [outcome.session_id]
        assert all(r["status"] != "running" for r in rows)
    finally:
        await close_cron(runtime, service)


async def test_result_reaches_the_chat_through_the_real_gateway(home: Path, model_server: FakeModelServer) -> None:
    from gateway.cron.wiring import install_cron
    from tests.conftest import model_config
    from tests.fakes.gateway_harness import api_section, start_gateway

    model_server.add(text("Nightly build: green."))
    config = (model_config(model_server) + api_section() + '[telegram]\nenabled = true\ntoken = "1:abc"\n'
              'allow_users = ["u1"]\n')
    gateway, adapters = await start_gateway(home, config)
    tg = adapters["telegram"]
    # the gateway started its own cron service; swap in one that accepts a 1 s interval
    await gateway.cron.stop(grace=1)
    gateway.runtime.services.pop("cron")
    service = install_cron(gateway.runtime, min_interval=1, sync_interval=0.1)
    gateway.cron = service
    await service.start()
    try:
        await service.create("every 1s", prompt="report the nightly build", deliver="telegram:ops-room",
                             owner="cli")
        await wait_for(lambda: tg.texts("ops-room"), timeout=10)
        assert tg.texts("ops-room")[0] == "Nightly build: green."
    finally:
        await gateway.stop()


async def test_a_scheduler_whose_duty_is_lost_fires_nothing_and_can_start_again(
        home: Path, model_server: FakeModelServer) -> None:
    """The cron-scheduler duty: every fire asks the fence first; a stopped scheduler starts afresh,
    and the new owner records what its dead predecessor left running as interrupted."""
    write_cron_config(home, model_server)
    runtime, service, recorder = await open_cron(home)
    owner = True

    async def fence() -> bool:
        return owner

    try:
        await service.start(fence=fence)
        job = await service.create("every 1s", prompt="tick", deliver="telegram:42", owner="cli")
        await wait_for(lambda: len(recorder.sent) >= 1, timeout=30)   # the first turn imports LiteLLM
        owner = False                         # another process took the duty over
        await asyncio.sleep(0.3)              # a run already past its fence may finish
        fenced_at = len(recorder.sent)
        await asyncio.sleep(2.5)
        assert len(recorder.sent) == fenced_at, "a fenced scheduler fired"
        await service.stop(grace=5)
        left = await service.jobs.claim(job.id, datetime.now(UTC) + timedelta(hours=1), "schedule")
        assert left is not None               # a run the dead owner was in the middle of
        owner = True
        await service.start(fence=fence, previous_owner="host:123:abcdef")
        await wait_for(lambda: len(recorder.sent) > fenced_at, timeout=30)
        runs = {r.id: r for r in await service.runs(job.id, limit=200)}
        assert runs[left].status == "interrupted" and "host:123:abcdef" in runs[left].error
    finally:
        await close_cron(runtime, service)
