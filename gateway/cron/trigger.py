"""`CroniterTrigger`: an APScheduler 3.x trigger whose fire times come from `CronTimes` (croniter,
with cronie's daylight-saving rules), and which can neither loop forever nor raise.

APScheduler calls `get_next_fire_time` inside its wake-up callback on the event loop, and then
loops itself while the answer is not after `now` (to count misfires). So:
- every answer is strictly after `previous_fire_time` (APScheduler's loop always advances), in
  UTC (APScheduler adds to and compares fire times: on local times that is wall-clock arithmetic);
- after a long sleep (a suspended laptop, a stopped clock) the search starts at most
  `catch_up` before `now`, so APScheduler's loop sees only the runs it may still make up;
- a time that cannot be computed is logged, reported to `on_error(reason)` (the scheduler
  pauses the job with that reason) and answered with None: APScheduler stops that job and
  every other job keeps running. An exception here would stop APScheduler's wake-ups for all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from gateway.cron.crontime import MICROSECOND, CronTimes

log = logging.getLogger(__name__)

ErrorCallback = Callable[[str], None]


class CroniterTrigger(BaseTrigger):
    __slots__ = ("catch_up", "on_error", "times")

    def __init__(self, times: CronTimes, *, catch_up: timedelta = timedelta(0),
                 on_error: ErrorCallback | None = None) -> None:
        self.times = times
        self.catch_up = catch_up
        self.on_error = on_error

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        now = now.astimezone(UTC)   # arithmetic on a local time would be wall-clock arithmetic
        if previous_fire_time is None:
            start = now - MICROSECOND                       # `now` itself may be a fire time
        else:
            start = max(previous_fire_time.astimezone(UTC), now - self.catch_up - MICROSECOND)
        try:
            return self.times.next_or_raise(start)
        except Exception as exc:  # noqa: BLE001 - never into APScheduler: it would stop waking up for every job
            reason = f"the next run time cannot be computed: {exc}"
            log.error("cron trigger %s: %s", self.times.expression, reason)
            if self.on_error is not None:
                try:
                    self.on_error(reason)
                except Exception:
                    log.exception("cron trigger %s: the error callback failed", self.times.expression)
            return None

    def __str__(self) -> str:
        return f"cron[{self.times.expression!r}, {self.times.tz.key}]"

    def __repr__(self) -> str:
        return f"<CroniterTrigger ({self.times.expression!r}, timezone={self.times.tz.key!r})>"
