"""Cron times across every daylight-saving change of America/New_York, Europe/Berlin and
Australia/Lord_Howe (a 30-minute change) in 2026-2028: next runs strictly increase, a daily job
runs once per local date, no run lands on a local time that does not exist or that the
expression does not name (except the first instant after a skipped time, for a fixed-time job),
interval jobs fire at every real interval, the backward search agrees with the forward one, and
every computation takes a bounded number of croniter steps. Plus cronie's documented cases,
written out, and Hypothesis looking for a start time that breaks the rules."""

from __future__ import annotations

import itertools
import zoneinfo
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cron.crontime import CronTimes
from gateway.cron.schedule import describe_time, local_iso, parse_schedule

ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe")
FIXED = ("30 1 * * *", "30 2 * * *", "0 2 * * *", "59 1 * * *", "15 2 * * *", "45 1 * * *", "0 3 * * *",
         "@daily")
MULTI_HOUR = ("15 1,2,3 * * *", "0,30 1-3 * * *", "10 0-4/2 * * *", "45 1,2 * * 0")
INTERVAL = ("*/15 * * * *", "*/30 * * * *", "*/5 * * * *", "0 * * * *", "*/20 1-3 * * *", "*/10 1,2 * * *")
# croniter steps one computation may take: two for a fixed-time job (the hit and the next candidate,
# a few more around a change); for interval jobs, the candidates in one repeated hour (60 a minute)
MAX_FIXED_STEPS = 4
MAX_INTERVAL_STEPS = 2 * 60 + 4


def changes(zone: str, years: range = range(2026, 2029)) -> list[datetime]:
    """Every offset change of `zone` in `years` (UTC instants), found by bisecting a 6-hour scan."""
    tz = zoneinfo.ZoneInfo(zone)
    found = []
    moment = datetime(years.start, 1, 1, tzinfo=UTC)
    end = datetime(years.stop, 1, 1, tzinfo=UTC)
    step = timedelta(hours=6)
    while moment < end:
        nxt = moment + step
        if moment.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = moment, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset() else (lo, mid)
            found.append(hi.replace(microsecond=0))
        moment = nxt
    return found


CHANGES = [(zone, change) for zone in ZONES for change in changes(zone)]


def test_the_changes_are_all_there() -> None:
    per_zone = Counter(zone for zone, _ in CHANGES)
    assert per_zone == {"America/New_York": 6, "Europe/Berlin": 6, "Australia/Lord_Howe": 6}
    lord_howe = [c for z, c in CHANGES if z == "Australia/Lord_Howe"]
    tz = zoneinfo.ZoneInfo("Australia/Lord_Howe")
    assert {abs((c + timedelta(hours=1)).astimezone(tz).utcoffset() - (c - timedelta(hours=1)).astimezone(tz)
                .utcoffset()) for c in lord_howe} == {timedelta(minutes=30)}


def walk(expression: str, zone: str, start: datetime, end: datetime) -> tuple[list[datetime], int]:
    """Successive next runs (UTC) from start to end, and the most croniter steps one of them took."""
    times = CronTimes(parse_schedule(expression, zone, now=start).text, zoneinfo.ZoneInfo(zone))
    runs: list[datetime] = []
    most = 0
    moment = start
    for _ in range(2_000):
        found = times.next_after(moment)
        most = max(most, found.steps)
        assert found.time is not None
        if found.time > end:
            return runs, most
        runs.append(found.time)
        moment = found.time
    raise AssertionError("more runs than the window can hold")


def exists(local: datetime) -> bool:
    """The wall time of an aware local datetime exists in its zone (it round-trips through UTC)."""
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(tzinfo=None)


def first_instant_after_a_gap(moment: datetime) -> bool:
    tz = moment.tzinfo
    before = (moment - timedelta(seconds=1)).astimezone(tz)
    return before.utcoffset() != moment.utcoffset() and moment.utcoffset() > before.utcoffset()  # type: ignore[operator]


