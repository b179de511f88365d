"""Schedules: a 5-field cron expression, an interval (`every 30m`), or a one-off time.

    schedule = parse_schedule("0 9 * * 1-5", "Europe/Berlin")
    schedule.next_runs(3)          # the next three fire times, aware datetimes in the job's zone

Cron expressions follow standard crontab (day of week 0 or 7 = Sunday, 1 = Monday). APScheduler
3.x numbers weekdays from Monday = 0, so the day-of-week field is translated to weekday names
before it reaches `CronTrigger.from_crontab`; a `1-5` written by a user means Monday-Friday.
Standard cron runs a job when *either* a restricted day of month or a restricted day of week
matches, APScheduler when *both* do: an expression restricting both is refused rather than
silently run on other days than the user meant.

Every error is a `ScheduleError` whose message names the field, e.g. `hour: 25 is out of range
0-23`, so the CLI and the `cron` tool can show it as it is.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

ScheduleKind = Literal["cron", "interval", "once"]

MICROSECOND = timedelta(microseconds=1)
FIELDS = ("minute", "hour", "day", "month", "day_of_week")
RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "day_of_week": (0, 7)}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")          # crontab numbering: 0 = Sunday
APS_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")           # APScheduler 3.x order
ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
         "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
         "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
         "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
INTERVAL = re.compile(r"^every\s+(\d+)?\s*([a-z]+)$")
RELATIVE = re.compile(r"^in\s+(\d+)\s*([a-z]+)$")
TOKEN = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$")
CRON_HELP = ("a cron expression has 5 fields: minute hour day-of-month month day-of-week, "
             "e.g. \"0 9 * * 1-5\" for 09:00 Monday to Friday")
DEFAULT_MIN_INTERVAL = 60


class ScheduleError(ValueError):
    """A schedule, time or time zone a user wrote that cannot be used; the message names the field."""


def check_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The zone for an IANA name, or a ScheduleError that suggests close names."""
    cleaned = (name or "").strip()
    if not cleaned:
        raise ScheduleError("timezone: empty (use an IANA name like Europe/Berlin or UTC)")
    try:
        return zoneinfo.ZoneInfo(cleaned)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(cleaned, sorted(zoneinfo.available_timezones()), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ScheduleError(f"timezone: unknown time zone {cleaned!r} (use an IANA name like "
                            f"Europe/Berlin or UTC{hint})") from None


def _number(field: str, raw: str) -> int:
    low, high = RANGES[field]
    if field == "month" and raw in MONTHS:
        return MONTHS.index(raw) + 1
    if field == "day_of_week" and raw in CRON_DAYS:
        return CRON_DAYS.index(raw)
    if not raw.isdigit():
        raise ScheduleError(f"{field}: {raw!r} is not a number in {low}-{high}")
    value = int(raw)
    if not low <= value <= high:
        raise ScheduleError(f"{field}: {value} is out of range {low}-{high}")
    return value


def _check_field(field: str, value: str) -> None:
    """Range-check the plain forms (n, a-b, */n, a-b/n, lists); APScheduler checks the rest."""
    for token in value.split(","):
        match = TOKEN.match(token)
        if not match:
            if field in ("minute", "hour", "month", "day_of_week"):
                raise ScheduleError(f"{field}: {token!r} is not valid (use a number, a range like 1-5, "
                                    f"a list like 1,15 or a step like */5)")
            continue  # day of month: APScheduler also knows "last", "2nd fri" ...
        star, first, last, step = match.groups()
        if step is not None and int(step) < 1:
            raise ScheduleError(f"{field}: the step in {token!r} must be at least 1")
        if star:
            continue
        try:
            a = _number(field, first)
            b = _number(field, last) if last is not None else a
        except ScheduleError:
            if field == "day" and first and not first.isdigit():
                continue
            raise
        if b < a and field != "day_of_week":
            raise ScheduleError(f"{field}: the range {token!r} goes backwards ({a} > {b})")


def _weekdays(value: str) -> str:
    """Translate a crontab day-of-week field (0/7 = Sunday) into APScheduler weekday names."""
    if value in ("*", "?"):
        return "*"
    days: set[int] = set()
    for token in value.split(","):
        match = TOKEN.match(token)
        if not match:
            raise ScheduleError(f"day_of_week: {token!r} is not valid (use 0-6 with 0 = Sunday, names "
                                "like mon-fri, or a list like 1,3,5)")
        star, first, last, step = match.groups()
        stride = int(step) if step else 1
        if star:
            start, end = 0, 6
        else:
            start = _number("day_of_week", first)
            end = _number("day_of_week", last) if last is not None else (6 if step else start)
        if end < start:  # fri-mon wraps around the week end
            numbers = list(range(start, 7)) + list(range(end + 1))
        else:
            numbers = list(range(start, end + 1))
        days.update(n % 7 for n in numbers[::stride])
    return ",".join(day for day in APS_DAYS if CRON_DAYS.index(day) in days)


def cron_trigger(expression: str, tz: zoneinfo.ZoneInfo) -> CronTrigger:
    """Validate a crontab expression field by field and build its APScheduler trigger."""
    expr = ALIASES.get(expression.strip().lower(), expression.strip().lower())
    values = expr.split()
    if len(values) != 5:
        if len(values) == 6:
            raise ScheduleError(f"schedule: {len(values)} fields given; seconds are not supported, {CRON_HELP}")
        raise ScheduleError(f"schedule: {len(values)} field(s) given, {CRON_HELP}")
    for field, value in zip(FIELDS, values):
        _check_field(field, value)
    day, dow = values[2], values[4]
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise ScheduleError(
            "day_of_week: both day-of-month and day-of-week are restricted; standard cron runs on "
            "either, this scheduler only on days matching both. Create two jobs, or use * for one of them")
    values[4] = _weekdays(dow)
    for field, value in zip(FIELDS, values):
        try:
            CronTrigger(**{field: value}, timezone=tz)
        except ValueError as exc:
            raise ScheduleError(f"{field}: {value!r} is not valid ({exc})") from None
    try:
        return CronTrigger.from_crontab(" ".join(values), timezone=tz)
    except ValueError as exc:
        raise ScheduleError(f"schedule: {exc} ({CRON_HELP})") from None


def _interval_seconds(count: str | None, unit: str, what: str) -> int:
    if unit not in UNITS:
        raise ScheduleError(f"{what}: unknown unit {unit!r} (use s, m, h, d or w, e.g. 'every 30m')")
    n = int(count) if count is not None else 1
    if n < 1:
        raise ScheduleError(f"{what}: must be at least 1{unit}")
    return n * UNITS[unit]


def format_interval(seconds: int) -> str:
    for suffix, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{suffix}"
    return f"every {seconds}s"


def _parse_time(raw: str, tz: zoneinfo.ZoneInfo) -> datetime:
    text = raw.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(f"time: {raw!r} is not an ISO date and time (e.g. 2030-06-01T09:00 or "
                            "'in 20m')") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: its canonical text, kind and zone, and the APScheduler trigger."""

    kind: ScheduleKind
    text: str
    timezone: str
    anchor: datetime                 # creation time: intervals count from here
    interval_seconds: int = 0
    at: datetime | None = None

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def trigger(self) -> BaseTrigger:
        if self.kind == "cron":
            return cron_trigger(self.text, self.tz)
        if self.kind == "interval":
            return IntervalTrigger(seconds=self.interval_seconds, timezone=self.tz,
                                   start_date=self.anchor + timedelta(seconds=self.interval_seconds))
        return DateTrigger(run_date=self.at, timezone=self.tz)

    def next_after(self, moment: datetime, trigger: BaseTrigger | None = None) -> datetime | None:
        """The first fire time strictly after `moment`."""
        if self.kind == "once":
            assert self.at is not None
            return self.at.astimezone(self.tz) if self.at > moment else None
        if self.kind == "interval":
            step = timedelta(seconds=self.interval_seconds)
            first = self.anchor + step
            if moment < first:
                return first.astimezone(self.tz)
            k = int((moment - first) // step) + 1
            return (first + k * step).astimezone(self.tz)
        return (trigger or self.trigger()).get_next_fire_time(None, moment + MICROSECOND)

    def next_runs(self, n: int = 3, after: datetime | None = None) -> list[datetime]:
        """The next `n` fire times after `after` (default now), in the job's zone."""
        moment = after or datetime.now(UTC)
        trigger = self.trigger() if self.kind == "cron" else None
        runs: list[datetime] = []
        while len(runs) < n:
            nxt = self.next_after(moment, trigger)
            if nxt is None:
                break
            runs.append(nxt)
            moment = nxt
        return runs

    def last_due(self, now: datetime, since: datetime) -> datetime | None:
        """The latest fire time in (since, now], or None: what a restart may have missed."""
        if now <= since:
            return None
        if self.kind == "once":
            assert self.at is not None
            return self.at if since < self.at <= now else None
        if self.kind == "interval":
            step = timedelta(seconds=self.interval_seconds)
            first = self.anchor + step
            if now < first:
                return None
            last = first + int((now - first) // step) * step
            return last if last > since else None
        trigger = self.trigger()
        for window in (60, 3_600, 86_400, 32 * 86_400, 367 * 86_400, 5 * 367 * 86_400):
            start = max(since, now - timedelta(seconds=window))
            found = self.next_after(start, trigger)
            if found is not None and found <= now:
                while True:
                    nxt = self.next_after(found, trigger)
                    if nxt is None or nxt > now:
                        return found
                    found = nxt
            if start == since:
                return None
        return None


def parse_schedule(text: str, tz_name: str, *, now: datetime | None = None, anchor: datetime | None = None,
                   min_interval: int = DEFAULT_MIN_INTERVAL, allow_past: bool = False) -> Schedule:
    """Parse what a user wrote into a Schedule; ScheduleError names the field that is wrong.

    `now` is the creation time ("in 20m" counts from it); `anchor` the time intervals count
    from (default `now`); `allow_past` accepts a one-off time already gone (loading a stored job).
    """
    tz = check_timezone(tz_name)
    current = now or datetime.now(UTC)
    start = anchor or current
    raw = " ".join((text or "").split())
    lowered = raw.lower()
    if not lowered:
        raise ScheduleError(f"schedule: empty ({CRON_HELP}; or 'every 30m'; or an ISO time)")
    match = INTERVAL.match(lowered)
    if match:
        seconds = _interval_seconds(match.group(1), match.group(2), "interval")
        if seconds < min_interval:
            raise ScheduleError(f"interval: {raw} is shorter than the minimum of {format_interval(min_interval)[6:]}")
        return Schedule("interval", format_interval(seconds), tz.key, start, interval_seconds=seconds)
    match = RELATIVE.match(lowered)
    if match:
        moment = current + timedelta(seconds=_interval_seconds(match.group(1), match.group(2), "time"))
        return Schedule("once", f"at {moment.astimezone(tz).isoformat(timespec='seconds')}", tz.key, start,
                        at=moment)
    if lowered.startswith("at ") or re.match(r"^\d{4}-\d{2}-\d{2}", lowered):
        moment = _parse_time(raw[3:] if lowered.startswith("at ") else raw, tz)
        if moment <= current and not allow_past:
            raise ScheduleError(f"time: {moment.isoformat(timespec='minutes')} is in the past")
        return Schedule("once", f"at {moment.isoformat(timespec='seconds')}", tz.key, start, at=moment)
    if lowered.startswith("every"):
        raise ScheduleError(f"interval: {raw!r} is not understood (write 'every 30m', 'every 2h' or 'every 1d'; "
                            "for a time of day use a cron expression like \"0 9 * * *\")")
    cron_trigger(lowered, tz)  # raises with the field named
    return Schedule("cron", ALIASES.get(lowered, lowered), tz.key, start)


def describe_time(moment: datetime, tz_name: str) -> str:
    """`Mon 2030-06-03 09:00 CEST`: how fire times are shown to users."""
    local = moment.astimezone(zoneinfo.ZoneInfo(tz_name))
    return local.strftime("%a %Y-%m-%d %H:%M %Z" if local.second == 0 else "%a %Y-%m-%d %H:%M:%S %Z")
