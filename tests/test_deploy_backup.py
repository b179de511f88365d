"""`hermes backup create|restore` as an operator runs it: while the store is being written, onto a
fresh home (under --store=postgresql a fresh PostgreSQL database), format-1 archives of SQLite
homes, and the refusals (newer schema or revision, damaged snapshot, running gateway, hostile
archives)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from gateway.backup import known_schema_version
from gateway.pidfile import hold_pidfile
from gateway.store import open_store
from gateway.store.upgrade import head_revision
from tests.store_support import home_store

HERMES = [sys.executable, "-m", "gateway"]


def _populate(home: Path) -> None:
    (home / "skills" / "ops" / "restart-service").mkdir(parents=True)
    (home / "skills" / "ops" / "restart-service" / "SKILL.md").write_text(
        "---\nname: restart-service\ndescription: Restart a service.\n---\nSteps.\n")
    (home / "memories").mkdir(exist_ok=True)
    (home / "memories" / "MEMORY.md").write_text("The deploy host is web-1.\n")
    (home / "config.toml").write_text('[logging]\nlevel = "INFO"\n')
    (home / "secrets.env").write_text("OPENAI_API_KEY=sk-not-a-real-key-000000000000\n")


def _hermes(*args: str, home: Path, store_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERMES_HOME": str(home)}
    if store_url:
        env["HERMES_STORE_URL"] = store_url
    return subprocess.run([*HERMES, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def fresh_store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The store of a second, fresh home: its state.db, or a fresh PostgreSQL database."""
    if request.config.getoption("store") != "postgresql":
        yield None
        return
    with request.getfixturevalue("postgres_server").database() as url:
        yield url


async def _hermes_async(*args: str, home: Path) -> tuple[int, str, str]:
    env = {**os.environ, "HERMES_HOME": str(home)}
    process = await asyncio.create_subprocess_exec(*HERMES, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_backup_while_writing_then_restore_on_a_fresh_home(
        home: Path, tmp_path: Path, fresh_store: str | None) -> None:
    _populate(home)
    async with home_store(home, migrate=True) as store:
        session = await store.active_session("telegram:dm:42", platform="telegram", user_id="42")
        stop = asyncio.Event()
        written = 0

        async def writer() -> None:
            nonlocal written
            while not stop.is_set():
                await store.add_message(session.id, {"role": "user", "content": f"message {written + 1}"})
                written += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.2)
        before = written
        code, out, err = await _hermes_async("backup", "create", "--output", str(tmp_path / "b.tar.gz"), home=home)
        after = written
        stop.set()
        await task
    assert code == 0, err
    assert "wrote" in out and f"at revision {head_revision()}" in out
    assert before > 0 and after > before  # the writer kept going while the backup ran
    assert (tmp_path / "b.tar.gz").stat().st_mode & 0o777 == 0o600

    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {"manifest.json", "store/revision", "store/tables.json", "store/messages.jsonl", "config.toml",
            "skills/ops/restart-service/SKILL.md", "memories/MEMORY.md"} <= names
    assert "secrets.env" not in names and "state.db" not in names     # no engine's own file format
    assert manifest["format"] == 2 and manifest["store_revision"] == head_revision()

    fresh = tmp_path / "fresh-home"
    result = _hermes("backup", "restore", str(tmp_path / "b.tar.gz"), home=fresh, store_url=fresh_store)
    assert result.returncode == 0, result.stderr
    assert f"store at {head_revision()}" in result.stdout
    restored = await open_store(fresh_store or fresh / "state.db", migrate=False)
    try:
        seqs = await restored.message_seqs(session.id)
        texts = [m["content"] for m in await restored.load_messages(session.id)]
        assert (await restored.get_session(session.id)) is not None
    finally:
        await restored.close()
    assert before <= len(seqs) <= after + 1   # + the message in flight: committed, its call not yet returned
    assert seqs == list(range(1, len(seqs) + 1))  # a consistent prefix: nothing torn, nothing missing
    assert texts == [f"message {n}" for n in seqs]
    assert (fresh / "skills/ops/restart-service/SKILL.md").read_text().startswith("---\nname: restart-service")
    assert (fresh / "memories/MEMORY.md").read_text() == "The deploy host is web-1.\n"
    assert not (fresh / "secrets.env").exists()


def test_secrets_only_when_asked_and_restore_keeps_what_it_replaces(home: Path, tmp_path: Path) -> None:
    _populate(home)
    assert _hermes("doctor", "--skip-model", home=home).returncode in (0, 1)  # creates the store
    result = _hermes("backup", "create", "--include-secrets", "-o", str(tmp_path / "s.tar.gz"), home=home)
    assert result.returncode == 0, result.stderr
    assert "includes secrets.env" in result.stdout
    (home / "memories" / "MEMORY.md").write_text("changed after the backup\n")
    result = _hermes("backup", "restore", str(tmp_path / "s.tar.gz"), home=home)
    assert result.returncode == 0, result.stderr
    assert (home / "memories" / "MEMORY.md").read_text() == "The deploy host is web-1.\n"
    assert (home / "secrets.env").stat().st_mode & 0o777 == 0o600
    aside = [p for p in home.iterdir() if p.name.startswith("pre-restore-")]
    assert len(aside) == 1 and (aside[0] / "memories" / "MEMORY.md").read_text() == "changed after the backup\n"
    assert str(aside[0]) in result.stdout


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _database(tmp_path: Path, version: int) -> bytes:
    path = tmp_path / f"db-{version}.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.execute(f"PRAGMA user_version = {version}")
    connection.commit()
    connection.close()
    return path.read_bytes()