@pytest.mark.parametrize("expression", FIXED + MULTI_HOUR + INTERVAL)
def test_every_change_in_three_zones(expression: str) -> None:
    for zone, change in CHANGES:
        tz = zoneinfo.ZoneInfo(zone)
        times = CronTimes(parse_schedule(expression, zone, now=change).text, tz)
        interval_style = times.interval_style
        span = timedelta(hours=3) if interval_style else timedelta(days=2)
        runs, most = walk(expression, zone, change - span, change + span)
        where = f"{expression!r} in {zone} around {change.isoformat()}"
        assert runs, where
        assert all(a < b for a, b in itertools.pairwise(runs)), f"{where}: runs do not strictly increase"
        assert most <= (MAX_INTERVAL_STEPS if interval_style else MAX_FIXED_STEPS), f"{where}: {most} steps"
        for run in runs:
            local = run.astimezone(tz)
            assert exists(local), f"{where}: {local} does not exist"
            names_it = croniter.match(times.expression, local.replace(tzinfo=None))
            assert names_it or (not interval_style and first_instant_after_a_gap(local)), \
                f"{where}: {local} is not a time the expression names"
        # the backward search (catch-up) agrees with the forward one, also inside repeated hours
        for earlier, later in itertools.pairwise(runs):
            assert times.latest_at_or_before(later).time == later, where
            found = times.latest_at_or_before(later - timedelta(microseconds=1))
            assert found.time == earlier, f"{where}: before {later} the latest run is {found.time}, not {earlier}"
            assert found.steps <= (MAX_INTERVAL_STEPS if interval_style else MAX_FIXED_STEPS), where


@pytest.mark.parametrize("expression", FIXED)
def test_a_daily_job_runs_once_per_local_date(expression: str) -> None:
    for zone, change in CHANGES:
        tz = zoneinfo.ZoneInfo(zone)
        runs, _ = walk(expression, zone, change - timedelta(days=3), change + timedelta(days=3))
        dates = Counter(run.astimezone(tz).date() for run in runs)
        assert set(dates.values()) == {1}, f"{expression!r} in {zone} around {change}: {dates}"
        assert len(dates) >= 5


def test_every_minute_through_a_repeated_hour_is_bounded() -> None:
    times = CronTimes("* * * * *", zoneinfo.ZoneInfo("America/New_York"))
    moment, seen, most = datetime(2026, 11, 1, 5, 50, tzinfo=UTC), [], 0
    for _ in range(30):                        # 01:50 EDT ... through the change ... 01:10 EST
        found = times.next_after(moment)
        most = max(most, found.steps)
        assert found.time is not None
        seen.append(found.time)
        moment = found.time
    assert [b - a for a, b in itertools.pairwise(seen)] == [timedelta(minutes=1)] * 29
    assert most <= MAX_INTERVAL_STEPS


@pytest.mark.parametrize("expression, minutes", [("*/15 * * * *", 15), ("*/30 * * * *", 30), ("*/5 * * * *", 5)])
def test_interval_jobs_fire_at_every_real_interval(expression: str, minutes: int) -> None:
    for zone, change in CHANGES:
        runs, _ = walk(expression, zone, change - timedelta(hours=4), change + timedelta(hours=4))
        gaps = {b - a for a, b in itertools.pairwise(runs)}
        assert gaps == {timedelta(minutes=minutes)}, f"{expression!r} in {zone} around {change}: {gaps}"


def local_runs(expression: str, zone: str, start: datetime, n: int) -> list[str]:
    times = parse_schedule(expression, zone, now=start).next_runs(n, after=start)
    return [describe_time(t, zone) for t in times]


