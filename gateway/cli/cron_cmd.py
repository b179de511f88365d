"""`hermes cron`: scheduled jobs from the command line.

    hermes cron add "0 9 * * 1-5" --skill daily-report --deliver slack:C123 --tz Europe/Berlin
    hermes cron list [--json] | pause ID | resume ID | remove ID
    hermes cron run ID            # runs the job now, in the foreground, and prints the result
    hermes cron runs ID [--json]  # history: status, duration, tokens, output excerpt

Changes are written to the state store; a running gateway picks them up within seconds. Jobs
added here have no chat of origin, so `--deliver` defaults to `none` (results are kept in the
run history); `file:` targets may be any absolute path here (the operator typed it), while the
chat tool is limited to HERMES_HOME.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, json_option, load, print_json


@asynccontextmanager
async def _manager(config_path: Path | None) -> AsyncIterator[Any]:
    from gateway.cron.service import CronManager
    from gateway.skills_wiring import SkillLibraries
    from gateway.store import open_configured_store

    config, home = load(config_path)
    store = await open_configured_store(config, home)
    try:
        yield CronManager(config, home, store, libraries=SkillLibraries(home, config.skills, store=store))
    finally:
        await store.close()


def _call(config_path: Path | None, work: Any) -> Any:
    """Run `work(manager)`; input errors exit 2, unknown ids exit 1, both with the message on stderr."""
    from gateway.cron.jobs import JobNotFound

    async def main() -> Any:
        async with _manager(config_path) as manager:
            return await work(manager)

    try:
        return asyncio.run(main())
    except JobNotFound as exc:
        fail(f"{exc} (see `hermes cron list`)")
    except ValueError as exc:   # ScheduleError, TargetError, CronInputError name the field
        fail(str(exc), code=2)


def _target(job: Any) -> str:
    from gateway.cron.runner import stored_target

    return stored_target(job.target).display() if job.target.startswith("webhook:") else job.target


@click.group()
def cron() -> None:
    """Scheduled jobs: run a prompt or a skill on a schedule and deliver the result."""


@cron.command("add")
@click.argument("schedule")
@click.option("--prompt", default="", help="What each run should do.")
@click.option("--skill", default="", help="A skill from the library to follow on each run.")
@click.option("--deliver", default="none", show_default=True,
              help="telegram:<chat>, slack:<channel>, discord:<channel>, webhook:<url>, file:<path> or none.")
@click.option("--tz", "tz", default="", help="IANA time zone, e.g. Europe/Berlin (default: [cron] timezone).")
@click.option("--name", default="", help="A short name for the job.")
@click.option("--model", default="", help="LiteLLM model for this job (default: [model] name).")
@config_option
@json_option
def add(schedule: str, prompt: str, skill: str, deliver: str, tz: str, name: str, model: str,
        config_path: Path | None, as_json: bool) -> None:
    """Add a job. SCHEDULE: a cron expression ("0 9 * * 1-5"), "every 30m", or a time ("2030-06-01T09:00", "in 20m").

    Cron expressions take names, L, W, #, ? and @daily-style aliases; with both day fields set,
    either one matching runs the job. At daylight-saving changes (in --tz) a fixed-time job runs
    once in the repeated hour and right after the change when its time is skipped; */15-style
    jobs run at every real interval. An expression that never fires is refused.
    """
    if not prompt.strip() and not skill.strip():
        fail("give --prompt TEXT or --skill NAME (or both)", code=2)

    async def work(manager: Any) -> Any:
        return await manager.create(schedule, prompt=prompt, skill=skill, deliver=deliver, tz=tz, name=name,
                                    model=model, owner="cli", allow_outside_home=True)

    job = _call(config_path, work)
    if as_json:
        print_json([job.as_dict()])
        return
    click.echo(f"Created job {job.id} '{job.name}': {job.schedule} ({job.timezone}) -> {_target(job)}")
    click.echo(f"Next runs: {job.next_runs_text(3)}")
    if job.target == "none":
        click.echo("Results are kept in the run history: hermes cron runs " + job.id)


@cron.command("list")
@config_option
@json_option
def list_jobs(config_path: Path | None, as_json: bool) -> None:
    """List jobs with their state and next run times."""
    async def work(manager: Any) -> Any:
        return await manager.list()

    jobs = _call(config_path, work)
    if as_json:
        print_json([job.as_dict() for job in jobs])
        return
    if not jobs:
        click.echo("No scheduled jobs. Add one with: hermes cron add \"0 9 * * 1-5\" --prompt \"...\"")
        return
    zone_width = max(16, *(len(job.timezone) for job in jobs))
    for job in jobs:
        what = f"skill {job.skill}" if job.skill else job.prompt[:50]
        click.echo(f"{job.id}  {job.state:<7} {job.schedule:<18} {job.timezone:<{zone_width}} {job.name[:30]:<30} "
                   f"-> {_target(job)}  ({what})")
        click.echo(f"          next: {job.next_runs_text(3)}")


SIMPLE_HELP = {"pause": "Pause a job: it does not fire until resumed.",
               "resume": "Resume a paused job (runs missed while paused are not made up).",
               "remove": "Remove a job and its run history."}


def _simple(verb: str, method: str) -> click.Command:
    @click.argument("job_id")
    @config_option
    def command(job_id: str, config_path: Path | None) -> None:
        async def work(manager: Any) -> Any:
            return await getattr(manager, method)(job_id)

        job = _call(config_path, work)
        suffix = f" Next runs: {job.next_runs_text(3)}" if method == "resume" else ""
        click.echo(f"{verb} job {job.id} '{job.name}'.{suffix}")

    return click.command(method, help=SIMPLE_HELP[method])(command)


cron.add_command(_simple("Paused", "pause"))
cron.add_command(_simple("Resumed", "resume"))
cron.add_command(_simple("Removed", "remove"))


@cron.command("run")
@click.argument("job_id")
@config_option
@click.option("--model", default=None, help="LiteLLM model string; overrides [model] name.")
def run_job(job_id: str, config_path: Path | None, model: str | None) -> None:
    """Run a job now, in the foreground, and print its result."""
    sys.exit(asyncio.run(_run(job_id, config_path, model)))


async def _run(job_id: str, config_path: Path | None, model: str | None) -> int:
    from agent.llm import ModelNotConfiguredError
    from gateway.cron.jobs import JobNotFound
    from gateway.cron.scheduler import JobBusy
    from gateway.cron.wiring import install_cron
    from gateway.runtime import Runtime
    from gateway.skills_wiring import install_skills

    config, home = load(config_path)
    runtime = await Runtime.open(config.with_model(model), home)
    try:
        try:
            runtime.llm.require_model()
        except ModelNotConfiguredError as exc:
            fail(str(exc), code=2)
        if "skill_libraries" not in runtime.services:
            await install_skills(runtime)
        try:
            from gateway.learning.install import install_learning
        except ImportError:   # the learning loop is optional for a foreground run
            install_learning = None
        if install_learning is not None:
            await install_learning(runtime)
        # this process has no platform connections: a platform result goes through the store's
        # outbox to the gateway running on this home (or is recorded as not delivered)
        from gateway.outbox import OutboxSender

        runtime.services.setdefault("send_message", OutboxSender(runtime.store, home.root,
                                                                 origin=f"cron run {job_id}"))
        service = install_cron(runtime)
        # LiteLLM's first import takes seconds (far more on a busy machine): not on the run's clock
        from agent.model_call import import_litellm

        await asyncio.to_thread(import_litellm)
        try:
            task = await service.run_now(job_id)
        except JobNotFound as exc:
            fail(f"{exc} (see `hermes cron list`)")
        except JobBusy as exc:
            fail(str(exc))
        outcome = await task
        await runtime.drain()
    finally:
        await runtime.close()
    if outcome is None:
        fail("the run was not started (it was already recorded)")
    click.echo(outcome.text if outcome.text else outcome.error)
    detail = f"{outcome.status} in {outcome.duration_ms / 1000:.1f}s, {outcome.tokens} tokens"
    if outcome.delivery_error:
        click.echo(f"hermes: not delivered: {outcome.delivery_error}", err=True)
    click.echo(f"hermes: job {job_id}: {detail}", err=True)
    return 0 if outcome.status == "ok" else 1


@cron.command("runs")
@click.argument("job_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@config_option
@json_option
def runs(job_id: str, limit: int, config_path: Path | None, as_json: bool) -> None:
    """Show a job's run history: status, duration, tokens, output excerpt."""
    async def work(manager: Any) -> Any:
        return await manager.runs(job_id, limit=limit)

    history = _call(config_path, work)
    if as_json:
        print_json([run.as_dict() for run in history])
        return
    if not history:
        click.echo(f"Job {job_id} has not run yet.")
        return
    for run in history:
        excerpt = (run.output_excerpt or run.error).strip().replace("\n", " ")
        click.echo(f"{run.scheduled_time[:19]}Z  {run.cause:<8} {run.status:<10} {run.duration_ms / 1000:7.1f}s "
                   f"{run.tokens:>7} tok  {excerpt[:80]}"
                   + (f"  [not delivered: {run.delivery_error[:60]}]" if run.delivery_error else ""))
