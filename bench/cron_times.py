"""Cron time figures: how long one next-run / last-run computation takes, and how many croniter
steps it walks, in ordinary weeks and around every daylight-saving change of America/New_York,
Europe/Berlin and Australia/Lord_Howe in 2026-2028.

    python bench/cron_times.py [--samples 300]

For each expression it prints the median, p99 and worst time of `CronTimes.next_after` and of
`CronTimes.latest_at_or_before` (the catch-up search) over start times spread through ±3 hours
of each change, and the most croniter steps one computation took; then the time to refuse an
expression that never fires (`0 0 30 2 *`, croniter's 50-year search) and to validate one.
Times are CPU time of the thread (`time.thread_time`), so a loaded machine does not inflate them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.cron.crontime import CronTimes  # noqa: E402
from gateway.cron.schedule import ScheduleError, parse_schedule  # noqa: E402
from tests.test_cron_dst import CHANGES  # noqa: E402

def clock() -> float:
    """CPU time of this thread: what a computation costs, without the waits of a busy machine."""
    return time.thread_time()


EXPRESSIONS = ("30 1 * * *", "30 2 * * *", "15 1,2,3 * * *", "0 9 * * 1-5", "0 9 1-7 * 1", "*/15 * * * *",
               "0 * * * *", "* * * * *")


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1000:6.3f} ms  p99 {p99 * 1000:6.3f} ms  worst {ordered[-1] * 1000:6.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="start times per expression")
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"{len(CHANGES)} daylight-saving changes (New York, Berlin, Lord Howe, 2026-2028); "
          f"{args.samples} start times per expression, within 3 h of a change")
    for expression in EXPRESSIONS:
        forward, backward, steps = [], [], 0
        for _ in range(args.samples):
            zone, change = rng.choice(CHANGES)
            times = CronTimes(expression, zoneinfo.ZoneInfo(zone))
            moment = change + timedelta(seconds=rng.randint(-3 * 3600, 3 * 3600))
            started = clock()
            found = times.next_after(moment)
            forward.append(clock() - started)
            started = clock()
            back = times.latest_at_or_before(moment)
            backward.append(clock() - started)
            steps = max(steps, found.steps, back.steps)
        print(f"{expression:<16} next  {figures(forward)}")
        print(f"{'':<16} last  {figures(backward)}  most steps {steps}")
    ordinary = []
    for _ in range(args.samples):
        moment = datetime(2027, 6, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 30 * 86400))
        started = clock()
        CronTimes("0 9 * * 1-5", zoneinfo.ZoneInfo("Europe/Berlin")).next_after(moment)
        ordinary.append(clock() - started)
    print(f"{'0 9 * * 1-5':<16} next  {figures(ordinary)}  (an ordinary June, Berlin)")
    refused, accepted = [], []
    for _ in range(20):
        started = clock()
        try:
            parse_schedule("0 0 30 2 *", "UTC")
        except ScheduleError:
            pass
        refused.append(clock() - started)
        started = clock()
        parse_schedule("30 8 1,15 * 1-5", "America/New_York")
        accepted.append(clock() - started)
    print(f"refusing '0 0 30 2 *' (never fires)       {figures(refused)}")
    print(f"validating '30 8 1,15 * 1-5' (New York)   {figures(accepted)}")


if __name__ == "__main__":
    main()
