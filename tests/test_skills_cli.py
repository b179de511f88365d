"""`hermes skills ...` as a user runs it, with HERMES_HOME in a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, ["skills", *args])


def test_list_show_stats_on_a_fresh_home(home: Path) -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "code-review" in result.output and "engineering" in result.output
    rows = json.loads(invoke("list", "--json").output)
    assert {"code-review", "log-triage", "backup-check"} <= {r["name"] for r in rows}
    ops = json.loads(invoke("list", "--category", "operations", "--json").output)
    assert ops and all(r["category"] == "operations" for r in ops)
    shown = invoke("show", "log-triage")
    assert shown.exit_code == 0 and "## Procedure" in shown.output
    stats = json.loads(invoke("stats", "--json").output)
    assert stats["count"] == len(rows) and 0 < stats["indexed_tokens"] <= 1500
    assert "code-review" in stats["never_used"]
    human = invoke("stats")
    assert "never used" in human.output


def test_errors_go_to_stderr_with_nonzero_exit(home: Path) -> None:
    for args in (("show", "no-such-skill"), ("delete", "no-such-skill"), ("history", "no-such-skill"),
                 ("revert", "code-review", "--to", "99"), ("show", "../../etc")):
        result = CliRunner(mix_stderr=False).invoke(cli, ["skills", *args]) if _has_mix() else invoke(*args)
        assert result.exit_code != 0, args
        assert "error" in (result.stderr if _has_mix() else result.output), args


def _has_mix() -> bool:
    import inspect
    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


def test_validate_reports_file_and_problem(home: Path, tmp_path: Path) -> None:
    good = invoke("validate")
    assert good.exit_code == 0 and "0 invalid" in good.output
    bad = tmp_path / "broken" / "SKILL.md"
    bad.parent.mkdir(parents=True)
    bad.write_text("---\nname: Broken_Name\ndescription: x\n---\nbody\n")
    result = invoke("validate", str(bad.parent))
    assert result.exit_code == 1
    assert str(bad) in result.output and "lowercase" in result.output


def test_delete_history_revert(home: Path) -> None:
    invoke("list")  # first run installs the bundled skills
    skill_file = home / "skills" / "operations" / "backup-check" / "SKILL.md"
    original = skill_file.read_text()
    assert invoke("delete", "backup-check").exit_code == 0
    assert not skill_file.exists()
    assert "backup-check" not in invoke("list").output
    history = invoke("history", "backup-check")
    assert history.exit_code == 0 and "install" in history.output and "delete" in history.output
    entries = json.loads(invoke("history", "backup-check", "--json").output)
    assert entries[0]["name"] == "backup-check" and entries[0]["number"] == 1
    reverted = invoke("revert", "backup-check", "--to", "1")
    assert reverted.exit_code == 0, reverted.output
    assert skill_file.read_text() == original
    # the bundled installer does not resurrect or overwrite: a deleted skill stays deleted
    invoke("delete", "backup-check")
    assert "backup-check" not in invoke("list").output


def test_hermes_help_lists_skills_and_stays_light(home: Path) -> None:
    code = ("import sys; from gateway.cli import cli; from click.testing import CliRunner;"
            "r = CliRunner().invoke(cli, ['skills', '--help']); print(r.output);"
            "print('HEAVY' if any(m in sys.modules for m in ('litellm', 'yaml', 'skills.library')) else 'LIGHT')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert "history" in out.stdout and "revert" in out.stdout
    assert out.stdout.strip().endswith("LIGHT"), out.stdout + out.stderr


def test_delete_history_and_revert_from_the_cli_go_through_the_store(home: Path) -> None:
    """What `hermes skills delete/revert` change is a version of the home's store, as the gateway
    sees it: a skill deleted here stays deleted when the gateway brings its files in step."""
    import asyncio
    import os

    from gateway.store import open_store
    from gateway.store.database import resolve_url
    from skills.library import SkillLibrary

    url = resolve_url(os.environ.get("HERMES_STORE_URL", ""), "", home / "state.db")
    text = "---\nname: deploy-notes\ndescription: Notes on deploys. Use when deploying.\n---\n\n1. ship\n"

    async def gateway_side(action: str) -> tuple[bool, list[str]]:
        store = await open_store(url)
        try:
            library = SkillLibrary(home / "skills", rescan_interval=0, versions=store.skill_versions(""))
            if action == "create":
                await library.create("deploy-notes", text, category="ops")
            await library.sync_store()
            state = await store.skill_versions("").skill_state("deploy-notes")
            return state.present, [e.action for e in await library.history_of("deploy-notes")]
        finally:
            await store.close()

    assert asyncio.run(gateway_side("create")) == (True, ["create"])
    assert invoke("delete", "deploy-notes").exit_code == 0
    assert asyncio.run(gateway_side("sync")) == (False, ["create", "delete:ops"])
    assert not (home / "skills" / "ops" / "deploy-notes").exists()
    history = invoke("history", "deploy-notes", "--json")
    assert [row["action"] for row in json.loads(history.output)] == ["create", "delete:ops"]
    assert invoke("revert", "deploy-notes", "--to", "1").exit_code == 0
    assert asyncio.run(gateway_side("sync")) == (True, ["create", "delete:ops", "revert"])
    assert (home / "skills" / "ops" / "deploy-notes" / "SKILL.md").read_text(encoding="utf-8").endswith("1. ship\n")
