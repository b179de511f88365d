"""The OpenAI-compatible API's own state: stored `/v1/responses` and which API token owns which
server-kept conversation (`X-Hermes-Session-Id`).

- `api_responses`: a completed response and the conversation it ends, as JSON, readable only with
  the token (its `token_id`) that created it; `previous_response_id` continues from the messages.
- `api_sessions`: (token_id, session_id) claimed by the first turn of a conversation, insert if
  new (two processes claiming one id at once give one row). The conversation itself lives in
  `sessions`/`messages` under the key the API layer builds (`api:<token_id>:<session_id>`); this
  module joins them for the listing so a token sees only its own.

The redaction of stored text happens in the database layer, as for every write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import api_responses, api_sessions, messages, sessions

R = api_responses.c
A = api_sessions.c
CONVERSATION_ROLES = ("user", "assistant")
LISTED = 500


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class ApiSession:
    """A token's conversation: its newest active store session (`store_id`, None before any turn)."""
    session_id: str
    user_id: str
    created_at: float
    updated_at: float | None
    title: str
    store_id: str | None
    message_count: int


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _conversation_count(session_table: Any, key: Any) -> sa.Select[Any]:
    """User and assistant messages of the active sessions whose key is `key` (a column or value)."""
    return (sa.select(sa.func.count())
            .select_from(messages.join(session_table, session_table.c.id == messages.c.session_id))
            .where(session_table.c.key == key, session_table.c.archived == 0, messages.c.active == 1,
                   messages.c.role.in_(CONVERSATION_ROLES)))


class ApiStore:
    """Mixin of the store: tables api_responses and api_sessions."""

    db: Database

    async def delete_sessions_of_key(self, key: str) -> list[str]: ...  # SessionsStore

    # -- stored responses ---------------------------------------------------------------------------
    async def api_response_save(self, response: dict[str, Any], conversation: list[dict[str, Any]], *,
                                token_id: str) -> None:
        """Keep a completed response (with `id` and `created_at`) and the conversation it ends."""
        await self.db.execute(api_responses.insert().values(
            id=response["id"], token_id=token_id, previous_response_id=response.get("previous_response_id"),
            created_at=float(response["created_at"]), response=_dumps(response), messages=_dumps(conversation)))

    async def api_response(self, response_id: str, *, token_id: str) -> StoredResponse | None:
        """The stored response `response_id` of this token; None when missing or another token's."""
        row = await self.db.one(sa.select(R.response, R.messages).where(R.id == response_id, R.token_id == token_id))
        if row is None:
            return None
        return StoredResponse(json.loads(row.response), json.loads(row.messages))

    # -- conversations owned by a token --------------------------------------------------------------
    async def api_session_claim(self, token_id: str, session_id: str, *, user_id: str, at: float) -> None:
        """Record that `token_id` owns `session_id` (nothing changes when it already does).

        Every turn of a kept conversation claims it, so the usual case (already owned) is a read;
        only a new conversation writes, insert-if-new, so two processes claiming it at once leave
        one row (and a conversation another process deleted is claimed again)."""
        statement = self.db.prepared("api_session_owned", lambda: sa.select(A.created_at).where(
            A.token_id == sa.bindparam("p_token"), A.session_id == sa.bindparam("p_session")))
        owned = await self.db.scalar(statement, {"p_token": token_id, "p_session": session_id})
        if owned is None:
            await self.db.execute(self.db.insert_ignore(api_sessions).values(
                token_id=token_id, session_id=session_id, user_id=user_id, created_at=at))

    async def api_session(self, token_id: str, session_id: str, key: str) -> ApiSession | None:
        """The token's conversation `session_id` kept under store key `key`; None when not the token's."""
        owned = await self.db.one(sa.select(api_sessions).where(A.token_id == token_id, A.session_id == session_id))
        if owned is None:
            return None
        active = await self.db.one(
            sa.select(sessions.c.id, sessions.c.updated_at, sessions.c.title)
            .where(sessions.c.key == key, sessions.c.archived == 0)
            .order_by(sessions.c.created_at.desc()).limit(1))
        count = int(await self.db.scalar(_conversation_count(sessions, key)) or 0) if active is not None else 0
        return ApiSession(owned.session_id, owned.user_id, float(owned.created_at),
                          float(active.updated_at) if active is not None else None,
                          active.title if active is not None else "",
                          active.id if active is not None else None, count)

    async def api_sessions_of(self, token_id: str, key_prefix: str) -> list[ApiSession]:
        """The token's conversations, most recently active first (at most 500); a conversation's
        store key is `key_prefix` + its session id."""
        active = sessions.alias("active")
        counted = sessions.alias("counted")
        key = sa.literal(key_prefix, sa.Text) + A.session_id
        updated = sa.func.max(active.c.updated_at)
        query = (
            sa.select(A.session_id, A.user_id, A.created_at, updated.label("updated_at"),
                      sa.func.max(active.c.title).label("title"), sa.func.max(active.c.id).label("store_id"),
                      _conversation_count(counted, key).scalar_subquery().label("message_count"))
            .select_from(api_sessions.outerjoin(active, sa.and_(active.c.key == key, active.c.archived == 0)))
            .where(A.token_id == token_id)
            .group_by(A.session_id, A.user_id, A.created_at)
            .order_by(sa.func.coalesce(updated, A.created_at).desc(), A.session_id)
            .limit(LISTED))
        return [ApiSession(r.session_id, r.user_id, float(r.created_at),
                           float(r.updated_at) if r.updated_at is not None else None, r.title or "", r.store_id,
                           int(r.message_count or 0))
                for r in await self.db.rows(query)]

    async def api_session_delete(self, token_id: str, session_id: str, key: str) -> list[str]:
        """Delete the token's conversation: its store sessions under `key` (messages and tool calls
        with them) and the ownership row, in one transaction; the store session ids deleted."""
        async with self.db.transaction():
            deleted = await self.delete_sessions_of_key(key)
            await self.db.execute(api_sessions.delete().where(A.token_id == token_id, A.session_id == session_id))
        return deleted
