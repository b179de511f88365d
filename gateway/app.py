"""The gateway process: platform adapters, the HTTP surface and the dispatcher in one event loop.

`Gateway.start` checks the API token first (nothing is opened when it is weak), opens the
Runtime, builds the adapters of the enabled platforms (`gateway.adapter_factory`, imported
lazily; without it only the web chat and API run), lets adapters attach webhook routes, starts
the HTTP server, then the adapters, and registers native slash commands where an adapter can.

Inbound events are taken into the turn inbox (gateway/inbox.py: durable, deduplicated, until the
answer is delivered), then go through access control (pairing for unknown users), the router
(session key, team), attachments, then the dispatcher. On start, messages an earlier process took
but never answered (a crash, or a turn cut at shutdown) are answered once, with a notice; they are
queued, in arrival order, before any message taken by this process reaches the dispatcher, so
each session keeps one order across the restart.
`Gateway.stop` is the graceful shutdown: adapters stop receiving first (what they have not
handed over stays with the platform, which delivers it again to the next process), then running
and queued turns finish within the grace period (then are interrupted, and kept in the inbox for
the next process), background work is waited for, adapters and the HTTP server close, and the
store closes.

What must run once when several processes share a PostgreSQL store (Telegram polling, the cron
scheduler, idle-review timers, the curator, store maintenance) runs under a duty lease
(gateway/cluster/wiring.py): every process connects every adapter for sending and serves HTTP,
only a duty's owner runs it. On SQLite the one process owns every duty.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from adapters.base import Adapter, ButtonPress, InboundEvent, InboundHandler, InboundMessage
from gateway.access import PAIRING_TEXT, AccessControl
from gateway.api.auth import ClientView, TokenAuth, TokenSource, WebSessions, parse_proxies, resolve_token
from gateway.api.openai_compat import ChatCompletions
from gateway.api.server import ApiApp
from gateway.api.turns import ApiTurns
from gateway.attachments import user_content
from gateway.commands import BUILTIN_COMMANDS, IMMEDIATE, CommandContext, parse_command
from gateway.config import Config
from gateway.delivery import Delivery, RetryPolicy, StreamingReply
from gateway.dispatcher import Dispatcher, ShuttingDown
from gateway.home import Home
from gateway.inbox import GAVE_UP_NOTICE, INTERRUPTED_NOTICE, MAX_ATTEMPTS, Inbox
from gateway.logging_setup import log_context
from gateway.message_dedup import MessageDeduplicator, dedup_key
from gateway.metrics import Metrics
from gateway.model_check import ModelCheck, check_model
from gateway.outbox import relay_outbox
from gateway.cluster.node import new_process_id
from gateway.cluster.wakeups import TURN_STOP, Wakeups
from gateway.pairing import Pairing
from gateway.routing import Router
from gateway.runtime import Runtime
from gateway.store import SessionRecord
from gateway.turns import TurnClaims

log = logging.getLogger(__name__)

KEPT_FILES_MESSAGES = 64   # taken messages whose downloaded files wait in memory for their turn here


class PortUnavailableError(OSError):
    """The HTTP port cannot be opened; the message names it and the setting to change."""


def port_problem(host: str, port: int, exc: OSError) -> str:
    """`[Errno 98] error while attempting to bind ...` in words, with the setting to change."""
    if exc.errno == errno.EADDRINUSE:
        why = "is already in use (another gateway, or another program, listens there)"
    elif exc.errno == errno.EACCES:
        why = "needs privileges this user does not have (ports below 1024)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"cannot be opened: {host} is not an address of this machine"
    else:
        why = f"cannot be opened ({exc.strerror or exc})"
    return (f"the HTTP port {host}:{port} {why}: set [api] port (or [api] host) in config.toml to a free one, "
            "or stop what holds it (`ss -ltnp` shows it)")

AdapterFactory = Callable[[InboundHandler], Iterable[Adapter]]
SWEEP_EVERY = 60.0
MAX_NATIVE_COMMANDS = 90


class Gateway:
    def __init__(self, config: Config, home: Home, *, adapter_factory: AdapterFactory | None = None,
                 grace: float = 30.0, retry_policy: RetryPolicy | None = None, cache_size: int = 256,
                 idle_seconds: float = 600.0) -> None:
        self.config = config
        self.home = home
        self.grace = grace
        self._adapter_factory = adapter_factory
        self._retry_policy = retry_policy or RetryPolicy()
        self._cache_size = cache_size
        self._idle_seconds = idle_seconds
        self.router = Router(config)  # validates [[teams]] before anything starts
        self.metrics = Metrics()
        self.token: TokenSource | None = None
        self.web_sessions: WebSessions | None = None
        self.runtime: Runtime | None = None
        self.adapters: dict[str, Adapter] = {}
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._outbox: asyncio.Task[None] | None = None
        self.node: Any = None   # gateway.cluster.node.Node: this process's duties in the cluster
        self._stopping = False
        self._stop_begun = False
        self.turns: TurnClaims | None = None
        self.wakeups: Wakeups | None = None
        # messages taken here whose attachments came downloaded (the inbox keeps no file bytes):
        # run here, they keep them; run by another process, it has the files' URLs only
        self._with_files: OrderedDict[int, InboundMessage] = OrderedDict()
        self.url = ""
        self.model_check = ModelCheck("unchecked", config.model.name)

    # -- start -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        auth: TokenAuth | None = None
        if self.config.api.enabled:
            self.token = resolve_token(self.config.api.token, self.home.secrets_file)
            auth = TokenAuth(self.token.token)  # raises WeakTokenError before anything is opened
        runtime = self.runtime = await Runtime.open(self.config, self.home,
                                                    model_workers=self.config.agent.model_workers)
        try:
            await self._start_components(runtime, auth)
        except BaseException:
            await self._close_everything()
            raise

    async def _start_components(self, runtime: Runtime, auth: TokenAuth | None) -> None:
        self.pairing = Pairing(runtime.store)
        self.access = AccessControl(self.router, self.pairing)
        self.dedup = MessageDeduplicator(runtime.store)
        self.inbox = Inbox(runtime.store)
        self.delivery = Delivery(runtime.store, self.metrics, self._retry_policy)
        self.dispatcher = Dispatcher(runtime, self.metrics, cache_size=self._cache_size,
                                     idle_seconds=self._idle_seconds)
        self.turns = TurnClaims(runtime.store, new_process_id(), self._run_row,
                                exclusive=not runtime.store.db.is_postgresql,
                                forget=self.dispatcher.forget_key, on_stop=self.dispatcher.stop)
        self.wakeups = Wakeups(runtime.store)
        self.wakeups.on(TURN_STOP, self.turns.wake)
        runtime.services["wakeups"] = self.wakeups
        self.dispatcher.remote_stop = self._remote_stop
        runtime.services["send_message"] = self.send_message
        runtime.services["announce"] = self.announce
        runtime.services["usage_hook"] = self.metrics.record_usage  # review tokens reach /metrics too
        from gateway.cron.wiring import install_cron

        self.cron = install_cron(runtime)  # the `cron` tool and runtime.services["cron"]
        from gateway.approvals import install_approvals

        install_approvals(runtime)  # services["approvals"] and a button_handler routing presses by prefix
        self.adapters = {a.name: a for a in self._build_adapters()}
        if auth is not None:
            completions = ChatCompletions(ApiTurns(self.dispatcher, self.router, self.metrics, self.turns))
            self.web_sessions = WebSessions(runtime.store, self.config.api.session_hours)
            api = ApiApp(auth, completions, self.metrics.render, self.metrics.content_type, self.health,
                         sessions=self.web_sessions,
                         clients=ClientView(tuple(parse_proxies(self.config.api.trusted_proxies))))
            for adapter in self.adapters.values():
                if hasattr(adapter, "attach_routes"):
                    api.attach(adapter)
            from gateway.dashboard import install_dashboard

            install_dashboard(api, self)  # /dashboard, /skills, /learning, ... behind the same token
            self._runner = web.AppRunner(api.app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.config.api.host, self.config.api.port)
            try:
                await site.start()
            except OSError as exc:
                raise PortUnavailableError(port_problem(self.config.api.host, self.config.api.port, exc)) from exc
            host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
            shown = f"[{host}]" if ":" in host else host
            self.url = f"http://{shown}:{port}/"
        # rows taken before their session was recorded (a home from before revision 0009)
        if self.adapters:
            await self.inbox.route_unrouted(lambda message: self.router.route(message).key)
        for adapter in self.adapters.values():
            if getattr(adapter, "single_consumer", False):
                await adapter.start(receive=False)   # connected for sending; polling is a duty
            else:
                await adapter.start()
        if self.adapters:
            commands = list(BUILTIN_COMMANDS)
            builtin = {name for name, _ in commands}
            skills = await self.dispatcher.commands.skill_names()
            commands += [(n, d) for n, d in skills if n not in builtin][:MAX_NATIVE_COMMANDS - len(commands)]
            for adapter in self.adapters.values():
                if hasattr(adapter, "set_commands"):
                    try:
                        await adapter.set_commands(commands)
                    except Exception as exc:  # noqa: BLE001 - native commands are a convenience
                        log.warning("%s: could not register slash commands: %s", adapter.name, exc)
        await runtime.services["learning"].resume(idle_sweeper=False)  # reviews a killed process left run again
        # sessions whose messages an earlier process took and never answered (it crashed, or had to
        # stop first) are claimed and answered here once, in arrival order (gateway/turns.py)
        await self.wakeups.start()
        await self.turns.start()
        from gateway.cluster.wiring import build_node

        # the duties (Telegram polling, cron, idle reviews, curator, maintenance) start where this
        # process gets their lease: at once on SQLite or as the first process, later on a handover.
        # After the recovery: a poller's first updates must not wait on it (their turns queue behind it).
        self.node = build_node(self)
        await self.node.start()
        if runtime.store.db.is_postgresql and runtime.workspaces_root == self.home.workspaces_dir:
            log.warning("workspaces: %s is this process's own; another gateway process running a session's "
                        "next turn will not see its files: set [tools] workspaces_dir to a directory every "
                        "process shares", runtime.workspaces_root)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="gateway-sweeper")
        if self.adapters:  # what `hermes cron run` (another process) hands over through the store
            self._outbox = asyncio.create_task(
                relay_outbox(runtime.store, self.send_message, f"{socket.gethostname()}:{os.getpid()}"),
                name="outbox-relay")

    def _build_adapters(self) -> list[Adapter]:
        if self._adapter_factory is not None:
            return list(self._adapter_factory(self.on_event))
        try:
            from gateway.adapter_factory import build_adapters
        except ModuleNotFoundError as exc:
            if exc.name != "gateway.adapter_factory":
                raise
            enabled = [p for p in ("telegram", "discord", "slack") if getattr(self.config, p).enabled]
            if enabled:
                log.warning("platform adapters are not installed in this build; %s will not connect "
                            "(the web chat and API still run)", ", ".join(enabled))
            return []
        return list(build_adapters(self.config, self.on_event))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                self.dispatcher.sweep()
                await self.dedup.prune()
                await self.delivery.prune()
                if self.web_sessions is not None:
                    await self.web_sessions.prune()
            except Exception:
                log.exception("housekeeping failed")

    # -- inbound -----------------------------------------------------------------------------------------
    async def on_event(self, event: InboundEvent) -> None:
        """What adapters call for everything inbound; never raises into the adapter."""
        try:
            if isinstance(event, ButtonPress):
                hook = self.runtime.services.get("button_handler") if self.runtime else None
                if hook is not None:
                    await hook(event)
                return
            await self._on_message(event)
        except ShuttingDown:
            log.info("%s: message arrived during shutdown; not answered", getattr(event, "platform", "?"))
            if isinstance(event, InboundMessage) and hasattr(self, "dedup"):
                # Not taken: forget its dedup key, so a redelivery to the next process is answered.
                try:
                    await self.dedup.forget(event.platform, dedup_key(event))
                except Exception:
                    log.exception("could not forget the dedup key of a refused %s message", event.platform)
        except Exception:
            self.metrics.errors.labels("inbound").inc()
            log.exception("could not handle an inbound %s event", getattr(event, "platform", "?"))

    async def _on_message(self, message: InboundMessage) -> None:
        """One platform message: taken durably into its session's queue (inbox + dedup in one
        write), then offered to this process's turn claims (gateway/turns.py); the process that
        holds the session's claim answers it, in arrival order. A command answered at once
        (`/stop`, `/help`, ...) is answered here, without waiting for the session's turn."""
        if self._stopping or self.runtime is None or self.turns is None:
            return
        if message.platform not in self.adapters:
            log.warning("message from unknown platform %r dropped", message.platform)
            return
        key = self.router.route(message).key
        if _answered_at_once(message.text):
            if not await self.dedup.first_time(message.platform, dedup_key(message)):
                self.metrics.duplicates.labels(message.platform).inc()
                return
            await self._answer_row(message, None)
            return
        inbox_id = await self.inbox.take(message, dedup_key(message), session_key=key)
        if inbox_id is None:
            self.metrics.duplicates.labels(message.platform).inc()
            return
        if any(a.data is not None for a in message.attachments):
            self._with_files[inbox_id] = message
            while len(self._with_files) > KEPT_FILES_MESSAGES:
                self._with_files.popitem(last=False)
        self.turns.offer(key)

    async def _remote_stop(self, key: str) -> bool:
        """/stop for a turn another process runs: the request in the store, then its wake-up."""
        assert self.turns is not None and self.wakeups is not None
        asked = await self.turns.request_stop(key)
        if asked:
            await self.wakeups.send(TURN_STOP, key)
        return asked

    async def _run_row(self, row: Any, notice: bool) -> None:
        """Answer one message of a session this process holds (gateway/turns.py): the interrupted
        notice first when an earlier run of the session's turns died (or gave it up after
        `MAX_ATTEMPTS` runs), then its turn, returning once it is settled."""
        pending = self.inbox.decode(row)
        message = self._with_files.pop(pending.id, None) or pending.message
        adapter = self.adapters.get(message.platform)
        if adapter is None:
            log.warning("an unanswered %s message is dropped: the platform is not connected here",
                        message.platform)
            await self.inbox.done(pending.id)
            return
        key = f"{message.platform}:{dedup_key(message)}"
        try:
            if pending.attempts >= MAX_ATTEMPTS:
                log.error("%s: giving up on message %s after %d interrupted runs", message.platform,
                          message.message_id, pending.attempts)
                await self.delivery.send_text(adapter, message.chat_id, GAVE_UP_NOTICE.format(n=pending.attempts),
                                              thread_id=message.thread_id, key=f"{key}:gave-up")
                await self.inbox.done(pending.id)
                return
            if notice:
                log.info("%s: answering message %s again: its turn was interrupted", message.platform,
                         message.message_id)
                await self.delivery.send_text(adapter, message.chat_id, INTERRUPTED_NOTICE,
                                              thread_id=message.thread_id, key=f"{key}:interrupted")
            await self._answer_row(message, pending.id)
        except ShuttingDown:
            return          # left in the inbox: the next holder of the session answers it
        except Exception:
            self.metrics.errors.labels("inbound").inc()
            log.exception("could not answer the %s message %s", message.platform, message.message_id)
            return
        await self.dispatcher.settled(row.session_key)

    async def _answer_row(self, message: InboundMessage, inbox_id: int | None) -> None:
        """Check, route and hand one message to the dispatcher; `inbox_id` is its inbox row (None for
        a command answered at once), ended when its answer is delivered."""
        adapter = self.adapters[message.platform]
        reply: StreamingReply | None = None

        async def done() -> None:
            if inbox_id is not None and (reply is None or not reply.ended):  # else the answer's last post ended it
                await self.inbox.done(inbox_id)

        async def begin(session_id: str) -> bool:
            return inbox_id is not None and await self.inbox.begin(inbox_id, session_id)

        try:
            decision = await self.access.check(message)
            if decision.verdict == "pair":
                log.info("%s: pairing code issued to unknown user %s", message.platform, message.user_id)
                await self.delivery.send_text(adapter, message.chat_id, PAIRING_TEXT.format(code=decision.code),
                                              thread_id=message.thread_id,
                                              key=f"pair:{message.platform}:{dedup_key(message)}")
                await done()
                return
            if decision.verdict == "ignore":
                await done()
                return
            self.metrics.messages_in.labels(message.platform).inc()
            route = self.router.route(message)
            with log_context(session=route.key, platform=message.platform):  # the turn's task inherits it
                ctx = CommandContext(route.key, message.platform, message.chat_id, message.user_id, route.team,
                                     display_name=message.display_name,
                                     shared=route.scope in ("channel", "thread"))
                content = await user_content(message, self.runtime.workspace_for(route.key))
                reply = StreamingReply(self.delivery, adapter, message.chat_id, thread_id=message.thread_id,
                                       reply_to=None if message.is_dm else message.message_id,
                                       key=f"{message.platform}:{dedup_key(message)}", ends_inbox=inbox_id)
                await self.dispatcher.handle(ctx, content, reply, done=done, begin=begin)
        except (ShuttingDown, asyncio.CancelledError):
            raise                                # not answered: the row stays for the next holder
        except Exception:
            if inbox_id is not None:
                await self.inbox.done(inbox_id)  # not answerable (logged by on_event); never retried in a loop
            raise

    # -- services for others (cron delivery) ---------------------------------------------------------------
    async def send_message(self, platform: str, chat_id: str, text: str, thread_id: str | None = None,
                           key: str = "") -> bool:
        """Deliver `text` to a chat (split, retried, kept when it cannot be delivered)."""
        adapter = self.adapters.get(platform)
        if adapter is None:
            raise ValueError(f"platform {platform!r} is not connected (connected: {', '.join(self.adapters) or 'none'})")
        return bool(await self.delivery.send_text(adapter, chat_id, text, thread_id=thread_id, key=key))

    async def announce(self, session: SessionRecord, text: str) -> None:
        """Post what the learning loop learned to the chat the session lives in."""
        if session.platform in self.adapters and session.chat_id:
            await self.send_message(session.platform, session.chat_id, text, key="learned:" + hashlib.sha1(f"{session.id}:{text}".encode()).hexdigest())
        else:
            log.info("learned (session %s on %s): %s", session.id, session.platform or "?", text)

    async def check_model(self) -> ModelCheck:
        """Probe the configured model once (one tiny call); the result is kept for /healthz."""
        client = self.runtime.llm if self.runtime is not None and self.runtime.model_pool is not None else None
        self.model_check = await check_model(self.config.model, client=client)
        if not self.model_check.ok:
            log.warning("model check: %s", self.model_check.line())
        return self.model_check

    def health(self) -> dict[str, Any]:
        adapters = {name: {"connected": a.status.connected, "last_error": a.status.last_error,
                           "reconnects": a.status.reconnects} for name, a in self.adapters.items()}
        report: dict[str, Any] = {
            "status": "stopping" if self._stopping else "ok",
            "model": self.config.model.name or None,
            "adapters": adapters,
            "busy_sessions": len(self.dispatcher._slots) if hasattr(self, "dispatcher") else 0,
            "model_check": self.model_check.as_dict()}
        if self.model_check.state == "failed":  # still 200: a restart would not fix a configuration problem
            report["problems"] = [f"model: {self.model_check.line()}"]
        if self.node is not None:
            report["role"] = self.node.role
            report["process"] = self.node.process
            report["duties"] = self.node.owned()
        pool = self.runtime.model_pool if self.runtime is not None else None
        if pool is not None:
            workers = pool.status()
            report["model_workers"] = {"size": len(workers), "ready": sum(w.ready for w in workers),
                                       "in_flight": sum(w.in_flight for w in workers),
                                       "restarts": sum(w.restarts for w in workers)}
        return report

    # -- stop ------------------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Graceful shutdown: stop receiving, let turns finish within `grace`, persist, close.

        Adapters stop receiving first, while the dispatcher still accepts: whatever an adapter had
        already handed over is taken and answered, and what arrives later is left unconfirmed (or
        refused with a retryable status) for the platform to deliver again to the next process.
        Only then does the gateway stop accepting (the API answers 503 from here on).
        """
        if self._stopping or self._stop_begun:
            return
        self._stop_begun = True

        async def stop_receiving(adapter: Adapter) -> None:
            try:
                await asyncio.wait_for(adapter.stop_receiving(), timeout=15)
            except Exception as exc:  # noqa: BLE001 - one adapter must not stop the shutdown
                log.warning("%s: could not stop receiving cleanly: %s", adapter.name, exc)

        await asyncio.gather(*(stop_receiving(a) for a in self.adapters.values()))
        self._stopping = True
        # the dispatcher takes no new work from here on (close() says so before its first await),
        # while the duties stop and give their leases back (another process takes over at once;
        # the cron scheduler lets running jobs finish within the grace period, as turns do)
        # Sessions' queued messages beyond their running turn stay in the inbox: their claims are
        # released below, so another process answers them now (or this one's next start).
        if self.turns is not None:
            self.turns.stop_taking()
        closing = asyncio.create_task(self.dispatcher.close(self.grace)) if hasattr(self, "dispatcher") else None
        await asyncio.sleep(0)
        try:
            if self.node is not None:
                await self.node.stop()
        finally:
            if closing is not None:
                await closing
        await self._close_everything()

    async def _close_everything(self) -> None:
        for task in (self._outbox, self._sweeper):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.turns is not None and self.runtime is not None:
            await self.turns.close()        # frees this process's sessions for the others at once
        if self.wakeups is not None:
            await self.wakeups.close()
        if self.node is not None:
            try:
                await self.node.stop()
            except Exception as exc:  # noqa: BLE001 - the leases end with the store connection anyway
                log.warning("cluster: could not leave cleanly: %s", exc)
        if self.runtime is not None:
            await self.runtime.drain(timeout=self.grace)
            for task in list(self.runtime.background):
                task.cancel()
            await asyncio.gather(*self.runtime.background, return_exceptions=True)
        for adapter in self.adapters.values():
            try:
                await asyncio.wait_for(adapter.stop(), timeout=10)
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: did not stop cleanly: %s", adapter.name, exc)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None


def _answered_at_once(text: str) -> bool:
    """`/stop` and the commands answered without a turn do not wait in the session's queue."""
    command = parse_command(text) if text.startswith("/") else None
    return command is not None and (command.name == "stop" or command.name in IMMEDIATE)
