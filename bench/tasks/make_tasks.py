"""Writes bench/tasks/tasks.jsonl: 6 workflows x 5 variations for `hermes eval learning`.

Each workflow is a procedure with a rule that is not obvious from the files (a naming rule, a
report shape, where archives go), so a skill learned on one variation genuinely shortens the
next; each variation changes the data. Verifiers are small Python checks run in the sandbox.

    python bench/tasks/make_tasks.py            # rewrites tasks.jsonl beside this script
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _check(code: str) -> str:
    """A verify command: Python that raises (exit 1) on a wrong result, prints 1.0 on a right one."""
    return "python3 - <<'PY'\n" + code.strip() + "\nprint(1.0)\nPY"


def rotate_logs(n: int, rng: random.Random) -> dict[str, Any]:
    names = rng.sample(["api", "db", "worker", "cron", "auth", "mail", "search"], 3)
    day = f"2026-0{n + 1}-1{n}"
    files = {f"logs/{name}.log": f"{day} {name} line\n" * (n + 2) for name in names}
    expected = sorted(f"logs/archive/{day.replace('-', '')}-{name}.log.gz" for name in names)
    return {"prompt": f"Rotate the logs in logs/ for {day} the way we always do.",
            "files": files, "correction": "No: gzip each log into logs/archive/ as YYYYMMDD-name.log.gz and "
                                          "leave an empty logs/NAME.log behind.",
            "verify": _check(f"""
import gzip, pathlib
found = sorted(str(p) for p in pathlib.Path('logs/archive').glob('*.log.gz'))
assert found == {expected!r}, found
for name in {names!r}:
    assert pathlib.Path(f'logs/{{name}}.log').read_text() == ''
""")}


def fix_config(n: int, rng: random.Random) -> dict[str, Any]:
    port = 8000 + rng.randrange(1000)
    bad = ["prt", "port=", "port = abc", "Port"][n % 4]
    files = {"app.ini": f"[server]\nhost = 127.0.0.1\n{bad} {port if bad != 'port = abc' else ''}\n",
             "service.sh": "#!/bin/sh\n# usage: ./service.sh restart   (reads app.ini, writes state)\n"
                           "port=$(sed -n 's/^port = \\([0-9][0-9]*\\)$/\\1/p' app.ini)\n"
                           "[ -n \"$port\" ] || { echo 'app.ini: no valid port line'; exit 1; }\n"
                           "echo \"running on $port\" > state\n"}
    return {"prompt": f"The app should listen on port {port}; fix app.ini and restart it with its script.",
            "files": files, "correction": "No: the line must read exactly `port = NUMBER`, then run "
                                          "`sh service.sh restart`.",
            "verify": _check(f"""
import pathlib
assert pathlib.Path('state').read_text().strip() == 'running on {port}'
assert 'port = {port}' in pathlib.Path('app.ini').read_text()
""")}


def csv_report(n: int, rng: random.Random) -> dict[str, Any]:
    categories = rng.sample(["travel", "food", "office", "software", "hardware", "training"], 3)
    rows = [(rng.choice(categories), rng.randrange(5, 500)) for _ in range(6 + n)]
    totals: dict[str, int] = {}
    for category, amount in rows:
        totals[category] = totals.get(category, 0) + amount
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    lines = ["# Spending report", "", "| category | total |", "| --- | --- |"]
    lines += [f"| {c} | {t} |" for c, t in ordered] + ["", f"Total: {sum(totals.values())}"]
    csv = "category,amount\n" + "".join(f"{c},{a}\n" for c, a in rows)
    return {"prompt": "Turn expenses.csv into report.md in our usual report shape.",
            "files": {"expenses.csv": csv},
            "correction": "No: '# Spending report', a blank line, a Markdown table | category | total | sorted by "
                          "total descending, a blank line, then 'Total: N'.",
            "verify": _check(f"""
