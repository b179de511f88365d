"""Shared fixtures: an isolated HERMES_HOME, the fake model server, and a guard against the network."""

from __future__ import annotations

import compileall
import ipaddress
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

from gateway.store import StateStore, open_store
from tests.fakes.model_server import FakeModelServer
from tests.postgres import PostgresServer, store_engine_option

pytest_addoption = store_engine_option

ROOT = Path(__file__).resolve().parent.parent


PACKAGES = ("gateway", "agent", "skills", "adapters", "tests")


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the project once, in the controller, before any worker or subprocess starts.
    The suite starts hundreds of `hermes` processes; where PYTHONDONTWRITEBYTECODE is set (as on
    CI machines) an editable install has no .pyc files, and every one of those processes would
    compile some 160 modules from source again (about 0.2 s of CPU each). Python reads .pyc files
    whatever that variable says, and checks them against the source's time, so edits still count."""
    if hasattr(config, "workerinput"):      # a pytest-xdist worker: the controller did it
        return
    for package in PACKAGES:      # packages only: no .pyc next to a skill's scripts or in the guard's corpus
        for init in sorted((ROOT / package).rglob("__init__.py")):
            compileall.compile_dir(init.parent, maxlevels=0, quiet=2)


def _is_loopback(host: object) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _network_guard(event: str, args: tuple) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise ConnectionRefusedError(f"test tried to reach {address!r}: tests stay on 127.0.0.1")
    elif event == "socket.getaddrinfo":
        if not _is_loopback(args[0]):
            raise socket.gaierror(f"test tried to resolve {args[0]!r}: tests stay on 127.0.0.1")


sys.addaudithook(_network_guard)


def _utf8_safe(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Captured output and logs in a report become UTF-8-safe before pytest-xdist sends them to
    the controller: a test that logs a lone surrogate on purpose (hostile text) must not make the
    worker's report unsendable, which ends the whole run with an INTERNALERROR."""
    report.sections = [(title, _utf8_safe(content)) for title, content in report.sections]
    if isinstance(report.longrepr, str):
        report.longrepr = _utf8_safe(report.longrepr)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> PostgresServer:
    """The machine's PostgreSQL (skipped with one line where it is not running; with CI=true, failed)."""
    return PostgresServer.require()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> object:
    """A fresh PostgreSQL database for one test, dropped after it (even with connections left)."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[StateStore]:
    """The store on the test's fresh PostgreSQL database, as a test looks into it (migrated)."""
    client = await open_store(postgres_url)
    yield client
    await client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each engine in turn: a SQLite file in the test's directory, then a fresh
    PostgreSQL database (that run skipped where PostgreSQL is not running)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """A fresh HERMES_HOME for the test (environment variable set for subprocesses too). With
    `--store=postgresql` its store is a fresh PostgreSQL database (HERMES_STORE_URL)."""
    root = tmp_path / "hermes-home"
    monkeypatch.setenv("HERMES_HOME", str(root))
    monkeypatch.delenv("HERMES_STORE_URL", raising=False)
    if request.config.getoption("store") == "postgresql":
        monkeypatch.setenv("HERMES_STORE_URL", request.getfixturevalue("postgres_url"))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.fixture
async def model_server() -> AsyncIterator[FakeModelServer]:
    server = FakeModelServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def model_config(server: FakeModelServer, name: str = "openai/fake-model", **extra: object) -> str:
    lines = ["[model]", f'name = "{name}"', f'api_base = "{server.base_url}"', 'api_key = "sk-test"',
             "retry_base_delay = 0.01"]
    for key, value in extra.items():
        lines.append(f"{key} = {value!r}".replace("'", '"') if isinstance(value, str) else f"{key} = {value}")
    return "\n".join(lines) + "\n"
