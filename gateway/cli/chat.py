"""`hermes chat`: talk to the agent in the terminal, or answer one question with `-q` for scripts.

Interactive mode renders the reply as Markdown while it streams, shows tool calls as they run,
interrupts the running turn on Ctrl-C, and resumes the last terminal session after a restart
(`/new` starts a fresh one). `-q TEXT` runs one turn in a fresh session (or `--session ID`) and
prints only the answer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, load

CLI_SESSION_KEY = "cli:local"
HELP_TEXT = ("/new  start a fresh conversation    /usage  tokens and cost    /exit  quit    Ctrl-C  stop the turn\n"
             "/<skill-name> [request]  run a skill from the library")


class TerminalRenderer:
    """Shows a turn as it happens: streamed Markdown, tool calls, tool results."""

    def __init__(self, console: Any) -> None:
        from rich.live import Live  # noqa: F401 - imported here to keep --help fast

        self.console = console
        self.live: Any = None
        self.buffer = ""

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        self.buffer = ""

    async def __call__(self, event: Any) -> None:
        from rich.live import Live
        from rich.markdown import Markdown

        from agent.events import ModelFallback, TextDelta, ToolFinished, ToolStarted

        if isinstance(event, TextDelta):
            self.buffer += event.text
            if self.live is None:
                self.live = Live(Markdown(self.buffer), console=self.console, refresh_per_second=12,
                                 vertical_overflow="visible")
                self.live.start()
            else:
                self.live.update(Markdown(self.buffer))
        elif isinstance(event, ToolStarted):
            self._stop_live()
            args = json.dumps(event.arguments, ensure_ascii=False)
            self.console.print(f"[dim]⚙ {event.name}({args[:160]})[/dim]", highlight=False)
        elif isinstance(event, ToolFinished):
            first_line = (event.result.strip().splitlines() or [""])[0][:160]
            mark = "✓" if event.ok else "✗"
            self.console.print(f"[dim]  {mark} {first_line}[/dim]", highlight=False, markup=True)
        elif isinstance(event, ModelFallback):
            self._stop_live()
            self.console.print(f"[yellow]model {event.failed_model} failed; using {event.next_model}[/yellow]")

    def finish(self) -> None:
        self._stop_live()


async def _one_shot(question: str, config_path: Path | None, model: str | None, session_id: str | None) -> int:
    from agent.llm import LLMError, ModelNotConfiguredError
    from gateway.runtime import Runtime
    from gateway.sessions import SessionService

    config, home = load(config_path)
    config = config.with_model(model)
    runtime = await Runtime.open(config, home)
    try:
        runtime.llm.require_model()
        session = await _pick_session(runtime, session_id, fresh=True)
        service = SessionService(runtime)
        result = await service.run_turn(session, question, stream=False)
        await runtime.drain()
    except ModelNotConfiguredError as exc:
        fail(str(exc), code=2)
    except LLMError as exc:
        fail(str(exc))
    finally:
        await runtime.close()
    click.echo(result.text)
    if result.status != "done":
        click.echo(f"hermes: turn ended early ({result.status})", err=True)
        return 1
    return 0


async def _pick_session(runtime: Any, session_id: str | None, *, fresh: bool) -> Any:
    if session_id:
        session = await runtime.store.get_session(session_id)
        if session is None:
            fail(f"no session with id {session_id!r} (hermes chat lists none; see the dashboard's /sessions)")
        return session
    if fresh:
        return await runtime.store.new_session(f"cli:oneshot:{id(runtime)}", platform="cli", user_id="local")
    return await runtime.store.active_session(CLI_SESSION_KEY, platform="cli", user_id="local")


async def _interactive(config_path: Path | None, model: str | None, session_id: str | None) -> int:
    from rich.console import Console

    from agent.llm import LLMError, ModelNotConfiguredError
    from gateway.runtime import Runtime
    from gateway.sessions import SessionService

    console = Console()
    config, home = load(config_path)
    config = config.with_model(model)
    runtime = await Runtime.open(config, home)
    loop = asyncio.get_running_loop()
    try:
        runtime.llm.require_model()
    except ModelNotConfiguredError as exc:
        await runtime.close()
        fail(str(exc), code=2)
    from agent.llm import import_litellm

    # LiteLLM takes seconds to import: do it while the user types the first message
    preload = asyncio.create_task(asyncio.to_thread(import_litellm))
    service = SessionService(runtime)
    session = await _pick_session(runtime, session_id, fresh=False)
    history = await runtime.store.load_messages(session.id)
    console.print(f"[bold]Hermes[/bold] · model {config.model.name} · session {session.id}"
                  + (f" (resumed, {len(history)} messages)" if history else ""))
    console.print(f"[dim]{HELP_TEXT}[/dim]")

    async def approve(tool: str, description: str) -> bool:
        answer = await asyncio.to_thread(console.input, f"[yellow]Allow {tool} to {description}? [y/N] [/yellow]")
        return answer.strip().lower() in ("y", "yes")

    try:
        while True:
            try:
                line = await asyncio.to_thread(console.input, "[bold cyan]you ›[/bold cyan] ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                break
            if text == "/help":
                console.print(f"[dim]{HELP_TEXT}[/dim]")
                continue
            if text == "/new":
                session = await runtime.store.new_session(CLI_SESSION_KEY, platform="cli", user_id="local")
                console.print(f"[dim]New session {session.id}.[/dim]")
                continue
            if text == "/usage":
                usage = await runtime.store.usage_for_session(session.id)
                console.print(f"[dim]{usage.calls} model calls, {usage.prompt_tokens} prompt + "
                              f"{usage.completion_tokens} completion tokens, ${usage.cost:.4f}[/dim]")
                continue
            if text.startswith("/"):
                from gateway.skills_wiring import expand_skill_command

                expanded = await expand_skill_command(runtime.services["skills"], text)
                if expanded is None:
                    console.print(f"[yellow]Unknown command {text.split()[0]}: /help lists the commands; "
                                  "`hermes skills list` the skills.[/yellow]")
                    continue
                text = expanded
            interrupt = asyncio.Event()
            loop.add_signal_handler(signal.SIGINT, interrupt.set)
            renderer = TerminalRenderer(console)
            try:
                result = await service.run_turn(session, text, on_event=renderer, interrupt=interrupt,
                                                approve=approve)
            except LLMError as exc:
                renderer.finish()
                console.print(f"[red]The model could not answer: {exc}[/red]")
                continue
            finally:
                loop.remove_signal_handler(signal.SIGINT)
                renderer.finish()
            if result.status == "interrupted":
                console.print("[yellow]Stopped.[/yellow]")
            elif not config.model.stream and result.text:
                from rich.markdown import Markdown

                console.print(Markdown(result.text))
            elif result.status == "max_iterations":
                console.print("[yellow](step limit reached for this turn)[/yellow]")
        await runtime.drain()
    finally:
        await preload
        await runtime.close()
    return 0


@click.command()
@click.option("-q", "--query", "question", default=None, help="Answer this once and exit (for scripts).")
@click.option("--model", default=None, help="LiteLLM model string; overrides [model] name.")
@click.option("--session", "session_id", default=None, help="Continue the session with this id.")
@config_option
def chat(question: str | None, model: str | None, session_id: str | None, config_path: Path | None) -> None:
    """Talk to the agent in the terminal."""
    if question is not None:
        if not question.strip():
            fail("-q needs a non-empty question")
        sys.exit(asyncio.run(_one_shot(question, config_path, model, session_id)))
    sys.exit(asyncio.run(_interactive(config_path, model, session_id)))
