"""A scheduler that cannot stall: a job whose next time cannot be computed is paused with the reason
(in `hermes cron list` and the log) while the others keep running; the trigger never raises into
APScheduler and never hands it an unbounded backlog; catch-up after an outage that spans the
autumn change runs each missed job once. Real APScheduler, real store, fake model server."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.cron.crontime import CronTimes
from gateway.cron.schedule import Schedule, parse_schedule
from gateway.cron.trigger import CroniterTrigger
from tests.cron_support import close_cron, open_cron, wait_for, write_cron_config
from tests.fakes.model_server import FakeModelServer
from tests.test_cli_chat import hermes

NY = "America/New_York"


def test_the_trigger_reports_instead_of_raising_and_never_hands_back_a_backlog() -> None:
    reasons: list[str] = []
    never = CroniterTrigger(CronTimes("0 0 30 2 *", ZoneInfo("UTC")), on_error=reasons.append)
    assert never.get_next_fire_time(None, datetime(2026, 6, 1, tzinfo=UTC)) is None
    assert len(reasons) == 1 and "cannot be computed" in reasons[0] and "no fire time" in reasons[0]

    # a per-minute job asked after a week asleep: the answer lies within the catch-up window,
    # so APScheduler's own misfire loop sees a handful of times, not 10,080
    every_minute = CroniterTrigger(CronTimes("* * * * *", ZoneInfo(NY)), catch_up=timedelta(minutes=5))
    now = datetime(2026, 11, 1, 6, 10, 30, tzinfo=UTC)
    week_ago = now - timedelta(days=7)
    first = every_minute.get_next_fire_time(week_ago, now)
    assert first is not None and now - timedelta(minutes=5) < first <= now
    count, moment = 0, first
    while moment is not None and moment <= now:      # what APScheduler does with the answers
        count += 1
        moment = every_minute.get_next_fire_time(moment, now)
    assert count == 5 and moment == datetime(2026, 11, 1, 6, 11, tzinfo=UTC)
    # answers are UTC and strictly after the previous fire time, also inside the repeated hour
    inside = datetime(2026, 11, 1, 5, 59, tzinfo=UTC)
    nxt = every_minute.get_next_fire_time(inside, inside)
    assert nxt == datetime(2026, 11, 1, 6, 0, tzinfo=UTC) and nxt.utcoffset() == timedelta(0)


async def test_a_job_without_a_next_time_is_paused_with_the_reason_and_the_others_run(
        home: Path, model_server: FakeModelServer, caplog: pytest.LogCaptureFixture) -> None:
    write_cron_config(home, model_server)
    runtime, service, recorder = await open_cron(home)
    # what an older version stored without complaint: February 30th, and a zone tzdata dropped
    broken = await service.jobs.create(
        name="feb-30", schedule=Schedule("cron", "0 0 30 2 *", "UTC", datetime.now(UTC)), prompt="never",
        target="telegram:42", owner="cli")
    gone = await service.jobs.create(
        name="lost-zone", schedule=Schedule("cron", "0 9 * * *", "Mars/Olympus_Mons", datetime.now(UTC)),
        prompt="never", target="telegram:42", owner="cli")
    good = await service.create("every 1s", prompt="tick", deliver="telegram:42", owner="cli")
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.cron.scheduler"):
            await service.start()
            await wait_for(lambda: recorder.sent, timeout=20)
        paused = await service.get(broken.id)
        lost = await service.get(gone.id)
        assert (await service.get(good.id)).state == "active"
    finally:
        await close_cron(runtime, service)
    assert paused.state == "paused" and "day 30 never occurs in February" in paused.paused_reason
    assert lost.state == "paused" and "unknown time zone 'Mars/Olympus_Mons'" in lost.paused_reason
    assert any(f"cron job {broken.id} (feb-30) paused" in m and "never occurs in February" in m
               for m in caplog.messages)
    assert all(target == "telegram:42" and text for target, text in recorder.sent)

    code, out, err = await hermes("cron", "list", home=home)
    assert code == 0, err
    line = next(text for text in out.splitlines() if broken.id in text)
    assert "paused" in line
    assert "paused: its schedule '0 0 30 2 *' (UTC) cannot be used: day: day 30 never occurs in February" in out
    code, out, err = await hermes("cron", "list", "--json", home=home)
    listed = {job["id"]: job for job in json.loads(out)}
    assert listed[broken.id]["state"] == "paused" and listed[broken.id]["next_runs"] == []
    assert "never occurs in February" in listed[broken.id]["paused_reason"]
    # resuming is refused while the schedule still cannot fire; the job stays paused with its reason
    code, out, err = await hermes("cron", "resume", broken.id, home=home)
    assert code == 2 and f"job {broken.id} cannot be resumed" in err
    code, out, err = await hermes("cron", "list", "--json", home=home)
    assert next(j for j in json.loads(out) if j["id"] == broken.id)["state"] == "paused"


async def test_cli_list_shows_next_runs_in_the_jobs_zone_with_the_offset(home: Path,
                                                                         model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    code, out, err = await hermes("cron", "add", "30 1 * * *", "--prompt", "night report", "--tz", NY, home=home)
    assert code == 0, err
    assert re.search(r"Next runs: \w{3} \d{4}-\d\d-\d\d 01:30 E[SD]T \(-0[45]:00\), ", out), out
    code, out, err = await hermes("cron", "list", home=home)
    assert re.search(r"next: \w{3} \d{4}-\d\d-\d\d 01:30 E[SD]T \(-0[45]:00\)", out), out
    code, out, err = await hermes("cron", "list", "--json", home=home)
    runs = json.loads(out)[0]["next_runs"]
    assert len(runs) == 3
    for text in runs:
        moment = datetime.fromisoformat(text)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT01:30:00-0[45]:00", text)
        assert moment.astimezone(ZoneInfo(NY)).strftime("%H:%M") == "01:30"
    code, out, err = await hermes("cron", "add", "0 0 30 2 *", "--prompt", "x", home=home)
    assert code == 2 and "day: day 30 never occurs in February, so '0 0 30 2 *' never fires" in err


async def _job_with_last_run(service: object, expression: str, last_run: datetime) -> object:
    created = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    schedule = parse_schedule(expression, NY, now=created)
    job = await service.jobs.create(name=expression, schedule=schedule, prompt=f"run {expression}",  # type: ignore[attr-defined]
                                    target="telegram:42", owner="cli")
    run_id = await service.jobs.claim(job.id, last_run, "schedule")  # type: ignore[attr-defined]
    await service.jobs.finish(run_id, status="ok")  # type: ignore[attr-defined]
    return job


async def test_catch_up_across_the_autumn_change_runs_each_missed_job_once(
        home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server, cron="timeout = 20\ngrace_seconds = 3600")
    # the gateway went down at 01:50 EDT and comes back at 01:20 EST, 30 minutes later
    back = datetime(2026, 11, 1, 6, 20, tzinfo=UTC)
    runtime, service, recorder = await open_cron(home)
    service.scheduler.clock = lambda: back
    fixed = await _job_with_last_run(service, "30 1 * * *", datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
    interval = await _job_with_last_run(service, "*/15 1 * * *", datetime(2026, 11, 1, 5, 45, tzinfo=UTC))
    try:
        await service.start()
        await wait_for(lambda: recorder.sent, timeout=20)
        runs_fixed = await service.runs(fixed.id)  # type: ignore[attr-defined]
        runs_interval = await service.runs(interval.id)  # type: ignore[attr-defined]
    finally:
        await close_cron(runtime, service)
    # the fixed-time job already ran at the first 01:30: nothing to make up (not even a skip)
    assert [r.scheduled_time for r in runs_fixed] == ["2026-11-01T05:30:00.000000+00:00"]
    # the interval job missed 01:00 EST and 01:15 EST: one run, for the latest
    assert sorted((r.scheduled_time, r.cause) for r in runs_interval) == [
        ("2026-11-01T05:45:00.000000+00:00", "schedule"), ("2026-11-01T06:15:00.000000+00:00", "catchup")]
    assert len(recorder.sent) == 1

    runtime, service, recorder = await open_cron(home)       # and a restart does not run it again
    service.scheduler.clock = lambda: back + timedelta(minutes=1)
    try:
        await service.start()
        await wait_for(lambda: service.scheduler.running)
        assert len(await service.runs(interval.id)) == 2  # type: ignore[attr-defined]
    finally:
        await close_cron(runtime, service)
    assert recorder.sent == []


async def test_internal_callbacks_run_on_schedule_survive_their_errors_and_are_not_stored(
        home: Path, model_server: FakeModelServer, caplog: pytest.LogCaptureFixture) -> None:
    from gateway.cron.schedule import ScheduleError

    write_cron_config(home, model_server)
    runtime, service, _ = await open_cron(home)
    calls: list[str] = []

    async def tick() -> None:
        calls.append("tick")

    async def broken() -> None:
        raise RuntimeError("curator exploded")

    service.add_callback("tick", "every 1s", tick)
    service.add_callback("broken", "every 1s", broken)
    with pytest.raises(ScheduleError, match="day: day 30 never occurs in February"):
        service.add_callback("never", "0 0 30 2 *", tick)
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.cron.scheduler"):
            await service.start()
            await wait_for(lambda: len(calls) >= 3, timeout=15)
        assert await service.list() == []
    finally:
        await close_cron(runtime, service)
    assert any("internal callback broken failed" in m for m in caplog.messages)
