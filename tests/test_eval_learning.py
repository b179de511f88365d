"""`hermes eval learning` end to end: the real CLI, the real agent loop and learning loop through
LiteLLM against a scripted model, verifiers in the sandbox. The scripted model calls fewer tools
once a matching skill is in its prompt (it loads the skill, then writes); the scripted review
creates a skill after a workflow's first task and patches it once it has been used. The test
asserts the harness (every figure the sum of its tasks, files, plot, fresh homes, one session per
task, the control really without learning), never the effect, which only a real model can show.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, Reply, text, tool_calls

WORKFLOWS = {"greet": "greeting-file", "shout": "shouting-file"}


def skill_text(name: str) -> str:
    how = "in capitals, shouted" if name.startswith("shout") else "exactly as given, in lower case"
    return (f"---\nname: {name}\ndescription: Put the word of a {name.split('-')[0]} task into result.txt {how}.\n"
            f"---\n\n## Procedure\n1. write_file result.txt with the word, {how}.\n")


def tasks_file(folder: Path) -> Path:
    lines = []
    for workflow in WORKFLOWS:
        for n in range(3):
            word = f"{workflow}{n}"
            expected = word.upper() if workflow == "shout" else word
            task: dict[str, Any] = {"id": f"{workflow}-{n}", "workflow": workflow,
                                    "prompt": f"Task {workflow}: put WORD={word} into result.txt.",
                                    "files": {"notes/readme.txt": f"the {workflow} workflow"},
                                    "verify": f"grep -qx {expected} result.txt && echo 1.0"}
            if workflow == "shout":
                task["correction"] = "No: shouting means capitals. Write it again in capitals."
            lines.append(json.dumps(task))
    path = folder / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def chat_model(body: dict[str, Any]) -> Reply:
    system = str(body["messages"][0]["content"])
    users = [str(m["content"]) for m in body["messages"] if m["role"] == "user"]
    word = re.search(r"WORD=(\w+)", "\n".join(users)).group(1)  # type: ignore[union-attr]
    workflow = re.search(r"Task (\w+):", "\n".join(users)).group(1)  # type: ignore[union-attr]
    knows = WORKFLOWS[workflow] in system
    corrected = "capitals" in users[-1]
    content = word.upper() if workflow == "shout" and (knows or corrected) else word
    since_user = 0
    for m in reversed(body["messages"]):
        if m["role"] == "user":
            break
        since_user += m["role"] == "tool"
    if knows:       # the skill, the notes, the answer: 3 tool calls instead of 4
        plan = [("skill_view", {"name": WORKFLOWS[workflow]}), ("read_file", {"path": "notes/readme.txt"})]
    elif corrected:
        plan = []
    else:
        plan = [("list_files", {"path": "."}), ("read_file", {"path": "notes/readme.txt"}),
                ("list_files", {"path": "notes"})]
    plan.append(("write_file", {"path": "result.txt", "content": content + "\n"}))
    if since_user < len(plan):
        return tool_calls(plan[since_user])
    return text("Done.")


def review_model(body: dict[str, Any]) -> Reply:
    request = "\n".join(str(m.get("content", "")) for m in body["messages"])
    tools = {t["function"]["name"] for t in body.get("tools", [])}
    done = any(m["role"] == "tool" for m in body["messages"])
    workflow = "shout" if "Task shout" in request else "greet"
    name = WORKFLOWS[workflow]
    if not done and "skill_manage" in tools and name not in request:
        return tool_calls(("skill_manage", {"action": "create", "name": name, "category": "eval",
                                            "content": skill_text(name)}))
    if not done and "skill_manage" in tools and f"## Skill used: {name}" in request and "(checked)" not in request:
        return tool_calls(("skill_manage", {"action": "patch", "name": name, "old_text": "## Procedure",
                                            "new_text": "## Procedure (checked)"}))
    return text("Accomplished: reviewed.")


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools", [])}


def leave_a_skill(skills_dir: Path, name: str) -> None:
    """A skill left behind by an earlier run (or the user's own library): not for a fresh home."""
    (skills_dir / "eval" / name).mkdir(parents=True)
    (skills_dir / "eval" / name / "SKILL.md").write_text(skill_text(name))


async def test_eval_learning_runs_both_modes_and_writes_the_report(home: Path, model_server: FakeModelServer,
                                                                   tmp_path: Path) -> None:
    write_config(home, model_config(model_server) + "[learning]\nend_of_turn_min_tool_calls = 3\nannounce = false\n")
    model_server.add(*[chat_model] * 400, purpose="chat")
    model_server.add(*[review_model] * 400, purpose="checkpoint")
    tasks = tasks_file(tmp_path)
    out = tmp_path / "report"
    for skills_dir in (home / "skills", out / "home-learning-on" / "skills", out / "home-learning-off" / "skills"):
        leave_a_skill(skills_dir, WORKFLOWS["greet"])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "eval", "learning", "--tasks", str(tasks), "--rounds", "2",
        "--out", str(out), env={**os.environ, "HERMES_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 300)
    output, errors = stdout.decode(), stderr.decode()
    assert process.returncode == 0, errors

    report = json.loads((out / "results.json").read_text())
    assert (out / "tool_calls.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out / 'results.json'}" in output and "learning on vs off" in output
    rounds = {(r["mode"], r["round"]): r for r in report["rounds"]}
    assert sorted(rounds) == [("off", 1), ("off", 2), ("on", 1), ("on", 2)]
    assert all(r["tasks"] == 6 for r in rounds.values())
    assert len(report["tasks"]) == 2 * 2 * 6
    # every figure is the sum of its tasks
    for (mode, number), figures in rounds.items():
        runs = [t for t in report["tasks"] if t["mode"] == mode and t["round"] == number]
        assert figures["tool_calls"] == sum(t["tool_calls"] for t in runs)
        assert figures["tokens"] == sum(t["tokens"] for t in runs) > 0
        assert figures["seconds"] == pytest.approx(sum(t["seconds"] for t in runs), abs=0.01) and figures["seconds"] > 0
        assert figures["passed"] == sum(t["passed"] for t in runs)
        assert figures["pass_rate"] == round(figures["passed"] / 6, 4)
    # with learning on: both skills created in round 1 (the leftover one was not there), then
    # loaded by the model (used) and patched by a review
    on = [rounds[("on", 1)], rounds[("on", 2)]]
    assert on[0]["skills_created"] == 2 and on[1]["skills_created"] == 0
    assert sum(r["skills_used"] for r in on) >= 2 and on[1]["skills_used"] >= 1
    assert sum(r["skills_patched"] for r in on) >= 1
    # the control learns nothing: no skill created, patched or used, no review, no skill or memory tool
    off = [rounds[("off", 1)], rounds[("off", 2)]]
    assert all(r["skills_created"] == r["skills_patched"] == r["skills_used"] == 0 for r in off)
    chats = [(i, r) for i, (r, p) in enumerate(zip(model_server.requests, model_server.purposes)) if p == "chat"]
    on_chats = [(i, r) for i, r in chats if "skill_manage" in tool_names(r)]
    off_chats = [(i, r) for i, r in chats if "skill_manage" not in tool_names(r)]
    assert on_chats and off_chats and max(i for i, _ in on_chats) < min(i for i, _ in off_chats)  # on, then off
    assert all("memory" in tool_names(r) for _, r in on_chats)
    assert all("memory" not in tool_names(r) for _, r in off_chats)
    checkpoints = [i for i, p in enumerate(model_server.purposes) if p == "checkpoint"]
    assert checkpoints and max(checkpoints) < min(i for i, _ in off_chats), "a review ran in the control"
    # fresh homes: the skill left in the user's home and in --out from an earlier run is in no prompt
    # until the on run's review wrote it; never in the control's
    first_review = min(checkpoints)
    assert not any("greeting-file" in str(r["messages"][0]["content"]) for i, r in on_chats if i < first_review)
    assert not any(name in str(r["messages"][0]["content"]) for _, r in off_chats for name in WORKFLOWS.values())
    # one session per task: no model call sees another task's words
    for _, r in chats:
        words = set(re.findall(r"WORD=(\w+)", " ".join(str(m.get("content")) for m in r["messages"])))
        assert len(words) == 1, words
    # a shouting task the model got wrong got its correction; the second of a workflow counts as repeated
    off_first = [t for t in report["tasks"] if t["mode"] == "off" and t["round"] == 1 and t["workflow"] == "shout"]
    assert all(t["corrected"] and t["passed_after_correction"] and not t["passed"] for t in off_first)
    assert rounds[("off", 1)]["corrections_repeated"] == 2 and rounds[("off", 2)]["corrections_repeated"] == 3
    # each task had its own workspace, laid out from the task's files
    assert (out / "home-learning-off" / "eval-workspaces" / "round-2" / "greet-1" / "notes" / "readme.txt").is_file()


async def test_a_bad_tasks_file_names_the_line_and_field(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"id": "a", "prompt": "x", "verify": "true"}\n{"id": "b", "prompt": "y"}\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "eval", "learning", "--tasks", str(bad), "--model", "openai/x",
        env={**os.environ, "HERMES_HOME": str(home)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert f"{bad}:2: verify: Field required" in stderr.decode()
    bad.write_text('{"id": "a", "prompt": "x", "verify": "true", "files": {"../escape": "no"}}\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "eval", "learning", "--tasks", str(bad), "--model", "openai/x",
        env={**os.environ, "HERMES_HOME": str(home)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2 and "inside the workspace" in stderr.decode()


async def test_without_matplotlib_it_writes_the_json_and_says_how_to_get_the_plot(
        home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    write_config(home, model_config(model_server))
    model_server.add(text("Done."), text("Done."), purpose="chat")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "one", "prompt": "Say done.", "verify": "true"}) + "\n")
    hidden = tmp_path / "no-matplotlib" / "matplotlib"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('matplotlib is not installed here')\n")
    out = tmp_path / "report"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "eval", "learning", "--tasks", str(tasks), "--rounds", "1", "--out", str(out),
        env={**os.environ, "HERMES_HOME": str(home), "PYTHONPATH": str(hidden.parent)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    report = json.loads((out / "results.json").read_text())
    assert [(r["mode"], r["passed"], r["tasks"]) for r in report["rounds"]] == [("on", 1, 1), ("off", 1, 1)]
    assert not (out / "tool_calls.png").exists()
    assert "no tool_calls.png: matplotlib is not installed" in stderr.decode() and '".[eval]"' in stderr.decode()
