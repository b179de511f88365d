"""`hermes skills ...`: list, show, validate, delete, history, revert, stats and curate for the library.

Module-level imports stay light (click only) so `hermes --help` is fast; the rest is imported
inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.common import config_option, fail, json_option, plural, print_json, run
from gateway.cli.skill_access import in_store
from gateway.cli.skill_access import open_library as _library

if TYPE_CHECKING:
    from skills.library import SkillLibrary



def _report_problems(library: SkillLibrary) -> None:
    for path, problem in library.scan().problems:
        click.echo(f"hermes: warning: skipped {path}: {problem}", err=True)


@click.group()
@config_option
@click.option("--team", default="", help="Use a team's library (HERMES_HOME/teams/TEAM/skills).")
@click.pass_context
def skills(ctx: click.Context, config_path: Path | None, team: str) -> None:
    """Manage the skill library (HERMES_HOME/skills/<category>/<name>/SKILL.md)."""
    ctx.obj = {"config_path": config_path, "team": team}


@skills.command("list")
@click.option("--category", default=None, help="Only skills in this category.")
@json_option
@click.pass_context
def list_skills(ctx: click.Context, category: str | None, as_json: bool) -> None:
    """List the skills in the library."""
    library = _library(ctx)
    snapshot = library.scan()
    _report_problems(library)
    rows = [s.summary() for s in snapshot.skills if category is None or s.category == category]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no skills" + (f" in category {category!r}" if category else ""))
        return
    width = max(len(r["name"]) for r in rows)
    for r in sorted(rows, key=lambda r: (r["category"], r["name"])):
        description = r["description"] if len(r["description"]) <= 90 else r["description"][:87] + "..."
        uses = plural(r["use_count"], "use")
        click.echo(f"{r['name']:<{width}}  {r['category'] or '-':<12} {uses:>9}  {description}")
    click.echo(plural(len(rows), "skill"))


def _cli_words(exc: Exception, name: str) -> str:
    """The library speaks to the agent (`use skill_search`); the CLI names its own commands."""
    from skills.library import SkillNotFound

    return _not_found(name) if isinstance(exc, SkillNotFound) else str(exc)


def _not_found(name: str) -> str:
    return (f"there is no skill named {name!r}: `hermes skills list` lists them, "
            f"`hermes skills search TEXT` finds one")


@skills.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@json_option
@click.pass_context
def search(ctx: click.Context, query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Find skills in the library by what they do (names, descriptions and bodies)."""
    library = _library(ctx)
    hits = run(lambda: library.search(" ".join(query), limit))
    rows = [{**skill.summary(), "score": round(score, 3)} for skill, score in hits]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no skill matches; `hermes skills list` lists them all")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        description = r["description"] if len(r["description"]) <= 90 else r["description"][:87] + "..."
        click.echo(f"{r['name']:<{width}}  {description}")


@skills.command("show")
@click.argument("name")
@click.option("--file", "file", default=None, help="Show a supporting file instead of SKILL.md.")
@click.pass_context
def show(ctx: click.Context, name: str, file: str | None) -> None:
    """Print a skill's SKILL.md (or one of its files)."""
    from skills.library import SkillError, SkillNotFound
    from skills.paths import PathEscapeError

    library = _library(ctx)
    try:
        skill = run(lambda: library.get(name))
        text = run(lambda: library.read(name, file))
    except SkillNotFound:
        fail(_not_found(name))
    except (SkillError, PathEscapeError) as exc:
        fail(str(exc))
    if not file:
        files = skill.files()
        click.echo(f"# {skill.skill_file}" + (f"\n# files: {', '.join(files)}" if files else ""))
    click.echo(text.rstrip("\n"))


def _skill_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if (path / "SKILL.md").is_file():
        return [path / "SKILL.md"]
    return sorted(p for p in path.rglob("SKILL.md") if not any(part.startswith(".") for part in p.parts[len(path.parts):]))


