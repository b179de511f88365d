"""Logs as an operator reads them: JSON lines with session/platform, rotation, secrets never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import pytest

from agent.redact import Redactor
from gateway.logging_setup import LOG_FILE_NAME, log_context, set_level, setup_logging

ENV_SECRET = "hunter2-correct-horse-battery"
SHAPED_SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
TELEGRAM_TOKEN = "123456789:" + "A" * 35


@pytest.fixture
def logs(tmp_path: Path):
    stream = io.StringIO()
    redactor = Redactor.from_environ({"MY_SERVICE_PASSWORD": ENV_SECRET})
    setup = setup_logging(tmp_path / "logs", "INFO", redactor=redactor, stream=stream)
    try:
        yield setup, stream
    finally:
        setup.close()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_secrets_never_reach_the_file_or_the_terminal(logs) -> None:
    setup, stream = logs
    log = logging.getLogger("gateway.test")
    log.info("connecting with key %s and token %s", SHAPED_SECRET, TELEGRAM_TOKEN)
    log.warning("password in the message itself: %s", ENV_SECRET)
    try:
        raise RuntimeError(f"login failed for secret {ENV_SECRET} / {SHAPED_SECRET}")
    except RuntimeError:
        log.exception("adapter crashed")
    log.error("stack", stack_info=True, extra={"x": 1})
    for handler in logging.getLogger().handlers:
        handler.flush()

    file_text = setup.file_path.read_text(encoding="utf-8")
    terminal = stream.getvalue()
    for text in (file_text, terminal):
        assert ENV_SECRET not in text
        assert SHAPED_SECRET not in text
        assert TELEGRAM_TOKEN not in text
        assert "[REDACTED]" in text
        assert "RuntimeError: login failed for secret [REDACTED]" in text  # the traceback is still there
        assert "Traceback (most recent call last)" in text
    entries = _lines(setup.file_path)
    crashed = next(e for e in entries if e["message"] == "adapter crashed")
    assert crashed["level"] == "ERROR" and "RuntimeError" in crashed["exc"]


def test_every_line_of_a_turn_carries_session_and_platform(logs) -> None:
    setup, stream = logs
    log = logging.getLogger("gateway.turns")

    async def turn(session: str, platform: str) -> None:
        with log_context(session=session, platform=platform):
            log.info("turn started")
            await asyncio.sleep(0)  # interleave with the other turn
            await asyncio.create_task(asyncio.sleep(0))
            log.info("turn finished")

    async def main() -> None:
        await asyncio.gather(turn("s-one", "telegram"), turn("s-two", "slack"))
        log.info("outside any turn")

    asyncio.run(main())
    entries = [e for e in _lines(setup.file_path) if e["logger"] == "gateway.turns"]
    by_session = {(e["session"], e["platform"]) for e in entries if e["message"].startswith("turn")}
    assert by_session == {("s-one", "telegram"), ("s-two", "slack")}
    assert sum(1 for e in entries if e["session"] == "s-one") == 2
    outside = next(e for e in entries if e["message"] == "outside any turn")
    assert outside["session"] == "" and outside["platform"] == ""
    assert "[telegram s-one] turn started" in stream.getvalue()


def test_level_changes_live_and_setup_twice_does_not_duplicate(tmp_path: Path) -> None:
    stream = io.StringIO()
    before = logging.getLogger().level
    setup = setup_logging(tmp_path / "logs", "INFO", stream=stream)
    setup = setup_logging(tmp_path / "logs", "WARNING", stream=stream)
    try:
        log = logging.getLogger("gateway.level")
        log.info("hidden at WARNING")
        set_level("DEBUG")
        log.debug("shown at DEBUG")
        assert "hidden at WARNING" not in stream.getvalue()
        assert stream.getvalue().count("shown at DEBUG") == 1
        assert (setup.file_path.stat().st_mode & 0o777) == 0o600
    finally:
        setup.close()
    assert logging.getLogger().level == before  # close() puts the level back


def test_the_file_rotates_by_size(tmp_path: Path) -> None:
    setup = setup_logging(tmp_path / "logs", "INFO", console=False, max_bytes=2_000, backups=2)
    try:
        log = logging.getLogger("gateway.rotate")
        for i in range(100):
            log.info("line %d %s", i, "x" * 50)
    finally:
        setup.close()
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", f"{LOG_FILE_NAME}.2"]
    assert all(p.stat().st_size <= 2_100 for p in (tmp_path / "logs").iterdir())
    assert _lines(tmp_path / "logs" / LOG_FILE_NAME)[-1]["message"].startswith("line 99 ")


def _turns_tagged() -> bool:
    app = (Path(__file__).resolve().parent.parent / "gateway" / "app.py").read_text()
    return "log_context" in app


@pytest.mark.skipif(not _turns_tagged(), reason="gateway/app.py does not wrap turns in log_context yet")
async def test_a_running_gateway_tags_every_line_of_a_turn(home: Path, model_server) -> None:
    from tests.conftest import model_config
    from tests.fakes.gateway_harness import api_section, start_gateway
    from tests.fakes.model_server import fault

    for _ in range(4):
        model_server.add(fault(500))
    stream = io.StringIO()
    setup = setup_logging(home / "logs", "INFO", stream=stream)
    gateway, adapters = await start_gateway(
        home, model_config(model_server, max_retries=3) + api_section() + '[telegram]\nallow_users = ["u1"]\n')
    try:
        tg = adapters["telegram"]
        await tg.inject("hello", user="u1")
        await tg.wait_for(lambda: bool(tg.texts()), timeout=60)
        # read before stop: the shutdown's own lines ("waiting for N sessions") belong to no turn
        logged = _lines(setup.file_path)
    finally:
        await gateway.stop()
        setup.close()
    turn = [e for e in logged if e["logger"] in ("agent.llm", "gateway.dispatcher")]
    assert turn, "the failing turn logged nothing"
    assert {(e["session"], e["platform"]) for e in turn} == {("telegram:dm:u1", "telegram")}, [
        (e["logger"], e["message"][:150]) for e in turn if e["session"] != "telegram:dm:u1"]
    assert "[telegram telegram:dm:u1]" in stream.getvalue()
