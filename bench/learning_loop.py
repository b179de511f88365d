"""The learning loop on recurring work: does the agent learn, without duplicates and without delay?

Replays a fixed set of recurring team tasks (deploys, reports, log rotation, CI triage), each as a
new session of another user of the same team, through the real SessionService, LiteLLM and
learning loop, against a scripted model served by the fake model server in its own process:

- the agent model works through a task in 9 tool calls when no skill fits, and loads the skill
  plus 3 tool calls when the prompt's skill index lists one;
- the checkpoint model creates a skill for a new kind of task, patches the existing skill when a
  run taught something new, writes corrections to memory, and, on purpose, sometimes tries to
  create a near duplicate of an existing skill (the guard must refuse it: target 0 created).

Phase 1 runs every task family once with an empty library; phase 2 replays the same kinds of
task after the checkpoints ran. Then the review figures (issue 15): reviews per 16-tool-call task
(when it ends right after call 15, and when its last step runs on for 3 s) and whether each one
holds the user's request, review tokens per reviewed task, corrections remembered from a
10-message conversation without tools, and reviews lost when a process running them is killed
with SIGKILL (the queue is re-run by the next process). Prints skills created and patched, near duplicates created,
checkpoint tokens per task (usage reported from request and reply sizes, about 4 characters a
token), tool calls per task, and the extra latency checkpoints add to a user's turn: the median
turn time with learning on, minus the same turns with checkpoints disabled (target: none).

    .venv/bin/python bench/learning_loop.py [--agent-latency 0.02] [--checkpoint-latency 0.25] [--rounds 3]
                                            [--figures-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

AGENT_MODEL = "bench-agent"
CHECKPOINT_MODEL = "bench-checkpoint"
COLD_TOOL_CALLS = 9
WARM_TOOL_CALLS = 3
SURPRISE_TOOL_CALLS = 5

FAMILIES: dict[str, dict[str, Any]] = {
    "deploy": {"skill": "deploy-staging", "category": "devops", "keywords": ("deploy", "ship", "staging"),
               "description": "Deploy the web app to the staging cluster with migrations first. Use when asked "
                              "to deploy or ship a branch or release to staging.",
               "steps": ["Build the image with `make image`.", "Push it with `make push TAG=staging`.",
                         "Run `make migrate ENV=staging` before the release.",
                         "Release with `make release ENV=staging`."],
               "duplicate": ("staging-deployment", "Deploy a branch or release to the staging cluster, running "
                                                   "the migrations first. Use when asked to ship to staging.")},
    "report": {"skill": "pdf-report", "category": "reports", "keywords": ("report", "pdf"),
               "description": "Build the monthly PDF report from the metrics export with the company logo. Use "
                              "when asked for the monthly report.",
               "steps": ["Export metrics with `make export MONTH=...`.", "Render with `make pdf`.",
                         "Check the page count is 4."],
               "duplicate": ("monthly-pdf-report", "Build the monthly report as a PDF from the metrics export, "
                                                   "with the logo. Use when asked for the monthly PDF report.")},
    "logs": {"skill": "rotate-nginx-logs", "category": "ops", "keywords": ("nginx", "logs", "log"),
             "description": "Rotate and compress nginx access logs on a web host. Use when nginx logs grow too "
                            "large or fill the disk.",
             "steps": ["Check usage with `df -h /var/log`.", "Run `logrotate -f /etc/logrotate.d/nginx`.",
                       "Reopen logs with `nginx -s reopen`."],
             "duplicate": ("nginx-log-rotation", "Rotate and compress the nginx access logs on a web host when "
                                                 "they grow too large.")},
    "ci": {"skill": "triage-ci-failure", "category": "engineering", "keywords": ("ci", "failing", "fails"),
           "description": "Triage a failing CI job: find the first error, classify it as flaky, infra or code, "
                          "and report. Use when a CI job fails.",
           "steps": ["Open the job log and find the first error.", "Re-run once to rule out flakiness.",
                     "Classify (flaky / infra / code) and post the finding."],
           "duplicate": ("ci-failure-triage", "Triage a failing CI job by finding the first error and classifying "
                                              "it. Use when CI fails.")},
}

# (family, request, something new this run taught (patch) or None, the checkpoint tries a near duplicate).
# A run that teaches something or that the checkpoint reviews takes 5 more tool calls (a failure and a
# fix), so it reaches learning.end_of_turn_min_tool_calls (8) and is reviewed; routine runs are not.
COLD = [
    ("deploy", "Deploy branch main to staging", None, False),
    ("report", "Build the monthly PDF report for October", None, False),
    ("logs", "Rotate the nginx logs on web-1, they are huge", None, False),
    ("ci", "Triage the failing CI job on the api repo", None, False),
]
WARM = [
    ("deploy", "Ship release 2.3 to staging", "Purge the CDN cache after the release.", False),
    ("report", "Monthly PDF report for November please", None, True),
    ("logs", "nginx logs on web-2 fill the disk again", "On web-2 the logs live in /data/nginx.", False),
    ("ci", "CI on the api repo fails again, triage it", None, True),
    ("deploy", "Deploy the hotfix branch to staging. No, always announce in #deploys first.", None, True),
    ("report", "The monthly report PDF for December", "December has 5 pages: allow it.", False),
    ("logs", "web-3 nginx logs are too large", None, True),
    ("ci", "The CI job failing on the web repo: triage", None, False),
]


def family_of(text: str) -> str:
    lowered = text.lower()
    for family, spec in FAMILIES.items():
        if any(k in lowered.split() or k in lowered for k in spec["keywords"][:2]):
            return family
    return "ci"


def skill_text(name: str, description: str, steps: list[str]) -> str:
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    return (f"---\nname: {name}\ndescription: {json.dumps(description)}\n---\n\n# {name}\n\n## When to use\n- {description}\n\n"
            f"## Procedure\n{numbered}\n\n## Pitfalls\n- Check the previous run's notes.\n\n## Verification\n"
            "- The result is where it should be.\n")


LONG_TASK = "Run the 16-step release checklist for api 4.2"
SLOW_TAIL_TASK = "Run the 16-step release checklist for web 7.1"
LONG_TASK_CALLS = 16
SLOW_TAIL = 3.0
# ten messages, no tools: four corrections or preferences in different styles, six ordinary ones
CHAT10 = [
    ("Hi, I'm looking after the web hosts this week.", None),
    ("no, never restart nginx, always use `nginx -s reopen`", "nginx -s reopen"),
    ("What was the disk usage trend last week?", None),
    ("From now on, post deploy notes in #ops-log", "#ops-log"),
    ("Thanks, that helps.", None),
    ("I prefer short answers with the command first", "command first"),
    ("Which host runs the cron jobs?", None),
    ("don't page the on-call before 7am", "7am"),
    ("ok", None),
    ("See you tomorrow.", None),
]
KILL_SESSIONS = 3


# -- the scripted model (runs in the server's process) --------------------------------------------
def respond(body: dict[str, Any]) -> Any:
    from tests.fakes.model_server import text, tool_calls

    messages = body["messages"]
    if body.get("model") == CHECKPOINT_MODEL:
        reply = respond_checkpoint(messages)
    else:
        reply = respond_agent(messages)
    reply.prompt_tokens = len(json.dumps(messages)) // 4 + len(json.dumps(body.get("tools") or [])) // 4
    reply.completion_tokens = max(1, len(json.dumps([reply.content, reply.calls])) // 4)
    _ = (text, tool_calls)
    return reply


def respond_agent(messages: list[dict[str, Any]]) -> Any:
    from tests.fakes.model_server import text, tool_calls

    system = str(messages[0].get("content") or "")
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    request = str(messages[last_user]["content"])
    done = sum(1 for m in messages[last_user:] if m["role"] == "tool")
    if request in (LONG_TASK, SLOW_TAIL_TASK):
        if done < LONG_TASK_CALLS:
            reply = tool_calls(("list_files", {"path": "."}))
            reply.delay = SLOW_TAIL if request == SLOW_TAIL_TASK and done == 15 else 0.0
            return reply
        return text("Release checklist done: all 16 steps passed.")
    if any(request == m for m, _ in CHAT10) or request.startswith("Kill test"):
        return text("Noted.")
    spec = FAMILIES[family_of(request)]
    task = next((t for t in COLD + WARM if t[1] == request), None)
    if f"- {spec['skill']}:" in system:
        plan = [("skill_view", {"name": spec["skill"]})] + [("list_files", {"path": "."})] * WARM_TOOL_CALLS
        if task is not None and (task[2] or task[3]):  # this run went differently: a failure and a fix
            plan += [("list_files", {"path": "."})] * SURPRISE_TOOL_CALLS
    else:
        plan = [("list_files", {"path": "."})] * COLD_TOOL_CALLS
    if done < len(plan):
        return tool_calls(plan[done])
    return text(f"Done: {request}")


def respond_review_figures(request: str, first_user: str, step: int) -> Any:
    """The review model of the figures: the release checklist becomes a skill, corrections memory."""
    from tests.fakes.model_server import text, tool_calls

    actions: list[tuple[str, dict[str, Any]]] = []
    if first_user in (LONG_TASK, SLOW_TAIL_TASK):
        if "## An earlier review of this same task" not in request:
            name = "release-checklist-" + ("api" if first_user == LONG_TASK else "web")
            actions.append(("skill_manage", {"action": "create", "name": name, "category": "ops",
                                             "content": skill_text(name, "Run the release checklist of a service "
                                                                         "before a release. Use when asked for the "
                                                                         "release checklist.",
                                                                   ["List the release notes.", "Run the smoke tests.",
                                                                    "Tag the release."])}))
        if "the answer is not known yet" not in request:
            actions.append(("memory", {"action": "add", "text": f"{first_user[8:]}: checklist takes 16 steps"}))
    if "## Possible corrections" in request:
        section = request.split("## Possible corrections", 1)[1].split("\n## ", 1)[0]
        for line in section.splitlines()[1:]:
            if line.startswith("- "):
                actions.append(("memory", {"action": "add", "text": "Correction: " + line[2:].strip()[:200]}))
    if step < len(actions):
        return tool_calls(actions[step])
    return text("Accomplished: reviewed.")


def respond_checkpoint(messages: list[dict[str, Any]]) -> Any:
    from tests.fakes.model_server import text, tool_calls

    request = str(messages[1]["content"])
    transcript = request.split("## Transcript", 1)[1].split("\n## ", 1)[0]
    first_user = next(line for line in transcript.splitlines() if line.startswith("USER: "))[6:]
    step = sum(1 for m in messages if m["role"] == "tool")
    task = next((t for t in COLD + WARM if t[1] == first_user), None)
    if task is None:
        return respond_review_figures(request, first_user, step)
    family, _request, lesson, tries_duplicate = task
    spec = FAMILIES[family]
    index = request.split("## Current skill index", 1)[1].split("\n## ", 1)[0]
    exists = f"- {spec['skill']}:" in index
    actions: list[tuple[str, dict[str, Any]]] = []
    if not exists:
        actions.append(("skill_manage", {"action": "create", "name": spec["skill"], "category": spec["category"],
                                         "content": skill_text(spec["skill"], spec["description"], spec["steps"])}))
    elif tries_duplicate:
        dup_name, dup_description = spec["duplicate"]
        actions.append(("skill_manage", {"action": "create", "name": dup_name, "category": spec["category"],
                                         "content": skill_text(dup_name, dup_description, spec["steps"])}))
    if lesson:
        actions.append(("skill_manage", {"action": "patch", "name": spec["skill"], "old_text": "## Verification",
                                         "new_text": f"- {lesson}\n\n## Verification"}))
    if "## Possible corrections" in request:
        actions.append(("memory", {"action": "add", "text": "Always announce staging deploys in #deploys first"}))
    if step < len(actions):
        return tool_calls(actions[step])
    report = [f"Accomplished: {first_user}"]
    if not exists:
        report.append(f"Announce: {spec['skill']}: the {len(spec['steps'])} steps")
    if lesson:
        report.append(f"Announce: {spec['skill']}: {lesson}")
    return text("\n".join(report))


def serve(agent_latency: float, checkpoint_latency: float) -> None:
    """Child process: the scripted model server; prints its port, serves until stdin closes."""
    from tests.fakes.model_server import FakeModelServer, Reply

    class BenchServer(FakeModelServer):
        def _next(self, body: dict[str, Any], purpose: str = "") -> Reply:
            self.requests.clear()
            reply = respond(body)
            reply.delay = max(reply.delay, checkpoint_latency if body.get("model") == CHECKPOINT_MODEL
                              else agent_latency)
            return reply

    async def main() -> None:
        server = BenchServer()
        await server.start()
        print(server.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(main())


# -- the runs -------------------------------------------------------------------------------------
def config_text(base_url: str, learning: bool) -> str:
    lines = ["[model]", f'name = "openai/{AGENT_MODEL}"', f'api_base = "{base_url}"', 'api_key = "sk-bench"',
             "stream = false", "[skills]", "install_bundled = false", "[learning]",
             f'model = "openai/{CHECKPOINT_MODEL}"', "daily_token_budget = 0"]
    if not learning:
        lines += ["checkpoint_every = 100000", "end_of_turn_min_tool_calls = 100000"]
    return "\n".join(lines) + "\n"


async def run_phases(base_url: str, home: Path, learning: bool, announce: list[str],
                     seed_from: Path | None = None) -> dict[str, Any]:
    """Both phases in one home. `seed_from`: before phase 2, copy that home's team library in (so a
    run without checkpoints does the same work as the learning run, for a like-for-like timing)."""
    from gateway.config import load_config
    from gateway.home import Home
    from gateway.learning.install import install_learning
    from gateway.runtime import Runtime
    from gateway.sessions import SessionService
    from gateway.skills_wiring import install_skills

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config_text(base_url, learning))
    os.environ["HERMES_HOME"] = str(home)
    runtime = await Runtime.open(load_config(None, Home.from_env()), Home.from_env())
    await install_skills(runtime)
    loop = await install_learning(runtime)

    async def hook(session: Any, message: str) -> None:
        announce.append(message)

    runtime.services["announce"] = hook
    service = SessionService(runtime)
    phases: dict[str, Any] = {}
    try:
        for phase, tasks in (("empty library", COLD), ("after checkpoints", WARM)):
            if phase == "after checkpoints" and seed_from is not None:
                shutil.copytree(seed_from / "teams" / "ops" / "skills", home / "teams" / "ops" / "skills",
                                dirs_exist_ok=True)
                (await loop.library_for("ops")).invalidate()
            turn_times, tool_counts = [], []
            for number, (_family, request, _lesson, _dup) in enumerate(tasks):
                user = f"U{number}-{phase[0]}"
                session = await runtime.store.new_session(f"slack:C1:{user}", platform="slack", chat_id="C1",
                                                          user_id=user, team="ops")
                started = time.perf_counter()
                result = await service.run_turn(session, request)
                turn_times.append(time.perf_counter() - started)
                tool_counts.append(result.tool_calls)
            drain_started = time.perf_counter()
            await runtime.drain()
            phases[phase] = {"turn_times": turn_times, "tool_calls": tool_counts,
                             "drain": time.perf_counter() - drain_started}
        phases["log"] = await loop.log.entries(limit=1_000)
        library = await loop.library_for("ops")
        phases["skills"] = [s.name for s in (await library.snapshot(force=True)).skills]
    finally:
        await runtime.close()
    return phases


async def open_bench_runtime(base_url: str, home: Path, learning: bool = True) -> tuple[Any, Any]:
    from gateway.config import load_config
    from gateway.home import Home
    from gateway.learning.install import install_learning
    from gateway.runtime import Runtime

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config_text(base_url, learning))
    os.environ["HERMES_HOME"] = str(home)
    runtime = await Runtime.open(load_config(None, Home.from_env()), Home.from_env())
    return runtime, await install_learning(runtime)


async def run_review_figures(base_url: str, home: Path) -> dict[str, Any]:
    """The 16-call tasks and the tool-less conversation, each in a session of its own."""
    from agent.memory import Scope
    from gateway.sessions import SessionService

    runtime, loop = await open_bench_runtime(base_url, home)
    service = SessionService(runtime)
    figures: dict[str, Any] = {}
    try:
        for label, task in (("ends after call 16", LONG_TASK), ("last step runs on 3 s", SLOW_TAIL_TASK)):
            session = await runtime.store.new_session(f"slack:C2:{label}", platform="slack", chat_id="C2",
                                                      user_id="U-long", team="ops")
            await service.run_turn(session, task)
            await runtime.drain()
            reviews = await runtime.store.reviews_all(session_id=session.id)
            checkpoints = {c["id"]: c for c in await runtime.store.checkpoint_rows(10_000, session_id=session.id)}
            ran = [r for r in reviews if r.status not in ("merged", "deferred")]
            spent = [checkpoints.get(r.checkpoint_id) for r in ran]
            figures[label] = {"reviews": len(ran), "reasons": [r.reason for r in ran],
                              "with_request": sum(1 for r in ran if any(task in str(m.get("content") or "")
                                                                        for m in r.messages)),
                              "tokens": sum(int(c["prompt_tokens"] or 0) + int(c["completion_tokens"] or 0)
                                            for c in spent if c is not None)}
        session = await runtime.store.new_session("slack:C3:chat", platform="slack", chat_id="C3",
                                                  user_id="U-chat", team="web")
        for message, _key in CHAT10:
            await service.run_turn(session, message)
        await runtime.drain()
        memory = await loop.memory.read("memory", Scope("web"))
        keys = [k for _m, k in CHAT10 if k]
        figures["corrections"] = {"stated": len(keys), "remembered": sum(1 for k in keys if k in memory),
                                  "reviews": len(await runtime.store.reviews_all(session_id=session.id))}
    finally:
        await runtime.close()
    return figures


def kill_child(base_url: str, home: Path) -> None:
    """Child process: queue KILL_SESSIONS corrections (each a review) and run them until killed."""
    async def work() -> None:
        from gateway.sessions import SessionService

        runtime, _loop = await open_bench_runtime(base_url, home)
        service = SessionService(runtime)
        for n in range(KILL_SESSIONS):
            session = await runtime.store.new_session(f"slack:C4:U{n}", platform="slack", chat_id="C4",
                                                      user_id=f"U{n}", team="ops")
            await service.run_turn(session, f"Kill test {n}: no, always use the blue cluster for job {n}")
        await runtime.drain()
        await runtime.close()

    asyncio.run(work())


async def _review_running(home: Path) -> bool:
    """Whether a review of the child's store has made a model call (a running checkpoint with tokens)."""
    from gateway.store import open_store

    if not (home / "state.db").exists():
        return False
    try:
        store = await open_store(home / "state.db", migrate=False)   # the child migrates it
    except Exception:
        return False
    try:
        rows = await store.checkpoint_rows(10_000)
    except Exception:   # the child has not created the tables yet
        return False
    finally:
        await store.close()
    return any(r["status"] == "running" and int(r["prompt_tokens"] or 0) > 0 for r in rows)


