"""`hermes eval learning` end to end: the real CLI, the real agent loop and learning loop through
LiteLLM against a scripted model, verifiers in the sandbox. The scripted model calls fewer tools
once a matching skill is in its prompt; the test asserts the harness (counts, files, plot, the
control really without learning), never the effect, which only a real model can show.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, Reply, text, tool_calls

WORKFLOWS = {"greet": "greeting-file", "shout": "shouting-file"}


def skill_text(name: str) -> str:
    return (f"---\nname: {name}\ndescription: Write the word the user names into result.txt, as the task says.\n"
            "---\n\n## Procedure\n1. write_file result.txt with the word (capitals for shouting).\n")


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
    plan = [] if knows or corrected else [("list_files", {"path": "."}), ("read_file", {"path": "notes/readme.txt"}),
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
    if not done and "skill_manage" in tools and f"skill `{WORKFLOWS[workflow]}`" not in request:
        name = WORKFLOWS[workflow]
        return tool_calls(("skill_manage", {"action": "create", "name": name, "category": "eval",
                                            "content": skill_text(name)}))
    return text("Accomplished: reviewed.")


async def test_eval_learning_runs_both_modes_and_writes_the_report(home: Path, model_server: FakeModelServer,
                                                                   tmp_path: Path) -> None:
    write_config(home, model_config(model_server) + "[learning]\nend_of_turn_min_tool_calls = 3\nannounce = false\n")
    model_server.add(*[chat_model] * 400, purpose="chat")
    model_server.add(*[review_model] * 400, purpose="checkpoint")
    tasks = tasks_file(tmp_path)
    out = tmp_path / "report"
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
        assert figures["passed"] == sum(t["passed"] for t in runs)
        assert figures["pass_rate"] == round(figures["passed"] / 6, 4)
    # the control learns nothing: no skill created, no review, no skill tool offered
    assert rounds[("off", 1)]["skills_created"] == rounds[("off", 2)]["skills_created"] == 0
    assert rounds[("on", 1)]["skills_created"] >= 1
    off_chats = [r for r in model_server.requests_with_purpose("chat")
                 if "skill_manage" not in {t["function"]["name"] for t in r.get("tools", [])}]
    assert len(off_chats) >= 12 and len(model_server.requests_with_purpose("checkpoint")) >= 1
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
