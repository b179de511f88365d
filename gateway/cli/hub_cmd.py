"""`hermes skills browse|install|update|uninstall|verify|publish|tap|scan`: the skills hub and guard.

`register(skills)` adds these commands to the `hermes skills` group. Module-level imports stay
light (click only); the hub, the guard and aiohttp are imported inside the commands.
Exit status: 0 done, 1 error (stderr says what), 3 the guard refused (report on stderr).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.common import fail, json_option, plural, print_json, run

if TYPE_CHECKING:
    from skills.guard import GuardReport
    from skills.hub.hub import Hub

GUARD_REFUSED = 3


def _hub(ctx: click.Context) -> Hub:
    from gateway.cli.skill_access import open_library
    from gateway.config import ConfigError, load_config
    from gateway.home import Home
    from skills.hub.hub import Hub
    from skills.hub.settings import HubSettings, TapSpec
    from skills.hub.taps import TapStore

    options = ctx.obj or {}
    home = Home.from_env().ensure()
    try:
        config = load_config(options.get("config_path"), home).hub
    except ConfigError as exc:
        fail(str(exc), code=2)
    taps = tuple(TapSpec(name=name, url=url, kind="index" if url.endswith(".json") else "git")
                 for name, url in sorted(config.taps.items()))
    settings = HubSettings(github_api=config.github_api,
                           github_token=config.github_token or os.environ.get("GITHUB_TOKEN", ""),
                           git_base=config.git_base, indexes=tuple(config.indexes), taps=taps,
                           timeout=config.timeout, max_file_bytes=config.max_file_bytes,
                           max_total_bytes=config.max_total_bytes, allow_http=config.allow_http)
    return Hub(open_library(ctx), settings, TapStore(home.root / "hub" / "taps.json", settings))


def _report(report: GuardReport, explain: bool) -> str:
    """The guard's report: one block per finding, or with --explain each finding's rule, line and the
    context that decided its level."""
    return report.explain() if explain else report.describe()


def _refused(exc: Any, explain: bool = False) -> None:
    click.echo(_report(exc.report, explain), err=True)
    click.echo(f"hermes: refused: {exc}", err=True)
    raise SystemExit(GUARD_REFUSED)


def _confirm(yes: bool, explain: bool = False):  # type: ignore[no-untyped-def]
    def confirm(report: GuardReport) -> bool:
        if yes:
            if explain:
                click.echo(report.explain(), err=True)
            return True
        click.echo(_report(report, explain), err=True)
        try:
            return click.confirm("The guard advises caution. Install it anyway?", default=False, err=True)
        except click.Abort:
            return False
    return confirm


def _print_results(results: list[Any], as_json: bool) -> None:
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    for r in results:
        verdict = f" [{r.report.verdict}]" if r.report else ""
        where = f" from {r.source}@{r.ref[:12]}" if r.source else ""
        click.echo(f"{r.action}: {r.name}{where}{verdict}" + (f" ({r.message})" if r.message else ""))


@click.command("browse")
@click.argument("query", required=False, default="")
@click.option("--source", "source", default=None, help="Only this source: a tap name, index URL, github:owner/repo/path.")
@click.option("--scan/--no-scan", default=True, show_default=True,
              help="Fetch each offer and show the guard's verdict, as install would judge it.")
@json_option
@click.pass_context
def browse(ctx: click.Context, query: str, source: str | None, scan: bool, as_json: bool) -> None:
    """List the skills the configured taps and indexes offer (QUERY filters by words)."""
    from skills.hub.errors import HubError

    hub = _hub(ctx)
    try:
        rows, errors = run(lambda: hub.browse(query, source))
        verdicts = run(lambda: hub.verdicts([str(r["spec"]) for r in rows])) if scan and rows else {}
    except HubError as exc:
        fail(str(exc))
    for error in errors:
        click.echo(f"hermes: warning: {error}", err=True)
    for r in rows if verdicts else []:
        r["verdict"] = verdicts.get(str(r["spec"]), "")
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no skills found" + (f" for {query!r}" if query else ""))
        return
    width = max(len(str(r["name"])) for r in rows)
    source_width = max(len(str(r["source"])) for r in rows)
    for r in rows:
        description = str(r["description"])
        description = description if len(description) <= 70 else description[:67] + "..."
        mark = "installed" if r["installed"] else ""
        verdict = str(r.get("verdict", ""))
        verdict = "unreadable" if verdict.startswith("unreadable") else verdict
        column = f"{verdict:<10}  " if verdicts else ""
        click.echo(f"{r['name']:<{width}}  {r['source']:<{source_width}}  {column}{mark:<9}  {description}")
    click.echo(f"{plural(len(rows), 'skill')}; " + _install_hint(rows, scanned=bool(verdicts)))


def _install_hint(rows: list[dict[str, Any]], *, scanned: bool) -> str:
    """The closing line's example: an offer not installed that the guard passed, never a refused one."""
    candidates = [r for r in rows if not r["installed"]]
    if scanned:
        candidates = [r for r in candidates if r.get("verdict") == "safe"]
    if not candidates:
        return "install one with `hermes skills install SPEC`"
    hint = f"install one with `hermes skills install SPEC` (for example: hermes skills install {candidates[0]['spec']})"
    if scanned and any(r.get("verdict") == "dangerous" for r in rows):
        hint += "; a dangerous one is refused and quarantined"
    return hint


