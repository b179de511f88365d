"""Approval of risky tool calls from the chat: the turn pauses until the user answers.

Tools ask through `ToolContext.approve(tool, description)`: the terminal for commands on its
dangerous list, the `cron` tool for a job that delivers somewhere other than the chat it was
created in, and any tool that sends to another channel. (Writes outside the workspace are not
asked about: the file tools refuse them outright.) The dispatcher gives every turn
`broker.approver(ctx, session, reply, stream=...)`; the broker then:

- answers at once when an admin has allowed the request's rule for this session or always
  (the rule is the dangerous pattern a terminal command matched, the `(rule: ...)` a tool names
  at the end of its description, or else the whole description);
- otherwise posts the request to the chat: with Approve / Deny buttons where the platform has
  them (plus "Always allow for this session" and "Always allow" when the platform has admins),
  always naming `/approve ID` and `/deny ID` as well; in a streaming API request (the web chat)
  the request is part of the streamed answer and the user answers with `/approve` in a new
  message. A non-streaming API request cannot be asked anything: the call is denied at once;
- waits `[approvals] timeout_seconds`; no answer means deny. `/stop` cancels the wait.

With several gateway processes the answer may reach another process than the one running the
turn (a Slack button posted through the load balancer, a Telegram press fetched by the poller,
`/approve` answered where it arrived): that process checks who may answer from the request's row
and stores the answer with a conditional update (first answer wins); the waiting turn reads it at
once (a wake-up, gateway/cluster/wakeups.py), at the latest within POLL_SECONDS, and goes on, and edits the request message with the outcome as always.

Only the user who started the turn or an admin of the platform (`[platform] admins`) may answer;
only admins may "always allow". Every request and its outcome is recorded in
`approval_requests`; rules are kept in `approval_rules` (both stored by `gateway/store/approvals.py`).

A rule matches exactly: a cron job's webhook rule is the whole URL (scheme, host, path, query),
so allowing `https://hooks.example/a` never covers `/b` or another query, and the request shows
the URL whole. A rule that holds a secret (a webhook token) is stored as its redacted text plus
a SHA-256 of the whole rule (`rule_key`), so state.db keeps no secret and the match stays exact.

A denial the user chose comes back to the tool as False (the tool says it was not approved); a
request nobody could answer (timeout, no way to ask) raises ToolError, so the model reads why.

Button presses reach `runtime.services["button_handler"]`, a `ButtonRouter` that hands each press
to the handler registered for the prefix of its action_id: `approval:` here, `proposal:` for the
learning loop (`router.register("proposal", handler)`).
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.base import Button, ButtonPress, OutboundMessage, SentMessage
from agent.events import TextDelta
from agent.redact import Redactor
from agent.tools.registry import Approver, ToolError
from gateway.cluster.wakeups import APPROVAL_ANSWERED
from gateway.store import SessionRecord

if TYPE_CHECKING:
    from gateway.commands import CommandContext
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)

PREFIX = "approval"
CHOICES: tuple[str, ...] = ("once", "deny", "session", "always")   # approval:<choice> buttons
ButtonHandler = Callable[[ButtonPress], Awaitable[None]]
_RULE = re.compile(r"\((?:matches dangerous pattern|rule:)\s+(.+)\)\s*$", re.DOTALL)
_ID = re.compile(r"^a[0-9a-f]{6}$")
POLL_SECONDS = 2.0     # how often a waiting turn reads whether another process got the answer (the
                       # wake-up from that process usually tells it at once: gateway/cluster/wakeups.py)


def rule_key(rule: str, redactor: Redactor) -> str:
    """How a rule is stored and matched: itself, or (when it holds a secret) its redacted text
    and a SHA-256 of the whole rule, so two rules that differ only in a secret never match."""
    shown = redactor.redact(rule)
    if shown == rule:
        return rule
    return f"{shown} (sha256:{hashlib.sha256(rule.encode()).hexdigest()})"


def rule_for(description: str) -> str:
    """What an "always allow" covers: the pattern or `(rule: ...)` a description ends with, else all of it."""
    match = _RULE.search(description)
    if match is None:
        return description.strip()
    raw = match.group(1).strip()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    return value if isinstance(value, str) else raw


class ButtonRouter:
    """`services["button_handler"]`: each press goes to the handler of its action_id's prefix."""

    def __init__(self, fallback: ButtonHandler | None = None) -> None:
        self._handlers: dict[str, ButtonHandler] = {}
        self._fallback = fallback

    def register(self, prefix: str, handler: ButtonHandler) -> None:
        self._handlers[prefix] = handler

    async def __call__(self, press: ButtonPress) -> None:
        handler = self._handlers.get(press.action_id.partition(":")[0], self._fallback)
        if handler is None:
            log.info("%s: a press of unknown button %r was ignored", press.platform, press.action_id)
            return
        await handler(press)


