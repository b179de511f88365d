"""A sharded Discord bot: one discord.py client per shard, each opened and closed on its own.

The fake gateway sends each guild's events only to the connection of the guild's shard
((guild_id >> 22) % shard_count) and DMs to shard 0, and refuses an IDENTIFY for the wrong
shard count, as Discord does.
"""

from __future__ import annotations

import asyncio
import time

from adapters.base import InboundMessage, OutboundMessage
from adapters.discord import DiscordAdapter
from tests.fakes.discord_server import (
    GUILD_2_ID,
    GUILD_ID,
    TEXT_CHANNEL_2_ID,
    TEXT_CHANNEL_ID,
    running_fake_discord,
)
from tests.fakes.inbox import Inbox

DM = "940000000000000001"
USER = "950000000000000001"


def texts(inbox: Inbox) -> list[str]:
    return sorted(e.text for e in inbox.events if isinstance(e, InboundMessage))


async def test_each_shard_is_its_own_connection_and_gets_its_own_guilds() -> None:
    identified: list[tuple[int, float]] = []

    async def gate(shard_id: int) -> None:        # the gateway's is a slot in the shared store
        identified.append((shard_id, time.monotonic()))

    async with running_fake_discord() as fake:
        fake.shard_count = 2
        inbox = Inbox()
        adapter = DiscordAdapter(inbox, token=fake.token, api_base=fake.api_base, gateway_url=fake.gateway_url,
                                 ready_timeout=10, guild_ready_timeout=0.05, shard_count=2, identify_gate=gate)
        await adapter.start(receive=False)
        try:
            assert fake.identifies == 0 and adapter.status.connected     # REST only: sending works
            await adapter.send(OutboundMessage(chat_id=DM, text="hello before any shard"))
            assert [m["content"] for m in fake.sent(DM)] == ["hello before any shard"]

            await adapter.start_gateway(1)
            assert fake.connected(1) and not fake.connected(0)
            assert adapter.status.details["shards"] == "1"
            fake.queue_message(TEXT_CHANNEL_2_ID, USER, "in guild 2", guild=GUILD_2_ID)
            await inbox.wait(1)
            assert texts(inbox) == ["in guild 2"]

            await adapter.start_gateway(0)
            fake.queue_message(TEXT_CHANNEL_ID, USER, "in guild 1", guild=GUILD_ID)
            fake.queue_message(DM, USER, "a DM")
            await inbox.wait(3)
            assert texts(inbox) == ["a DM", "in guild 1", "in guild 2"]
            assert [shard for shard, _ in identified] == [1, 0]
            # slash commands are registered once (REST) and answered on whichever shard they arrive
            await adapter.set_commands([("help", "What I can do"), ("code-review", "Review a diff")])
            assert sorted(c["name"] for c in fake.commands) == ["code-review", "help"]
            fake.queue_slash_command(TEXT_CHANNEL_2_ID, USER, "code-review", "the diff in PR 12", guild=GUILD_2_ID)
            fake.queue_slash_command(DM, USER, "help", "")
            await inbox.wait(5)
            assert texts(inbox)[:2] == ["/code-review the diff in PR 12", "/help"]
            assert fake.shards[0].identifies == 1 and fake.shards[1].identifies == 1

            # losing shard 1's duty closes shard 1 only: shard 0 keeps receiving
            await adapter.stop_gateway(1)
            assert not fake.connected(1) and fake.connected(0)
            assert adapter.status.details["shards"] == "0"
            fake.queue_message(TEXT_CHANNEL_ID, USER, "still guild 1", guild=GUILD_ID)
            await inbox.wait(6)
            await adapter.start_gateway(1)                  # the duty comes back: a new session
            assert fake.shards[1].identifies == 2 and fake.connected(1)
            fake.queue_message(TEXT_CHANNEL_2_ID, USER, "guild 2 again", guild=GUILD_2_ID)
            await inbox.wait(7)
            assert texts(inbox) == ["/code-review the diff in PR 12", "/help", "a DM", "guild 2 again",
                                    "in guild 1", "in guild 2", "still guild 1"]
            assert all(s.most_open == 1 for s in fake.shards.values())
            await asyncio.sleep(0.2)
            assert len(inbox.events) == 7                   # nothing came twice
        finally:
            await adapter.stop()
        assert fake.open_connections == 0


async def test_a_wrong_shard_count_is_refused_with_discords_reason() -> None:
    async with running_fake_discord() as fake:
        fake.shard_count = 3
        adapter = DiscordAdapter(Inbox(), token=fake.token, api_base=fake.api_base, gateway_url=fake.gateway_url,
                                 ready_timeout=10, guild_ready_timeout=0.05, shard_count=2)
        await adapter.start(receive=False)
        try:
            try:
                await adapter.start_gateway(0)
            except RuntimeError as exc:
                assert "shard 0" in str(exc) and "4010" in str(exc), exc
            else:
                raise AssertionError("an IDENTIFY for 2 shards of a 3-shard bot was accepted")
            assert adapter.status.details["gateway"] is False
        finally:
            await adapter.stop()
