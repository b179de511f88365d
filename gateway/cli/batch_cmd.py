"""`hermes batch`: generate trajectories for a JSONL file of prompts, in parallel, resumably.

    hermes batch --input prompts.jsonl --workers 4 --checkpoint ./training_data

Each prompt runs in a fresh agent session (no gateway, no state store) with its own workspace;
results go to `CHECKPOINT/shards/*.jsonl`. The tools are chat's built-in ones and the tools of
the configured MCP servers, filtered by `[toolsets]` as for a platform named `batch`; the tools
that need the gateway's state (skills, memory, cron) are left out (`--help` says so). Run the
same command again after a crash or Ctrl-C and only the prompts without a result run. A progress bar shows done/failed, rate and ETA; a
summary at the end shows tokens, cost and which tools were called.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, load, plural


def _progress(console: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            elapsed = task.elapsed or 0.0
            if not task.completed or elapsed <= 0:
                return Text("-/min", style="cyan")
            return Text(f"{task.completed / elapsed * 60:.1f}/min", style="cyan")

    return Progress(
        TextColumn("[bold]batch[/bold]"), BarColumn(), MofNCompleteColumn(),
        TextColumn("[green]{task.fields[ok]} ok[/green] [red]{task.fields[failed]} failed[/red]"),
        RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=False,
    )


def _print_summary(console: Any, summary: Any, total_done: int, selected: int, checkpoint: Path) -> None:
    from rich.table import Table

    rate = summary.ran / summary.elapsed_s * 60 if summary.elapsed_s > 0 else 0.0
    console.print(f"[bold]Batch finished[/bold] in {summary.elapsed_s:.1f}s ({rate:.1f} trajectories/min)")
    console.print(f"  completed  {summary.succeeded}")
    console.print(f"  failed     {summary.failed}")
    if summary.already_done:
        console.print(f"  skipped    {summary.already_done} (already in the checkpoint)")
    console.print(f"  tokens     {summary.prompt_tokens + summary.completion_tokens} "
                  f"({summary.prompt_tokens} prompt + {summary.completion_tokens} completion)")
    console.print(f"  cost       ${summary.cost:.4f}")
    console.print(f"  checkpoint {checkpoint}: {total_done}/{selected} selected prompts done")
    if summary.tool_calls:
        table = Table(title="tool calls", show_edge=False)
        table.add_column("tool")
        table.add_column("calls", justify="right")
        for name, count in summary.tool_calls.most_common():
            table.add_row(name, str(count))
        console.print(table)
    for error, count in summary.errors.most_common(5):
        console.print(f"  [red]{count}x[/red] {error}", highlight=False, markup=False)


async def _run(input_path: Path, workers: int, checkpoint: Path, model: str | None, max_iterations: int | None,
               toolsets_text: str | None, limit: int | None, resume: bool, seed: int | None,
               config_path: Path | None, rate: float, max_calls: int | None, keep_workspaces: bool) -> int:
    from rich.console import Console

    from agent.batch import (
        BatchRunner,
        BatchSettings,
        InputError,
        ModelGate,
        parse_prompts,
        parse_toolsets,
        select_prompts,
    )
    from agent.checkpoint_store import CheckpointError, CheckpointStore
    from agent.llm import LLMClient, ModelNotConfiguredError
    from agent.prompt import PromptBuilder, PromptContext
    from agent.redact import Redactor

    # soft_wrap: a long checkpoint path stays on one line (copyable, greppable) instead of being
    # folded at the terminal's width, or at 80 columns when the output is piped
    err = Console(stderr=True, soft_wrap=True)
    out = Console(soft_wrap=True)
    config, home = load(config_path)
    config = config.with_model(model)
    try:
        toolsets = parse_toolsets(toolsets_text) if toolsets_text is not None else None
    except ValueError as exc:
        fail(f"--toolsets: {exc}", code=2)
    gate = ModelGate(max_calls or workers, rate)
    llm = LLMClient(config.model, concurrency=gate)
    try:
        llm.require_model()
    except ModelNotConfiguredError as exc:
        fail(str(exc), code=2)
    try:
        items, problems = await asyncio.to_thread(parse_prompts, input_path)
    except InputError as exc:
        fail(str(exc), code=2)
    for problem in problems:
        click.echo(f"hermes: warning: {problem} (line skipped)", err=True)
    if not items:
        fail(f"{input_path}: no valid prompt lines", code=2)
    selected = select_prompts(items, seed=seed, limit=limit)
    try:
        store, report = await asyncio.to_thread(CheckpointStore.open, checkpoint, resume=resume)
    except (CheckpointError, OSError) as exc:
        fail(f"checkpoint {checkpoint}: {exc}", code=2)
    from gateway.mcp_wiring import start_mcp
    from gateway.toolsets import tools_for

    mcp: Any = None
    try:
        mcp, mcp_tools = await start_mcp(config.mcp, home.logs_dir)
        if report.moved_aside_to is not None:
            click.echo(f"hermes: --no-resume: earlier results moved to {report.moved_aside_to}", err=True)
        if report.torn_bytes_truncated:
            click.echo(f"hermes: repaired the checkpoint: truncated a torn final line "
                       f"({report.torn_bytes_truncated} bytes); that prompt runs again", err=True)
        for problem in report.bad_lines:
            click.echo(f"hermes: warning: checkpoint {problem}", err=True)
        system = await PromptBuilder(extra=config.agent.system_prompt).build(PromptContext())
        settings = BatchSettings(agent=config.agent, tools=config.tools, toolsets=toolsets, system_prompt=system,
                                 workers=workers, max_iterations=max_iterations, keep_workspaces=keep_workspaces,
                                 extra_tools=mcp_tools,
                                 tool_filter=lambda names: tools_for(config.toolsets, "batch", "", "", False, names))
        runner = BatchRunner(settings, llm, store, Redactor.from_environ())
        done_before = store.completed_ids()
        to_run = sum(1 for item in selected if item.id not in done_before)
        click.echo(f"hermes: {plural(len(selected), 'prompt')} selected, "
                   f"{len(selected) - to_run} already done, "
                   f"{to_run} to run with {plural(workers, 'worker')}", err=True)
        progress = _progress(err)
        task_id = progress.add_task("batch", total=to_run, ok=0, failed=0)
        counts = {"ok": 0, "failed": 0}

        def on_result(trajectory: Any) -> None:
            counts["ok" if trajectory.success else "failed"] += 1
            progress.update(task_id, advance=1, ok=counts["ok"], failed=counts["failed"])

        with progress:
            summary = await runner.run(selected, on_result=on_result)
        selected_ids = {item.id for item in selected}
        total_done = len(selected_ids & store.completed_ids())
    finally:
        store.close()
        if mcp is not None:
            await mcp.close()
    _print_summary(out, summary, total_done, len(selected), checkpoint)
    if summary.ran and summary.succeeded == 0:
        first = summary.errors.most_common(1)[0][0] if summary.errors else "no answer"
        click.echo(f"hermes: error: every prompt of this run failed; first error: {first}", err=True)
        return 1
    return 0


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help='JSONL prompts: {"id", "prompt", optional "toolsets", "system", "metadata"} a line.')
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 512), help="Concurrent prompts.")
@click.option("--checkpoint", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for results (shards/*.jsonl); created if missing.")
@click.option("--model", default=None, help="LiteLLM model string; overrides [model] name.")
@click.option("--max-iterations", type=click.IntRange(1, 500), default=None,
              help="Model calls per prompt at most (default: [agent] max_iterations).")
@click.option("--toolsets", "toolsets_text", default=None,
              help="Comma-separated: files, terminal, web, delegate, mcp (default: what [tools] enables, and mcp "
                   "when MCP servers are configured).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Run only the first N (after --seed shuffling).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Skip prompts already in the checkpoint; --no-resume moves earlier results aside.")
@click.option("--seed", type=int, default=None, help="Shuffle the prompts with this seed (with --limit: a sample).")
@click.option("--rate", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Model requests per minute at most, shared by all workers (0: no limit).")
@click.option("--max-concurrent-calls", "max_calls", type=click.IntRange(1), default=None,
              help="Model calls in flight at most (default: --workers).")
@click.option("--keep-workspaces", is_flag=True, help="Keep each prompt's workspace folder after it finishes.")
@config_option
def batch(input_path: Path, workers: int, checkpoint: Path, model: str | None, max_iterations: int | None,
          toolsets_text: str | None, limit: int | None, resume: bool, seed: int | None, rate: float,
          max_calls: int | None, keep_workspaces: bool, config_path: Path | None) -> None:
    """Run a JSONL file of prompts through the agent and record trajectories.

    Tools: the built-in ones (--toolsets) and the MCP servers' tools ([[mcp.servers]], toolset
    'mcp'), filtered by [toolsets] as for a platform named 'batch'. Left out: skill_*, memory and
    cron, because a batch has no state store or skill library and its trajectories must not
    change the live skills, memory or schedule.
    """
    if not input_path.is_file():
        fail(f"{input_path}: no such input file", code=2)
    try:
        code = asyncio.run(_run(input_path, workers, checkpoint, model, max_iterations, toolsets_text, limit,
                                resume, seed, config_path, rate, max_calls, keep_workspaces))
    except KeyboardInterrupt:
        again = " ".join(shlex.quote(a) for a in ["hermes", *sys.argv[1:]] if a != "--no-resume")
        click.echo(f"\nhermes: stopped; finished prompts are kept in {checkpoint}. Run the same command again "
                   f"to resume (finished prompts are skipped):\n  {again}", err=True)
        sys.exit(130)
    sys.exit(code)
