"""`/dashboard`: adapters and their connection state, live sessions, queue depth, turns and tokens
per hour over the last day, recent warnings and errors, and messages that could not be delivered.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway.dashboard.core import Dashboard
from gateway.dashboard.render import Bucket, bar_chart

HOURS = 24


def buckets(values: dict[int, int], first_hour: int) -> list[Bucket]:
    return [Bucket(time.strftime("%H:00", time.gmtime((first_hour + i) * 3600)),
                   float(values.get(first_hour + i, 0))) for i in range(HOURS)]


def error_counts(metrics: Any) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in metrics.registry.collect():
        if family.name == "hermes_errors":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.value:
                    counts[sample.labels.get("kind", "?")] = sample.value
    return counts


def routes(d: Dashboard) -> list[web.RouteDef]:
    async def overview(request: web.Request) -> web.Response:
        gateway = d.gateway
        store = d.runtime.store
        now = time.time()
        first_hour = int(now // 3600) - HOURS + 1
        since = first_hour * 3600.0
        turns = await store.hourly_user_turns(since)
        tokens = await store.hourly_tokens(since)
        recent_sessions = await store.sessions_updated_since(now - 3600)
        undelivered = await store.undelivered_rows(20, newest_first=True)
        undelivered_total = await store.undelivered_count()
        health = gateway.health()
        adapters = [{"name": name, "connected": a.status.connected, "last_error": a.status.last_error,
                     "reconnects": a.status.reconnects, "details": dict(a.status.details)}
                    for name, a in sorted(gateway.adapters.items())]
        dispatcher = getattr(gateway, "dispatcher", None)
        return d.page(
            request, "overview.html", active="/dashboard", health=health, adapters=adapters, url=gateway.url,
            busy_sessions=health.get("busy_sessions", 0), recent_sessions=recent_sessions,
            queue_depth=dispatcher.pending if dispatcher is not None else 0,
            turns_total=int(sum(turns.values())), tokens_total=int(sum(tokens.values())),
            turns_chart=bar_chart("Turns per hour, last 24 hours (UTC)", buckets(turns, first_hour), unit="turns"),
            tokens_chart=bar_chart("Tokens per hour, last 24 hours (UTC)", buckets(tokens, first_hour),
                                   unit="tokens", css="bars tokens"),
            errors=d.errors.recent(20), error_counts=error_counts(gateway.metrics),
            undelivered=undelivered, undelivered_total=undelivered_total)

    return [web.get("/dashboard", overview)]
