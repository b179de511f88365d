"""Scheduled jobs: schedules, the job tables, delivery targets, the runner and the scheduler.

    service = install_cron(runtime)     # gateway/cron/wiring.py: the `cron` tool + services["cron"]
    await service.start()               # inside the gateway's event loop
    await service.stop(grace=30)

Our own tables (`cron_jobs`, `cron_runs`) are the source of truth; APScheduler 3.x only keeps
time inside the running process. Cron fire times: `crontime.py` (croniter plus cronie's
daylight-saving rules, bounded) behind `trigger.py` (the APScheduler trigger, which never raises).
"""