MANIFEST = json.dumps({"format": 1, "schema_version": 0}).encode()


def test_restore_refuses_a_newer_schema(home: Path, tmp_path: Path) -> None:
    newer = known_schema_version() + 1
    _archive(tmp_path / "newer.tar.gz", [_file("manifest.json", MANIFEST),
                                         _file("state.db", _database(tmp_path, newer)),
                                         _file("config.toml", b"# from the future\n")])
    result = _hermes("backup", "restore", str(tmp_path / "newer.tar.gz"), home=home)
    assert result.returncode != 0
    assert f"schema version {newer}, newer than this Hermes knows ({newer - 1})" in result.stderr
    assert not (home / "config.toml").exists() and not (home / "state.db").exists()


@pytest.mark.parametrize("hostile", ["../escape.txt", "/etc/evil", "skills/../../escape.txt", "notes.txt", "link"])
def test_restore_refuses_hostile_members_before_writing(home: Path, tmp_path: Path, hostile: str) -> None:
    members = [_file("manifest.json", MANIFEST), _file("state.db", _database(tmp_path, 1))]
    if hostile == "link":
        link = tarfile.TarInfo("skills/ops/x/SKILL.md")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        members.append((link, b""))
    else:
        members.append(_file(hostile, b"boom"))
    _archive(tmp_path / "bad.tar.gz", members)
    result = _hermes("backup", "restore", str(tmp_path / "bad.tar.gz"), home=home)
    assert result.returncode != 0
    assert f"archive member {hostile if hostile != 'link' else 'skills/ops/x/SKILL.md'!r}" in result.stderr
    assert any(why in result.stderr for why in ("refused", "only regular files", "not part of a Hermes backup"))
    assert not (tmp_path / "escape.txt").exists()
    assert not (home / "state.db").exists()


def test_restore_refuses_a_home_whose_gateway_runs_unless_forced(home: Path, tmp_path: Path) -> None:
    _populate(home)
    _hermes("doctor", "--skip-model", home=home)
    assert _hermes("backup", "create", "-o", str(tmp_path / "b.tar.gz"), home=home).returncode == 0
    with hold_pidfile(home):
        refused = _hermes("backup", "restore", str(tmp_path / "b.tar.gz"), home=home)
        assert refused.returncode != 0
        assert f"a gateway is running on {home} (pid {os.getpid()})" in refused.stderr
        forced = _hermes("backup", "restore", "--force", str(tmp_path / "b.tar.gz"), home=home)
        assert forced.returncode == 0, forced.stderr
    # a clean stop removes the pid file; one left by a crash (no holder of its lock) does not block
    assert not (home / "gateway.pid").exists()
    (home / "gateway.pid").write_text("999999\n")
    assert _hermes("backup", "restore", str(tmp_path / "b.tar.gz"), home=home).returncode == 0


def test_create_without_a_database_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    if os.environ.get("HERMES_STORE_URL"):
        pytest.skip("a PostgreSQL store always exists; its unreachable server is the next test")
    result = _hermes("backup", "create", "-o", str(tmp_path / "x.tar.gz"), home=home)
    assert result.returncode != 0
    assert "no state database to back up" in result.stderr
    assert not (tmp_path / "x.tar.gz").exists()