@skills.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@json_option
@click.pass_context
def validate(ctx: click.Context, path: Path | None, as_json: bool) -> None:
    """Check SKILL.md files against the Agent Skills spec (default: the whole library).

    PATH may be a SKILL.md, a skill folder, or a folder of skills. Exits 1 when any is invalid.
    """
    from skills.validate import text_problems

    target = path or _library(ctx).root
    if not target.exists():
        fail(f"{target}: no such file or folder")
    files = _skill_files(target)
    if not files:
        fail(f"{target}: no SKILL.md found")
    results: list[dict[str, Any]] = []
    for file in files:
        try:
            errors, warnings = text_problems(file.read_text(encoding="utf-8"), file.parent.name)
        except (OSError, UnicodeDecodeError) as exc:
            errors, warnings = [f"cannot read: {exc}"], []
        results.append({"name": file.parent.name, "path": str(file), "ok": not errors,
                        "errors": errors, "warnings": warnings})
    bad = [r for r in results if not r["ok"]]
    if as_json:
        print_json(results)
    else:
        for r in results:
            for warning in r["warnings"]:
                click.echo(f"warning: {r['path']}: {warning}", err=True)
            if r["ok"]:
                click.echo(f"ok: {r['path']}")
            else:
                for error in r["errors"]:
                    click.echo(f"invalid: {r['path']}: {error}", err=True)
        click.echo(f"{len(results) - len(bad)} valid, {len(bad)} invalid")
    if bad:
        raise SystemExit(1)


@skills.command("delete")
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a skill (its history is kept; `revert` brings it back)."""
    from skills.library import SkillError

    library = _library(ctx)
    try:
        click.echo(in_store(ctx, library, lambda: library.delete(name, origin="cli")))
    except SkillError as exc:
        fail(_cli_words(exc, name))


@skills.command("history")
@click.argument("name")
@click.option("--diff", "show_diff", is_flag=True, help="Print each change's diff.")
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, show_diff: bool, as_json: bool) -> None:
    """List a skill's changes, oldest first (the numbers are what `revert --to` takes)."""
    from skills.library import SkillError

    library = _library(ctx)
    try:
        entries = in_store(ctx, library, lambda: library.history_of(name))
    except SkillError as exc:
        fail(_cli_words(exc, name))
    if not entries:
        fail(f"skill {name!r} has no history")
    if as_json:
        print_json([{"name": name, **e.summary(), **({"diff": e.diff} if show_diff else {})} for e in entries])
        return
    for e in entries:
        s = e.summary()
        click.echo(f"{s['number']:>4}  {s['time']}  {s['action']:<12} {s['file']:<24} "
                   f"+{s['added']} -{s['removed']}  {s['origin']}")
        if show_diff:
            click.echo(e.diff.rstrip("\n"))


@skills.command("revert")
@click.argument("name")
@click.option("--to", "to", type=int, required=True, help="The version number (from `history`) to restore.")
@click.pass_context
def revert(ctx: click.Context, name: str, to: int) -> None:
    """Restore a skill as it was right after change number --to."""
    from skills.library import SkillError

    library = _library(ctx)
    try:
        click.echo(in_store(ctx, library, lambda: library.revert(name, to, origin="cli")))
    except SkillError as exc:
        fail(_cli_words(exc, name))


