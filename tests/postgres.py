"""The test suite's PostgreSQL: the machine's server on 127.0.0.1:5432, a fresh database per test.

`pytest --store=postgresql` runs every test that uses a home on PostgreSQL instead of SQLite.
Where the server is not running, tests that need it are skipped with one line saying why, or
fail when CI=true (CI must not pass by skipping them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

HOST = os.environ.get("HERMES_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("HERMES_TEST_PG_PORT", "5432"))
USER = os.environ.get("HERMES_TEST_PG_USER", "postgres")
PSQL = shutil.which("psql") or "psql"
"""Found once: a test may narrow PATH (the terminal sandbox tests do) before its database is dropped."""


def store_engine_option(parser: pytest.Parser) -> None:
    parser.addoption("--store", choices=("sqlite", "postgresql"), default="sqlite",
                     help="the engine of every test home's store (default sqlite)")


def _psql(sql: str, database: str = "postgres") -> None:
    subprocess.run([PSQL, "-h", HOST, "-p", str(PORT), "-U", USER, "-d", database, "-q", "-v",
                    "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class PostgresServer:
    host: str = HOST
    port: int = PORT
    user: str = USER

    @classmethod
    def require(cls) -> PostgresServer:
        try:
            socket.create_connection((HOST, PORT), timeout=2).close()
        except OSError as exc:
            reason = f"PostgreSQL is not reachable at {HOST}:{PORT} ({exc}); start it to run these tests"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        return cls()

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    @contextmanager
    def database(self) -> Iterator[str]:
        name = f"t_{uuid.uuid4().hex[:12]}"
        _psql(f"CREATE DATABASE {name}")
        try:
            yield self.url(name)
        finally:
            _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def terminate(self, database: str, application_name: str | None = None) -> None:
        """End the server connections of a database (what a restart does to its clients)."""
        where = f"datname = '{database}' AND pid <> pg_backend_pid()"
        if application_name:
            where += f" AND application_name = '{application_name}'"
        _psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where}")

    @contextmanager
    def outage(self, database: str) -> Iterator[None]:
        """The database away for the block (as in a server restart, for this database only): its
        connections ended and new ones refused until the block ends."""
        _psql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        try:
            self.terminate(database)
            yield
        finally:
            _psql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
