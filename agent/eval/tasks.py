"""The task format of `hermes eval learning`: `tasks.jsonl`, one task a line.

    {"id": "rotate-1", "workflow": "rotate-logs", "prompt": "...",
     "workspace": "fixtures/rotate",            # a folder (relative to the tasks file), copied
     "files": {"logs/app.log": "..."},          # and/or files laid out in the workspace
     "verify": "python3 check.py",              # run in the sandbox afterwards; exit 0 passes,
                                                # an optional score in [0, 1] on its last line
     "correction": "No: archives go in old/."}  # optional: sent after a failed try

Every line is checked when the file is read: a bad one is an error naming the file, the line and
the field, before anything runs. File names are checked to stay inside the workspace.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.sandbox.policy import SandboxSpec, choose_backend
from agent.sandbox.runner import run_sandboxed
from skills.paths import safe_join

VERIFY_OUTPUT_CHARS = 4_000


class TaskError(ValueError):
    """A tasks file (or a task's fixture) that cannot be used; the text says where and why."""


class EvalTask(BaseModel):
    """One verifiable task."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
    prompt: str = Field(min_length=1)
    verify: str = Field(min_length=1)
    workflow: str = ""
    workspace: str = ""
    files: dict[str, str] = Field(default_factory=dict)
    correction: str = ""
    timeout: float = Field(60.0, gt=0, le=3600)

    @field_validator("files")
    @classmethod
    def _relative(cls, files: dict[str, str]) -> dict[str, str]:
        for name in files:
            if not name or name.startswith("/") or ".." in Path(name).parts:
                raise ValueError(f"file name {name!r} must be a relative path inside the workspace")
        return files


def load_tasks(path: Path) -> list[EvalTask]:
    """Every task of `path`; TaskError naming the line and field of the first bad one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskError(f"{path}: {exc.strerror or exc}") from exc
    tasks: list[EvalTask] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}:{number}: not JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(raw, dict):
            raise TaskError(f"{path}:{number}: a task is a JSON object, got {type(raw).__name__}")
        try:
            task = EvalTask.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "task"
            raise TaskError(f"{path}:{number}: {where}: {first['msg']}") from exc
        if task.id in seen:
            raise TaskError(f"{path}:{number}: id {task.id!r} is used twice")
        if task.workspace and not (path.parent / task.workspace).is_dir():
            raise TaskError(f"{path}:{number}: workspace: no folder {task.workspace!r} beside {path.name}")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise TaskError(f"{path}: no tasks")
    return tasks


def lay_out(task: EvalTask, tasks_file: Path, workspace: Path) -> None:
    """Fill `workspace` (emptied first) with the task's fixture folder and files."""
    if workspace.exists():
        shutil.rmtree(workspace)
    if task.workspace:
        shutil.copytree(tasks_file.parent / task.workspace, workspace, symlinks=True)
    workspace.mkdir(parents=True, exist_ok=True)
    for name, content in task.files.items():
        target = safe_join(workspace, *Path(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


@dataclass(frozen=True)
class Verdict:
    """What the verifier said: passed (exit 0), a score in [0, 1], and its output's tail."""

    passed: bool
    score: float
    output: str


def _score(output: str, passed: bool) -> float:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if lines:
        try:
            value = float(lines[-1])
        except ValueError:
            value = -1.0
        if 0.0 <= value <= 1.0:
            return value
    return 1.0 if passed else 0.0


async def verify(task: EvalTask, workspace: Path, sandbox: str = "auto") -> Verdict:
    """Run the task's `verify` command in the sandbox, in its workspace (network off)."""
    backend = choose_backend(sandbox)
    if not backend.usable:
        return Verdict(False, 0.0, f"the verifier cannot run: {backend.problem}")
    result = await run_sandboxed(backend, SandboxSpec(workspace=workspace), ["/bin/bash", "-c", task.verify],
                                 timeout=task.timeout, max_output_chars=VERIFY_OUTPUT_CHARS)
    if result.timed_out:
        return Verdict(False, 0.0, f"the verifier timed out after {task.timeout:g}s")
    passed = result.returncode == 0
    return Verdict(passed, _score(result.output, passed), result.output[-VERIFY_OUTPUT_CHARS:])
