"""Schedules as users write them: cron expressions, intervals, one-off times, time zones, and the
errors a user needs when one is wrong (through the library and through `hermes cron add`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cron.schedule import ScheduleError, parse_schedule
from tests.test_cli_chat import hermes

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)   # a Saturday


@pytest.mark.parametrize("expression, message", [
    ("0 25 * * *", "hour: 25 is out of range 0-23"),
    ("61 9 * * *", "minute: 61 is out of range 0-59"),
    ("0 9 32 * *", "day: 32 is out of range 1-31"),
    ("0 9 * 13 *", "month: 13 is out of range 1-12"),
    ("0 9 * * 8", "day_of_week: 8 is out of range 0-7"),
    ("*/0 * * * *", "minute: the step in '*/0' must be at least 1"),
    ("0 17-9 * * *", "hour: the range '17-9' goes backwards"),
    ("0 9 * *", "schedule: 4 field(s) given, a cron expression has 5 fields"),
    ("0 0 9 * * 1", "seconds are not supported"),
    ("0 9 * * 1 2027", "seconds are not supported (nor years)"),
    ("@reboot", "schedule: @reboot is not supported"),
    ("0 9 * * 5L", "day_of_week: '5l' is not valid"),
    ("0 9 L-2 * *", "day: 'l-2' is not valid"),
    ("H 9 * * *", "minute: 'h' is not valid"),
    ("0 ? * * *", "hour: '?' is not valid"),
    ("0 9 * jan-dex *", "month: 'dex' is not a number in 1-12"),
    ("0 0 30 2 *", "day: day 30 never occurs in February, so '0 0 30 2 *' never fires"),
    ("0 0 31 4,6,9,11 *", "day: day 31 never occurs in April, June, September or November"),
    ("0 0 30,31 feb *", "day: days 30,31 never occur"),
    ("0 0 31 2-4/2 *", "never fires (no matching time in the next 50 years"),
    ("every 5 fortnights", "interval: unknown unit 'fortnights'"),
    ("every weekday at 9", "interval: 'every weekday at 9' is not understood"),
    ("2020-01-01T09:00", "time: 2020-01-01T09:00+00:00 is in the past"),
    ("2030-13-01T09:00", "time: '2030-13-01T09:00' is not an ISO date and time"),
])
def test_bad_schedules_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expression, "UTC", now=NOW)
    assert message in str(caught.value)


def test_unknown_time_zone_is_refused_with_suggestions() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("0 9 * * *", "Europe/Berln", now=NOW)
    assert "timezone: unknown time zone 'Europe/Berln'" in str(caught.value)
    assert "Europe/Berlin" in str(caught.value)


def test_weekdays_use_crontab_numbering_not_apschedulers() -> None:
    # APScheduler 3 numbers Monday 0; crontab (what users write) numbers Sunday 0
    schedule = parse_schedule("0 9 * * 1-5", "Europe/Berlin", now=NOW)
    runs = schedule.next_runs(5, after=NOW)
    assert [r.strftime("%a %H:%M %Z") for r in runs] == [
        "Mon 09:00 CEST", "Tue 09:00 CEST", "Wed 09:00 CEST", "Thu 09:00 CEST", "Fri 09:00 CEST"]
    sundays = parse_schedule("30 8 * * 0", "UTC", now=NOW).next_runs(2, after=NOW)
    assert [r.strftime("%a %d %H:%M") for r in sundays] == ["Sun 02 08:30", "Sun 09 08:30"]
    assert parse_schedule("0 8 * * 7", "UTC", now=NOW).next_runs(1, after=NOW)[0].strftime("%a") == "Sun"
    weekend = parse_schedule("0 8 * * sat,sun", "UTC", now=NOW).next_runs(2, after=NOW)
    assert [r.strftime("%a") for r in weekend] == ["Sun", "Sat"]


def test_intervals_one_offs_and_time_zones() -> None:
    every = parse_schedule("every 30m", "UTC", now=NOW)
    assert every.text == "every 30m"
    assert every.next_runs(3, after=NOW) == [NOW + timedelta(minutes=30 * k) for k in (1, 2, 3)]
    assert parse_schedule("every 2 hours", "UTC", now=NOW).text == "every 2h"
    with pytest.raises(ScheduleError, match="interval: every 10s is shorter than the minimum of 1m"):
        parse_schedule("every 10s", "UTC", now=NOW)
    soon = parse_schedule("in 20m", "UTC", now=NOW)
    assert soon.kind == "once" and soon.next_runs(3, after=NOW) == [NOW + timedelta(minutes=20)]
    tokyo = parse_schedule("2030-06-02T09:00", "Asia/Tokyo", now=NOW)
    assert tokyo.at == datetime(2030, 6, 2, 0, 0, tzinfo=UTC)
    berlin = parse_schedule("0 9 * * *", "Europe/Berlin", now=NOW).next_runs(1, after=NOW)[0]
    assert berlin.astimezone(UTC).hour == 7   # summer time: UTC+2


def test_last_due_coalesces_missed_runs_into_the_latest() -> None:
    daily = parse_schedule("0 9 * * *", "UTC", now=NOW - timedelta(days=10))
    assert daily.last_due(NOW, NOW - timedelta(days=3)) == datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
    assert daily.last_due(NOW, NOW - timedelta(hours=2)) is None
    hourly = parse_schedule("every 1h", "UTC", now=NOW)
    assert hourly.last_due(NOW + timedelta(hours=5, minutes=10), NOW) == NOW + timedelta(hours=5)


async def test_cli_refuses_bad_input_naming_the_field(home: Path) -> None:
    code, out, err = await hermes("cron", "add", "0 25 * * *", "--prompt", "report", home=home)
    assert code == 2 and "hour: 25 is out of range 0-23" in err
    code, out, err = await hermes("cron", "add", "0 9 * * 1-5", "--prompt", "report", "--tz", "Mars/Olympus",
                                  home=home)
    assert code == 2 and "timezone: unknown time zone 'Mars/Olympus'" in err
    code, out, err = await hermes("cron", "add", "every 1h", "--prompt", "x", "--deliver", "slack:C123", home=home)
    assert code == 2 and "slack is not enabled" in err
    code, out, err = await hermes("cron", "add", "every 1h", "--prompt", "x", "--deliver", "pigeon:roof", home=home)
    assert code == 2 and "deliver: unknown target 'pigeon:roof'" in err
    code, out, err = await hermes("cron", "add", "every 1h", "--skill", "no-such-skill", home=home)
    assert code == 2 and "skill: there is no skill named 'no-such-skill'" in err
    code, out, err = await hermes("cron", "add", "every 1h", home=home)
    assert code == 2 and "--prompt" in err
    code, out, err = await hermes("cron", "pause", "deadbeef", home=home)
    assert code == 1 and "no job with id 'deadbeef'" in err
    code, out, err = await hermes("cron", "list", "--json", home=home)
    assert code == 0 and out.strip() == "[]"


async def test_file_targets_stay_in_hermes_home_for_the_chat_tool(home: Path) -> None:
    from gateway.config import Config
    from gateway.cron.targets import TargetError, parse_target
    from gateway.home import Home

    hermes_home = Home(home.resolve()).ensure()
    config = Config()
    inside = parse_target("file:reports/daily.md", config, hermes_home)
    assert inside.value == str(hermes_home.root / "reports" / "daily.md")
    for escape in ("file:../outside.md", "file:/etc/cron.d/evil", f"file:{Path.home()}/.bashrc"):
        with pytest.raises(TargetError, match="HERMES_HOME"):
            parse_target(escape, config, hermes_home)
    with pytest.raises(TargetError, match="is a folder"):
        parse_target("file:skills", config, hermes_home)
    # the operator on the command line may name any existing folder
    assert parse_target("file:/tmp/hermes-report.md", config, hermes_home, allow_outside_home=True).value \
        == str(Path("/tmp/hermes-report.md").resolve())
    with pytest.raises(TargetError, match="'origin' needs a Telegram, Slack or Discord channel"):
        parse_target("origin", config, hermes_home)


def days(expression: str, start: datetime, n: int) -> list[str]:
    return [r.strftime("%a %d %b") for r in parse_schedule(expression, "UTC", now=start).next_runs(n, after=start)]


def test_vixie_or_rule_when_day_of_month_and_day_of_week_are_both_set() -> None:
    june = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)      # a Monday
    # the first seven days of the month OR any Monday (cronie, Vixie cron, ISC cron)
    assert days("0 9 1-7 * 1", june, 10) == [
        "Mon 01 Jun", "Tue 02 Jun", "Wed 03 Jun", "Thu 04 Jun", "Fri 05 Jun", "Sat 06 Jun", "Sun 07 Jun",
        "Mon 08 Jun", "Mon 15 Jun", "Mon 22 Jun"]
    # the 1st and 15th OR every weekday: the weekend 1st (Aug 1 2026 is a Saturday) runs too
    august = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)
    assert days("30 8 1,15 * 1-5", august, 3) == ["Sat 01 Aug", "Mon 03 Aug", "Tue 04 Aug"]
    assert days("30 8 1,15 * 1-5", datetime(2026, 8, 14, 12, 0, tzinfo=UTC), 2) == ["Sat 15 Aug", "Mon 17 Aug"]
    # a field starting with * keeps the intersection, as in every Vixie-derived cron: odd days that are Mondays
    assert days("0 9 */2 * 1", june, 4) == ["Mon 01 Jun", "Mon 15 Jun", "Mon 29 Jun", "Mon 13 Jul"]
    # only one of them set: that one alone
    assert days("0 9 1 * *", june, 2) == ["Mon 01 Jun", "Wed 01 Jul"]
    assert days("0 9 ? * fri", june, 2) == ["Fri 05 Jun", "Fri 12 Jun"]


@pytest.mark.parametrize("expression, expected", [
    ("0 9 L * *", ["Tue 30 Jun", "Fri 31 Jul", "Mon 31 Aug"]),              # last day of the month
    ("0 9 15W * *", ["Mon 15 Jun", "Wed 15 Jul", "Fri 14 Aug"]),            # weekday nearest the 15th
    ("0 9 * * 1#2", ["Mon 08 Jun", "Mon 13 Jul", "Mon 10 Aug"]),            # second Monday
    ("0 9 * * L5", ["Fri 26 Jun", "Fri 31 Jul", "Fri 28 Aug"]),             # last Friday
    ("0 9 * jun-jul sat,sun", ["Sat 06 Jun", "Sun 07 Jun", "Sat 13 Jun"]),  # names
    ("@monthly", ["Wed 01 Jul", "Sat 01 Aug", "Tue 01 Sep"]),
    ("@weekly", ["Sun 07 Jun", "Sun 14 Jun", "Sun 21 Jun"]),
    ("@yearly", ["Fri 01 Jan", "Sat 01 Jan", "Mon 01 Jan"]),
    ("@daily", ["Tue 02 Jun", "Wed 03 Jun", "Thu 04 Jun"]),
    ("0 0 29 2 *", ["Tue 29 Feb", "Sun 29 Feb", "Fri 29 Feb"]),             # rare, but fires
])
def test_what_croniter_supports_is_supported(expression: str, expected: list[str]) -> None:
    assert days(expression, datetime(2026, 6, 1, 0, 0, tzinfo=UTC), 3) == expected


def test_hourly_alias_and_stored_text() -> None:
    hourly = parse_schedule("@hourly", "UTC", now=NOW)
    assert hourly.text == "0 * * * *"
    assert hourly.next_runs(2, after=NOW) == [NOW + timedelta(hours=1), NOW + timedelta(hours=2)]
    assert parse_schedule("0 9 * * MON-FRI", "UTC", now=NOW).text == "0 9 * * mon-fri"
