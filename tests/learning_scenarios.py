"""A team's week with the learning loop, scripted: the chat model and the review model tell their
callers apart by the `X-Hermes-Purpose` header (never by prompt wording), and the review model
acts from what its request shows (the transcript, who spoke, what is already done)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes.model_server import FakeModelServer, Reply, text, tool_calls
from tests.fakes.telegram_server import FakeTelegramServer
from tests.learning_support import DEPLOY_SKILL

ADA, BOB, CY = 42, 43, 44          # Ada works in ops; Bob and Cy in sales
OPS_GROUP, SALES_GROUP = -100, -200
TASK_CALLS = 16
NGINX_RULE = "Never restart nginx: reload logs with `nginx -s reopen`"
DEPLOY_NOTE = "Staging deploys: run migrations before the release"


def telegram_section(tg: FakeTelegramServer, shared_sales: bool = False) -> str:
    section = (f'[telegram]\nenabled = true\ntoken = "{tg.token}"\napi_base = "{tg.api_base}"\npoll_timeout = 0.5\n'
               f'allow_users = ["{ADA}", "{BOB}", "{CY}"]\nallow_channels = ["{OPS_GROUP}", "{SALES_GROUP}"]\n'
               "require_mention = false\n")
    if shared_sales:
        section += f'[telegram.channels."{SALES_GROUP}"]\nsession_scope = "channel"\n'
    return section


def teams_section() -> str:
    return (f'[[teams]]\nname = "ops"\nchannels = ["telegram:{OPS_GROUP}", "telegram:{ADA}"]\n'
            f'[[teams]]\nname = "sales"\nchannels = ["telegram:{SALES_GROUP}", "telegram:{BOB}", "telegram:{CY}"]\n')


def last_user_text(body: dict[str, Any]) -> tuple[str, int]:
    """The last user message of a chat request and how many tool results follow it."""
    messages = body["messages"]
    index = max(i for i, m in enumerate(messages) if m["role"] == "user")
    content = messages[index]["content"]
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content), sum(1 for m in messages[index:] if m["role"] == "tool")


def chat_model(body: dict[str, Any]) -> Reply:
    """Deploys take TASK_CALLS tool calls; everything else is answered at once, without tools."""
    request, done = last_user_text(body)
    if "deploy" in request.lower():
        if done < TASK_CALLS:
            reply = tool_calls(("list_files", {"path": "."}))
            reply.delay = 3.0 if done == 15 else 0.0  # the last step is slow: the task runs on after call 15
            return reply
        return text("Deployed to staging.")
    return text("Noted, thanks.")


def review_plan(request: str) -> list[tuple[str, dict[str, Any]]]:
    """What the scripted review model writes, from what its request shows."""
    transcript = request.split("## Transcript", 1)[-1].split("\n## Current skill index", 1)[0]
    actions: list[tuple[str, dict[str, Any]]] = []
    if "deploy" in transcript.lower():
        if "the answer is not known yet" in request:  # the mid-task review: the procedure so far
            actions.append(("skill_manage", {"action": "create", "name": "deploy-staging", "category": "devops",
                                             "content": DEPLOY_SKILL}))
        else:  # the whole task: the lesson of the outcome
            actions.append(("memory", {"action": "add", "target": "memory", "text": DEPLOY_NOTE}))
    if "nginx" in transcript:
        actions.append(("memory", {"action": "add", "target": "memory", "text": NGINX_RULE}))
    if f"telegram id {BOB})] " in transcript and "French" in transcript:
        actions.append(("memory", {"action": "add", "target": "user", "user": str(BOB),
                                   "text": "Prefers answers in French"}))
    if f"telegram id {CY})] " in transcript and "bullet" in transcript:
        actions.append(("memory", {"action": "add", "target": "user", "user": str(CY),
                                   "text": "Wants answers as bullet lists"}))
    return actions


def review_model(body: dict[str, Any]) -> Reply:
    request = str(body["messages"][1]["content"])
    step = sum(1 for m in body["messages"] if m["role"] == "tool")
    actions = review_plan(request)
    if step < len(actions):
        return tool_calls(actions[step])
    report = ["Accomplished: reviewed."]
    if any(a[1].get("name") == "deploy-staging" for a in actions):
        report.append("Announce: deploy-staging: build, push, migrate, release")
    return text("\n".join(report))


def script(model_server: FakeModelServer, copies: int = 400) -> None:
    model_server.add(*[chat_model] * copies, purpose="chat")
    model_server.add(*[review_model] * copies, purpose="checkpoint")


def review_requests(model_server: FakeModelServer) -> list[str]:
    """The request text of every review conversation (its first call)."""
    return [str(r["messages"][1]["content"]) for r in model_server.requests_with_purpose("checkpoint")
            if sum(1 for m in r["messages"] if m["role"] == "tool") == 0]


def texts(tg: FakeTelegramServer, chat: int) -> list[str]:
    return [str(m.get("text")) for m in tg.sent(chat)]


def user_file(home: Path, user: int) -> Path:
    return home / "memories" / "users" / "telegram" / str(user) / "USER.md"


def team_memory(home: Path, team: str) -> Path:
    return home / "teams" / team / "memories" / "MEMORY.md"

