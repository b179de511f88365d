"""`hermes store status|migrate|copy` as an operator runs them: a home made by an older Hermes
(tests/fixtures/state-ca52613.db), a fresh one on either engine, and a SQLite home copied into
PostgreSQL and back with every table equal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store import SchemaTooNewError, open_store
from gateway.store.schema import sessions
from gateway.store.snapshot import open_verbatim, read_snapshot
from gateway.store.store import as_url
from gateway.store.upgrade import head_revision, newest_revision_file, pending_revisions

HERMES = [sys.executable, "-m", "gateway"]
FIXTURE = Path(__file__).parent / "fixtures" / "state-ca52613.db"
PASSWORD = "not-a-real-pw-7731"


def _hermes(*args: str, home: Path, store_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HERMES_STORE_URL"}
    env["HERMES_HOME"] = str(home)
    if store_url:
        env["HERMES_STORE_URL"] = store_url
    return subprocess.run([*HERMES, *args], env=env, capture_output=True, text=True, timeout=120)


def _legacy_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE, home / "state.db")
    return home


def _with_password(url: str) -> str:
    """The same database with a password in the URL (trust auth ignores it; it must never be printed)."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


async def _tables(url: str) -> dict[str, list[tuple]]:
    db = open_verbatim(as_url(url))
    try:
        snapshot = await read_snapshot(db)
    finally:
        await db.close()
    return {t.name: sorted(t.rows, key=repr) for t in snapshot.tables}


def test_status_and_migrate_bring_a_home_made_by_an_older_hermes_to_the_latest_revision(tmp_path: Path) -> None:
    home = _legacy_home(tmp_path / "old-home")
    before = _hermes("store", "status", home=home)
    assert before.returncode == 1
    assert "engine: sqlite" in before.stdout
    assert "current revision: none (legacy schema version 11)" in before.stdout
    assert f"latest revision: {head_revision()}" in before.stdout
    assert "behind: run `hermes store migrate`" in before.stdout

    migrated = _hermes("store", "migrate", home=home)
    assert migrated.returncode == 0, migrated.stderr
    applied = [line.split(":")[0] for line in migrated.stdout.splitlines() if line.startswith("applied ")]
    assert applied == [f"applied {revision}" for revision, _ in pending_revisions(None)]
    assert migrated.stdout.strip().endswith(f"is at revision {head_revision()}")

    after = _hermes("store", "status", home=home)
    assert after.returncode == 0 and "up to date" in after.stdout
    assert f"current revision: {head_revision()}" in after.stdout
    again = _hermes("store", "migrate", home=home)
    assert again.returncode == 0 and "at the latest revision already" in again.stdout
    assert not [line for line in again.stdout.splitlines() if line.startswith("applied")]


async def test_status_of_the_home_store_on_its_engine_behind_and_ahead(home: Path) -> None:
    url = os.environ.get("HERMES_STORE_URL")
    fresh = _hermes("store", "status", home=home, store_url=url)
    assert fresh.returncode == 1 and "current revision: none (empty)" in fresh.stdout
    assert f"engine: {'postgresql' if url else 'sqlite'}" in fresh.stdout
    assert _hermes("store", "migrate", home=home, store_url=url).returncode == 0

    store = await open_store(url or home / "state.db")
    version = sa.table("alembic_version", sa.column("version_num"))
    await store.db.execute(version.update().values(version_num="f00dface"))
    await store.close()
    ahead = _hermes("store", "status", home=home, store_url=url)
    assert ahead.returncode == 1
    assert "current revision: f00dface" in ahead.stdout
    assert "ahead: revision f00dface was written by a newer Hermes" in ahead.stdout
    refused = _hermes("store", "migrate", home=home, store_url=url)
    assert refused.returncode == 1 and "revision f00dface, newer than this Hermes knows" in refused.stderr
    with pytest.raises(SchemaTooNewError, match="f00dface"):   # opening it (every start) refuses it too
        await open_store(url or home / "state.db")


