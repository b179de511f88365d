"""What an "always allow" covers, and how button presses are routed by action_id prefix."""

from __future__ import annotations

from adapters.base import ButtonPress
from agent.tools.terminal import dangerous_reason
from gateway.approvals import ButtonRouter, rule_for


def test_a_terminal_rule_is_the_dangerous_pattern_so_it_covers_every_command_it_matches() -> None:
    def description(command: str) -> str:   # what the terminal tool asks with
        return f"run `{command}` (matches dangerous pattern {dangerous_reason(command, [])!r})"

    assert rule_for(description("rm -rf build")) == rule_for(description("rm -r dist/")) == \
        "rm -r/-f (recursive or forced delete)"
    assert rule_for(description("X=rm; $X --recursive --force build")) == rule_for(description("rm -rf build"))
    assert rule_for(description("git push --force")) != rule_for(description("rm -rf build"))


def test_a_named_rule_or_else_the_whole_description() -> None:
    assert rule_for("create a job delivering to slack:C9 (rule: deliver to slack:C9)") == "deliver to slack:C9"
    assert rule_for("  send `hi` to slack:C9  ") == "send `hi` to slack:C9"


async def test_presses_go_to_the_handler_of_their_prefix_and_unknown_ones_to_the_fallback() -> None:
    seen: list[tuple[str, str]] = []

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(press: ButtonPress) -> None:
            seen.append((name, press.action_id))
        return handle

    router = ButtonRouter(fallback=handler("fallback"))
    router.register("approval", handler("approvals"))
    router.register("proposal", handler("learning"))
    for action in ("approval:once", "proposal:approve", "other"):
        await router(ButtonPress("telegram", "42", "42", action, "x"))
    assert seen == [("approvals", "approval:once"), ("learning", "proposal:approve"), ("fallback", "other")]
