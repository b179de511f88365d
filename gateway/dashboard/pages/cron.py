"""`/cron`: scheduled jobs with their next run times, pause / resume / run now; `/cron/{id}`: the
run history with outputs. Every action calls the CronService (`runtime.services["cron"]`), the
object behind `hermes cron` and the `cron` tool, so the scheduler picks changes up at once.
"""

from __future__ import annotations

from aiohttp import web

from gateway.cron.jobs import JobNotFound
from gateway.cron.scheduler import JobBusy
from gateway.dashboard.core import Dashboard

RUNS_SHOWN = 50


def routes(d: Dashboard) -> list[web.RouteDef]:
    async def index(request: web.Request) -> web.Response:
        cron = d.service("cron")
        jobs = await cron.list()
        last = {}
        for job in jobs:
            runs = await cron.jobs.runs(job.id, limit=1)
            last[job.id] = runs[0] if runs else None
        return d.page(request, "cron.html", active="/cron", jobs=jobs, last=last,
                      enabled=d.gateway.config.cron.enabled)

    async def show(request: web.Request) -> web.Response:
        cron = d.service("cron")
        try:
            job = await cron.get(request.match_info["id"])
        except JobNotFound as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        runs = await cron.runs(job.id, limit=RUNS_SHOWN)
        return d.page(request, "cron_job.html", active="/cron", job=job, runs=runs)

    async def act(request: web.Request) -> web.StreamResponse:
        form = await d.form(request)
        cron = d.service("cron")
        job_id = request.match_info["id"]
        action = request.match_info["action"]
        back = f"/cron/{job_id}" if form.get("back") == "job" else "/cron"
        try:
            if action == "pause":
                job = await cron.pause(job_id)
                message = f"paused job {job.id} ({job.name})"
            elif action == "resume":
                job = await cron.resume(job_id)
                message = f"resumed job {job.id} ({job.name}); next run: {job.next_runs_text(1)}"
            else:
                job = await cron.get(job_id)
                await cron.run_now(job.id)  # the run continues in the background; its row shows it running
                message = f"started job {job.id} ({job.name}) now; its run appears in the history below"
                back = f"/cron/{job.id}"
        except JobNotFound as exc:
            return d.redirect("/cron", str(exc), "error")
        except JobBusy as exc:
            return d.redirect(back, str(exc), "error")
        except ValueError as exc:   # CronInputError: a resume refused, the job's schedule cannot fire
            return d.redirect(back, str(exc), "error")
        return d.redirect(back, message)

    return [web.get("/cron", index), web.get("/cron/{id}", show),
            web.post(r"/cron/{id}/{action:pause|resume|run}", act)]