def test_the_newest_revision_file_is_alembics_head() -> None:
    """Opening a store compares its revision with the newest file's number instead of importing
    Alembic; that holds only while the revisions are numbered in one line."""
    assert newest_revision_file() == head_revision()


async def test_copy_a_sqlite_home_into_postgresql_and_back_with_every_table_equal(
        tmp_path: Path, postgres_url: str) -> None:
    home = _legacy_home(tmp_path / "old-home")
    assert _hermes("store", "migrate", home=home).returncode == 0
    store = await open_store(home / "state.db")  # some rows of today's gateway on top of the old ones
    session = await store.active_session("telegram:dm:7", platform="telegram", user_id="7")
    for i in range(1200):  # more than one insert batch
        await store.add_message(session.id, {"role": "user", "content": f"message {i} \u00e9\u6f22 \U0001f600"})
    await store.close()
    original = await _tables(f"sqlite:///{home / 'state.db'}")

    target = _with_password(postgres_url)
    copied = _hermes("store", "copy", "--to", target, home=home)
    assert copied.returncode == 0, copied.stderr
    assert PASSWORD not in copied.stdout + copied.stderr
    lines = copied.stdout.splitlines()
    assert lines[0].split() == ["table", "source", "rows", "target", "rows", "checksum", "result"]
    table_lines = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert set(table_lines) == set(original)
    assert all(row[-1] == "ok" and row[1] == row[2] == str(len(original[name]))
               for name, row in table_lines.items())
    assert table_lines["messages"][1] == str(len(original["messages"])) and len(original["messages"]) > 1200
    assert await _tables(postgres_url) == original

    refused = _hermes("store", "copy", "--to", target, home=home)
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    assert PASSWORD not in refused.stdout + refused.stderr
    forced = _hermes("store", "copy", "--to", target, "--force", home=home)
    assert forced.returncode == 0, forced.stderr
    assert await _tables(postgres_url) == original

    # the PostgreSQL store takes new rows after the copy (its id sequences moved past the copied ids)
    pg = await open_store(postgres_url)
    try:
        next_seq = await pg.add_message(session.id, {"role": "assistant", "content": "after the copy"})
        assert next_seq == 1201
    finally:
        await pg.close()

    back = tmp_path / "back" / "state.db"
    returned = _hermes("store", "copy", "--to", f"sqlite:///{back}", home=tmp_path / "pg-home", store_url=target)
    assert returned.returncode == 0, returned.stderr
    assert PASSWORD not in returned.stdout + returned.stderr
    assert await _tables(f"sqlite:///{back}") == await _tables(postgres_url)


async def test_a_row_the_target_cannot_hold_stops_the_copy_naming_the_table_and_leaves_it_empty(
        tmp_path: Path, postgres_url: str) -> None:
    home = _legacy_home(tmp_path / "old-home")
    store = await open_store(home / "state.db")
    # SQLite keeps a text in a REAL column (old homes written by hand can hold one); PostgreSQL cannot
    as_text = sa.table(sessions.name, sa.column("created_at", sa.Text))
    await store.db.execute(as_text.update().values(created_at="yesterday"))
    await store.close()
    result = _hermes("store", "copy", "--to", postgres_url, home=home)
    assert result.returncode == 1
    assert "hermes: error: table sessions, rows 1-1:" in result.stderr
    assert "Traceback" not in result.stderr
    empty = await _tables(postgres_url)
    assert all(rows == [] for rows in empty.values())


@pytest.mark.parametrize("bad", ["mysql://root@db/hermes", "not a url"])
def test_copy_to_a_bad_url_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    result = _hermes("store", "copy", "--to", bad, home=_legacy_home(tmp_path / "h"))
    assert result.returncode == 2
    assert result.stderr.startswith("hermes: error: --to:")


def test_copy_to_an_unreachable_server_names_host_and_port_only(tmp_path: Path) -> None:
    result = _hermes("store", "copy", "--to", f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x",
                     home=_legacy_home(tmp_path / "h"))
    assert result.returncode == 1
    assert "cannot reach the store database at 127.0.0.1:1" in result.stderr
    assert PASSWORD not in result.stderr
