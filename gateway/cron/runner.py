"""One run of a scheduled job: a fresh headless agent session, its result delivered and recorded.

The run is claimed first (a `cron_runs` row keyed by job and scheduled time; a second claim of
the same scheduled time is refused), then a new session `cron:<job>:<scheduled-iso>` is opened
on the target's platform, chat and team, so the team's skill library and memory apply and the
learning checkpoint runs as in chat. The named skill's body is loaded into the request with
`gateway.skills_wiring.expand_skill_command`. The turn has its own limits: `[cron].max_iterations`
model calls and `[cron].timeout` seconds (the turn is interrupted, leaving the session
consistent). Nobody can approve risky tool calls in a headless run: they are denied.

The result (or a short error) goes to the job's target; what happened is recorded in the run
row: status, duration, tokens, a redacted output excerpt, the error and any delivery error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.llm import LLMError
from agent.model_call import purpose
from agent.loop import Agent, TurnResult
from agent.redact import Redactor
from gateway.cron.jobs import ERROR_CHARS, Job, JobStore, iso_utc
from gateway.cron.schedule import describe_time
from gateway.cron.targets import DeliveryFailed, Target, deliver

log = logging.getLogger(__name__)

HARD_TIMEOUT_MARGIN = 30.0   # seconds after the soft timeout before the turn is cancelled outright


class RunFailed(Exception):
    """A run could not start or finish; the message is short enough to deliver."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    job_id: str
    scheduled_time: str
    status: str                # ok | incomplete | undelivered (ran, result not delivered) | timeout | error | cancelled
    text: str
    error: str
    delivery_error: str
    duration_ms: float
    prompt_tokens: int
    completion_tokens: int
    session_id: str

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def stored_target(text: str) -> Target:
    """A target as stored on a job (validated when the job was created)."""
    scheme, _, value = text.partition(":")
    return Target(scheme, value)


