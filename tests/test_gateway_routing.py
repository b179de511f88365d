"""Session keys, teams and who may talk: the rules users configure, checked one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import InboundMessage
from gateway.access import AccessControl
from gateway.config import parse_config
from gateway.pairing import Pairing, PairingError
from gateway.routing import Router
from gateway.store import open_store

CONFIG = """
[telegram]
allow_users = [42]
admins = ["7"]
allow_channels = ["-100", "-200"]

[telegram.channels."-200"]
session_scope = "channel"
require_mention = false

[telegram.channels."-300"]
allowed = false

[slack]
session_scope = "thread"
allow_channels = ["C1", "C2"]

[[teams]]
name = "ops"
channels = ["slack:C1", "telegram:-200"]
"""


def router() -> Router:
    return Router(parse_config(CONFIG, Path("config.toml"), {}))


def msg(platform: str = "telegram", chat: str = "-100", user: str = "42", *, dm: bool = False,
        thread: str | None = None, mentioned: bool = False, reply: bool = False) -> InboundMessage:
    return InboundMessage(platform=platform, chat_id=chat, user_id=user, text="hi", message_id="1",
                          is_dm=dm, thread_id=thread, mentioned=mentioned, reply_to_bot=reply)


def test_dm_is_one_session_per_user_whatever_the_chat() -> None:
    r = router()
    assert r.route(msg(chat="c1", user="5", dm=True)).key == "telegram:dm:5"
    assert r.route(msg(chat="c2", user="5", dm=True)).key == "telegram:dm:5"
    assert r.route(msg(chat="c1", user="6", dm=True)).key == "telegram:dm:6"


def test_group_default_scope_is_per_user_per_channel() -> None:
    r = router()
    a, b = r.route(msg(user="1")), r.route(msg(user="2"))
    assert a.key == "telegram:-100:user:1" and b.key == "telegram:-100:user:2"
    assert r.route(msg(chat="-999", user="1")).key != a.key


def test_channel_scope_is_shared_and_set_per_channel() -> None:
    r = router()
    assert r.route(msg(chat="-200", user="1")).key == r.route(msg(chat="-200", user="2")).key == "telegram:-200"


def test_thread_scope_per_platform_falls_back_to_channel_outside_threads() -> None:
    r = router()
    assert r.route(msg("slack", "C1", "1", thread="t1")).key == "slack:C1:thread:t1"
    assert r.route(msg("slack", "C1", "2", thread="t1")).key == "slack:C1:thread:t1"
    assert r.route(msg("slack", "C1", "1", thread="t2")).key == "slack:C1:thread:t2"
    assert r.route(msg("slack", "C1", "1")).key == "slack:C1"


def test_teams_map_channels_and_default_to_one_library() -> None:
    r = router()
    assert r.route(msg("slack", "C1", thread="t")).team == "ops"
    assert r.route(msg("telegram", "-200")).team == "ops"
    assert r.route(msg("slack", "C2")).team == ""
    assert Router(parse_config("", Path("c.toml"), {})).route(msg()).team == ""


def test_team_channel_must_name_its_platform() -> None:
    with pytest.raises(ValueError, match="slack:C123"):
        Router(parse_config('[[teams]]\nname = "x"\nchannels = ["C1"]\n', Path("c.toml"), {}))


async def test_access_rules(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    try:
        access = AccessControl(router(), Pairing(store))
        assert (await access.check(msg(user="42", dm=True))).verdict == "allow"        # allowlist (int in TOML)
        assert (await access.check(msg(user="7", dm=True))).verdict == "allow"         # admin
        stranger = await access.check(msg(user="99", dm=True))
        assert stranger.verdict == "pair" and len(stranger.code) == 8
        again = await access.check(msg(user="99", dm=True))
        assert again.code == stranger.code                                              # same pending code
        # groups: allowed channels only, mention required unless the channel says otherwise
        assert (await access.check(msg(chat="-100", user="99"))).verdict == "ignore"
        assert (await access.check(msg(chat="-100", user="99", mentioned=True))).verdict == "allow"
        assert (await access.check(msg(chat="-100", user="99", reply=True))).verdict == "allow"
        assert (await access.check(msg(chat="-200", user="99"))).verdict == "allow"
        assert (await access.check(msg(chat="-300", user="42", mentioned=True))).verdict == "ignore"
        assert (await access.check(msg(chat="-999", user="42", mentioned=True))).verdict == "ignore"
        assert (await access.check(msg("discord", "g", "42", dm=True))).verdict == "pair"  # per platform
        # approve the code: the user is now allowed, also after reopening the store
        grant = await access.pairing.approve(stranger.code.lower())
        assert (grant.platform, grant.user_id) == ("telegram", "99")
        assert (await access.check(msg(user="99", dm=True))).verdict == "allow"
        with pytest.raises(PairingError, match="no pending pairing code"):
            await access.pairing.approve(stranger.code)
        await access.pairing.revoke("telegram:99")
        assert (await access.check(msg(user="99", dm=True))).verdict == "pair"
        with pytest.raises(PairingError, match="no approved access"):
            await access.pairing.revoke("99")
    finally:
        await store.close()
