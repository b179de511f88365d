"""`hermes trajectories`: turn batch results (or opted-in gateway sessions) into training data.

    hermes trajectories export --checkpoint DIR --format sharegpt --output train.jsonl [--success-only]
    hermes trajectories export --from-sessions --format openai --output sessions.jsonl
    hermes trajectories compress --checkpoint DIR --target-tokens 4096 --output compressed.jsonl

`export` reads a checkpoint directory, a trajectory JSONL file (`--input`, e.g. the output of
`compress`) or the state store's sessions (`--from-sessions`: only teams with
`trajectories_export = true`, or the top-level `trajectories_export` for sessions outside any
team). Secrets are redacted in everything written.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, load, plural


@click.group()
def trajectories() -> None:
    """Export or compress trajectories for training."""


def _source(checkpoint: Path | None, input_path: Path | None) -> Path:
    if (checkpoint is None) == (input_path is None):
        fail("give exactly one of --checkpoint DIR or --input FILE", code=2)
    return checkpoint or input_path  # type: ignore[return-value]


def _report_problems(problems: list[str]) -> None:
    for problem in problems[:20]:
        click.echo(f"hermes: warning: {problem}", err=True)
    if len(problems) > 20:
        click.echo(f"hermes: warning: ... and {len(problems) - 20} more unreadable lines", err=True)


# -- sessions ------------------------------------------------------------------------------------
async def _session_trajectories(config: Any, home: Any, team_filter: str | None) -> tuple[list[Any], int]:
    """Trajectories of the sessions whose team opted in; and how many sessions were left out."""
    from agent.trajectory import Timings, ToolCallRecord, Trajectory, Usage
    from gateway.runtime import Runtime

    teams = {t.name: t for t in config.teams}
    by_channel = {channel: t for t in config.teams for channel in t.channels}
    runtime = await Runtime.open(config, home)
    out: list[Trajectory] = []
    left_out = 0
    try:
        store = runtime.store
        tools = runtime.tools.schemas()
        for session in await store.sessions_in_order():
            team = teams.get(session.team) or by_channel.get(f"{session.platform}:{session.chat_id}")
            allowed = team.trajectories_export if team is not None else config.trajectories_export
            team_name = team.name if team is not None else ""
            if not allowed or (team_filter is not None and team_name != team_filter):
                left_out += 1
                continue
            messages = await store.load_messages(session.id)
            if not messages:
                continue
            calls = await store.session_tool_calls(session.id)
            usage = await store.usage_for_session(session.id)
            first_user = next((m for m in messages if m.get("role") == "user"), {})
            out.append(Trajectory(
                id=session.id, prompt=str(first_user.get("content") or ""),
                model=await store.session_last_model(session.id, "chat"),
                system="", messages=messages, tools=tools,
                tool_calls=[ToolCallRecord(call_id=c.call_id, name=c.name, arguments=c.arguments,
                                           ok=c.ok, result=c.result, duration_ms=c.duration_ms)
                            for c in calls],
                usage=Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                            cost=usage.cost, calls=usage.calls),
                timings=Timings(started_at=session.created_at, finished_at=session.updated_at,
                                duration_s=round(session.updated_at - session.created_at, 4)),
                success=True, status="session", source="session",
                metadata={"platform": session.platform, "team": team_name},
            ))
    finally:
        await runtime.close()
    return out, left_out


@trajectories.command()
@click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A hermes batch checkpoint directory.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A trajectory JSONL file (e.g. written by `trajectories compress`).")
@click.option("--from-sessions", is_flag=True, help="Export gateway sessions of teams that opted in.")
@click.option("--team", default=None, help="With --from-sessions: only this team.")
@click.option("--format", "fmt", type=click.Choice(["sharegpt", "openai"]), default="sharegpt", show_default=True)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="JSONL file to write.")
@click.option("--success-only", is_flag=True, help="Leave out failed trajectories.")
@click.option("--min-turns", type=click.IntRange(0), default=None, help="At least this many model replies.")
@click.option("--max-turns", type=click.IntRange(0), default=None, help="At most this many model replies.")
@config_option
def export(checkpoint: Path | None, input_path: Path | None, from_sessions: bool, team: str | None, fmt: str,
           output: Path, success_only: bool, min_turns: int | None, max_turns: int | None,
           config_path: Path | None) -> None:
    """Write trajectories as ShareGPT or OpenAI chat JSONL (one object a line, with its `id`)."""
    from agent.checkpoint_store import CheckpointError, iter_source
    from agent.export import ExportFilter, write_export
    from agent.redact import Redactor

    if min_turns is not None and max_turns is not None and min_turns > max_turns:
        fail(f"--min-turns {min_turns} is larger than --max-turns {max_turns}", code=2)
    flt = ExportFilter(success_only=success_only, min_turns=min_turns, max_turns=max_turns)
    problems: list[str] = []
    if from_sessions:
        if checkpoint is not None or input_path is not None:
            fail("--from-sessions reads the state store; leave out --checkpoint and --input", code=2)
        config, home = load(config_path)
        if not config.trajectories_export and not any(t.trajectories_export for t in config.teams):
            fail("no team allows exporting its sessions: set trajectories_export = true in a [[teams]] entry "
                 "(or at the top of the config file for sessions outside any team)", code=2)
        items, left_out = asyncio.run(_session_trajectories(config, home, team))
        source: Any = items
        if left_out:
            click.echo(f"hermes: {plural(left_out, 'session')} left out (their team has not opted in)", err=True)
    else:
        if team is not None:
            fail("--team goes with --from-sessions", code=2)
        path = _source(checkpoint, input_path)
        try:
            source = iter_source(path, problems)
        except CheckpointError as exc:
            fail(str(exc), code=2)
    try:
        stats = write_export(source, output, fmt, flt, Redactor.from_environ())  # type: ignore[arg-type]
    except CheckpointError as exc:
        fail(str(exc), code=2)
    except OSError as exc:
        fail(f"{output}: {exc.strerror or exc}")
    _report_problems(problems)
    click.echo(f"wrote {stats.written} trajectories to {output} ({fmt}); "
               f"{stats.filtered_out} of {stats.read} left out by the filters")


@trajectories.command()
@click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A hermes batch checkpoint directory.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A trajectory JSONL file.")
@click.option("--target-tokens", required=True, type=click.IntRange(64), help="Fit each trajectory into this.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Trajectory JSONL to write (export it with `trajectories export --input`).")
@click.option("--keep-last", type=click.IntRange(1), default=4, show_default=True,
              help="Messages at the end kept verbatim.")
@click.option("--workers", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Trajectories compressed at once.")
@click.option("--model", default=None, help="Model for the summaries (default: [model] name).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as a JSON object.")
@config_option
def compress(checkpoint: Path | None, input_path: Path | None, target_tokens: int, output: Path, keep_last: int,
             workers: int, model: str | None, as_json: bool, config_path: Path | None) -> None:
    """Summarise the middle of long trajectories so each fits in --target-tokens."""
    from agent.checkpoint_store import CheckpointError, iter_source
    from agent.compress import CompressSettings, TrajectoryCompressor, compress_all, dumps_stats
    from agent.llm import LLMClient, ModelNotConfiguredError
    from agent.redact import Redactor
    from agent.trajectory import redact_trajectory

    path = _source(checkpoint, input_path)
    config, _home = load(config_path)
    config = config.with_model(model)
    llm = LLMClient(config.model, concurrency=asyncio.Semaphore(workers))
    try:
        llm.require_model()
    except ModelNotConfiguredError as exc:
        fail(str(exc), code=2)
    problems: list[str] = []
    try:
        items = list(iter_source(path, problems))
    except CheckpointError as exc:
        fail(str(exc), code=2)
    _report_problems(problems)
    compressor = TrajectoryCompressor(llm, CompressSettings(target_tokens=target_tokens, keep_last=keep_last))
    done, stats = asyncio.run(compress_all(compressor, items, workers=workers))
    redactor = Redactor.from_environ()
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(redact_trajectory(trajectory, redactor).to_line() for trajectory in done)
    temporary.replace(output)
    if as_json:
        click.echo(dumps_stats(stats))
    else:
        share = f"{stats.share_fit:.0%}"
        click.echo(f"{stats.trajectories} trajectories: {stats.tokens_before} tokens before, "
                   f"{stats.tokens_after} after; {stats.fit}/{stats.trajectories} ({share}) fit in "
                   f"{target_tokens} tokens")
        if stats.failed:
            click.echo(f"hermes: warning: {stats.failed} trajectories kept as they were (the model call failed)",
                       err=True)
    sys.exit(0)
