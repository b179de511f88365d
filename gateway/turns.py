"""Turns anywhere in the cluster, exactly once, in arrival order: the process side of turn claims.

Every platform message is taken into the inbox under its session's key (gateway/inbox.py), and
then `offer(key)`ed here. A process runs a session's turns only while it holds the session's
claim in the store (gateway/store/turns.py): one holder in the whole cluster, so one turn per
session at a time (an API request whose conversation the server keeps `hold`s the claim around
its turn the same way), and the holder takes the session's rows oldest first, so they are answered in
arrival order whichever process received them (a Slack socket, a webhook behind a load
balancer, the Telegram poller). When the queue is empty the claim is released and the queue
looked at once more: a message taken by another process between the last look and the release
is then claimed here, or by its taker, never by nobody.

Once a second (and at once when woken: a `/stop` written by another process comes with a wake-up)
every process renews its claims in one statement, hands on the `/stop` requests other processes
wrote for its sessions, and claims the sessions that have waiting rows and no
live claim: those of a process that died (its claims expire `ttl` seconds after its last
renewal) or stopped cleanly (it released them). The first row run after taking a claim over from
a dead owner, or a row whose turn had begun before, comes with the "interrupted" notice; a row
begun `MAX_ATTEMPTS` times is given up (see gateway/inbox.py).

A claim's generation tells whether another process ran the session since this one last did: if
so the cached conversation is stale and `forget(key)` drops it before the turn, so no process
answers from an old copy. On a store only one process may open (SQLite), claims left by an
earlier process are dead at start and are taken over at once.

A claim lost while a turn runs (not renewed for `ttl`: the store was away) interrupts that turn
(`on_lost`): another process may be answering the session already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.store import StateStore
from gateway.store.turns import TurnClaim

log = logging.getLogger(__name__)

DEFAULT_TTL = 6.0
TICK_EVERY = 1.0
REMEMBERED = 4096       # sessions whose last generation here is remembered (older ones count as stale)

HOLD_POLL = 0.2         # how often a turn waiting for a session another process runs asks again
RunRow = Callable[[Any, bool], Awaitable[None]]   # (inbox row, with the interrupted notice) -> settled
Release = Callable[[], Awaitable[None]]


class TurnClaims:
    def __init__(self, store: StateStore, owner: str, run_row: RunRow, *, exclusive: bool,
                 forget: Callable[[str], None], on_stop: Callable[[str], bool],
                 ttl: float = DEFAULT_TTL, tick_every: float = TICK_EVERY) -> None:
        self.store = store
        self.owner = owner
        self.run_row = run_row
        self.exclusive = exclusive
        self.forget = forget
        self.on_stop = on_stop
        self.ttl = ttl
        self.tick_every = tick_every
        self.accepting = True
        self._held: dict[str, int] = {}                          # session key -> generation held here
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._last: OrderedDict[str, int] = OrderedDict()        # generation this process last released
        self._ticker: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._holds: dict[str, tuple[asyncio.Lock, int]] = {}    # session key -> (lock, requests using it)

    async def start(self) -> None:
        """Take over what an earlier process left (at once on SQLite), then tick in the background."""
        if self.exclusive:
            await self.store.turn_claims_expire_others(self.owner)
        await self._claim_orphans()
        self._ticker = asyncio.create_task(self._tick_forever(), name="turn-claims")

    def offer(self, key: str) -> None:
        """A row was taken for `key`: run the session's queue here unless a worker already does."""
        if not self.accepting or key in self._workers:
            return
        self._workers[key] = asyncio.create_task(self._work(key), name=f"turns:{key}")

    def stop_taking(self) -> None:
        """A graceful stop begins: take no new sessions or rows (running turns finish; `close` frees
        the claims for the other processes)."""
        self.accepting = False

    def wake(self, key: str) -> None:
        """Another process wrote something for `key` (a /stop): tick now if the session is held here."""
        if key in self._held:
            self._woken.set()

    async def hold(self, key: str, *, wait: float) -> Release | None:
        """Claim `key` for one turn that is not an inbox row (an API request whose conversation the
        server keeps), waiting while another process runs the session's turn; the release, or
        None when another process kept it busy for `wait` seconds. Requests of one session here
        take turns at holding it, in order; the claim is renewed (and its loss interrupts the turn) like any."""
        lock, users = self._holds.get(key, (asyncio.Lock(), 0))
        self._holds[key] = (lock, users + 1)
        loop = asyncio.get_running_loop()
        claim: TurnClaim | None = None
        try:
            await lock.acquire()          # behind this process's earlier requests of the session, as queued
            try:
                deadline = loop.time() + wait
                while (claim := await self._claim(key)) is None and loop.time() < deadline:
                    await asyncio.sleep(HOLD_POLL)
            finally:
                if claim is None:
                    lock.release()
        finally:
            if claim is None:
                self._let_go(key)
        if claim is None:
            return None
        generation = claim.generation
        released = False

        async def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            try:
                if self._held.get(key) == generation:
                    del self._held[key]
                    self._remember(key, generation)
                    await self.store.turn_release(key, self.owner, generation)
            except Exception as exc:  # noqa: BLE001 - the claim expires after the TTL anyway
                log.warning("could not free the session %s: %s", key, exc)
            finally:
                lock.release()
                self._let_go(key)

        return release

    def _let_go(self, key: str) -> None:
        lock, users = self._holds[key]
        if users <= 1:
            del self._holds[key]
        else:
            self._holds[key] = (lock, users - 1)

    async def request_stop(self, key: str) -> bool:
        """/stop for a session whose turn runs in another process: it reads the request at its next
        tick, at once when the caller also sends the wake-up (gateway/cluster/wakeups.py)."""
        return await self.store.turn_request_stop(key)

    async def idle(self) -> None:
        """Wait until no session's queue is being worked on here (tests and a graceful stop)."""
        while self._workers:
            await asyncio.wait(list(self._workers.values()))

    async def close(self) -> None:
        """Stop taking sessions, end the workers, and free every claim for the other processes."""
        self.stop_taking()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._held.clear()
        try:
            await self.store.turn_release_all(self.owner)
        except Exception as exc:  # noqa: BLE001 - they expire after the TTL anyway
            log.warning("could not release this process's sessions: %s", exc)

    # -- a session's queue -------------------------------------------------------------------------
    async def _work(self, key: str) -> None:
        try:
            claim = await self._claim(key)
            while claim is not None:
                await self._drain(key, claim)
                if key not in self._held or not self.accepting:
                    return                  # lost, or stopping: the next holder takes the rest
                del self._held[key]
                self._remember(key, claim.generation)
                await self.store.turn_release(key, self.owner, claim.generation)
                if await self.store.inbox_next(key) is None:
                    return
                claim = await self._claim(key)   # taken meanwhile by another process: claim it (or it did)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store is away: the claim expires, a tick retries
            log.warning("turns of %s stopped: %s", key, exc)
        finally:
            self._workers.pop(key, None)

    async def _claim(self, key: str) -> TurnClaim | None:
        claim = await self.store.turn_claim(key, self.owner, self.ttl)
        if claim is None:
            return None
        if claim.generation != self._last.get(key, -1) + 1:
            self.forget(key)         # another process ran the session since: the cached copy is old
        self._held[key] = claim.generation
        if claim.taken_over_from:
            log.info("took over the turns of %s from %s (it stopped renewing)", key, claim.taken_over_from)
        return claim

    async def _drain(self, key: str, claim: TurnClaim) -> None:
        notice = bool(claim.taken_over_from)
        last_id: int | None = None
        while self.accepting and self._held.get(key) == claim.generation:
            row = await self.store.inbox_next(key)
            if row is None:
                return
            if row.id == last_id:     # the turn ran but its row is still here (not recorded answered)
                log.warning("the message %s of %s is still unanswered after its turn; retrying it", row.id, key)
                await asyncio.sleep(self.tick_every)
                if not self.accepting or self._held.get(key) != claim.generation:
                    return
            last_id = row.id
            await self.run_row(row, notice or int(row.attempts) > 0)
            notice = False

    def _remember(self, key: str, generation: int) -> None:
        self._last[key] = generation
        self._last.move_to_end(key)
        while len(self._last) > REMEMBERED:
            self._last.popitem(last=False)

    # -- once a tick ---------------------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.tick_every)
            self._woken.clear()
            try:
                await self._renew()
                self._resume_held()
                await self._claim_orphans()
            except Exception as exc:  # noqa: BLE001 - claims judge themselves by their TTL
                log.warning("could not renew this process's sessions: %s", exc)

    async def _renew(self) -> None:
        if not self._held:
            return
        held = {c.session_key: c for c in await self.store.turn_claims_renew(self.owner, self.ttl)}
        for key, generation in list(self._held.items()):
            current = held.get(key)
            if current is None or current.generation != generation:
                log.warning("lost the turns of %s (not renewed in time): interrupting its turn here", key)
                self._held.pop(key, None)
                self.on_stop(key)
            elif current.stop_requested:
                self.on_stop(key)
                await self.store.turn_stop_seen(key, self.owner, generation)

    def _resume_held(self) -> None:
        """Sessions still held here whose worker stopped on an error (the store was away for less
        than the TTL, so the claim was renewed and no other process may take them) go on here."""
        for key in list(self._held):
            if key not in self._workers and key not in self._holds:
                self.offer(key)

    async def _claim_orphans(self) -> None:
        if not self.accepting:
            return
        for key in await self.store.turn_orphans():
            self.offer(key)
