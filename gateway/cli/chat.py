"""`hermes chat`: talk to the agent in the terminal, or answer one question with `-q` for scripts.

The agent works in the current folder (`--workspace DIR` picks another): its file tools and the
terminal tool see that folder and nothing outside it. Interactive `hermes chat` starts a new
session and `--continue` (`-c`) resumes the last terminal session; `-q TEXT` answers once in a new
session named after the question and prints only the answer. The terminal user is `cli:local`
(see `gateway.cli.identity`, `hermes whoami`).

Interactive mode shows the prompt at once and opens the runtime, then LiteLLM, in the
background while the user types; keys, the status line and streaming are in
`gateway.cli.terminal_ui`, the slash commands in `gateway.cli.chat_commands`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.common import config_option, fail, load, plural

T = TypeVar("T")


def _require_model(config: Any) -> None:
    if not config.model.name:
        from gateway.config import MODEL_HELP

        fail(MODEL_HELP, code=2)


async def _in_daemon_thread(work: Callable[[], T]) -> T:
    """Run blocking `work` (imports) in a daemon thread: quitting never waits for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            failure = exc
            loop.call_soon_threadsafe(lambda: future.done() or future.set_exception(failure))
        else:
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(result))

    threading.Thread(target=run, name="hermes-preload", daemon=True).start()
    return await future


def _import_runtime() -> None:
    import gateway.commands
    import gateway.runtime
    import gateway.sessions  # noqa: F401 - loaded here, in a thread, so the prompt stays responsive


def _preload_litellm() -> None:
    from agent.llm import import_litellm

    import_litellm()


async def _settled(future: asyncio.Future[None]) -> None:
    """Wait for a preload; its failure is reported by the model call that needs it."""
    with contextlib.suppress(Exception):
        await future


def _start_up_done() -> None:
    """Start-up allocates a few hundred thousand objects that live as long as the process (the
    imports): the collector is off while they are made, then they are frozen out of its way."""
    import gc

    from agent.heap import freeze_heap

    freeze_heap()
    gc.enable()


async def _one_shot(question: str, config_path: Path | None, model: str | None, session_id: str | None,
                    resume: bool, folder: Path) -> int:
    from agent.llm import LLMError
    from gateway.cli.identity import SessionNotFound, one_shot_key, pick_session
    from gateway.runtime import Runtime
    from gateway.sessions import SessionService

    config, home = load(config_path)
    config = config.with_model(model)
    _require_model(config)
    # LiteLLM's import (seconds) overlaps opening the store and the skill library
    preload = asyncio.ensure_future(_in_daemon_thread(_preload_litellm))
    runtime = await Runtime.open(config, home)
    try:
        await _settled(preload)
        _start_up_done()
        session = await pick_session(runtime, session_id=session_id, resume=resume, key=one_shot_key(question))
        runtime.pin_workspace(session.key, folder)
        result = await SessionService(runtime).run_turn(session, question, stream=False)
        await runtime.drain()
    except SessionNotFound as exc:
        fail(str(exc))
    except LLMError as exc:
        fail(str(exc))
    finally:
        await runtime.close()
    click.echo(result.text)
    if result.status != "done":
        click.echo(f"hermes: turn ended early ({result.status})", err=True)
        return 1
    return 0


