"""The `cron` tool: the agent manages scheduled jobs in conversation.

Translating "every weekday at 9am" into `0 9 * * 1-5` is the model's job; the tool takes a cron
expression, an interval (`every 30m`) or a one-off time (ISO, or `in 20m`), checks everything at
once, and confirms with the next three run times so the user can see what was understood.

A chat sees and manages only the jobs created from its own channel; `origin` (the default
target) is that channel. A scheduled run cannot create or start jobs (no job that breeds jobs).
"""

from __future__ import annotations

from typing import Any, Literal

from agent.tools.registry import ToolContext, ToolError, tool
from gateway.cron.jobs import Job, JobNotFound
from gateway.cron.runner import stored_target
from gateway.cron.schedule import ScheduleError
from gateway.cron.targets import TargetError, parse_target
from gateway.store import SessionRecord

Action = Literal["create", "list", "pause", "resume", "remove", "run_now"]


def _describe(job: Job) -> str:
    what = f"skill {job.skill}" + (f" with prompt {job.prompt[:80]!r}" if job.prompt else "") if job.skill \
        else f"prompt {job.prompt[:80]!r}"
    return (f"- {job.id} '{job.name}' [{job.state}] {job.schedule} ({job.timezone}), {what}, "
            f"to {stored_target(job.target).display()}; next: {job.next_runs_text(3)}")


async def _approve_delivery(ctx: ToolContext, service: Any, deliver: str, session: SessionRecord | None) -> None:
    """A job that delivers somewhere other than this chat is created only after the user approves it."""
    if (deliver or "origin").strip().lower() in ("origin", "none"):
        return
    target = parse_target(deliver, service.config, service.home, origin=session)  # TargetError: bad target
    if session is not None and (target.scheme, target.value) == (session.platform, session.chat_id):
        return
    # the whole target, webhook URL with its path and query: what is approved (and always allowed)
    # is exactly this destination, and the person asked sees all of it
    whole, shown = str(target), target.display()
    if not await ctx.approve("cron", f"create a scheduled job that delivers to {whole} instead of this chat "
                                     f"(rule: deliver to {whole})"):
        raise ToolError(f"the user did not approve delivering to {shown}, so the job was not created")


@tool(name="cron")
async def cron_tool(ctx: ToolContext, action: Action, schedule: str = "", prompt: str = "", skill: str = "",
                    deliver: str = "origin", timezone: str = "", name: str = "", job_id: str = "") -> str:
    """Schedule work to run later or repeatedly, and manage scheduled jobs (create, list, pause, resume, remove, run_now).

    Each run is a fresh session that follows the prompt (and the skill, when named) and sends its
    reply to the delivery target. Translate the user's words into a schedule yourself:
    "every weekday at 9am" is "0 9 * * 1-5" (crontab: minute hour day-of-month month
    day-of-week, 0 = Sunday); "every 30 minutes" is "every 30m"; "tomorrow at 8" is an ISO time
    like "2030-06-02T08:00"; "in 20 minutes" is "in 20m". After creating, tell the user the next
    run times the tool returns.

    Args:
        action: create, list, pause, resume, remove or run_now.
        schedule: for create: a 5-field cron expression (names, L, W, #, ? and @daily work; with both day fields set, either matches), "every <n>m|h|d", an ISO date-time, or "in <n>m|h".
        prompt: for create: what the scheduled run should do, written as a request to yourself.
        skill: for create: optional name of a skill from the library to follow on each run.
        deliver: for create: where results go: origin (this chat, the default), telegram:<chat>, slack:<channel>, discord:<channel>, webhook:<url>, file:<path inside the Hermes home>, or none.
        timezone: for create: IANA time zone such as Europe/Berlin; default the configured one.
        name: for create: a short name for the job.
        job_id: for pause, resume, remove and run_now: the job's id (from list or create).
    """
    service = ctx.services.get("cron")
    if service is None:
        raise ToolError("scheduled jobs are not available in this process")
    session = await service.jobs.store.get_session(ctx.session_id) if ctx.session_id else None
    owner = (f"{session.platform}:{session.chat_id}" if session.platform and session.chat_id else session.key) \
        if session is not None else "local"
    in_cron_run = session is not None and session.key.startswith("cron:")
    try:
        if action == "create":
            if in_cron_run:
                raise ToolError("a scheduled run cannot create jobs; ask the user in a chat instead")
            if not schedule.strip():
                raise ToolError("schedule: needed for create (a cron expression, 'every 30m', or a time)")
            await _approve_delivery(ctx, service, deliver, session)
            job = await service.create(schedule, prompt=prompt, skill=skill, deliver=deliver or "origin",
                                       tz=timezone, name=name, origin=session, owner=owner)
            return (f"Created job {job.id} '{job.name}': {job.schedule} ({job.timezone}), delivering to "
                    f"{stored_target(job.target).display()}.\nNext runs: {job.next_runs_text(3)}")
        if action == "list":
            jobs = await service.list(owner=owner)
            return "\n".join(_describe(j) for j in jobs) if jobs else "No scheduled jobs in this chat."
        if not job_id.strip():
            raise ToolError(f"job_id: needed for {action} (see action=list)")
        if action == "pause":
            job = await service.pause(job_id, owner=owner)
            return f"Paused job {job.id} '{job.name}'."
        if action == "resume":
            job = await service.resume(job_id, owner=owner)
            return f"Resumed job {job.id} '{job.name}'. Next runs: {job.next_runs_text(3)}"
        if action == "remove":
            job = await service.remove(job_id, owner=owner)
            return f"Removed job {job.id} '{job.name}'."
        if in_cron_run:
            raise ToolError("a scheduled run cannot start jobs")
        job = await service.get(job_id, owner=owner)
        await service.run_now(job.id, owner=owner)
        return (f"Started job {job.id} '{job.name}' now; its result goes to {stored_target(job.target).display()} "
                "when it finishes.")
    except (ScheduleError, TargetError, ValueError) as exc:
        raise ToolError(str(exc)) from None
    except JobNotFound as exc:
        raise ToolError(f"{exc} in this chat (see action=list)") from None
    except RuntimeError as exc:  # JobBusy
        raise ToolError(str(exc)) from None
