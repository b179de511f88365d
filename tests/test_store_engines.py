"""The store layer on both engines: schema revisions, redaction at the one point, dialect constructs."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from gateway.store import KeepSecret, SchemaTooNewError, StoreUnavailableError, open_store
from gateway.store.schema import inbound_dedup, web_sessions
from gateway.store.upgrade import head_revision


async def test_a_fresh_database_is_at_the_latest_revision(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        status = await store.schema_status()
        assert status.current == head_revision() and status.up_to_date
    finally:
        await store.close()


async def test_a_database_newer_than_the_code_is_refused_with_its_revision(store_url: str) -> None:
    store = await open_store(store_url)
    await store.db.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dface'"))
    await store.close()
    with pytest.raises(SchemaTooNewError, match="revision f00dface, newer than this Hermes knows"):
        await open_store(store_url)


async def test_secrets_are_masked_in_every_insert_and_keepsecret_keeps_its_own_tokens(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        session = await store.active_session("telegram:1", platform="telegram")
        await store.add_message(session.id, {"role": "user", "content": "use sk-abcdefghijklmnopqrstuvwx please"})
        await store.db.execute(web_sessions.insert().values(
            token_hash=KeepSecret("https://hooks.example/x?key=abcdefgh12345"), address="password=hunter2secret",
            created_at=1.0, expires_at=2.0))
        assert (await store.load_messages(session.id))[0]["content"] == "use [REDACTED] please"
        row = await store.db.one(sa.select(web_sessions))
        assert row.token_hash == "https://hooks.example/x?key=abcdefgh12345"
        assert row.address == "password=[REDACTED]"
    finally:
        await store.close()


async def test_a_lone_surrogate_is_stored_as_a_replacement_character(store_url: str) -> None:
    # a client's broken "\\ud800" escape, half an emoji cut by a length limit: stored, not a UnicodeEncodeError
    store = await open_store(store_url)
    try:
        session = await store.active_session("api:surrogate", platform="api")
        await store.add_message(session.id, {"role": "user", "content": "cut \ud83d here, \ud800, whole \ud83d\ude00"})
        await store.add_message(session.id, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a\udfffb"}'}}]})
        await store.set_session_title(session.id, "x\ud800")
        user, call = await store.load_messages(session.id)
        assert user["content"] == "cut \ufffd here, \ufffd, whole \U0001f600"
        assert call["tool_calls"][0]["function"]["arguments"] == '{"path": "a\ufffdb"}'
        store.forget_sessions()
        again = await store.active_session("api:surrogate")
        assert again.id == session.id and again.title == "x\ufffd"
    finally:
        await store.close()


async def test_insert_if_new_under_a_race_records_one_winner(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        won = await asyncio.gather(*(store.dedup_record("telegram", "update:9") for _ in range(20)))
        assert won.count(True) == 1
        assert await store.db.scalar(sa.select(sa.func.count()).select_from(inbound_dedup)) == 1
    finally:
        await store.close()


async def test_a_transaction_that_fails_leaves_nothing(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        with pytest.raises(RuntimeError):
            async with store.db.transaction():
                await store.inbox_take("telegram", "update:1", "{}")
                raise RuntimeError("crash between two writes")
        assert await store.inbox_rows() == []
        assert await store.inbox_take("telegram", "update:1", "{}") is not None  # the key was not kept either
    finally:
        await store.close()


async def test_an_unreachable_server_is_named_with_the_setting_to_fix() -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        await open_store("postgresql://hermes:s3cretpw@127.0.0.1:9/hermes")
    message = str(caught.value)
    assert "127.0.0.1:9" in message and "[store] url" in message and "s3cretpw" not in message