async def _review_counts(home: Path) -> dict[str, int]:
    from gateway.store import open_store

    store = await open_store(home / "state.db", migrate=False)
    try:
        return await store.review_counts()
    finally:
        await store.close()


def kill_during_reviews(base_url: str, home: Path) -> dict[str, int]:
    """Start the child, SIGKILL it once a review has made a model call; the review rows at the kill."""
    import signal

    child = subprocess.Popen([sys.executable, __file__, "--kill-child", base_url, str(home)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if asyncio.run(_review_running(home)):
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return asyncio.run(_review_counts(home))


async def reviews_lost_to_sigkill(base_url: str, home: Path, before: dict[str, int]) -> dict[str, Any]:
    """The next process resumes the queue the killed one left; counts what was lost or written twice."""
    runtime, loop = await open_bench_runtime(base_url, home)
    try:
        await loop.resume()
        await runtime.drain()
        after = await runtime.store.review_counts()
        memory = [c for c in await runtime.store.checkpoint_rows(10_000) if c["status"] == "done"]
    finally:
        await loop.close()
        await runtime.close()
    text = (home / "teams" / "ops" / "memories" / "MEMORY.md").read_text() if \
        (home / "teams" / "ops" / "memories" / "MEMORY.md").exists() else ""
    doubles = sum(1 for line in set(text.splitlines()) if line.strip() and text.splitlines().count(line) > 1)
    return {"due": KILL_SESSIONS, "at_kill": before, "after": after, "lost": KILL_SESSIONS - after.get("done", 0),
            "double_writes": doubles, "logged": len(memory)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--kill-child":
        kill_child(sys.argv[2], Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent-latency", type=float, default=0.02, help="seconds per agent model call")
    parser.add_argument("--checkpoint-latency", type=float, default=0.25, help="seconds per checkpoint model call")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions for the latency figures")
    parser.add_argument("--figures-only", action="store_true", help="only the review figures (issue 15)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.agent_latency, args.checkpoint_latency)
        return
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--agent-latency", str(args.agent_latency),
                              "--checkpoint-latency", str(args.checkpoint_latency)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        base_url = f"http://127.0.0.1:{child.stdout.readline().strip()}/v1"
        with tempfile.TemporaryDirectory() as tmp:
            announced: list[str] = []
            asyncio.run(run_phases(base_url, Path(tmp) / "warmup", False, []))  # import LiteLLM, open clients
            figures = asyncio.run(run_review_figures(base_url, Path(tmp) / "figures"))
            at_kill = kill_during_reviews(base_url, Path(tmp) / "kill")
            figures["kill"] = asyncio.run(reviews_lost_to_sigkill(base_url, Path(tmp) / "kill", at_kill))
            if args.figures_only:
                report_figures(figures)
                return
            rounds = []
            for n in range(args.rounds):  # fresh homes each round; timings paired turn by turn
                learned = asyncio.run(run_phases(base_url, Path(tmp) / f"learning{n}", True,
                                                 announced if n == 0 else []))
                baseline = asyncio.run(run_phases(base_url, Path(tmp) / f"baseline{n}", False, [],
                                                  seed_from=Path(tmp) / f"learning{n}"))
                rounds.append((learned, baseline))
            learned, baseline = rounds[0]
            for phase in ("empty library", "after checkpoints"):
                learned[phase]["turn_times"] = [t for r in rounds for t in r[0][phase]["turn_times"]]
                baseline[phase]["turn_times"] = [t for r in rounds for t in r[1][phase]["turn_times"]]
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=10)
    report(baseline, learned, announced, args)
    report_figures(figures)


def report_figures(figures: dict[str, Any]) -> None:
    print("review figures (issue 15):")
    for label in ("ends after call 16", "last step runs on 3 s"):
        f = figures[label]
        print(f"  reviews per 16-tool-call task, {label + ':':<23} {f['reviews']} ({', '.join(f['reasons'])}); "
              f"with the user's request: {f['with_request']} of {f['reviews']}")
        print(f"  review tokens for that task:{'':<28} {f['tokens']} (target under 8000)")
    c = figures["corrections"]
    print(f"  corrections remembered, 10 messages, no tools: {c['remembered']} of {c['stated']} "
          f"({c['reviews']} reviews)")
    k = figures["kill"]
    print(f"  reviews lost to SIGKILL:{'':<33} {k['lost']} of {k['due']} (at the kill: {k['at_kill']}; "
          f"after the restart: {k['after']}; entries written twice: {k['double_writes']})")


def report(baseline: dict[str, Any], learned: dict[str, Any], announced: list[str], args: Any) -> None:
    log = learned["log"]
    skills = [s for entry in log for s in entry["skills"]]
    created = sorted({s["name"] for s in skills if s["action"] == "create"})
    patched = [s["name"] for s in skills if s["action"] == "patch"]
    refused = sum(entry["error"].count("nearly duplicates") for entry in log)
    attempted = sum(1 for t in WARM if t[3])
    per_family = {f: sum(1 for name in learned["skills"] if name in (spec["skill"], spec["duplicate"][0]))
                  for f, spec in FAMILIES.items()}
    near_duplicates = sum(max(0, n - 1) for n in per_family.values())
    tasks = len(COLD) + len(WARM)
    tokens = sum(e["prompt_tokens"] + e["completion_tokens"] for e in log)
    print(f"learning loop: {tasks} tasks ({len(COLD)} on an empty library, {len(WARM)} after checkpoints), "
          f"agent model {args.agent_latency * 1000:.0f} ms/call, checkpoint model "
          f"{args.checkpoint_latency * 1000:.0f} ms/call")
    print(f"checkpoints run:                     {len(log)} ({', '.join(sorted({e['status'] for e in log}))})")
    print(f"skills created:                      {len(created)} ({', '.join(created)})")
    print(f"skills patched:                      {len(patched)} ({', '.join(patched)})")
    print(f"near-duplicate creates attempted:    {attempted} (refused by the guard: {refused})")
    print(f"near-duplicate skills created:       {near_duplicates} (target 0)")
    memory_changes = [m for entry in log for m in entry["memory"]]
    print(f"memory entries written:              {len(memory_changes)} (corrections caught: "
          f"{sum(1 for m in memory_changes if 'deploys' in m['diff'])} of {sum(1 for t in WARM if 'No, always' in t[1])})")
    print(f"library at the end:                  {', '.join(learned['skills'])}")
    print(f"checkpoint tokens per task:          {tokens / tasks:.0f} "
          f"(per checkpoint {tokens / max(1, len(log)):.0f})")
    for phase in ("empty library", "after checkpoints"):
        calls = learned[phase]["tool_calls"]
        print(f"tool calls per task, {phase + ':':<18} {statistics.mean(calls):.1f}")
    routine = [c for c, t in zip(learned["after checkpoints"]["tool_calls"], WARM) if not (t[2] or t[3])]
    print(f"  routine repeats (nothing new):     {statistics.mean(routine):.1f} (skill loaded, vs "
          f"{COLD_TOOL_CALLS} without it)")
    print(f"user turn latency, same work with checkpoints off vs on, {args.rounds} rounds "
          "(median / worst of paired differences):")
    for phase in ("empty library", "after checkpoints"):
        on, off = learned[phase]["turn_times"], baseline[phase]["turn_times"]
        assert learned[phase]["tool_calls"] == baseline[phase]["tool_calls"], "the runs did different work"
        differences = [a - b for a, b in zip(on, off)]
        print(f"  {phase + ':':<19} off {statistics.median(off) * 1000:.0f} ms, on {statistics.median(on) * 1000:.0f} ms"
              f" -> extra {statistics.median(differences) * 1000:+.1f} ms median, {max(differences) * 1000:+.1f} ms worst")
    everything = [a - b for p in ("empty library", "after checkpoints")
                  for a, b in zip(learned[p]["turn_times"], baseline[p]["turn_times"])]
    print(f"extra latency per user turn:         {statistics.median(everything) * 1000:+.1f} ms median "
          "(target: none; checkpoints run in the background)")
    drain = sum(learned[p]["drain"] for p in ("empty library", "after checkpoints"))
    print(f"waiting for checkpoints at exit:     {drain * 1000:.0f} ms in all (what `hermes chat -q` waits)")
    print(f"announcements:                       {len(announced)}")
    for line in announced[:8]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
