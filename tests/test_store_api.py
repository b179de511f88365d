"""The API's and the dashboard's state in the store on both engines: web logins, stored responses,
API session ownership and the session queries of the dashboard, the API and trajectories export.
Two store clients on one database stand for two gateway processes sharing it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.store import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


async def test_a_login_made_through_one_client_ends_for_both_by_logout_or_expiry(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        now = time.time()
        await first.web_login_add("a" * 64, address="127.0.0.1", created_at=now, expires_at=now + 60)
        await first.web_login_add("b" * 64, address="::1", created_at=now, expires_at=now - 1)
        assert await second.web_login_expiry("a" * 64) == pytest.approx(now + 60)
        assert await second.web_login_expiry("c" * 64) is None
        assert await second.web_logins_prune(now) == 1                 # only the ended one
        assert [x.token_hash for x in await first.web_logins()] == ["a" * 64]
        assert await second.web_login_remove("a" * 64) is True
        assert await first.web_login_expiry("a" * 64) is None
        assert await first.web_login_remove("a" * 64) is False
    finally:
        await first.close()
        await second.close()