import pathlib
assert pathlib.Path('report.md').read_text().strip().splitlines() == {lines!r}
""")}


def rename_photos(n: int, rng: random.Random) -> dict[str, Any]:
    shots = sorted(rng.sample(range(1000, 9999), 3 + n % 3))
    dates = {f"IMG_{s}.jpg": f"2026-0{rng.randrange(1, 9)}-{rng.randrange(10, 28)}" for s in shots}
    files = {f"photos/{name}": "jpeg" for name in dates}
    files["photos/dates.txt"] = "".join(f"{name} {day}\n" for name, day in dates.items())
    expected = []
    counter: dict[str, int] = {}
    for name in sorted(dates):
        day = dates[name]
        counter[day] = counter.get(day, 0) + 1
        expected.append(f"photos/{day}_{counter[day]:03d}.jpg")
    return {"prompt": "Rename the photos in photos/ by our naming rule (dates.txt has the dates).",
            "files": files, "correction": "No: DATE_NNN.jpg, NNN counting from 001 per date in file-name order; "
                                          "keep dates.txt.",
            "verify": _check(f"""
import pathlib
found = sorted(str(p) for p in pathlib.Path('photos').glob('*.jpg'))
assert found == {sorted(expected)!r}, found
assert pathlib.Path('photos/dates.txt').exists()
""")}


def merge_json(n: int, rng: random.Random) -> dict[str, Any]:
    keys = rng.sample(["alice", "bob", "cy", "dana", "eve", "finn", "gus"], 4)
    a = {k: {"team": rng.choice(["ops", "dev"])} for k in keys[:3]}
    b = {k: {"email": f"{k}@example.com"} for k in keys[1:]}
    merged = {k: {**a.get(k, {}), **b.get(k, {})} for k in sorted(set(a) | set(b))}
    return {"prompt": "Merge people-a.json and people-b.json into people.json as we do for the directory.",
            "files": {"people-a.json": json.dumps(a), "people-b.json": json.dumps(b)},
            "correction": "No: one object per person (union of both files, fields merged), keys sorted, "
                          "indented by 2 spaces.",
            "verify": _check(f"""
import json, pathlib
text = pathlib.Path('people.json').read_text()
assert json.loads(text) == {merged!r}
assert text.strip() == json.dumps({merged!r}, indent=2, sort_keys=True)
""")}


def todo_list(n: int, rng: random.Random) -> dict[str, Any]:
    modules = rng.sample(["billing", "users", "search", "jobs", "mail"], 2 + n % 2)
    files: dict[str, str] = {}
    expected = ["# TODO", ""]
    for module in sorted(modules):
        lines = [f"def {module}_{i}():\n    pass\n" for i in range(2)]
        todo_at = rng.randrange(1, 4)
        body = "".join(lines).splitlines()
        body.insert(todo_at, f"    # TODO: handle {module} errors")
        files[f"src/{module}.py"] = "\n".join(body) + "\n"
        expected.append(f"- src/{module}.py:{todo_at + 1}: handle {module} errors")
    return {"prompt": "Collect the TODOs of src/ into TODO.md, the usual way.",
            "files": files, "correction": "No: '# TODO', a blank line, then '- FILE:LINE: text' per TODO, "
                                          "files in name order.",
            "verify": _check(f"""
import pathlib
assert pathlib.Path('TODO.md').read_text().strip().splitlines() == {expected!r}
""")}


WORKFLOWS = {"rotate-logs": rotate_logs, "fix-config": fix_config, "csv-report": csv_report,
             "rename-photos": rename_photos, "merge-json": merge_json, "todo-list": todo_list}


def build(variations: int = 5, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    tasks = []
    for workflow, make in WORKFLOWS.items():
        for n in range(variations):
            tasks.append({"id": f"{workflow}-{n + 1}", "workflow": workflow, **make(n, rng)})
    return tasks


if __name__ == "__main__":
    target = HERE / "tasks.jsonl"
    target.write_text("".join(json.dumps(t) + "\n" for t in build()), encoding="utf-8")
    print(f"wrote {target}: {len(build())} tasks")
