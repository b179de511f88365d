"""The `cron` tool in a chat turn (scripted tool calls from the fake model) and the `hermes cron`
commands a user runs afterwards: list, run in the foreground, runs history."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.sessions import SessionService
from tests.cron_support import close_cron, open_cron, write_cron_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.test_cli_chat import hermes


def tool_results(server: FakeModelServer) -> list[str]:
    last = server.requests_with_purpose("chat")[-1]  # a learning review may follow a turn with a failed step
    return [m["content"] for m in last["messages"] if m["role"] == "tool"]


async def test_job_created_in_chat_is_listed_by_the_cli(home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    model_server.add(
        tool_calls(("cron", {"action": "create", "schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin",
                             "prompt": "Summarise yesterday's errors", "name": "error digest"})),
        text("Done: weekdays at 09:00 Berlin time."),
        tool_calls(("cron", {"action": "create", "schedule": "0 25 * * *", "prompt": "x"})),
        text("That hour does not exist."),
    )
    runtime, service, _ = await open_cron(home)
    try:
        session = await runtime.store.active_session("telegram:-100555:user:7", platform="telegram",
                                                     chat_id="-100555", user_id="7")
        sessions = SessionService(runtime)
        result = await sessions.run_turn(session, "every weekday at 9am summarise yesterday's errors here")
        assert result.text == "Done: weekdays at 09:00 Berlin time."
        confirmation = tool_results(model_server)[0]
        assert confirmation.startswith("Created job ") and "to telegram:-100555" in confirmation
        assert confirmation.count("CET") + confirmation.count("CEST") == 3   # next three run times
        await sessions.run_turn(session, "also at hour 25 please")
        assert tool_results(model_server)[-1] == "Error: hour: 25 is out of range 0-23"
        # another chat does not see (or manage) this chat's jobs
        other = await runtime.store.active_session("telegram:-100999:user:8", platform="telegram",
                                                   chat_id="-100999", user_id="8")
        # the chat's own script: a learning review of the failed step above may still be asking
        model_server.add(tool_calls(("cron", {"action": "list"})), text("none here"), purpose="chat")
        await sessions.run_turn(other, "what is scheduled?")
        assert tool_results(model_server)[-1] == "No scheduled jobs in this chat."
    finally:
        await close_cron(runtime, service)

    code, out, err = await hermes("cron", "list", "--json", home=home)
    assert code == 0, err
    jobs = json.loads(out)
    assert len(jobs) == 1
    job = jobs[0]
    assert job["id"] and job["name"] == "error digest" and job["schedule"] == "0 9 * * 1-5"
    assert job["timezone"] == "Europe/Berlin" and job["target"] == "telegram:-100555"
    assert job["state"] == "active" and len(job["next_runs"]) == 3


async def test_cli_add_run_runs_pause_remove(home: Path, model_server: FakeModelServer) -> None:
    write_cron_config(home, model_server)
    model_server.add(text("Disk usage is at 41%."))
    code, out, err = await hermes("cron", "add", "every 1d", "--prompt", "check disk usage", "--deliver",
                                  "file:reports/disk.md", "--name", "disk", "--json", home=home)
    assert code == 0, err
    job_id = json.loads(out)[0]["id"]

    code, out, err = await hermes("cron", "run", job_id, home=home)
    assert code == 0, err
    assert out.strip() == "Disk usage is at 41%."
    assert "Disk usage is at 41%." in (home / "reports" / "disk.md").read_text()

    code, out, err = await hermes("cron", "runs", job_id, "--json", home=home)
    assert code == 0, err
    runs = json.loads(out)
    assert len(runs) == 1
    assert runs[0]["status"] == "ok" and runs[0]["tokens"] == 18 and runs[0]["cause"] == "manual"
    assert runs[0]["output_excerpt"] == "Disk usage is at 41%." and runs[0]["duration_ms"] > 0

    code, out, err = await hermes("cron", "pause", job_id, home=home)
    assert code == 0 and "Paused" in out
    code, out, err = await hermes("cron", "list", "--json", home=home)
    assert json.loads(out)[0]["state"] == "paused" and json.loads(out)[0]["next_runs"] == []
    code, out, err = await hermes("cron", "remove", job_id, home=home)
    assert code == 0 and "Removed" in out
    code, out, err = await hermes("cron", "list", "--json", home=home)
    assert json.loads(out) == []
