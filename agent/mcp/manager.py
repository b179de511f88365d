"""Connections to MCP servers with the official `mcp` SDK: start, list tools, call, supervise.

    manager = McpManager(config.mcp, log_dir=home.logs_dir)
    await manager.start()                 # every enabled server at once; failures are logged and skipped
    result = await manager.servers["files"].call("read", {"path": "a.txt"})
    await manager.close()

Each server is held open by one owner task (the SDK's anyio contexts must be entered and left in
the same task); calls come from any task. A call that finds the connection closed restarts the
server and retries once. A background supervisor pings running servers every `health_interval`
seconds and restarts dead ones with exponential backoff (`restart_delay` doubling up to
`max_restart_delay`); a server that never started is reported once and left alone (its tools
were never offered). A stdio server's stderr goes to `log_dir/mcp-NAME.log`; when it fails to
start, the last lines of that log are part of the reported reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import mcp_types as types
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from agent.mcp.settings import McpConfig, McpServerConfig

log = logging.getLogger(__name__)

State = Literal["stopped", "starting", "running", "failed"]


class McpCallError(Exception):
    """A tool call that could not be answered (server down, timeout, protocol error)."""


class _ConnectionLost(Exception):
    pass


@dataclass
class ServerStatus:
    """What `hermes mcp list` shows about one server."""

    name: str
    transport: str
    state: State
    error: str = ""
    tools: list[str] = field(default_factory=list)
    restarts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "transport": self.transport, "state": self.state, "error": self.error,
                "tools": list(self.tools), "restarts": self.restarts}


class McpServer:
    """One configured server: its connection, state and restart bookkeeping."""

    def __init__(self, settings: McpServerConfig, *, restart_delay: float = 1.0,
                 max_restart_delay: float = 60.0, log_dir: Path | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.log_dir = log_dir
        self.state: State = "stopped"
        self.error = ""
        self.tools: list[types.Tool] = []
        self.restarts = 0
        self.failures = 0          # consecutive failed starts, for the backoff
        self.next_attempt = 0.0    # monotonic time before which no restart is tried
        self.generation = 0        # bumped on every successful start
        self._session: ClientSession | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._errlog: IO[str] | None = None

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> ServerStatus:
        return ServerStatus(self.name, self.settings.transport, self.state, self.error,
                            [t.name for t in self.tools], self.restarts)

    @property
    def log_file(self) -> Path | None:
        return self.log_dir / f"mcp-{self.name}.log" if self.log_dir else None

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> bool:
        """Connect, initialize and list tools; on failure record the reason and return False."""
        async with self._lock:
            return await self._start_locked()

    async def _start_locked(self) -> bool:
        await self._stop_locked()
        self.state = "starting"
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._hold(ready, self._stop), name=f"mcp-{self.name}")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.settings.startup_timeout)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and not ready.done():
                await self._stop_locked()
                raise
            reason = (f"did not answer within {self.settings.startup_timeout:g}s"
                      if isinstance(exc, asyncio.TimeoutError) else describe(exc))
            if self._owner is not None and not self._owner.done():
                self._owner.cancel()  # stuck before it could wait for `stop`
            await self._stop_locked()
            if ready.done() and not ready.cancelled():
                ready.exception()  # retrieved: it is reported below
            self._failed(f"could not start: {reason}{self._stderr_tail()}")
            return False
        self.state = "running"
        self.error = ""
        self.failures = 0
        self.generation += 1
        return True

    def _failed(self, reason: str) -> None:
        self.state = "failed"
        self.error = reason
        self.failures += 1
        delay = min(self.max_restart_delay, self.restart_delay * 2 ** (self.failures - 1))
        self.next_attempt = time.monotonic() + delay
        log.warning("MCP server %s %s (next try in %.1fs)", self.name, reason, delay)

    async def _hold(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        """The owner task: open the transport and session, publish them, wait for `stop`."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                tools: list[types.Tool] = []
                cursor: str | None = None
                while True:
                    params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
                    listing = await session.list_tools(params=params)
                    tools.extend(listing.tools)
                    cursor = listing.next_cursor
                    if not cursor:
                        break
                self.tools = tools
                self._session = session
                if not ready.done():
                    ready.set_result(None)
                await stop.wait()
        except BaseException as exc:  # noqa: BLE001 - reported through `ready` or the log
            if not ready.done():
                if isinstance(exc, Exception):
                    ready.set_exception(exc)
                else:
                    ready.cancel()  # nobody waits any more (startup timed out, or shutdown)
            elif not isinstance(exc, asyncio.CancelledError):
                log.debug("MCP server %s connection ended: %s", self.name, describe(exc))
        finally:
            self._session = None

    def _transport(self) -> contextlib.AbstractAsyncContextManager[Any]:
        s = self.settings
        if s.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=s.command, args=list(s.args), env=dict(s.env) or None,
                                           cwd=s.cwd or None)
            return stdio_client(params, errlog=self._open_errlog())
        return _http_transport(s)

    def _open_errlog(self) -> IO[str]:
        if self._errlog is None or self._errlog.closed:
            if self.log_file is not None:
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                self._errlog = open(self.log_file, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
            else:
                self._errlog = open("/dev/null", "w", encoding="utf-8")  # noqa: SIM115
        return self._errlog

    def _stderr_tail(self, lines: int = 5) -> str:
        if self.log_file is None or not self.log_file.is_file():
            return ""
        with contextlib.suppress(OSError):
            tail = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:]
            if tail:
                return f"; its stderr ended with: {' | '.join(line.strip() for line in tail)}"
        return ""

    async def stop(self) -> None:
        async with self._lock:
            await self._stop_locked()
            self.state = "stopped"
            if self._errlog is not None:
                self._errlog.close()
                self._errlog = None

    async def _stop_locked(self) -> None:
        owner, self._owner = self._owner, None
        if self._stop is not None:
            self._stop.set()
        self._session = None
        if owner is not None and not owner.done():
            try:
                await asyncio.wait_for(asyncio.shield(owner), 10)
            except TimeoutError:
                owner.cancel()
            except asyncio.CancelledError:
                if not owner.cancelled():
                    raise  # we are being cancelled, not the owner
            if not owner.done():
                with contextlib.suppress(BaseException):
                    await owner

    async def restart(self, reason: str, *, seen_generation: int | None = None) -> bool:
        """Restart unless someone already did since `seen_generation`; respects the backoff."""
        async with self._lock:
            if seen_generation is not None and self.generation != seen_generation and self.state == "running":
                return True
            if self.state == "failed" and time.monotonic() < self.next_attempt:
                return False
            log.warning("MCP server %s: %s; restarting", self.name, reason)
            self.restarts += 1
            return await self._start_locked()

    # -- calls ------------------------------------------------------------------------------------
    async def ping(self) -> bool:
        session = self._session
        if session is None or self.state != "running":
            return False
        try:
            await asyncio.wait_for(session.send_ping(), min(10.0, self.settings.timeout))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not alive"
            return False

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call a tool; a lost connection restarts the server and retries once."""
        if self.state != "running" or self._session is None:
            if not await self.restart("called while down"):
                raise McpCallError(f"MCP server {self.name} is not running ({self.error or self.state})")
        generation = self.generation
        try:
            return await self._call_once(tool, arguments)
        except _ConnectionLost as exc:
            if not await self.restart(f"connection lost during a call ({exc})", seen_generation=generation):
                raise McpCallError(f"MCP server {self.name} stopped and could not be restarted: {self.error}") from exc
        try:
            return await self._call_once(tool, arguments)
        except _ConnectionLost as exc:
            raise McpCallError(f"MCP server {self.name} stopped again after a restart: {exc}") from exc

    async def _call_once(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        session = self._session
        if session is None:
            raise _ConnectionLost("not connected")
        timeout = self.settings.timeout
        try:
            result = await asyncio.wait_for(
                session.call_tool(tool, arguments, read_timeout_seconds=timeout), timeout + 1)
        except TimeoutError as exc:
            raise McpCallError(f"{self.name}: {tool} timed out after {timeout:g}s") from exc
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                raise _ConnectionLost(exc.message) from exc
            if exc.code == types.REQUEST_TIMEOUT:
                raise McpCallError(f"{self.name}: {tool} timed out after {timeout:g}s") from exc
            raise McpCallError(f"{self.name}: {tool}: {exc.message}") from exc
        except (OSError, EOFError) as exc:
            raise _ConnectionLost(describe(exc)) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("anyio", "httpx")):
                raise _ConnectionLost(describe(exc)) from exc
            raise
        if not isinstance(result, types.CallToolResult):
            raise McpCallError(f"{self.name}: {tool} answered with an unexpected {type(result).__name__}")
        return result


@contextlib.asynccontextmanager
async def _http_transport(settings: McpServerConfig) -> Any:
    """Streamable HTTP with the configured headers, on the SDK's own HTTP client."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client(headers=dict(settings.headers) or None) as http:
        async with streamable_http_client(settings.url, http_client=http) as streams:
            yield streams[0], streams[1]