@skills.command("stats")
@json_option
@click.option("--budget", type=int, default=None, help="Token budget for the index (default from config).")
@click.pass_context
def stats(ctx: click.Context, as_json: bool, budget: int | None) -> None:
    """Count, token sizes, most and least used skills, and never-used skills to archive."""
    import json

    from gateway.config import ConfigError, SkillsConfig, load_config
    from gateway.home import Home
    from skills import index_prompt
    from skills.document import render as render_doc
    from skills.search import estimate_tokens

    library = _library(ctx)
    snapshot = library.scan()
    _report_problems(library)
    if budget is None:
        try:
            budget = load_config((ctx.obj or {}).get("config_path"), Home.from_env()).skills.prompt_budget_tokens
        except ConfigError:
            budget = SkillsConfig().prompt_budget_tokens
    skills_list = list(snapshot.skills)
    selection = index_prompt.select(snapshot, "", budget)
    indexed = index_prompt.render([snapshot.by_name[n] for n in selection], len(skills_list))
    by_use = sorted(skills_list, key=lambda s: (-s.use_count, s.name))
    used = [s for s in by_use if s.use_count > 0]
    summary = {
        "count": len(skills_list),
        "total_tokens": sum(estimate_tokens(render_doc(s.document)) for s in skills_list),
        "indexed_tokens": estimate_tokens(indexed),
        "budget_tokens": budget,
        "most_used": [{"name": s.name, "use_count": s.use_count, "last_used": s.last_used} for s in used[:5]],
        "least_used": [{"name": s.name, "use_count": s.use_count, "last_used": s.last_used}
                       for s in list(reversed(used))[:5]],
        "never_used": [s.name for s in skills_list if s.use_count == 0],
        "skipped_files": len(snapshot.problems),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"skills: {summary['count']}  (skipped malformed files: {summary['skipped_files']})")
    click.echo(f"tokens: {summary['total_tokens']} in all SKILL.md files; "
               f"{summary['indexed_tokens']} in the prompt index (budget {budget})")
    click.echo("most used: " + (", ".join(f"{r['name']} ({r['use_count']})" for r in summary["most_used"]) or "none"))
    click.echo("least used: " + (", ".join(f"{r['name']} ({r['use_count']})" for r in summary["least_used"]) or "none"))
    never = summary["never_used"]
    click.echo(f"never used ({len(never)}; candidates to archive): " + (", ".join(never) or "none"))
from gateway.cli.hub_cmd import register; register(skills)


@skills.command("curate")
@click.option("--apply", "apply", is_flag=True, help="Ask the model to merge and write; without it, only print the plan.")
@json_option
@click.pass_context
def curate_command(ctx: click.Context, apply: bool, as_json: bool) -> None:
    """Merge near-duplicate skills into one and fold appended notes into the procedure.

    A dry run (the default) prints what would be merged and calls no model. With --apply the
    model writes each merged skill; merged-away skills go to the history (`hermes skills
    revert NAME --to N` restores them), nothing is deleted outright.
    """
    from agent.llm import LLMClient
    from gateway.config import ConfigError, load_config
    from gateway.learning.curator import curate, llm_complete
    from gateway.home import Home
    from gateway.skills_wiring import deduplicator

    library = _library(ctx)
    _report_problems(library)
    try:
        config = load_config((ctx.obj or {}).get("config_path"), Home.from_env())
    except ConfigError as exc:
        fail(str(exc))
    complete = None
    if apply:
        model = config.model
        if config.learning.model:
            model = model.model_copy(update={"name": config.learning.model, "fallbacks": []})
        if not model.name:
            fail("curating needs a model: set [model] name (or [learning] model) in config.toml")
        complete = llm_complete(LLMClient(model.model_copy(update={"stream": False})))
    report = in_store(ctx, library, lambda: curate(library, deduplicator(config.skills), complete, apply=apply,
                                max_skill_chars=config.skills.max_skill_chars, allow_protected=True,
                                origin="curator (cli)"))
    if as_json:
        print_json({"applied": report.applied, "plan": [g.describe() for g in report.groups],
                    "groups": [{"keep": g.keep, "merge": g.merge, "notes": g.notes,
                                "similar": [list(s) for s in g.scores]} for g in report.groups],
                    "done": report.done, "skipped": report.skipped})
    else:
        for line in report.lines():
            click.echo(line)
    if report.skipped and apply and not report.done:
        raise SystemExit(1)
