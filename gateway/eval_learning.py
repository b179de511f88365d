"""`hermes eval learning`: does the learning loop make this model better at these tasks?

The suite runs in rounds on a fresh home, twice: with the learning loop on (reviews write skills
and memory between tasks) and with it off as the control (no reviews, no memory tool, no skill
writes). Every task gets its own workspace and session; after its turn the task's verifier runs in
the sandbox, and a failed try with a `correction` gets that correction as a second message. A
round's figures: pass rate, tool calls, model tokens, wall time, skills created, patched and used,
and corrections repeated (a task that needed its correction although its workflow had been given
it before, earlier in the run). Only a real model measures the effect; a scripted one proves the harness.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.eval.tasks import EvalTask, lay_out, verify
from gateway.config import Config
from gateway.home import Home

log = logging.getLogger(__name__)
MODES = ("on", "off")


@dataclass(frozen=True)
class TaskRun:
    """One task in one round of one mode."""

    mode: str
    round: int
    task_id: str
    workflow: str
    passed: bool
    score: float
    tool_calls: int
    tokens: int
    seconds: float
    corrected: bool = False            # the correction was sent after a failed first try
    passed_after_correction: bool = False
    error: str = ""


@dataclass
class RoundFigures:
    """What one round of one mode adds up to."""

    mode: str
    round: int
    tasks: int = 0
    passed: int = 0
    tool_calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    skills_created: int = 0
    skills_patched: int = 0
    skills_used: int = 0
    corrections_repeated: int = 0

    @property
    def pass_rate(self) -> float:
        return self.passed / self.tasks if self.tasks else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pass_rate": round(self.pass_rate, 4)}


@dataclass
class EvalReport:
    model: str
    rounds: list[RoundFigures] = field(default_factory=list)
    runs: list[TaskRun] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "rounds": [r.as_dict() for r in self.rounds],
                "tasks": [asdict(r) for r in self.runs]}


def _library_state(snapshot: Any) -> dict[str, tuple[str, int, int]]:
    """name -> (digest of the skill's text, use count, version: 1 at creation, +1 a write)."""
    state: dict[str, tuple[str, int, int]] = {}
    for skill in snapshot.skills:
        text = f"{skill.description}\n{skill.document.body}"
        try:
            version = int(skill.document.metadata.get("version", "1"))
        except ValueError:
            version = 1
        state[skill.name] = (hashlib.sha256(text.encode()).hexdigest(), skill.use_count, version)
    return state


def _skill_changes(before: dict[str, tuple[str, int, int]],
                   after: dict[str, tuple[str, int, int]]) -> tuple[int, int, int]:
    """(skills created, skills patched, uses) in one round; a skill created and then patched in
    the same round counts in both."""
    created = sum(1 for name in after if name not in before)
    patched = 0
    for name, (digest, _, version) in after.items():
        if name in before:
            patched += int(digest != before[name][0] or version > before[name][2])
        else:
            patched += int(version > 1)
    used = sum(max(0, uses - (before[name][1] if name in before else 0)) for name, (_, uses, _) in after.items())
    return created, patched, used


def eval_config(base: Config, home: Home) -> Config:
    """The user's config on a fresh home: its model, tools and learning settings; its own store."""
    store = base.store.model_copy(update={"url": f"sqlite:///{home.state_db}", "path": ""})
    return base.model_copy(update={"store": store})


async def run_mode(config: Config, home: Home, tasks: list[EvalTask], tasks_file: Path, rounds: int,
                   mode: str, sandbox: str = "auto") -> tuple[list[RoundFigures], list[TaskRun]]:
    """Every round of one mode on `home` (made fresh first)."""
    from gateway.runtime import Runtime
    from gateway.sessions import SessionService

    if home.root.exists():
        await asyncio.to_thread(shutil.rmtree, home.root)
    runtime = await Runtime.open(eval_config(config, home), home, learning=(mode == "on"))
    figures: list[RoundFigures] = []
    runs: list[TaskRun] = []
    corrected_workflows: set[str] = set()
    try:
        service = SessionService(runtime)
        libraries = runtime.services["skill_libraries"]
        for number in range(1, rounds + 1):
            library = await libraries.get("")
            before = _library_state(await library.snapshot(force=True))
            totals = RoundFigures(mode, number)
            for task in tasks:
                run = await _run_task(runtime, service, task, tasks_file, home, mode, number, sandbox)
                if run.corrected and task.workflow and task.workflow in corrected_workflows:
                    totals.corrections_repeated += 1
                if run.corrected:
                    corrected_workflows.add(task.workflow or task.id)
                runs.append(run)
                totals.tasks += 1
                totals.passed += int(run.passed)
                totals.tool_calls += run.tool_calls
                totals.tokens += run.tokens
                totals.seconds += run.seconds
            after = _library_state(await library.snapshot(force=True))
            totals.skills_created, totals.skills_patched, totals.skills_used = _skill_changes(before, after)
            totals.seconds = round(totals.seconds, 3)
            figures.append(totals)
            log.info("eval %s round %d: %d/%d passed, %d tool calls", mode, number, totals.passed, totals.tasks,
                     totals.tool_calls)
    finally:
        await runtime.close()
    return figures, runs


async def _run_task(runtime: Any, service: Any, task: EvalTask, tasks_file: Path, home: Home, mode: str,
                    number: int, sandbox: str) -> TaskRun:
    workspace = home.root / "eval-workspaces" / f"round-{number}" / task.id
    await asyncio.to_thread(lay_out, task, tasks_file, workspace)
    key = f"eval:{mode}:round-{number}:{task.id}"
    session = await runtime.store.active_session(key, platform="eval", chat_id=task.id, user_id="eval")
    runtime.pin_workspace(session.key, workspace)
    started = time.perf_counter()
    tool_calls = tokens = 0
    error = ""
    corrected = passed_after = False
    try:
        result = await service.run_turn(session, task.prompt, stream=False)
        tool_calls, tokens = result.tool_calls, result.prompt_tokens + result.completion_tokens
        await runtime.drain()                         # the review of this task, before the next one
        verdict = await verify(task, workspace, sandbox)
        if not verdict.passed and task.correction:
            corrected = True
            again = await service.run_turn(session, task.correction, stream=False)
            tool_calls += again.tool_calls
            tokens += again.prompt_tokens + again.completion_tokens
            await runtime.drain()
            passed_after = (await verify(task, workspace, sandbox)).passed
    except Exception as exc:  # noqa: BLE001 - one failing task is a failed task, not a failed run
        log.warning("eval task %s (round %d, learning %s) failed: %s", task.id, number, mode, exc)
        verdict = None
        error = f"{type(exc).__name__}: {exc}"[:300]
    return TaskRun(mode, number, task.id, task.workflow, bool(verdict and verdict.passed),
                   verdict.score if verdict else 0.0, tool_calls, tokens, round(time.perf_counter() - started, 3),
                   corrected, passed_after, error or (verdict.output[-300:] if verdict and not verdict.passed else ""))


async def run_eval(config: Config, tasks: list[EvalTask], tasks_file: Path, out: Path, rounds: int,
                   sandbox: str = "auto") -> EvalReport:
    report = EvalReport(config.model.name)
    for mode in MODES:
        figures, runs = await run_mode(config, Home(out / f"home-learning-{mode}"), tasks, tasks_file, rounds,
                                       mode, sandbox)
        report.rounds += figures
        report.runs += runs
    return report


def write_report(report: EvalReport, out: Path) -> list[Path]:
    """results.json, and tool_calls.png when matplotlib is installed (the [eval] extra)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json"]
    written[0].write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    try:
        import matplotlib
    except ImportError:
        return written
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for mode, label in (("on", "learning on"), ("off", "learning off (control)")):
        rows = [r for r in report.rounds if r.mode == mode]
        axes.plot([r.round for r in rows], [r.tool_calls for r in rows], marker="o", label=label)
    axes.set_xlabel("round")
    axes.set_ylabel("tool calls")
    axes.set_title(f"tool calls per round: {report.model}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "tool_calls.png", dpi=100)
    pyplot.close(figure)
    written.append(out / "tool_calls.png")
    return written