def test_cronie_cases_in_new_york() -> None:
    ny = "America/New_York"
    autumn = datetime(2026, 10, 31, 12, tzinfo=UTC)
    spring = datetime(2026, 3, 7, 12, tzinfo=UTC)
    # the repeated hour: a fixed-time job runs once, at the first 01:30
    assert local_runs("30 1 * * *", ny, autumn, 2) == ["Sun 2026-11-01 01:30 EDT (-04:00)",
                                                        "Mon 2026-11-02 01:30 EST (-05:00)"]
    # ... also when the clock already stands in the second pass of that hour
    in_second_pass = datetime(2026, 11, 1, 6, 29, 40, tzinfo=UTC)
    assert local_runs("30 1 * * *", ny, in_second_pass, 1) == ["Mon 2026-11-02 01:30 EST (-05:00)"]
    assert local_runs("15 1,2,3 * * *", ny, autumn, 3) == [
        "Sun 2026-11-01 01:15 EDT (-04:00)", "Sun 2026-11-01 02:15 EST (-05:00)", "Sun 2026-11-01 03:15 EST (-05:00)"]
    # an interval-style job runs in both passes
    assert local_runs("*/30 * * * *", ny, datetime(2026, 11, 1, 4, 50, tzinfo=UTC), 5) == [
        "Sun 2026-11-01 01:00 EDT (-04:00)", "Sun 2026-11-01 01:30 EDT (-04:00)",
        "Sun 2026-11-01 01:00 EST (-05:00)", "Sun 2026-11-01 01:30 EST (-05:00)", "Sun 2026-11-01 02:00 EST (-05:00)"]
    assert local_runs("0 * * * *", ny, datetime(2026, 11, 1, 4, 50, tzinfo=UTC), 3) == [
        "Sun 2026-11-01 01:00 EDT (-04:00)", "Sun 2026-11-01 01:00 EST (-05:00)", "Sun 2026-11-01 02:00 EST (-05:00)"]
    # the skipped hour: a time that does not exist runs right after the change, once
    assert local_runs("30 2 * * *", ny, spring, 2) == ["Sun 2026-03-08 03:00 EDT (-04:00)",
                                                        "Mon 2026-03-09 02:30 EDT (-04:00)"]
    assert local_runs("0,30 2 * * *", ny, spring, 2) == ["Sun 2026-03-08 03:00 EDT (-04:00)",
                                                          "Mon 2026-03-09 02:00 EDT (-04:00)"]
    assert local_runs("15 1,2,3 * * *", ny, spring, 3) == [
        "Sun 2026-03-08 01:15 EST (-05:00)", "Sun 2026-03-08 03:00 EDT (-04:00)", "Sun 2026-03-08 03:15 EDT (-04:00)"]
    # ... while an interval-style job simply has no run in the gap
    assert local_runs("*/30 * * * *", ny, datetime(2026, 3, 8, 6, 20, tzinfo=UTC), 3) == [
        "Sun 2026-03-08 01:30 EST (-05:00)", "Sun 2026-03-08 03:00 EDT (-04:00)", "Sun 2026-03-08 03:30 EDT (-04:00)"]


def test_lord_howe_half_hour_changes() -> None:
    lh = "Australia/Lord_Howe"
    # October: 02:00 -> 02:30; 02:15 does not exist and runs at 02:30
    assert local_runs("15 2 * * *", lh, datetime(2026, 10, 3, tzinfo=UTC), 2) == [
        "Sun 2026-10-04 02:30 +11 (+11:00)", "Mon 2026-10-05 02:15 +11 (+11:00)"]
    # April: 02:00 -> 01:30; 01:45 happens twice and runs once
    assert local_runs("45 1 * * *", lh, datetime(2026, 4, 4, tzinfo=UTC), 2) == [
        "Sun 2026-04-05 01:45 +11 (+11:00)", "Mon 2026-04-06 01:45 +1030 (+10:30)"]


def test_json_times_are_iso_in_the_jobs_zone() -> None:
    first = parse_schedule("30 1 * * *", "America/New_York", now=datetime(2026, 10, 31, 12, tzinfo=UTC))
    runs = first.next_runs(2, after=datetime(2026, 10, 31, 12, tzinfo=UTC))
    assert [local_iso(t, "America/New_York") for t in runs] == ["2026-11-01T01:30:00-04:00",
                                                                "2026-11-02T01:30:00-05:00"]


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(change=st.sampled_from(CHANGES),
       offset_s=st.integers(-3 * 3600, 3 * 3600),
       expression=st.sampled_from(FIXED + MULTI_HOUR + INTERVAL))
def test_no_fire_time_is_skipped_between_two_answers(change: tuple[str, datetime], offset_s: int,
                                                     expression: str) -> None:
    """From any start near a change: the answer is after the start, and nothing fires in between."""
    zone, instant = change
    moment = instant + timedelta(seconds=offset_s, microseconds=offset_s % 7)
    times = CronTimes(parse_schedule(expression, zone, now=moment).text, zoneinfo.ZoneInfo(zone))
    found = times.next_after(moment)
    assert found.time is not None and found.time > moment
    before = times.latest_at_or_before(found.time - timedelta(microseconds=1)).time
    assert before is None or before <= moment
    latest = times.latest_at_or_before(moment).time
    assert latest is not None and latest <= moment
    assert times.next_after(latest).time == found.time
