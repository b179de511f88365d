"""A model worker process: makes LiteLLM calls for its parent over a socket.

Started by `agent.model_pool.ModelWorkerPool` as `python -m agent.model_worker FD`, where FD is
its end of a socket pair. Frames in both directions are a 4-byte big-endian length and a JSON
object:

- worker -> parent: `{"ready": true}` once LiteLLM is imported; then for each call
  `{"id": N, "delta": "..."}` while streaming and finally `{"id": N, "result": {...}}` (an
  `LLMResponse`) or `{"id": N, "error": {...}}` (a `CallFailure`);
- parent -> worker: `{"id": N, "call": {...}}` (a `CallRequest`) and `{"id": N, "cancel": true}`.

Calls run concurrently, each in its own task. The worker exits when the parent closes its end
(including when the parent dies), and ignores the terminal's Ctrl-C, which is the parent's to handle.

Its stderr is the gateway's terminal: only errors are written there, each redacted first (the
environment's secrets, every API key a call has carried, secret shapes), and LiteLLM's own
loggers print nothing of their own (`import_litellm` removes their stream handler).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import struct
import sys
from typing import Any

from agent.heap import freeze_heap
from agent.log_redaction import RedactingFilter
from agent.model_call import CallFailure, CallRequest, LiteLLMCaller, import_litellm
from agent.redact import Redactor

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024

log = logging.getLogger("hermes.model_worker")


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame; raises `asyncio.IncompleteReadError` when the other side closed."""
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"model worker frame of {size} bytes is larger than {MAX_FRAME}")
    return json.loads(await reader.readexactly(size))


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def setup_worker_logging() -> RedactingFilter:
    """Errors only, to stderr, redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("model worker: %(levelname)s %(name)s: %(message)s"))
    redacting = RedactingFilter(Redactor.from_environ())
    handler.addFilter(redacting)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.ERROR)
    return redacting


class Worker:
    """Serves calls from one parent connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 redacting: RedactingFilter | None = None) -> None:
        self.reader, self.writer = reader, writer
        self.caller = LiteLLMCaller()
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.redacting = redacting

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(encode_frame(message))
        await self.writer.drain()

    async def serve(self) -> None:
        await asyncio.to_thread(import_litellm)
        freeze_heap()
        await self.send({"ready": True})
        try:
            while True:
                frame = await read_frame(self.reader)
                call_id = int(frame["id"])
                if "call" in frame:
                    request = CallRequest.from_json(frame["call"])
                    if self.redacting is not None:
                        self.redacting.learn(request.api_key)
                    task = asyncio.create_task(self.run(call_id, request))
                    self.tasks[call_id] = task
                    task.add_done_callback(lambda _t, i=call_id: self.tasks.pop(i, None))
                elif frame.get("cancel") and call_id in self.tasks:
                    self.tasks[call_id].cancel()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the parent closed its end or died: nothing left to serve
        finally:
            for task in list(self.tasks.values()):
                task.cancel()

    async def run(self, call_id: int, request: CallRequest) -> None:
        async def on_delta(text: str) -> None:
            await self.send({"id": call_id, "delta": text})

        try:
            response = await self.caller.call(request, on_delta if request.stream else None)
            await self.send({"id": call_id, "result": response.to_json()})
        except asyncio.CancelledError:
            return
        except CallFailure as failure:
            await self._try_send({"id": call_id, "error": failure.to_json()})
        except Exception as exc:  # noqa: BLE001 - the parent must hear about every failure
            failure = CallFailure("fatal", type(exc).__name__, str(exc))
            await self._try_send({"id": call_id, "error": failure.to_json()})

    async def _try_send(self, message: dict[str, Any]) -> None:
        try:
            await self.send(message)
        except ConnectionError:
            pass


async def main(fd: int, redacting: RedactingFilter | None = None) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        await Worker(reader, writer, redacting).serve()
    finally:
        writer.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(main(int(sys.argv[1]), setup_worker_logging()))