class Runner:
    """Runs jobs on a Runtime (the gateway's, or a foreground one for `hermes cron run`)."""

    def __init__(self, runtime: Any, jobs: JobStore) -> None:
        self.runtime = runtime
        self.jobs = jobs
        self.redactor = Redactor.from_environ()

    @property
    def settings(self) -> Any:
        return self.runtime.config.cron

    async def run(self, job: Job, scheduled: datetime, cause: str) -> RunOutcome | None:
        """Run `job` for `scheduled`; None when that scheduled run was already claimed."""
        run_id = await self.jobs.claim(job.id, scheduled, cause)
        if run_id is None:
            log.info("cron job %s: the run for %s already ran; not running it again", job.id, iso_utc(scheduled))
            return None
        started = time.perf_counter()
        target = stored_target(job.target)
        result: TurnResult | None = None
        session_id = ""
        status, error = "error", ""
        background_before = set(self.runtime.background)
        try:
            session = await self._session(job, scheduled, target)
            session_id = session.id
            request = await self._request(job, scheduled, target)
            result = await self._turn(job, session, request)
            status = {"done": "ok", "max_iterations": "incomplete", "interrupted": "timeout"}[result.status]
            if status == "timeout":
                error = f"timed out after {self.settings.timeout:g}s"
        except asyncio.CancelledError:
            await self.jobs.finish(run_id, status="cancelled", session_id=session_id,
                                   duration_ms=(time.perf_counter() - started) * 1000,
                                   error="the gateway stopped during the run")
            raise
        except RunFailed as exc:
            error = str(exc)
        except LLMError as exc:
            log.warning("cron job %s: the model failed: %s", job.id, exc)
            error = f"the model failed: {exc}"
        except Exception as exc:
            log.exception("cron job %s failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
        error = self.redactor.redact(" ".join(error.split()))[:ERROR_CHARS]
        text = result.text if result is not None else ""
        if status in ("ok", "incomplete") and text.strip():
            message = text
        elif status in ("ok", "incomplete"):
            message = f"Scheduled job '{job.name}' finished without a reply."
        else:
            message = f"⚠️ Scheduled job '{job.name}' failed: {error}"
        delivery_error = await self._deliver(job, target, message, scheduled, status)
        if delivery_error and status in ("ok", "incomplete"):
            status = "undelivered"  # the job ran, but nobody got its result: not `ok` in `cron runs`
        duration_ms = (time.perf_counter() - started) * 1000
        outcome = RunOutcome(run_id, job.id, iso_utc(scheduled), status, text, error, delivery_error, duration_ms,
                             result.prompt_tokens if result else 0, result.completion_tokens if result else 0,
                             session_id)
        await self.jobs.finish(run_id, status=status, session_id=session_id, duration_ms=duration_ms,
                               prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
                               output=self.redactor.redact(text), error=error, delivery_error=delivery_error)
        log.info("cron job %s (%s) run for %s: %s in %.1fs, %d tokens%s", job.id, job.name, outcome.scheduled_time,
                 status, duration_ms / 1000, outcome.tokens, f"; delivery failed: {delivery_error}"
                 if delivery_error else "")
        # checkpoints of the cron session run in the background: let them finish (bounded), so a
        # run is over when its learning is; only work started during this run is waited for
        started_here = set(self.runtime.background) - background_before
        if started_here:
            await asyncio.wait(started_here, timeout=self.settings.timeout)
        return outcome

    async def _session(self, job: Job, scheduled: datetime, target: Target) -> Any:
        store = self.runtime.store
        user_id = "cron"
        if job.origin_session:
            origin = await store.get_session(job.origin_session)
            if origin is not None and origin.user_id:
                user_id = origin.user_id
        platform, chat_id = (target.scheme, target.value) if target.is_platform else ("cron", job.id)
        return await store.new_session(f"cron:{job.id}:{iso_utc(scheduled)}", platform=platform, chat_id=chat_id,
                                       user_id=user_id, team=job.team)

    async def _request(self, job: Job, scheduled: datetime, target: Target) -> str:
        body = job.prompt.strip()
        if job.skill:
            from gateway.skills_wiring import expand_skill_command

            libraries = self.runtime.services.get("skill_libraries")
            library = await libraries.get(job.team) if libraries is not None else self.runtime.services.get("skills")
            if library is None:
                raise RunFailed("the skill library is not installed in this process")
            expanded = await expand_skill_command(library, f"/{job.skill} {body}".strip())
            if expanded is None:
                raise RunFailed(f"skill {job.skill!r} is not in the library any more")
            body = expanded
        when = describe_time(scheduled, job.timezone)
        return (f"[Scheduled run of job '{job.name}' ({job.id}) for {when}. Nobody is watching this conversation "
                f"live: do the work with your tools and reply with the result only; your reply is delivered to "
                f"{target.display()}.]\n\n{body}")

    def _runtime_for(self, job: Job) -> Any:
        """The runtime itself, or a view of it whose agent talks to the job's own model."""
        if not job.model or job.model == self.runtime.config.model.name:
            return self.runtime
        config = self.runtime.config.with_model(job.model)
        llm = self.runtime.llm.with_model(config.model)
        agent = Agent(llm, self.runtime.tools, self.runtime.config.agent)
        return dataclasses.replace(self.runtime, config=config, llm=llm, agent=agent)

    async def _turn(self, job: Job, session: Any, request: str) -> TurnResult:
        from gateway.sessions import SessionService

        runtime = self._runtime_for(job)
        interrupt = asyncio.Event()
        timer = asyncio.get_running_loop().call_later(self.settings.timeout, interrupt.set)
        try:
            with purpose("cron"):  # the turn's task copies the context: every call it makes says cron
                turn = SessionService(runtime).run_turn(session, request, interrupt=interrupt, stream=False,
                                                        max_iterations=self.settings.max_iterations)
                return await asyncio.wait_for(turn, self.settings.timeout + HARD_TIMEOUT_MARGIN)
        except TimeoutError:
            raise RunFailed(f"timed out after {self.settings.timeout:g}s") from None
        finally:
            timer.cancel()

    async def _deliver(self, job: Job, target: Target, message: str, scheduled: datetime, status: str) -> str:
        header = f"{job.name} · {describe_time(scheduled, job.timezone)}"
        payload = {"job_id": job.id, "job_name": job.name, "scheduled_time": iso_utc(scheduled), "status": status}
        try:
            await deliver(target, message, services=self.runtime.services, header=header, payload=payload,
                          key=f"cron:{job.id}:{iso_utc(scheduled)}")
        except DeliveryFailed as exc:
            log.warning("cron job %s: could not deliver to %s: %s", job.id, target.display(), exc)
            return self.redactor.redact(str(exc))
        return ""
