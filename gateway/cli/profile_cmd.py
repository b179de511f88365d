"""`hermes profile export|import`: move skills (with history), memory, cron jobs and config
(literal secrets replaced by `${NAME}` references, whose names export and import list) between
installations. Imports are light; the work is in gateway.profiles."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import fail, output_option, pick_output, run


@click.group()
def profile() -> None:
    """Export this installation's skills, memory, cron jobs and config, or import a profile."""


@profile.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@output_option
@click.option("--include", default="memory,skills,cron,config", show_default=True,
              help="Comma-separated parts to pack: memory, skills, cron, config.")
def export(file: Path | None, output: Path | None, include: str) -> None:
    """Pack the profile into --output FILE.tar.gz (literal secrets become ${NAME} references; FILE alone works too)."""
    file = pick_output(file, output)
    from gateway.home import Home
    from gateway.profiles import ProfileError, export_profile

    parts = tuple(p.strip() for p in include.split(",") if p.strip())
    home = Home.from_env().ensure()
    try:
        manifest = run(lambda: export_profile(home, file, parts))
    except (ProfileError, OSError) as exc:
        fail(str(exc))
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in manifest["counts"].items()) or "nothing"
    click.echo(f"exported {counts} to {file}")
    for note in manifest.get("notes", []):
        click.echo(f"note: {note}", err=True)
    for name, places in manifest["secret_names"].items():
        click.echo(f"secret replaced by ${{{name}}}: {', '.join(places)}", err=True)
    if manifest["env_names"]:
        click.echo("set these on the installation you import into (environment or HERMES_HOME/secrets.env): "
                   + ", ".join(manifest["env_names"]), err=True)


@profile.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--merge", "mode", flag_value="merge", default=True, help="Add what is missing; report conflicts (default).")
@click.option("--replace", "mode", flag_value="replace", help="The profile wins where both sides changed.")
@click.option("--force", is_flag=True, help="Import skills the guard finds dangerous (read the report first).")
@click.option("--yes", "-y", "yes", is_flag=True, help="Accept skills the guard rates `caution`.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_(file: Path, mode: str, force: bool, yes: bool, as_json: bool) -> None:
    """Restore a profile; conflicts are reported, never overwritten silently (exit 1 if any)."""
    import json

    from gateway.home import Home
    from gateway.profiles import ProfileError, import_profile

    home = Home.from_env()

    def confirm(report) -> bool:  # type: ignore[no-untyped-def]
        if yes:
            return True
        click.echo(report.describe(), err=True)
        try:
            return click.confirm("The guard advises caution. Import this skill?", default=False, err=True)
        except click.Abort:
            return False

    try:
        report = run(lambda: import_profile(home, file, replace=mode == "replace", force=force, confirm=confirm))
    except (ProfileError, OSError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        if report.env_names:
            click.echo("set these secrets: " + ", ".join(report.env_names), err=True)
    else:
        for label, items in report.to_dict().items():
            for item in items:
                click.echo(f"{label.replace('_', ' ')}: {item}", err=label in ("conflicts", "refused"))
    if report.conflicts or report.refused:
        raise SystemExit(1)


import_.name = "import"
