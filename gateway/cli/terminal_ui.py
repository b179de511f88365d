"""The terminal's keys and screen for `hermes chat`: a shell-like prompt and a live view of a turn.

Keys behave as in a shell (prompt_toolkit): at the prompt Ctrl-C clears the line (Up brings it
back), Ctrl-C on an empty line asks once and a second one quits, Ctrl-D on an empty line quits.
While a turn runs, Ctrl-C stops the turn (SIGINT, the terminal is not in raw mode then) and
what is typed meanwhile is not echoed over the answer but waits for the next prompt.

`TurnView` shows a turn as it happens: a status line with a spinner while the model thinks and
while a tool runs (`⠋ running list_files`), the answer streamed as Markdown token by token, and
one dim line per tool call and result.
"""

from __future__ import annotations

import contextlib
import json
import sys
import termios
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings

PROMPT = ANSI("\x1b[1;36myou ›\x1b[0m ")
QUIT_HINT = "(press Ctrl-C again or Ctrl-D to quit)"


class Quit(Exception):
    """The user asked to leave (Ctrl-D, or Ctrl-C twice at an empty prompt)."""


class ClearedLine(Exception):
    """Ctrl-C at an empty prompt: say how to quit and ask again."""


@dataclass
class _KeyState:
    armed: bool = False  # the last key was a Ctrl-C at an empty prompt


class LineReader:
    """Reads one line at a time with shell-like Ctrl-C and Ctrl-D."""

    def __init__(self) -> None:
        self._state = _KeyState()
        bindings = KeyBindings()

        @bindings.add("c-c")
        def _ctrl_c(event: Any) -> None:
            buffer = event.app.current_buffer
            if buffer.text:  # clear the line, keep it in the history (Up brings it back)
                buffer.reset(append_to_history=True)
                self._state.armed = False
            elif self._state.armed:
                event.app.exit(exception=Quit())
            else:
                self._state.armed = True
                event.app.exit(exception=ClearedLine())

        self._session: PromptSession[str] = PromptSession(history=InMemoryHistory(), key_bindings=bindings)
        self._session.default_buffer.on_text_changed += self._disarm

    def _disarm(self, _buffer: Any) -> None:
        self._state.armed = False

    async def read(self) -> str:
        """The next line; raises Quit when the user leaves."""
        while True:
            try:
                line = await self._session.prompt_async(PROMPT)
            except ClearedLine:
                print(f"\x1b[2m{QUIT_HINT}\x1b[0m", flush=True)
                continue
            except EOFError:
                raise Quit() from None
            except KeyboardInterrupt:  # a SIGINT sent from outside the terminal
                raise Quit() from None
            self._state.armed = False
            return line

    async def show(self, write: Callable[[], None]) -> None:
        """Run `write` (which prints) above the prompt when one is showing, or at once when not: a
        "Learned ..." notice that arrives while the user types does not garble their line."""
        if self._session.app.is_running:
            await run_in_terminal(write)
        else:
            write()

    async def ask(self, question: str) -> str:
        """A one-off question (approvals); Ctrl-C or Ctrl-D answers no."""
        try:
            return await PromptSession[str]().prompt_async(ANSI(f"\x1b[33m{question}\x1b[0m "))
        except (EOFError, KeyboardInterrupt, Quit, ClearedLine):
            return ""


@contextlib.contextmanager
def typeahead_hidden() -> Iterator[None]:
    """While a turn runs, keep the terminal from echoing keys over the answer; what is typed
    stays in the terminal's input queue and appears at the next prompt."""
    try:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError, termios.error):
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~(termios.ECHO | termios.ICANON)  # ISIG stays: Ctrl-C still stops the turn
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


class TurnView:
    """Renders one turn's events (an `agent.events` sink) on a rich Console."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._status: Any = None
        self._live: Any = None
        self._buffer = ""

    # -- the two live areas: the status line and the streaming answer ------------------------
    def status(self, text: str) -> None:
        """Show (or change) the spinner line."""
        self._stop_answer()
        if self._status is None:
            self._status = self.console.status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _stop_answer(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._buffer = ""

    def pause(self) -> None:
        """Stop both live areas (before a question or the end of the turn)."""
        self._stop_status()
        self._stop_answer()

    finish = pause

    # -- events ---------------------------------------------------------------------------------
    async def __call__(self, event: Any) -> None:
        from agent.events import ModelFallback, TextDelta, ToolFinished, ToolStarted

        if isinstance(event, TextDelta):
            self._stream(event.text)
        elif isinstance(event, ToolStarted):
            self.pause()
            args = json.dumps(event.arguments, ensure_ascii=False)
            self.console.print(f"⚙ {event.name}({args[:160]})", style="dim", highlight=False, markup=False)
            self.status(f"running {event.name}")
        elif isinstance(event, ToolFinished):
            self._stop_status()
            first_line = (event.result.strip().splitlines() or [""])[0][:160]
            mark = "✓" if event.ok else "✗"
            self.console.print(f"  {mark} {first_line}", style="dim", highlight=False, markup=False)
            self.status("thinking")
        elif isinstance(event, ModelFallback):
            self.pause()
            self.console.print(f"model {event.failed_model} failed; using {event.next_model}", style="yellow",
                               markup=False)
            self.status("thinking")

    def _stream(self, text: str) -> None:
        from rich.live import Live
        from rich.markdown import Markdown

        self._stop_status()
        self._buffer += text
        if self._live is None:
            self._live = Live(Markdown(self._buffer), console=self.console, refresh_per_second=12,
                              vertical_overflow="visible")
            self._live.start()
        else:
            self._live.update(Markdown(self._buffer))