class ConfigRefused(Exception):
    """The config did not load; the reason has been printed."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exit {code}")
        self.code = code


class _Chat:
    """One interactive terminal session: the runtime (opened in the background) and the loop."""

    def __init__(self, load_config: Callable[[], tuple[Any, Any]], model_name: str, folder: Path,
                 session_id: str | None, resume: bool) -> None:
        from rich.console import Console

        from gateway.cli.terminal_ui import LineReader

        self.load_config, self.model_name, self.folder = load_config, model_name, folder
        self.config: Any = None
        self.session_id, self.resume = session_id, resume
        self.console = Console(highlight=False)
        self.reader = LineReader()
        self.runtime: Any = None
        self.session: Any = None
        self._opening: asyncio.Task[None] | None = None
        self._preload: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        from gateway.cli.chat_commands import TerminalCommands
        from gateway.cli.identity import CLI_SESSION_KEY, pick_session

        self.config, home = await _in_daemon_thread(self._load)  # pydantic: off the prompt's path
        await _in_daemon_thread(_import_runtime)
        from gateway.runtime import Runtime
        from gateway.sessions import SessionService

        runtime = await Runtime.open(self.config, home)
        try:
            self.session = await pick_session(runtime, session_id=self.session_id, resume=self.resume,
                                              key=CLI_SESSION_KEY)
        except BaseException:
            await runtime.close()
            raise
        runtime.pin_workspace(self.session.key, self.folder)
        runtime.services["announce"] = self._announce  # "Learned ..." after a review
        runtime.services["announce_memory"] = self._announce  # and "Remembered about you: ..."
        self.service = SessionService(runtime)
        self.commands = TerminalCommands(runtime)
        self.runtime = runtime
        self.history = len(await runtime.store.load_messages(self.session.id))
        self._preload = asyncio.create_task(self._warm_up(), name="preload-litellm")

    async def _announce(self, _session: Any, text: str) -> None:
        """What a review learned, printed as the gateway posts it to a chat."""
        await self.reader.show(lambda: self.console.print(text, style="green", markup=False))

    async def _warm_up(self) -> None:
        """LiteLLM takes seconds to import: do it while the user types, then freeze the heap."""
        if self.runtime.model_pool is None:
            await _settled(asyncio.ensure_future(_in_daemon_thread(_preload_litellm)))
        _start_up_done()

    def _load(self) -> tuple[Any, Any]:
        try:
            return self.load_config()
        except SystemExit as exc:  # `fail` printed why; a task must not raise SystemExit (it stops the loop)
            raise ConfigRefused(int(exc.code or 2)) from None

    async def ready(self) -> bool:
        """Wait for the runtime; False (after saying why) when it could not open."""
        from gateway.cli.identity import SessionNotFound

        assert self._opening is not None
        try:
            await self._opening
        except SessionNotFound as exc:
            self.console.print(f"hermes: error: {exc}", style="red", markup=False)
            return False
        except ConfigRefused as exc:  # the config did not validate: the reason is printed already
            self.exit_code = exc.code
            return False
        if self.history and self.resume:
            self.console.print(f"(resumed session {self.session.id}: {plural(self.history, 'message')})", style="dim")
            self.history = 0
        return True

    def banner(self) -> str:
        return (f"[bold]Hermes[/bold] · model {self.model_name} · working in {self.folder}\n"
                "[dim]/help lists the commands and skills · Ctrl-C stops an answer · Ctrl-D quits[/dim]")

    async def _read_first(self) -> str:
        """The first line; if opening fails meanwhile (a bad config), stop asking and raise Quit."""
        from gateway.cli.terminal_ui import Quit

        assert self._opening is not None
        reading = asyncio.ensure_future(self.reader.read())
        await asyncio.wait({reading, self._opening}, return_when=asyncio.FIRST_COMPLETED)
        if not reading.done() and self._opening.exception() is not None:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Quit):
                await reading
            raise Quit()
        return await reading

    async def run(self) -> int:
        from gateway.cli.terminal_ui import Quit

        self.exit_code = 0
        self.console.print(self.banner())
        self._opening = asyncio.create_task(self._open(), name="open-runtime")
        first = True
        try:
            if self.resume and not await self.ready():
                return self.exit_code or 1
            while True:
                try:
                    line = await (self._read_first() if first else self.reader.read())
                except Quit:
                    if first and self._opening.done() and not await self.ready():
                        return self.exit_code or 1
                    break
                first = False
                text = line.strip()
                if not text:
                    continue
                if text in ("/exit", "/quit"):
                    break
                if not await self.ready():
                    return self.exit_code or 1
                outcome = await self.commands.handle(text, self.session, self.console.width)
                if outcome.quit:
                    break
                if outcome.session is not None:
                    self.session = outcome.session
                    self.runtime.pin_workspace(self.session.key, self.folder)
                if outcome.reply:
                    self.console.print(outcome.reply, markup=False)
                if outcome.prompt:
                    await self.turn(outcome.prompt)
        finally:
            await self.close()
        return 0

    async def turn(self, text: str) -> None:
        from agent.llm import LLMError
        from gateway.cli.terminal_ui import TurnView, typeahead_hidden

        loop = asyncio.get_running_loop()
        interrupt = asyncio.Event()
        view = TurnView(self.console)

        async def approve(tool: str, description: str) -> bool:
            view.pause()
            answer = await self.reader.ask(f"Allow {tool} to {description}? [y/N]")
            loop.add_signal_handler(signal.SIGINT, interrupt.set)
            view.status("thinking")
            return answer.strip().lower() in ("y", "yes")

        loop.add_signal_handler(signal.SIGINT, interrupt.set)
        try:
            with typeahead_hidden():
                view.status("thinking")
                result = await self.service.run_turn(self.session, text, on_event=view, interrupt=interrupt,
                                                     approve=approve)
        except LLMError as exc:
            view.finish()
            self.console.print(f"The model could not answer: {exc}", style="red", markup=False)
            return
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            view.finish()
        if result.status == "interrupted":
            self.console.print("Stopped.", style="yellow")
        elif result.text and not self.config.model.stream:
            from rich.markdown import Markdown

            self.console.print(Markdown(result.text))
        elif result.status == "max_iterations":
            self.console.print("(step limit reached for this turn)", style="yellow")

    async def close(self) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # leaving anyway
                await self._opening
        if self.runtime is not None:
            await self.runtime.drain()
            await self.runtime.close()
            self.console.print(f"[dim]Session {self.session.id} saved · `hermes chat -c` resumes it.[/dim]")


def _peek_model(config_path: Path | None, model: str | None) -> str | None:
    """The model's name from --model or the raw TOML, without pydantic (so the prompt shows at once);
    None when only the full load can say what is wrong (then it runs first)."""
    import tomllib

    from gateway.home import Home

    if model:
        return model
    file = config_path or Home.from_env().config_file
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    section = raw.get("model")
    name = section.get("name") if isinstance(section, dict) else None
    return name if isinstance(name, str) and name and "${" not in name else None


def _load_checked(config_path: Path | None, model: str | None) -> tuple[Any, Any]:
    """The validated config (exits 2 with the reason when it is not)."""
    config, home = load(config_path)
    config = config.with_model(model)
    _require_model(config)
    return config, home


async def _interactive(config_path: Path | None, model: str | None, session_id: str | None, resume: bool,
                       folder: Path) -> int:
    name = _peek_model(config_path, model)
    if name is None:  # a missing model or a broken file: say so before any prompt
        _load_checked(config_path, model)
        name = _peek_model(config_path, model) or ""
    return await _Chat(lambda: _load_checked(config_path, model), name, folder, session_id, resume).run()


@click.command()
@click.option("-q", "--query", "question", default=None, help="Answer this once and exit (for scripts).")
@click.option("--model", default=None, help="LiteLLM model string; overrides [model] name.")
@click.option("-c", "--continue", "resume", is_flag=True, help="Resume the last terminal session.")
@click.option("--session", "session_id", default=None, help="Continue the session with this id.")
@click.option("--workspace", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The folder the agent's file and terminal tools work in (default: the current folder).")
@config_option
def chat(question: str | None, model: str | None, resume: bool, session_id: str | None, folder: Path | None,
         config_path: Path | None) -> None:
    """Talk to the agent in the terminal, working in the current folder.

    `hermes chat` starts a new session; `-c` resumes the last one. The terminal user is
    cli:local (`hermes whoami`).
    """
    import gc

    gc.disable()  # until start-up is done (`_start_up_done`)
    folder = (folder or Path.cwd()).resolve()
    if question is not None:
        if not question.strip():
            fail("-q needs a non-empty question")
        _exit_now(asyncio.run(_one_shot(question, config_path, model, session_id, resume, folder)))
    _exit_now(asyncio.run(_interactive(config_path, model, session_id, resume, folder)))


def _exit_now(code: int) -> None:
    """Leave without tearing down the interpreter's heap (LiteLLM's is large: seconds of CPU on a
    busy machine). Everything is closed and written by now; logs and output are flushed here."""
    import logging
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