@dataclass(frozen=True)
class Decision:
    approved: bool
    outcome: str           # approved | denied | timeout | cancelled
    scope: str = ""        # once | session | always
    by: str = ""           # platform:user


@dataclass(frozen=True)
class Asked:
    """Who asked what: from the waiting request here, or from its row when another process waits."""

    platform: str
    chat_id: str
    user_id: str
    tool: str
    description: str


def _answered(row: Mapping[str, Any] | None) -> Decision | None:
    """The decision stored in a request's row, None while it is pending."""
    if row is None or row["outcome"] == "pending":
        return None
    return Decision(row["outcome"] == "approved", row["outcome"], row["scope"] or "", row["answered_by"] or "")


@dataclass
class Pending:
    """A request waiting for its answer."""

    id: str
    ctx: CommandContext
    session: SessionRecord
    tool: str
    description: str
    rule: str
    reply: Any
    text: str
    future: asyncio.Future[Decision]
    created_at: float = field(default_factory=time.time)
    sent: SentMessage | None = None


class ApprovalBroker:
    """Asks users to approve risky tool calls and waits for their answers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._pending: dict[str, Pending] = {}
        self._reading: set[asyncio.Task[None]] = set()

    # -- for the dispatcher ---------------------------------------------------------------------------
    def approver(self, ctx: CommandContext, session: SessionRecord, reply: Any, *,
                 stream: bool | None = None) -> Approver:
        """The `approve` of one turn: asks in the turn's chat (`reply`)."""

        async def approve(tool: str, description: str) -> bool:
            return await self.request(ctx, session, reply, tool, description, stream=stream)

        return approve

    @property
    def timeout(self) -> float:
        return float(self.runtime.config.approvals.timeout_seconds)

    def is_admin(self, platform: str, user_id: str) -> bool:
        section = getattr(self.runtime.config, platform, None)
        return bool(user_id) and user_id in getattr(section, "admins", [])

    def pending(self) -> list[Pending]:
        return list(self._pending.values())

    # -- asking ----------------------------------------------------------------------------------------
    async def request(self, ctx: CommandContext, session: SessionRecord, reply: Any, tool: str,
                      description: str, *, stream: bool | None = None) -> bool:
        rule = rule_key(rule_for(description), self.runtime.store.redactor)
        request_id = self._new_id()
        store = self.runtime.store
        await store.approval_request_insert(request_id, session_id=session.id, platform=ctx.platform,
                                            chat_id=ctx.chat_id, user_id=ctx.user_id, tool=tool,
                                            description=description, rule=rule)
        allowed_by = await self._allowed_by(session.id, tool, rule)
        if allowed_by:
            await self._record(request_id, Decision(True, "allowed", allowed_by, "rule"))
            log.info("approval %s: %s allowed by an admin's %s rule: %s", request_id, tool, allowed_by, description)
            return True
        adapter, delivery = getattr(reply, "adapter", None), getattr(reply, "delivery", None)
        can_post = adapter is not None and delivery is not None
        if not can_post and (stream is False or not hasattr(reply, "on_event")):
            await self._record(request_id, Decision(False, "unavailable"))
            raise ToolError(
                f"{tool}: this needs the user's approval ({description}), but this request cannot be asked "
                "anything (a non-streaming API call), so it was denied and did not happen. Tell the user it "
                "needs approval: from a chat or the web chat, where they can answer /approve; or an admin can "
                "always-allow it.")
        loop = asyncio.get_running_loop()
        pending = Pending(request_id, ctx, session, tool, description, rule, reply, "", loop.create_future())
        pending.text = self._text(pending, buttons=can_post and adapter.limits.supports_buttons)
        self._pending[request_id] = pending
        decision: Decision | None = None
        try:
            if can_post:
                pending.sent = await delivery.send(adapter, OutboundMessage(
                    chat_id=reply.chat_id, text=pending.text, thread_id=getattr(reply, "thread_id", None),
                    buttons=self._buttons(ctx.platform, request_id) if adapter.limits.supports_buttons else (),
                    idempotency_key=f"approval:{request_id}"))
                if pending.sent is None:
                    decision = Decision(False, "unavailable")
                    raise ToolError(f"{tool}: the approval request could not be posted to the chat, so it was "
                                    f"denied and did not happen ({description}).")
            else:
                await reply.on_event(TextDelta(f"\n\n{pending.text}\n\n"))
            decision = await self._wait(pending)
            if decision.outcome == "timeout":
                raise ToolError(
                    f"{tool}: nobody answered the approval request within {self.timeout:g} s, so it was denied "
                    f"and did not happen ({description}).")
        except asyncio.CancelledError:
            decision = decision or Decision(False, "cancelled")
            raise
        finally:
            self._pending.pop(request_id, None)
            if not pending.future.done():
                pending.future.cancel()
            outcome = decision or Decision(False, "failed")
            await asyncio.shield(self._finish(pending, outcome))
        return decision.approved

    async def _wait(self, pending: Pending) -> Decision:
        """The answer: given here (the future), or by another process (the request's row, read every
        POLL_SECONDS), or the timeout, which is itself an answer that can lose to one given at the
        same moment elsewhere."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                return await asyncio.wait_for(asyncio.shield(pending.future), min(POLL_SECONDS, remaining))
            except TimeoutError:
                pass
            try:
                elsewhere = _answered(await self.runtime.store.approval_request_get(pending.id))
            except Exception as exc:  # noqa: BLE001 - a store blip: the future or a later read answers
                log.warning("approval %s: could not read its answer from the store: %s", pending.id, exc)
                continue
            if elsewhere is not None:
                return elsewhere
        timeout = Decision(False, "timeout")
        if await self._record(pending.id, timeout):
            return timeout
        return _answered(await self.runtime.store.approval_request_get(pending.id)) or timeout

    async def _finish(self, pending: Pending, decision: Decision) -> None:
        try:
            await self._record(pending.id, decision)
            if decision.approved and decision.scope in ("session", "always"):
                await self.runtime.store.approval_rule_add(
                    pending.session.id if decision.scope == "session" else "", pending.tool, pending.rule,
                    decision.by)
            await self._show_outcome(pending, decision)
        except Exception:
            log.exception("approval %s: could not record the outcome", pending.id)

    async def _record(self, request_id: str, decision: Decision) -> bool:
        """Store the answer if the request is still pending (False: another answer was first)."""
        return await self.runtime.store.approval_request_answer(request_id, outcome=decision.outcome,
                                                                scope=decision.scope, answered_by=decision.by)

    async def _allowed_by(self, session_id: str, tool: str, rule: str) -> str:
        scopes = await self.runtime.store.approval_rule_scopes(session_id, tool, rule)
        return "always" if "always" in scopes else "session" if scopes else ""

    def _new_id(self) -> str:
        while True:
            request_id = "a" + secrets.token_hex(3)   # a letter first: never mistaken for a proposal #
            if request_id not in self._pending:
                return request_id

    # -- what the chat sees ------------------------------------------------------------------------------
    def _text(self, pending: Pending, *, buttons: bool) -> str:
        seconds = f"{self.timeout:g} s"
        how = (f"Press a button, or reply `/approve {pending.id}` or `/deny {pending.id}`" if buttons
               else f"Reply `/approve {pending.id}` or `/deny {pending.id}`")
        text = (f"⚠️ Approval needed ({pending.tool}): {pending.description}\n\n"
                f"{how} within {seconds}; no answer means no.")
        if self._has_admins(pending.ctx.platform):
            text += (f" Admins may allow this for the session or always (`/approve {pending.id} session` or "
                     f"`/approve {pending.id} always`).")
        return text

    def _has_admins(self, platform: str) -> bool:
        return bool(getattr(getattr(self.runtime.config, platform, None), "admins", []))

    def _buttons(self, platform: str, request_id: str) -> tuple[Button, ...]:
        buttons = [Button("Approve", f"{PREFIX}:once", request_id, "primary"),
                   Button("Deny", f"{PREFIX}:deny", request_id, "danger")]
        if self._has_admins(platform):
            buttons += [Button("Always allow for this session", f"{PREFIX}:session", request_id),
                        Button("Always allow", f"{PREFIX}:always", request_id)]
        return tuple(buttons)

    async def _show_outcome(self, pending: Pending, decision: Decision) -> None:
        who = decision.by.partition(":")[2] or decision.by
        note = {
            "approved": {"once": f"✅ Approved by {who}.",
                         "session": f"✅ Approved by {who}, and always allowed for this session.",
                         "always": f"✅ Approved by {who}, and always allowed from now on."}.get(decision.scope,
                                                                                              "✅ Approved."),
            "denied": f"❌ Denied by {who}.",
            "timeout": f"⌛ No answer within {self.timeout:g} s: denied.",
            "cancelled": "Stopped: not done.",
        }.get(decision.outcome, "Not done.")
        reply = pending.reply
        adapter, delivery = getattr(reply, "adapter", None), getattr(reply, "delivery", None)
        if pending.sent is not None and adapter is not None and delivery is not None:
            first = pending.text.split("\n\n", 1)[0]
            await delivery.edit(adapter, pending.sent, f"{first}\n\n{note}")
        elif adapter is None and hasattr(reply, "on_event") and decision.outcome != "cancelled":
            await reply.on_event(TextDelta(f"{note}\n\n"))

    # -- answering ---------------------------------------------------------------------------------------
    async def answer(self, request_id: str, choice: str, *, platform: str, chat_id: str,
                     user_id: str) -> tuple[bool, str]:
        """Resolve a pending request, asked here or by another process of the cluster (its turn
        there reads the answer from the store); (taken, text for the person who answered)."""
        gone = f"Approval request {request_id} is not waiting any more (answered, expired or stopped)."
        pending = self._pending.get(request_id)
        if pending is not None and not pending.future.done():
            asked = Asked(pending.ctx.platform, pending.ctx.chat_id, pending.ctx.user_id, pending.tool,
                          pending.description)
        else:
            row = await self.runtime.store.approval_request_get(request_id)
            if row is None or row["outcome"] != "pending" or row["created_at"] < time.time() - self.timeout:
                return False, gone
            asked = Asked(row["platform"], row["chat_id"], row["user_id"], row["tool"], row["description"])
        if asked.platform != platform:
            return False, gone
        admin = self.is_admin(platform, user_id)
        if not admin and (user_id != asked.user_id or chat_id != asked.chat_id):
            return False, "Only the person whose request this is, or an admin, can answer it."
        if choice in ("session", "always") and not admin:
            return False, ("Only an admin can always-allow. Approve it this once, or deny it "
                           f"(`/approve {request_id}` or `/deny {request_id}`).")
        by = f"{platform}:{user_id}"
        if choice == "deny":
            decision = Decision(False, "denied", "", by)
        else:
            decision = Decision(True, "approved", choice, by)
        if not await self._record(request_id, decision):
            return False, gone
        if pending is not None and not pending.future.done():
            pending.future.set_result(decision)
        elif (wakeups := self.runtime.services.get("wakeups")) is not None:
            await wakeups.send(APPROVAL_ANSWERED, request_id)     # the process whose turn waits reads it now
        log.info("approval %s (%s) %s by %s%s", request_id, asked.tool, decision.outcome, by,
                 f" ({choice})" if choice in ("session", "always") else "")
        what = asked.description
        if decision.approved:
            return True, f"Approved: {what}" + {"session": " (always allowed for this session)",
                                                 "always": " (always allowed from now on)"}.get(choice, "")
        return True, f"Denied: {what}"

    def answered_elsewhere(self, request_id: str) -> None:
        """Wake-up: another process answered `request_id`; if its turn waits here, read the answer now."""
        pending = self._pending.get(request_id)
        if pending is not None and not pending.future.done():
            task = asyncio.get_running_loop().create_task(self._read_answer(pending))
            self._reading.add(task)
            task.add_done_callback(self._reading.discard)

    async def _read_answer(self, pending: Pending) -> None:
        try:
            decision = _answered(await self.runtime.store.approval_request_get(pending.id))
        except Exception as exc:  # noqa: BLE001 - the waiting turn reads it again at its next poll
            log.warning("approval %s: could not read its answer from the store: %s", pending.id, exc)
            return
        if decision is not None and not pending.future.done():
            pending.future.set_result(decision)

    async def on_button(self, press: ButtonPress) -> None:
        """A press of one of our buttons (action_id `approval:<choice>`, value the request id)."""
        choice = press.action_id.partition(":")[2]
        if choice not in CHOICES:
            log.info("%s: unknown approval button %r", press.platform, press.action_id)
            return
        taken, text = await self.answer(press.value, choice, platform=press.platform, chat_id=press.chat_id,
                                  user_id=press.user_id)
        if taken:
            return   # the request message is edited with the outcome
        await self._tell(press, text)

    async def _tell(self, press: ButtonPress, text: str) -> None:
        pending = self._pending.get(press.value)
        reply = pending.reply if pending is not None else None
        adapter, delivery = getattr(reply, "adapter", None), getattr(reply, "delivery", None)
        try:
            if adapter is not None and delivery is not None and pending is not None:
                await delivery.send_text(adapter, press.chat_id, text, thread_id=press.thread_id)
                return
            send = self.runtime.services.get("send_message")
            if send is not None:
                await send(press.platform, press.chat_id, text, thread_id=press.thread_id)
        except Exception as exc:  # noqa: BLE001 - the answer to a stray press is a courtesy
            log.warning("%s: could not answer a button press: %s", press.platform, exc)

    async def command(self, verb: str, args: str, ctx: CommandContext) -> str | None:
        """`/approve [ID] [session|always]`, `/deny [ID]` for tool approvals in this chat.

        None when the command is not about a tool approval (a proposal number, or nothing is
        waiting here): the caller falls back to the learning loop's proposals.
        """
        words = args.split()
        request_id = words[0].lower() if words and _ID.match(words[0].lower()) else ""
        if words and not request_id and (verb == "deny" or words[0].lower() not in ("session", "always")):
            if verb == "approve":
                return None           # `/approve 12`: a skill proposal
            return f"Usage: /deny [ID] (no approval request named {words[0]!r} is waiting)."
        rest = words[1:] if request_id else words
        scope = rest[0].lower() if rest else "once"
        if verb == "approve" and scope not in ("once", "session", "always"):
            return "Usage: /approve [ID] [session|always]"
        choice = "deny" if verb == "deny" else scope
        if not request_id:
            waiting = await self.runtime.store.approval_requests_waiting(
                ctx.platform, ctx.chat_id, since=time.time() - self.timeout)     # asked here or elsewhere
            mine = [r for r in waiting if r["user_id"] == ctx.user_id or self.is_admin(ctx.platform, ctx.user_id)]
            if not mine:
                return None if verb == "approve" else "Nothing is waiting for approval here."
            if len(mine) > 1:
                return ("Several requests are waiting; name one:\n"
                        + "\n".join(f"{r['id']}: ({r['tool']}) {r['description']}" for r in mine))
            request_id = mine[0]["id"]
        _, text = await self.answer(request_id, choice, platform=ctx.platform, chat_id=ctx.chat_id,
                                    user_id=ctx.user_id)
        return text


def install_approvals(runtime: Runtime) -> ApprovalBroker:
    """`services["approvals"]` (the dispatcher's approvers, /approve, /deny) and the button router."""
    broker = ApprovalBroker(runtime)
    runtime.services["approvals"] = broker
    router = runtime.services.get("button_handler")
    if not isinstance(router, ButtonRouter):
        router = ButtonRouter(fallback=router)
        runtime.services["button_handler"] = router
    router.register(PREFIX, broker.on_button)
    wakeups = runtime.services.get("wakeups")
    if wakeups is not None:
        wakeups.on(APPROVAL_ANSWERED, broker.answered_elsewhere)
    return broker
