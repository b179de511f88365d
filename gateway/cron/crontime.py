"""Fire times of a cron expression in a time zone: croniter for the calendar, cronie's rules at
daylight-saving changes, and a bound on every search.

croniter answers "the next wall-clock time matching this expression" (on naive local times here,
so it does pure calendar arithmetic). Turning a wall-clock time into a real instant is done
here, the way cronie does it (checked against croniter 7.0's own zone handling, which differs):

- A time that occurs twice (the hour repeated when clocks go back): a fixed-time job runs
  once, at the first occurrence; an interval-style job (its minute or hour field starts with
  `*` or has a step, e.g. `*/15 * * * *`, `0 * * * *`) runs at both, so it keeps firing at every
  real interval. croniter alone runs `30 1 * * *` twice on that day.
- A time that does not exist (the hour skipped when clocks go forward): a fixed-time job runs
  right after the change (`30 2 * * *` in New York runs at 03:00 EDT); an interval-style job
  just has no run in the gap (its next real interval comes after it).
- Day of month and day of week both restricted: either matches (the Vixie/cronie rule); when
  one of the two starts with `*` (`*/2`), both must match, as in every Vixie-derived cron.

Every search is bounded: croniter looks at most `MAX_YEARS` ahead, and the mapping from wall
time to instants walks at most `MAX_STEPS` croniter steps (the most is about two hours of
per-minute candidates around a change). `steps` on a result counts them, so tests can prove it.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, CroniterError, croniter

MAX_YEARS = 50            # croniter's search horizon: a match further away counts as "never"
MAX_STEPS = 2_000         # croniter steps per computation, at most (a hard stop, never reached in practice)
MICROSECOND = timedelta(microseconds=1)


class NoFireTime(RuntimeError):
    """The next (or previous) fire time cannot be computed; the message says why."""


def is_interval_style(expression: str) -> bool:
    """cronie's 'wildcard job': the minute or hour field starts with `*` (we also count steps)."""
    minute, hour = expression.split()[:2]
    return any(f.startswith("*") or "/" in f for f in (minute, hour))


@dataclass(frozen=True)
class Found:
    """A computed fire time and the croniter steps it took.

    Always UTC: Python compares (and adds to) two datetimes of the same zone by wall time, fold
    ignored, so 01:30 EDT would sort after 01:15 EST; only UTC values are safe to order.
    """

    time: datetime | None
    steps: int


