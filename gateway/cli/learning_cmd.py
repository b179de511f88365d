"""`hermes learning ...`: the checkpoint log, and skill proposals waiting for approval (ask mode).

    hermes learning log [--json] [--limit N] [--session ID]
    hermes learning pending [--team TEAM] [--json]
    hermes learning approve ID [--by NAME]
    hermes learning reject ID [--by NAME] [--reason TEXT]

Approving re-runs the skills guard and the duplicate check on the final text; the running
gateway posts the "Learned" message to the chat the proposal came from.

Module-level imports stay light (click only) so `hermes --help` is fast.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.common import config_option, fail, json_option, load, plural, print_json, run

T = TypeVar("T")


@click.group()
def learning() -> None:
    """What the agent learned: checkpoints, and proposals waiting for approval."""


async def _with_log(config_path: Path | None, work: Callable[[Any, Any, Any], Awaitable[T]]) -> T:
    from agent.redact import Redactor
    from gateway.learning.log import LearningLog
    from gateway.store import open_configured_store

    config, home = load(config_path)
    store = await open_configured_store(config, home)
    try:
        return await work(LearningLog(store, Redactor.from_environ()), config, home)
    finally:
        await store.close()


@learning.command("log")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Newest N checkpoints.")
@click.option("--session", "session_id", default=None, help="Only this session's checkpoints.")
@json_option
@config_option
def log_command(limit: int, session_id: str | None, as_json: bool, config_path: Path | None) -> None:
    """List reviews, newest first: decisions, skills created or patched, memory changes with their diffs,
    refusals with their reasons, tokens; first the last 24 hours' tokens split by purpose."""
    import time

    async def work(log: Any, _config: Any, _home: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await log.entries(limit, session_id), await log.usage_by_purpose(time.time() - 86_400)

    entries, split = run(lambda: _with_log(config_path, work))
    if as_json:
        print_json(entries)
        return
    if split:
        click.echo("Tokens by purpose, last 24 hours: " + ", ".join(
            f"{p} {u['prompt_tokens']}+{u['completion_tokens']} ({plural(u['calls'], 'call')})"
            for p, u in split.items()))
    if not entries:
        click.echo("No checkpoints yet.")
        return
    for e in entries:
        team = f" team {e['team']}" if e["team"] else ""
        click.echo(f"#{e['id']}  {e['started']}  session {e['session']}{team}  {e['cause']}  {e['status']}  "
                   f"{e['prompt_tokens']}+{e['completion_tokens']} tokens  {e['model']}")
        for s in e["skills"]:
            proposal = f" (proposal #{s['proposal']})" if s.get("proposal") else ""
            click.echo(f"    skill {s['action']} {s['name']}{proposal}: {s.get('summary') or ''}")
        for m in e["memory"]:
            added = [line[1:].strip() for line in str(m.get("diff") or "").splitlines()
                     if line.startswith("+") and not line.startswith("+++")]
            click.echo(f"    memory {m['action']} {Path(m['file']).name}: {'; '.join(added)[:160]}")
        for r in e.get("refusals") or []:
            click.echo(f"    refused ({r.get('kind')}, {r.get('tool')}): {str(r.get('message'))[:200]}")
        if e["error"] and not e.get("refusals"):
            click.echo(f"    note: {e['error']}")
        for line in e["decisions"].strip().splitlines()[:6]:
            click.echo(f"    | {line}")


@learning.command("pending")
@click.option("--team", default=None, help="Only this team's proposals ('' = no team).")
@json_option
@config_option
def pending(team: str | None, as_json: bool, config_path: Path | None) -> None:
    """Proposals waiting for approval (ask mode, and patches to protected skills)."""
    async def work(log: Any, _config: Any, _home: Any) -> list[Any]:
        return await log.proposals("pending", limit=1_000, team=team)

    proposals = [p.as_dict() for p in run(lambda: _with_log(config_path, work))]
    if as_json:
        print_json(proposals)
        return
    if not proposals:
        click.echo("No proposals are waiting.")
        return
    for p in proposals:
        team = f" (team {p['team']})" if p["team"] else ""
        where = f" from {p['platform']}:{p['chat']}" if p["platform"] else ""
        click.echo(f"#{p['id']}  {p['created']}  {p['action']} {p['skill']}{team}{where}: {p['summary']}")
    click.echo("Approve with `hermes learning approve ID`, reject with `hermes learning reject ID`.")


@learning.command("approve")
@click.argument("proposal_id", type=int)
@click.option("--by", "by", default="cli", show_default=True, help="Who approves (kept in the log).")
@config_option
def approve(proposal_id: int, by: str, config_path: Path | None) -> None:
    """Write a proposed skill change to the library (after the guard and duplicate check pass again)."""
    from gateway.learning.log import apply_proposal
    from gateway.learning.proposals import Decider, ProposalError
    from gateway.skills_wiring import SkillLibraries, deduplicator

    async def work(log: Any, config: Any, home: Any) -> Any:
        proposal = await log.proposal(proposal_id)
        if proposal is not None and proposal.kind == "memory":
            from agent.memory import MemoryStore
            from gateway.learning.log import apply_memory_proposal

            memory = MemoryStore(home.root, config.memory.memory_chars, config.memory.user_chars,
                                 versions=log.store)
            return await apply_memory_proposal(log, memory, proposal_id, Decider("cli", name=by))
        library = await SkillLibraries(home, config.skills, store=log.store).get(proposal.team) \
            if proposal is not None else None
        return await apply_proposal(log, lambda _team: library, proposal_id, Decider("cli", name=by),
                                    dedup=deduplicator(config.skills), max_skill_chars=config.skills.max_skill_chars,
                                    announce="pending")  # the running gateway posts the "Learned" message

    try:
        applied = run(lambda: _with_log(config_path, work))
    except ProposalError as exc:
        fail(str(exc))
    click.echo(f"Approved #{proposal_id}: {applied.message}.")


@learning.command("reject")
@click.argument("proposal_id", type=int)
@click.option("--by", "by", default="cli", show_default=True, help="Who rejects (kept in the log).")
@click.option("--reason", default="", help="Why (shown to later reviews of the team, so it is not proposed again).")
@config_option
def reject(proposal_id: int, by: str, reason: str, config_path: Path | None) -> None:
    """Drop a proposed change without writing it."""
    from gateway.learning.log import reject_proposal
    from gateway.learning.proposals import Decider, ProposalError

    async def work(log: Any, _config: Any, _home: Any) -> Any:
        return await reject_proposal(log, proposal_id, Decider("cli", name=by), reason)

    try:
        proposal = run(lambda: _with_log(config_path, work))
    except ProposalError as exc:
        fail(str(exc))
    click.echo(f"Rejected #{proposal_id} ({proposal.action} {proposal.skill}).")