def describe(exc: BaseException) -> str:
    """A one-line reason, looking inside exception groups (anyio wraps everything in them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpManager:
    """All configured servers, started together and supervised in the background."""

    def __init__(self, settings: McpConfig, *, log_dir: Path | None = None) -> None:
        self.settings = settings
        self.servers: dict[str, McpServer] = {
            s.name: McpServer(s, restart_delay=settings.restart_delay,
                              max_restart_delay=settings.max_restart_delay, log_dir=log_dir)
            for s in settings.servers if s.enabled
        }
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self, *, supervise: bool = True) -> None:
        """Start every server concurrently; one that fails is logged and left out."""
        if not self.servers:
            return
        results = await asyncio.gather(*(s.start() for s in self.servers.values()))
        for server, ok in zip(self.servers.values(), results):
            if ok:
                log.info("MCP server %s: %d tools", server.name, len(server.tools))
        if supervise and self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="mcp-supervisor")

    def statuses(self) -> list[ServerStatus]:
        return [s.status() for s in self.servers.values()]

    async def _supervise(self) -> None:
        interval = self.settings.health_interval
        while True:
            now = time.monotonic()
            due = [s.next_attempt for s in self.servers.values() if s.state == "failed" and s.generation > 0]
            await asyncio.sleep(max(0.0, min([interval, *(d - now for d in due)])))
            for server in list(self.servers.values()):
                try:
                    if server.state == "running" and not await server.ping():
                        await server.restart("stopped answering pings", seen_generation=server.generation)
                    elif (server.state == "failed" and server.generation > 0
                          and time.monotonic() >= server.next_attempt):
                        await server.restart("retrying after a failure")
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("MCP supervisor: checking %s failed", server.name)

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await asyncio.gather(*(s.stop() for s in self.servers.values()), return_exceptions=True)
