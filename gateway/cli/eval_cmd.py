"""`hermes eval learning`: the learning loop measured on your own tasks and model.

    hermes eval learning --tasks bench/tasks/tasks.jsonl --model ollama_chat/qwen2.5 --rounds 3

Runs the tasks in rounds with learning on and off (a fresh home each, under --out), prints a
table per round and writes results.json (and tool_calls.png with the `[eval]` extra).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from gateway.cli.common import config_option, fail, load


@click.group("eval")
def eval_group() -> None:
    """Measure the agent on verifiable tasks (tasks.jsonl)."""


@eval_group.command("learning")
@click.option("--tasks", "tasks_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="tasks.jsonl: id, prompt, verify, and optional workflow, workspace, files, correction.")
@click.option("--model", default=None, help="LiteLLM model string (default: [model] name).")
@click.option("--rounds", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Times the whole suite runs in each mode.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-learning"),
              show_default=True, help="Folder for results.json, the plot and the two fresh homes.")
@click.option("--sandbox", default="auto", show_default=True,
              type=click.Choice(["auto", "bubblewrap", "landlock", "none"]), help="Where verifiers run.")
@config_option
def learning(tasks_file: Path, model: str | None, rounds: int, out: Path, sandbox: str,
             config_path: Path | None) -> None:
    """Run the suite with the learning loop on and off (control) and compare the rounds.

    Only a real model measures the effect of learning; a scripted model only proves the harness.
    """
    from agent.eval.tasks import TaskError, load_tasks
    from gateway.eval_learning import run_eval, write_report

    try:
        tasks = load_tasks(tasks_file)
    except TaskError as exc:
        fail(str(exc), code=2)
    config, _ = load(config_path)
    config = config.with_model(model)
    if not config.model.name:
        fail("no model: pass --model or set [model] name", code=2)
    if os.environ.pop("HERMES_STORE_URL", None):  # the eval homes are fresh SQLite files, never the live store
        click.echo("hermes: HERMES_STORE_URL is ignored: each mode runs on a fresh SQLite home", err=True)
    click.echo(f"hermes: {len(tasks)} tasks x {rounds} rounds, learning on and off, model {config.model.name}",
               err=True)
    report = asyncio.run(run_eval(config, tasks, tasks_file.resolve(), out.resolve(), rounds, sandbox))
    written = write_report(report, out)
    _print_table(report)
    for path in written:
        click.echo(f"wrote {path}")
    if not any(path.suffix == ".png" for path in written):
        click.echo("hermes: no tool_calls.png: matplotlib is not installed "
                   '(pip install -c constraints.txt -e ".[eval]")', err=True)
    if not any(r.tasks for r in report.rounds):
        sys.exit(1)


def _print_table(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"learning on vs off: {report.model}")  # type: ignore[attr-defined]
    for column in ("learning", "round", "passed", "tool calls", "tokens", "seconds", "skills +", "patched",
                   "used", "corrections again"):
        table.add_column(column, justify="right" if column not in ("learning",) else "left")
    for r in report.rounds:  # type: ignore[attr-defined]
        table.add_row(r.mode, str(r.round), f"{r.passed}/{r.tasks}", str(r.tool_calls), str(r.tokens),
                      f"{r.seconds:.1f}", str(r.skills_created), str(r.skills_patched), str(r.skills_used),
                      str(r.corrections_repeated))
    Console(soft_wrap=True).print(table)
