"""Wiring scheduled jobs into a Runtime: the `cron` tool and `runtime.services["cron"]`.

    cron = install_cron(runtime)    # after install_skills / install_learning
    await cron.start()              # in the gateway, once the event loop runs and delivery is set up
    ...
    await cron.stop(grace)          # on shutdown, before runtime.close()

Platform results go through `runtime.services["deliver"]` (`async (target, text) -> None`),
looked up at delivery time, so the gateway may provide it before or after this call.
"""

from __future__ import annotations

from typing import Any

from gateway.cron.schedule import DEFAULT_MIN_INTERVAL
from gateway.cron.service import CronService
from gateway.cron.tool import cron_tool


def install_cron(runtime: Any, *, min_interval: int = DEFAULT_MIN_INTERVAL, sync_interval: float = 5.0) -> CronService:
    """Give `runtime` the cron service and tool (idempotent); `start()` begins scheduling."""
    existing = runtime.services.get("cron")
    if isinstance(existing, CronService):
        return existing
    service = CronService(runtime, min_interval=min_interval, sync_interval=sync_interval)
    if runtime.tools.get(cron_tool.name) is None:
        runtime.tools.register(cron_tool)
    runtime.services["cron"] = service
    return service
