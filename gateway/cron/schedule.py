"""Schedules: a 5-field cron expression, an interval (`every 30m`), or a one-off time.

    schedule = parse_schedule("0 9 * * 1-5", "Europe/Berlin")
    schedule.next_runs(3)          # the next three fire times, aware datetimes in the job's zone

Cron expressions are what croniter reads (day of week 0 or 7 = Sunday, names, `L`, `W`, `#`,
`?`, `@daily` ...), with the Vixie rule for day of month and day of week (either matches) and
cronie's behaviour at daylight-saving changes; `gateway/cron/crontime.py` computes the times,
every search bounded. An expression that never fires (`0 0 30 2 *`) is refused, saying why.
Intervals and one-off times are real elapsed time and use APScheduler's own triggers.

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
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from croniter import CroniterError, croniter

from gateway.cron.crontime import MAX_YEARS, CronTimes, NoFireTime
from gateway.cron.trigger import CroniterTrigger, ErrorCallback

ScheduleKind = Literal["cron", "interval", "once"]

FIELDS = ("minute", "hour", "day", "month", "day_of_week")
RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "day_of_week": (0, 7)}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")          # crontab numbering: 0 = Sunday
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)         # February: leap years count
ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
         "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
         "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
         "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
INTERVAL = re.compile(r"^every\s+(\d+)?\s*([a-z]+)$")
RELATIVE = re.compile(r"^in\s+(\d+)\s*([a-z]+)$")
TOKEN = re.compile(r"^(?:(\*)|(\d+|[a-z]{3})(?:-(\d+|[a-z]{3}))?)(?:/(\d+))?$")
CRON_HELP = ("a cron expression has 5 fields: minute hour day-of-month month day-of-week, "
             "e.g. \"0 9 * * 1-5\" for 09:00 Monday to Friday")
DEFAULT_MIN_INTERVAL = 60
MAX_INTERVAL = 100 * 365 * 86400  # `every` and `in`: far beyond any use, well inside datetime's range


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
    if not (raw.isascii() and raw.isdigit()):
        raise ScheduleError(f"{field}: {raw!r} is not a number in {low}-{high}")
    value = int(raw)
    if not low <= value <= high:
        raise ScheduleError(f"{field}: {value} is out of range {low}-{high}")
    return value


def _check_field(field: str, value: str) -> None:
    """Range-check the plain forms (n, a-b, */n, a-b/n, lists) naming the field; croniter checks the rest."""
    for token in value.split(","):
        match = TOKEN.match(token)
        if not match:
            continue   # L, W, #, ? and the like: croniter's to judge (see _croniter_field_error)
        star, first, last, step = match.groups()
        if step is not None and int(step) < 1:
            raise ScheduleError(f"{field}: the step in {token!r} must be at least 1")
        if star:
            continue
        a = _number(field, first)
        b = _number(field, last) if last is not None else a
        if b < a and field != "day_of_week":   # croniter would wrap round; a typo far more often
            raise ScheduleError(f"{field}: the range {token!r} goes backwards ({a} > {b})")


def _croniter_field_error(values: list[str]) -> str | None:
    """The first field croniter refuses on its own, as `field: 'value' is not valid (...)`."""
    for index, field in enumerate(FIELDS):
        probe = ["*"] * 5
        probe[index] = values[index]
        try:
            croniter(" ".join(probe))
        except (CroniterError, ValueError) as exc:
            hint = {"day": "numbers 1-31, ranges, lists, steps, L (last day), 15W (nearest weekday) or ?",
                    "day_of_week": "0-7 with 0 = Sunday, names like mon-fri, 1#2 (second Monday), "
                                   "L5 (last Friday) or ?"}.get(field, "a number, a range like 1-5, a list "
                                                                      "like 1,15 or a step like */5")
            return f"{field}: {values[index]!r} is not valid ({hint}; {exc})"
    return None


def _never_fires_reason(values: list[str]) -> str:
    """Why an expression has no fire time: the day of month no chosen month has, when that is it."""
    day, month, dow = values[2], values[3], values[4]
    days = [int(t) for t in day.split(",") if t.isascii() and t.isdigit()]
    plain_months = all(TOKEN.match(t) and "/" not in t for t in month.split(","))
    if days and len(days) == len(day.split(",")) and dow in ("*", "?") and plain_months and month != "*":
        months: list[int] = []
        for token in month.split(","):
            first, _, last = token.partition("-")
            lo = _number("month", first)
            months.extend(range(lo, _number("month", last) + 1 if last else lo + 1))
        if min(days) > max(MONTH_DAYS[m - 1] for m in months):
            names = sorted({MONTH_NAMES[m - 1] for m in months}, key=MONTH_NAMES.index)
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            which = f"day {days[0]}" if len(days) == 1 else "days " + ",".join(map(str, days))
            verb = "occurs" if len(days) == 1 else "occur"
            return f"day: {which} never {verb} in {listed}, so {' '.join(values)!r} never fires"
    return (f"schedule: {' '.join(values)!r} never fires (no matching time in the next {MAX_YEARS} years; "
            "check the day of month against the months)")


def cron_times(expression: str, tz: zoneinfo.ZoneInfo, *, now: datetime | None = None) -> CronTimes:
    """Validate a crontab expression field by field, check it fires, and return its time computer."""
    raw = expression.strip().lower()
    if raw == "@reboot":
        raise ScheduleError("schedule: @reboot is not supported (jobs run on a schedule; use a time or 'in 1m')")
    expr = ALIASES.get(raw, raw)
    values = expr.split()
    if len(values) != 5:
        if len(values) in (6, 7):
            raise ScheduleError(f"schedule: {len(values)} fields given; seconds are not supported (nor years), "
                                f"{CRON_HELP}")
        raise ScheduleError(f"schedule: {len(values)} field(s) given, {CRON_HELP}")
    for field, value in zip(FIELDS, values):
        _check_field(field, value)
    problem = _croniter_field_error(values)
    if problem:
        raise ScheduleError(problem)
    if not croniter.is_valid(" ".join(values)):
        raise ScheduleError(f"schedule: {' '.join(values)!r} is not valid ({CRON_HELP})")
    times = CronTimes(" ".join(values), tz)
    try:
        times.next_or_raise(now or datetime.now(UTC))
    except NoFireTime:
        raise ScheduleError(_never_fires_reason(values)) from None
    return times


def _interval_seconds(count: str | None, unit: str, what: str) -> int:
    if unit not in UNITS:
        raise ScheduleError(f"{what}: unknown unit {unit!r} (use s, m, h, d or w, e.g. 'every 30m')")
    n = int(count) if count is not None else 1
    if n < 1:
        raise ScheduleError(f"{what}: must be at least 1{unit}")
    if n * UNITS[unit] > MAX_INTERVAL:
        raise ScheduleError(f"{what}: {n}{unit} is more than {MAX_INTERVAL // (365 * 86400)} years")
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
    moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
    try:
        moment.astimezone(UTC)  # fire times are compared in UTC: 9999-12-31T23:59 in New York has none
    except OverflowError:
        raise ScheduleError(f"time: {raw!r} is out of the range of dates") from None
    return moment


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

    def cron_times(self) -> CronTimes:
        return CronTimes(self.text, self.tz)

    def trigger(self, *, catch_up: timedelta = timedelta(0), on_error: ErrorCallback | None = None) -> BaseTrigger:
        """The APScheduler trigger; for cron, `catch_up` bounds how far back a late wake-up looks and
        `on_error(reason)` hears of a next time that cannot be computed (the trigger then stops)."""
        if self.kind == "cron":
            return CroniterTrigger(self.cron_times(), catch_up=catch_up, on_error=on_error)
        if self.kind == "interval":
            return IntervalTrigger(seconds=self.interval_seconds, timezone=self.tz,
                                   start_date=self.anchor + timedelta(seconds=self.interval_seconds))
        return DateTrigger(run_date=self.at, timezone=self.tz)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`, in UTC (NoFireTime when a cron time cannot be
        computed). UTC because aware datetimes of one zone compare by wall time, fold ignored."""
        moment = moment.astimezone(UTC)
        if self.kind == "once":
            assert self.at is not None
            return self.at.astimezone(UTC) if self.at > moment else None
        if self.kind == "interval":
            step = timedelta(seconds=self.interval_seconds)
            first = self.anchor.astimezone(UTC) + step
            if moment < first:
                return first
            k = int((moment - first) // step) + 1
            return first + k * step
        return self.cron_times().next_or_raise(moment)

    def next_runs(self, n: int = 3, after: datetime | None = None) -> list[datetime]:
        """The next `n` fire times after `after` (default now), shown in the job's zone."""
        moment = after or datetime.now(UTC)
        runs: list[datetime] = []
        for _ in range(n):
            try:
                nxt = self.next_after(moment)
            except NoFireTime:
                break
            if nxt is None:
                break
            runs.append(nxt)
            moment = nxt
        return [run.astimezone(self.tz) for run in runs]

    def last_due(self, now: datetime, since: datetime) -> datetime | None:
        """The latest fire time in (since, now], in UTC, or None: what a restart may have missed (bounded)."""
        now, since = now.astimezone(UTC), since.astimezone(UTC)
        if now <= since:
            return None
        if self.kind == "once":
            assert self.at is not None
            return self.at.astimezone(UTC) if since < self.at <= now else None
        if self.kind == "interval":
            step = timedelta(seconds=self.interval_seconds)
            first = self.anchor.astimezone(UTC) + step
            if now < first:
                return None
            last = first + int((now - first) // step) * step
            return last if last > since else None
        found = self.cron_times().latest_at_or_before(now).time
        return found if found is not None and found > since else None


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
    times = cron_times(lowered, tz, now=current)   # raises with the field named, or why it never fires
    return Schedule("cron", times.expression, tz.key, start)


def utc_offset_text(local: datetime) -> str:
    """`-04:00`, `+10:30`: the offset of an aware time (strftime's `%:z` needs Python 3.12)."""
    offset = local.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def describe_time(moment: datetime, tz_name: str) -> str:
    """`Sun 2026-11-01 01:30 EDT (-04:00)`: how fire times are shown to users, in the job's zone."""
    local = moment.astimezone(zoneinfo.ZoneInfo(tz_name))
    text = local.strftime("%a %Y-%m-%d %H:%M %Z" if local.second == 0 else "%a %Y-%m-%d %H:%M:%S %Z")
    return f"{text} ({utc_offset_text(local)})"


def local_iso(moment: datetime, tz_name: str) -> str:
    """`2026-11-01T01:30:00-05:00`: a fire time in the job's zone, ISO with its offset (for --json)."""
    return moment.astimezone(zoneinfo.ZoneInfo(tz_name)).isoformat(timespec="seconds")