@dataclass(frozen=True)
class CronTimes:
    """A validated 5-field expression in a zone; every method is bounded and never loops forever."""

    expression: str
    tz: zoneinfo.ZoneInfo

    @property
    def interval_style(self) -> bool:
        return is_interval_style(self.expression)

    def _iter(self, start: datetime) -> croniter:
        return croniter(self.expression, start, ret_type=datetime, day_or=True, implement_cron_bug=True,
                        max_years_between_matches=MAX_YEARS)

    # -- wall time -> instants ---------------------------------------------------------------------
    def instants(self, wall: datetime) -> list[datetime]:
        """The real instants (UTC) at which naive local `wall` fires, by the rules above."""
        first, second = wall.replace(tzinfo=self.tz, fold=0), wall.replace(tzinfo=self.tz, fold=1)
        if first.utcoffset() == second.utcoffset():
            return [first.astimezone(UTC)]
        at_fold0, at_fold1 = first.astimezone(UTC), second.astimezone(UTC)
        if at_fold0.astimezone(self.tz).replace(tzinfo=None) == wall:    # exists twice: the repeated hour
            return [at_fold0, at_fold1] if self.interval_style else [at_fold0]
        # does not exist (the skipped hour): fold=1 reads it with the new offset, an instant before the
        # change, fold=0 with the old one, an instant after it; the change lies between the two
        return [] if self.interval_style else [self._change_between(at_fold1, at_fold0)]

    def _change_between(self, before: datetime, after: datetime) -> datetime:
        """The instant the offset changes, in (before, after]: a bisection, bounded."""
        offset_before = before.astimezone(self.tz).utcoffset()
        lo, hi = before, after
        for _ in range(40):                      # halves a gap of hours to a second in ~14
            if hi - lo <= timedelta(seconds=1):
                break
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self.tz).utcoffset() == offset_before:
                lo = mid
            else:
                hi = mid
        return hi.replace(microsecond=0) if hi.microsecond else hi

    def _repeat(self, moment: datetime) -> tuple[int, timedelta]:
        """(fold, width) of `moment`'s wall time: width > 0 when that wall time occurs twice."""
        local = moment.astimezone(self.tz)
        other = local.replace(fold=1 - local.fold)
        offset, other_offset = local.utcoffset(), other.utcoffset()
        assert offset is not None and other_offset is not None
        return local.fold, abs(offset - other_offset)

    # -- searches ----------------------------------------------------------------------------------
    # In a repeated hour a later wall time can fire at an earlier instant (01:15 EDT comes before
    # 01:00 EST), so a search cannot stop at the first candidate: it goes on for the width of the
    # repeated hour, and only then (at most two hours of per-minute candidates).

    def next_after(self, moment: datetime) -> Found:
        """The first fire time strictly after `moment` (None when there is none within MAX_YEARS)."""
        wall = moment.astimezone(self.tz).replace(tzinfo=None)
        fold, width = self._repeat(moment)
        if self.interval_style and fold == 0:
            wall -= width        # in the first pass, earlier wall times still have their second pass ahead
        candidates = self._iter(wall)
        best: datetime | None = None
        stop_at: datetime | None = None
        for steps in range(1, MAX_STEPS + 1):
            try:
                candidate = candidates.get_next()
            except CroniterBadDateError:
                return Found(best, steps)
            if stop_at is not None and candidate > stop_at:
                return Found(best, steps)
            pair = self.instants(candidate)
            for index, instant in enumerate(pair):
                if instant > moment and (best is None or instant < best):
                    best = instant
                    stop_at = candidate + (pair[1] - pair[0] if index == 1 else timedelta(0))
        raise NoFireTime(f"no fire time found within {MAX_STEPS} steps after {moment.isoformat()}")

    def latest_at_or_before(self, moment: datetime) -> Found:
        """The last fire time at or before `moment` (None when there is none within MAX_YEARS)."""
        wall = moment.astimezone(self.tz).replace(tzinfo=None)
        fold, width = self._repeat(moment)
        if fold == 1:
            wall += width        # in the second pass, later wall times already had their first pass
        candidates = self._iter(wall.replace(second=0, microsecond=0) + timedelta(minutes=1))
        best: datetime | None = None
        stop_at: datetime | None = None
        for steps in range(1, MAX_STEPS + 1):
            try:
                candidate = candidates.get_prev()
            except CroniterBadDateError:
                return Found(best, steps)
            if stop_at is not None and candidate < stop_at:
                return Found(best, steps)
            pair = self.instants(candidate)
            for index, instant in enumerate(pair):
                if instant <= moment and (best is None or instant > best):
                    best = instant
                    stop_at = candidate - (pair[1] - pair[0] if index == 0 and len(pair) == 2 else timedelta(0))
        raise NoFireTime(f"no fire time found within {MAX_STEPS} steps before {moment.isoformat()}")

    def next_or_raise(self, moment: datetime) -> datetime:
        """`next_after(moment).time`, or NoFireTime saying why (what the scheduler needs)."""
        try:
            found = self.next_after(moment)
        except (CroniterError, ValueError, OverflowError) as exc:
            raise NoFireTime(f"{self.expression!r}: {exc}") from exc
        if found.time is None:
            raise NoFireTime(f"{self.expression!r} has no fire time in the {MAX_YEARS} years after "
                             f"{moment.astimezone(self.tz).date().isoformat()}")
        return found.time
