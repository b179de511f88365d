"""The shipped suite (bench/tasks/tasks.jsonl): it loads, it is what make_tasks.py writes, every
verifier fails on the untouched workspace and on a near miss (the obvious solution without the
team's rule), and passes on a reference solution, in the sandbox. Within a workflow the rule (the
correction) is the same and the data differs, so what is learned on one variation is what the
next one needs."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.eval.tasks import lay_out, load_tasks, verify

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "bench" / "tasks" / "tasks.jsonl"


def solve(workflow: str, prompt: str, ws: Path) -> None:
    """What an agent that knows the team's rule does."""
    if workflow == "rotate-logs":
        day = re.search(r"for (\d{4}-\d{2}-\d{2})", prompt).group(1).replace("-", "")  # type: ignore[union-attr]
        (ws / "logs" / "archive").mkdir()
        for log in (ws / "logs").glob("*.log"):
            (ws / "logs" / "archive" / f"{day}-{log.stem}.log.gz").write_bytes(gzip.compress(log.read_bytes()))
            log.write_text("")
    elif workflow == "fix-config":
        port = re.search(r"port (\d+)", prompt).group(1)  # type: ignore[union-attr]
        (ws / "app.ini").write_text(f"[server]\nhost = 127.0.0.1\nport = {port}\n")
        subprocess.run(["sh", "service.sh", "restart"], cwd=ws, check=True)
    elif workflow == "csv-report":
        totals: dict[str, int] = {}
        for line in (ws / "expenses.csv").read_text().splitlines()[1:]:
            category, amount = line.split(",")
            totals[category] = totals.get(category, 0) + int(amount)
        ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        lines = ["# Spending report", "", "| category | total |", "| --- | --- |"]
        lines += [f"| {c} | {t} |" for c, t in ordered] + ["", f"Total: {sum(totals.values())}"]
        (ws / "report.md").write_text("\n".join(lines) + "\n")
    elif workflow == "rename-photos":
        dates = dict(line.split() for line in (ws / "photos" / "dates.txt").read_text().splitlines())
        counter: dict[str, int] = {}
        for name in sorted(dates):
            counter[dates[name]] = counter.get(dates[name], 0) + 1
            (ws / "photos" / name).rename(ws / "photos" / f"{dates[name]}_{counter[dates[name]]:03d}.jpg")
    elif workflow == "merge-json":
        a = json.loads((ws / "people-a.json").read_text())
        b = json.loads((ws / "people-b.json").read_text())
        merged = {k: {**a.get(k, {}), **b.get(k, {})} for k in set(a) | set(b)}
        (ws / "people.json").write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    elif workflow == "todo-list":
        lines = ["# TODO", ""]
        for source in sorted((ws / "src").glob("*.py")):
            for number, line in enumerate(source.read_text().splitlines(), start=1):
                if "# TODO:" in line:
                    lines.append(f"- src/{source.name}:{number}: {line.split('# TODO:', 1)[1].strip()}")
        (ws / "TODO.md").write_text("\n".join(lines) + "\n")
    else:
        raise AssertionError(f"no reference solution for {workflow}")