def test_the_archive_is_private_even_over_an_existing_file_and_says_it_holds_the_config_as_is(
        home: Path, tmp_path: Path) -> None:
    _populate(home)
    (home / "config.toml").write_text('[api]\ntoken = "literal-token-kept-as-is-1234567890"\n')
    assert _hermes("doctor", "--skip-model", home=home).returncode in (0, 1)  # creates state.db
    output = tmp_path / "world-readable.tar.gz"
    output.write_text("old")
    output.chmod(0o644)
    env = {**os.environ, "HERMES_HOME": str(home)}
    result = subprocess.run(["sh", "-c", 'umask 000 && exec "$@"', "sh", *HERMES, "backup", "create", "-o",
                             str(output)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert output.stat().st_mode & 0o777 == 0o600
    assert "config.toml as it is" in result.stderr and "mode 0600" in result.stderr
    with tarfile.open(output) as tar:
        assert json.loads(tar.extractfile("manifest.json").read())["config_as_is"] is True  # type: ignore[union-attr]
        assert b"literal-token-kept-as-is" in tar.extractfile("config.toml").read()  # type: ignore[union-attr]


def _snapshot_archive(path: Path, revision: str, tables: list[dict], rows: dict[str, bytes]) -> None:
    manifest = json.dumps({"format": 2, "store_revision": revision}).encode()
    members = [_file("manifest.json", manifest), _file("store/revision", f"{revision}\n".encode()),
               _file("store/tables.json", json.dumps(tables).encode())]
    members += [_file(f"store/{name}.jsonl", data) for name, data in rows.items()]
    _archive(path, members)


def test_restore_refuses_a_newer_store_revision_and_a_damaged_snapshot(home: Path, tmp_path: Path) -> None:
    _snapshot_archive(tmp_path / "newer.tar.gz", "9999_future", [], {})
    result = _hermes("backup", "restore", str(tmp_path / "newer.tar.gz"), home=home)
    assert result.returncode != 0
    assert "revision 9999_future, newer than this Hermes knows" in result.stderr

    row = {"platform": "telegram", "key": "k1", "created_at": 1.0}
    entry = {"name": "inbound_dedup", "columns": list(row), "rows": 2, "checksum": "0" * 64}
    _snapshot_archive(tmp_path / "damaged.tar.gz", head_revision(), [entry],
                      {"inbound_dedup": (json.dumps(row) + "\n").encode()})
    result = _hermes("backup", "restore", str(tmp_path / "damaged.tar.gz"), home=home)
    assert result.returncode != 0
    assert "inbound_dedup.jsonl: 1 rows whose checksum does not match" in result.stderr
    assert not (home / "state.db").exists()


async def test_a_format_1_archive_of_a_sqlite_home_restores_into_the_store(home: Path, tmp_path: Path) -> None:
    old = tmp_path / "old-home-state.db"
    store = await open_store(old)
    try:
        session = await store.active_session("slack:C1", platform="slack", chat_id="C1")
        for n in range(3):
            await store.add_message(session.id, {"role": "user", "content": f"old {n}"})
    finally:
        await store.close()
    copy = tmp_path / "copy.db"
    with sqlite3.connect(old) as source, sqlite3.connect(copy) as target:
        source.backup(target)         # what format 1 held: SQLite's online backup of state.db
    manifest = json.dumps({"format": 1, "schema_version": known_schema_version()}).encode()
    _archive(tmp_path / "v1.tar.gz", [_file("manifest.json", manifest), _file("state.db", copy.read_bytes()),
                                      _file("config.toml", b'[logging]\nlevel = "INFO"\n')])
    result = _hermes("backup", "restore", str(tmp_path / "v1.tar.gz"), home=home)
    assert result.returncode == 0, result.stderr
    async with home_store(home, migrate=True) as restored:
        assert [m["content"] for m in await restored.load_messages(session.id)] == ["old 0", "old 1", "old 2"]
    assert (home / "config.toml").read_text() == '[logging]\nlevel = "INFO"\n'


def test_create_on_an_unreachable_server_names_host_and_port_not_the_password(home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    url = "postgresql+asyncpg://hermes:pw-never-shown-77@127.0.0.1:9/hermes"      # port 9: nothing listens
    result = _hermes("backup", "create", "-o", str(tmp_path / "x.tar.gz"), home=home, store_url=url)
    assert result.returncode != 0
    assert "127.0.0.1:9" in result.stderr and "pw-never-shown" not in result.stderr + result.stdout
    assert not (tmp_path / "x.tar.gz").exists()


async def test_a_sqlite_homes_backup_restores_into_postgresql_and_back(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERMES_STORE_URL", raising=False)
    first, second, third = tmp_path / "sqlite-home", tmp_path / "pg-home", tmp_path / "sqlite-again"
    first.mkdir()
    store = await open_store(first / "state.db")
    try:
        session = await store.active_session("telegram:dm:7", platform="telegram", user_id="7")
        for n in range(5):
            await store.add_message(session.id, {"role": "user", "content": f"m{n} \U0001f600 é"})
        await store.record_usage(session.id, model="m", prompt_tokens=3, completion_tokens=4, cost=0.5)
    finally:
        await store.close()
    assert _hermes("backup", "create", "-o", str(tmp_path / "a.tar.gz"), home=first).returncode == 0
    restored = _hermes("backup", "restore", str(tmp_path / "a.tar.gz"), home=second, store_url=postgres_url)
    assert restored.returncode == 0, restored.stderr
    back = _hermes("backup", "create", "-o", str(tmp_path / "b.tar.gz"), home=second, store_url=postgres_url)
    assert back.returncode == 0, back.stderr
    assert _hermes("backup", "restore", str(tmp_path / "b.tar.gz"), home=third).returncode == 0
    for url in (postgres_url, third / "state.db"):
        again = await open_store(url, migrate=False)
        try:
            assert [m["content"] for m in await again.load_messages(session.id)] == [
                f"m{n} \U0001f600 é" for n in range(5)]
            assert (await again.usage_for_session(session.id)).total_tokens == 7
        finally:
            await again.close()
    # the PostgreSQL store was empty before its restore; a second restore over it keeps its rows aside
    again = _hermes("backup", "restore", str(tmp_path / "a.tar.gz"), home=second, store_url=postgres_url)
    assert again.returncode == 0, again.stderr
    [aside] = [p for p in second.iterdir() if p.name.startswith("pre-restore-")]
    assert (aside / "store" / "tables.json").exists() and str(aside) in again.stdout