@click.command("install")
@click.argument("spec", required=False)
@click.option("--force", is_flag=True, help="Install even when the guard finds it dangerous (read the report first).")
@click.option("--yes", "-y", "yes", is_flag=True, help="Accept skills the guard rates `caution` without asking.")
@click.option("--category", default="", help="Category folder for the skill (default: from the source).")
@click.option("--from-lock", "from_lock", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Install every skill of a skills.lock file at its recorded ref.")
@click.option("--explain", is_flag=True, help="Print each guard finding with its rule, its line and the context that "
                                             "decided its level.")
@json_option
@click.pass_context
def install(ctx: click.Context, spec: str | None, force: bool, yes: bool, category: str, from_lock: Path | None,
            explain: bool, as_json: bool) -> None:
    """Install a skill: owner/repo/path[@ref], TAP/NAME, an index URL[#NAME], or a local folder.

    The guard scans it first: `dangerous` is quarantined (exit 3) unless --force; `caution` asks.
    """
    from skills.hub.errors import GuardRefused, HubError

    if not spec and not from_lock:
        fail("give a SPEC (owner/repo/path[@ref], TAP/NAME, index URL, local folder) or --from-lock FILE")
    hub = _hub(ctx)
    try:
        if from_lock:
            results = run(lambda: hub.install_from_lock(from_lock, force=force, confirm=_confirm(yes, explain)))
        else:
            results = [run(lambda: hub.install(spec or "", force=force, confirm=_confirm(yes, explain),
                                               category=category))]
    except GuardRefused as exc:
        _refused(exc, explain)
    except HubError as exc:
        fail(str(exc))
    for r in results:
        if r.report is not None and (r.report.findings or explain) and not as_json \
                and not (explain and yes and r.report.verdict == "caution"):
            click.echo(_report(r.report, explain), err=True)
    _print_results(results, as_json)


@click.command("update")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Overwrite local changes and accept dangerous updates.")
@click.option("--yes", "-y", "yes", is_flag=True, help="Accept `caution` updates without asking.")
@json_option
@click.pass_context
def update(ctx: click.Context, name: str | None, force: bool, yes: bool, as_json: bool) -> None:
    """Update one hub-installed skill, or all of them, to the latest from their source."""
    from skills.hub.errors import GuardRefused, HubError

    hub = _hub(ctx)
    try:
        results = run(lambda: hub.update(name, force=force, confirm=_confirm(yes)))
    except GuardRefused as exc:
        _refused(exc)
    except HubError as exc:
        fail(str(exc))
    if not results and not as_json:
        click.echo("no skills installed from the hub")
    _print_results(results, as_json)


@click.command("uninstall")
@click.argument("name")
@click.pass_context
def uninstall(ctx: click.Context, name: str) -> None:
    """Remove a skill installed from the hub (and its skills.lock entry)."""
    from skills.hub.errors import HubError
    from skills.library import SkillError

    from gateway.cli.skill_access import in_store

    hub = _hub(ctx)
    try:
        click.echo(in_store(ctx, hub.library, lambda: hub.uninstall(name)))
    except (HubError, SkillError) as exc:
        fail(str(exc))


@click.command("verify")
@json_option
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check hub-installed skills against skills.lock; exits 1 when any file no longer matches."""
    from skills.hub.errors import HubError

    hub = _hub(ctx)
    try:
        results = run(hub.verify)
    except HubError as exc:
        fail(str(exc))
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            details = "; ".join(f"{label}: {', '.join(files)}" for label, files in
                                (("modified", r.modified), ("missing", r.missing), ("added", r.added)) if files)
            click.echo(f"{r.status:<9} {r.name}" + (f"  ({details})" if details else ""))
        if not results:
            click.echo("no skills installed from the hub")
    if any(r.status != "ok" for r in results):
        raise SystemExit(1)


@click.command("publish")
@click.argument("name")
@click.option("--to", "to", required=True, help="github:owner/repo[/folder] (a pull request) or tap:NAME (a commit).")
@click.option("--force", is_flag=True, help="Publish even when the guard finds it dangerous.")
@click.pass_context
def publish(ctx: click.Context, name: str, to: str, force: bool) -> None:
    """Share a skill: a branch and pull request on GitHub, or a commit pushed to a git tap."""
    from skills.hub.errors import GuardRefused, HubError
    from skills.hub.publish import publish as do_publish
    from skills.library import SkillError

    hub = _hub(ctx)
    try:
        click.echo(run(lambda: do_publish(hub.library, name, to, hub.settings, hub.taps, force=force)))
    except GuardRefused as exc:
        _refused(exc)
    except (HubError, SkillError) as exc:
        fail(str(exc))


@click.group("tap")
def tap() -> None:
    """Manage taps: git repositories or HTTP indexes of skills."""


@tap.command("add")
@click.argument("source")
@click.option("--name", default="", help="Short name (default: from the repository or host).")
@click.option("--index", "is_index", is_flag=True, help="SOURCE is an HTTP index (a .json URL is one anyway).")
@click.option("--ref", default="", help="Branch or tag to follow (default: the repository's default branch).")
@click.pass_context
def tap_add(ctx: click.Context, source: str, name: str, is_index: bool, ref: str) -> None:
    """Add a tap: a git URL, a local repository, owner/repo, or an index URL."""
    from skills.hub.errors import HubError

    hub = _hub(ctx)
    assert hub.taps is not None
    try:
        added = hub.taps.add(source, name=name, kind="index" if is_index else "", ref=ref)
    except HubError as exc:
        fail(str(exc))
    click.echo(f"added tap {added.name!r} ({added.kind}: {added.url}); `hermes skills browse --source {added.name}`")


@tap.command("list")
@json_option
@click.pass_context
def tap_list(ctx: click.Context, as_json: bool) -> None:
    """List the taps (from `tap add` and from the config's [hub] taps)."""
    from skills.hub.errors import HubError

    hub = _hub(ctx)
    assert hub.taps is not None
    try:
        rows = [t.to_dict() for t in hub.taps.all()]
    except HubError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<20} {row['kind']:<6} {row['url']}" + (f" @{row['ref']}" if row["ref"] else ""))
    if not rows:
        click.echo("no taps; add one with `hermes skills tap add URL`")


@tap.command("remove")
@click.argument("name")
@click.pass_context
def tap_remove(ctx: click.Context, name: str) -> None:
    """Remove a tap (skills installed from it stay installed)."""
    from skills.hub.errors import HubError

    hub = _hub(ctx)
    assert hub.taps is not None
    try:
        removed = hub.taps.remove(name)
    except HubError as exc:
        fail(str(exc))
    click.echo(f"removed tap {removed.name!r}")


@click.command("scan")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--explain", is_flag=True, help="Print each finding with its rule, its line and the context that decided "
                                             "its level.")
@json_option
def scan(path: Path, explain: bool, as_json: bool) -> None:
    """Run the guard on a skill folder, a SKILL.md, or a folder of skills; exits 3 when any is dangerous."""
    from skills.guard import scan_folder
    from skills.hub.sources import declared_name, skill_folders

    if not path.exists():
        fail(f"{path}: no such file or folder")
    if path.is_dir() and not (path / "SKILL.md").exists():
        folders = skill_folders(path, max_depth=8)
    else:
        folders = [path]
    if not folders:
        fail(f"{path}: no SKILL.md found")
    reports = [scan_folder(folder, declared_name(folder / "SKILL.md") if folder.is_dir() else None)
               for folder in folders]
    if as_json:
        print_json([{**r.to_dict(), "path": str(folder)} for r, folder in zip(reports, folders)])
    else:
        for report in reports:
            click.echo(_report(report, explain))
    if any(r.verdict == "dangerous" for r in reports):
        raise SystemExit(GUARD_REFUSED)


def register(group: click.Group) -> None:
    """Add the hub and guard commands to the `hermes skills` group."""
    for command in (browse, install, update, uninstall, verify, publish, tap, scan):
        group.add_command(command)