def near_miss(workflow: str, prompt: str, ws: Path) -> None:
    """What an agent that does not know the team's rule plausibly does: one detail wrong."""
    if workflow == "rotate-logs":      # a common naming rule, not ours, and the logs removed
        day = re.search(r"for (\d{4}-\d{2}-\d{2})", prompt).group(1)  # type: ignore[union-attr]
        (ws / "logs" / "archive").mkdir()
        for log in (ws / "logs").glob("*.log"):
            (ws / "logs" / "archive" / f"{log.stem}-{day}.log.gz").write_bytes(gzip.compress(log.read_bytes()))
            log.unlink()
    elif workflow == "fix-config":     # the config fixed, the service not restarted
        port = re.search(r"port (\d+)", prompt).group(1)  # type: ignore[union-attr]
        (ws / "app.ini").write_text(f"[server]\nhost = 127.0.0.1\nport = {port}\n")
    elif workflow == "csv-report":     # right totals, another heading, sorted by name
        totals: dict[str, int] = {}
        for line in (ws / "expenses.csv").read_text().splitlines()[1:]:
            category, amount = line.split(",")
            totals[category] = totals.get(category, 0) + int(amount)
        lines = ["# Expenses", "", "| category | total |", "| --- | --- |"]
        lines += [f"| {c} | {t} |" for c, t in sorted(totals.items())] + ["", f"Total: {sum(totals.values())}"]
        (ws / "report.md").write_text("\n".join(lines) + "\n")
    elif workflow == "rename-photos":  # the counter not zero-padded
        dates = dict(line.split() for line in (ws / "photos" / "dates.txt").read_text().splitlines())
        counter: dict[str, int] = {}
        for name in sorted(dates):
            counter[dates[name]] = counter.get(dates[name], 0) + 1
            (ws / "photos" / name).rename(ws / "photos" / f"{dates[name]}_{counter[dates[name]]}.jpg")
    elif workflow == "merge-json":     # the right people, written compactly
        a = json.loads((ws / "people-a.json").read_text())
        b = json.loads((ws / "people-b.json").read_text())
        merged = {k: {**a.get(k, {}), **b.get(k, {})} for k in set(a) | set(b)}
        (ws / "people.json").write_text(json.dumps(merged, sort_keys=True) + "\n")
    elif workflow == "todo-list":      # line numbers counted from 0
        lines = ["# TODO", ""]
        for source in sorted((ws / "src").glob("*.py")):
            for number, line in enumerate(source.read_text().splitlines()):
                if "# TODO:" in line:
                    lines.append(f"- src/{source.name}:{number}: {line.split('# TODO:', 1)[1].strip()}")
        (ws / "TODO.md").write_text("\n".join(lines) + "\n")
    else:
        raise AssertionError(f"no near miss for {workflow}")


def test_the_suite_is_what_make_tasks_writes() -> None:
    tasks = load_tasks(TASKS)
    assert len(tasks) == 30 and len({t.workflow for t in tasks}) == 6
    out = subprocess.run([sys.executable, "-c", "import json,sys; sys.path.insert(0, 'bench/tasks'); "
                          "import make_tasks; print(''.join(json.dumps(t) + '\\n' for t in make_tasks.build()), end='')"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out == TASKS.read_text(), "bench/tasks/tasks.jsonl is stale: run python bench/tasks/make_tasks.py"


@pytest.mark.parametrize("index", range(0, 30, 1))
async def test_each_verifier_fails_untouched_and_passes_solved(index: int, tmp_path: Path) -> None:
    task = load_tasks(TASKS)[index]
    workspace = tmp_path / task.id
    lay_out(task, TASKS, workspace)
    untouched = await verify(task, workspace)
    assert not untouched.passed and untouched.score == 0.0
    near = tmp_path / "near-miss"
    lay_out(task, TASKS, near)
    near_miss(task.workflow, task.prompt, near)
    missed = await verify(task, near)
    assert not missed.passed and missed.score == 0.0, f"{task.id}: a near miss passed"
    solve(task.workflow, task.prompt, workspace)
    solved = await verify(task, workspace)
    assert solved.passed and solved.score == 1.0, solved.output


def test_each_workflow_is_one_rule_over_five_different_data_sets() -> None:
    """What a skill learned on one variation says (the correction) is what every other one needs,
    the rule is not in the prompt, and no two variations have the same files."""
    tasks = load_tasks(TASKS)
    for workflow in {t.workflow for t in tasks}:
        variations = [t for t in tasks if t.workflow == workflow]
        assert len(variations) == 5
        assert len({t.correction for t in variations}) == 1 and variations[0].correction
        assert len({json.dumps(t.files, sort_keys=True) for t in variations}) == 5
        rule = variations[0].correction.removeprefix("No: ")
        assert all(rule[:25] not in t.prompt for t in variations)
