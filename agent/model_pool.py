"""A pool of model worker processes, so LiteLLM's per-call CPU work can use more than one core.

LiteLLM spends several milliseconds of CPU on every call (building the request through the
OpenAI SDK, parsing the answer, cost accounting). In one asyncio process that caps a busy
gateway at one core. `ModelWorkerPool` is a `ModelCaller` that sends each call to the least busy
of N worker processes (`agent.model_worker`) over a socket pair and streams the answer back; the
agent loop, the store and the platforms stay in the gateway process.

A worker that dies fails its in-flight calls as retryable (the LLM client retries them on
another worker) and is restarted with backoff. Calls made before any worker is ready wait for
one, up to `start_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from agent.model_call import CallFailure, CallRequest, DeltaCallback, LLMResponse
from agent.model_worker import encode_frame, read_frame

log = logging.getLogger(__name__)

RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
FAILURES_BEFORE_GIVING_UP = 2  # calls fail at once (not after start_timeout) when no worker ever starts
STABLE_AFTER = 60.0  # a worker up this long resets the restart backoff


@dataclass
class _Worker:
    slot: int
    process: asyncio.subprocess.Process
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Queue[tuple[str, Any]]] = field(default_factory=dict)
    ready: bool = False
    alive: bool = True

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))
        await self.writer.drain()

    def fail_pending(self, reason: str) -> None:
        failure = CallFailure("retryable", "ModelWorkerExited", reason).to_json()
        for queue in self.pending.values():
            queue.put_nowait(("error", failure))


@dataclass(frozen=True)
class WorkerStatus:
    slot: int
    pid: int | None
    ready: bool
    in_flight: int
    restarts: int


class ModelWorkerPool:
    """`size` worker processes making model calls; start with `start()`, stop with `close()`."""

    def __init__(self, size: int, *, start_timeout: float = 120.0, python: str = sys.executable) -> None:
        if size < 1:
            raise ValueError("a model worker pool needs at least one worker")
        self.size = size
        self.start_timeout = start_timeout
        self.python = python
        self._workers: dict[int, _Worker] = {}
        self._restarts = [0] * size
        self._failing = [0] * size  # exits in a row without ever becoming ready, per slot
        self._supervisors: list[asyncio.Task[None]] = []
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._closing = False
        self._last_exit = ""

    async def start(self) -> None:
        """Start the workers; returns at once (each imports LiteLLM for a few seconds)."""
        self._supervisors = [asyncio.create_task(self._supervise(slot), name=f"model-worker-{slot}")
                             for slot in range(self.size)]

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until every worker can take calls (for tests and benchmarks)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(
                    lambda: sum(w.ready for w in self._workers.values()) == self.size)

    def status(self) -> list[WorkerStatus]:
        result = []
        for slot in range(self.size):
            worker = self._workers.get(slot)
            result.append(WorkerStatus(slot=slot, pid=worker.process.pid if worker else None,
                                       ready=bool(worker and worker.ready),
                                       in_flight=len(worker.pending) if worker else 0,
                                       restarts=self._restarts[slot]))
        return result

    async def call(self, request: CallRequest, on_delta: DeltaCallback | None = None) -> LLMResponse:
        worker = await self._pick()
        call_id = next(self._ids)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        worker.pending[call_id] = queue
        try:
            if not worker.alive:
                raise CallFailure("retryable", "ModelWorkerExited", f"model worker {worker.slot} exited")
            try:
                await worker.send({"id": call_id, "call": request.to_json()})
            except (ConnectionError, RuntimeError) as exc:
                raise CallFailure("retryable", "ModelWorkerExited", f"model worker {worker.slot}: {exc}") from exc
            while True:
                kind, payload = await queue.get()
                if kind == "delta":
                    if on_delta is not None:
                        await on_delta(payload)
                elif kind == "result":
                    return LLMResponse.from_json(payload)
                else:
                    raise CallFailure.from_json(payload)
        except asyncio.CancelledError:
            if worker.alive:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    worker.writer.write(encode_frame({"id": call_id, "cancel": True}))
            raise
        finally:
            worker.pending.pop(call_id, None)

    async def close(self) -> None:
        self._closing = True
        for task in self._supervisors:
            task.cancel()
        for task in self._supervisors:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._supervisors = []

    # -- internals --------------------------------------------------------------------------------
    async def _pick(self) -> _Worker:
        def least_busy() -> _Worker | None:
            ready = [w for w in self._workers.values() if w.ready and w.alive]
            return min(ready, key=lambda w: len(w.pending)) if ready else None

        worker = least_busy()
        if worker is not None:
            return worker
        if self._closing:
            raise CallFailure("fatal", "ModelWorkerExited", "the model worker pool is closed")

        def broken() -> bool:  # every worker has died before becoming ready, more than once
            return min(self._failing) >= FAILURES_BEFORE_GIVING_UP

        try:
            async with asyncio.timeout(self.start_timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: least_busy() is not None or self._closing or broken())
        except TimeoutError:
            raise CallFailure("retryable", "ModelWorkerUnavailable",
                              f"no model worker became ready within {self.start_timeout:.0f}s; "
                              "see the log for why they exit") from None
        worker = least_busy()
        if worker is None and broken() and not self._closing:
            raise CallFailure("fatal", "ModelWorkerUnavailable",
                              f"the model worker processes exit before they are ready ({self._last_exit}); "
                              "see the log above for why")
        if worker is None:
            raise CallFailure("fatal", "ModelWorkerExited", "the model worker pool is closed")
        return worker

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _supervise(self, slot: int) -> None:
        failures = 0
        while not self._closing:
            started = time.monotonic()
            try:
                await self._run_one(slot)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a worker that cannot start is retried, not fatal
                log.exception("model worker %d could not start", slot)
                self._failing[slot] += 1
                self._last_exit = f"worker {slot} could not start: {exc}"
                await self._notify()
            if self._closing:
                return
            failures = 0 if time.monotonic() - started > STABLE_AFTER else failures + 1
            self._restarts[slot] += 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            log.warning("model worker %d: %s; restarting in %.1fs", slot, self._last_exit, delay)
            await asyncio.sleep(delay)

    async def _run_one(self, slot: int) -> None:
        parent_end, child_end = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                self.python, "-m", "agent.model_worker", str(child_end.fileno()),
                pass_fds=(child_end.fileno(),), stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        worker = _Worker(slot=slot, process=process, writer=writer)
        self._workers[slot] = worker
        try:
            await self._read(worker, reader)
        finally:
            self._failing[slot] = 0 if worker.ready else self._failing[slot] + 1
            worker.alive = worker.ready = False
            worker.fail_pending(f"model worker {slot} (pid {process.pid}) exited")
            self._workers.pop(slot, None)
            writer.close()
            await self._stop_process(process)
            self._last_exit = f"worker {slot} exited with status {process.returncode}"
            await self._notify()

    async def _read(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                frame = await read_frame(reader)
                if frame.get("ready"):
                    worker.ready = True
                    await self._notify()
                    continue
                queue = worker.pending.get(int(frame.get("id", 0)))
                if queue is None:
                    continue  # a call that was cancelled meanwhile
                for kind in ("delta", "result", "error"):
                    if kind in frame:
                        queue.put_nowait((kind, frame[kind]))
                        break
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    @staticmethod
    async def _stop_process(process: asyncio.subprocess.Process) -> None:
        """The socket is closed: a healthy worker exits by itself; one that does not is stopped."""
        for stop in (None, process.terminate, process.kill):
            if stop is not None:
                with contextlib.suppress(ProcessLookupError):
                    stop()
            try:
                await asyncio.wait_for(process.wait(), 2.0)
                return
            except TimeoutError:
                continue
