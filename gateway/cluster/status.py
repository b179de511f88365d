"""What `hermes status` shows: the processes sharing the store, the leader, who owns each duty.

Read from the store alone (`cluster_members`, `leases`), so it works from any machine that
reaches the database, with or without a gateway running there. A member is `alive` while its
heartbeat is recent (`SILENT_AFTER` seconds); a duty is owned while its lease row has not expired.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.cluster.duties import LEADER
from gateway.store import StateStore

SILENT_AFTER = 15.0


@dataclass(frozen=True)
class DutyView:
    duty: str
    owner: str            # the process id, "" when nobody holds it now
    generation: int
    expires_in: float     # seconds; negative when expired


@dataclass
class MemberView:
    process: str
    host: str
    pid: int
    version: str
    started_at: float
    heartbeat_at: float
    alive: bool
    role: str = "follower"
    duties: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ClusterView:
    members: list[MemberView]
    duties: list[DutyView]

    @property
    def leader(self) -> str:
        return next((d.owner for d in self.duties if d.duty == LEADER and d.owner), "")


async def cluster_view(store: StateStore, *, now: float | None = None) -> ClusterView:
    now = time.time() if now is None else now
    duties = [DutyView(r.duty, r.owner if r.live(now) else "", r.generation, round(r.expires_at - now, 1))
              for r in await store.list_leases()]
    members = [MemberView(m.process, m.host, m.pid, m.version, m.started_at, m.heartbeat_at,
                          alive=now - m.heartbeat_at < SILENT_AFTER)
               for m in await store.list_members()]
    by_process = {m.process: m for m in members}
    for duty in duties:
        member = by_process.get(duty.owner)
        if member is None:
            continue
        if duty.duty == LEADER:
            member.role = "leader"
        else:
            member.duties.append(duty.duty)
    return ClusterView(members, duties)


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 129600:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def render(view: ClusterView, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if not view.members:
        lines = ["No gateway process is running on this store."]
    else:
        lines = [f"Processes ({len(view.members)}):"]
        for m in view.members:
            state = m.role if m.alive else f"silent ({m.role} when last seen)"
            lines.append(f"  {m.process}  host {m.host}  pid {m.pid}  version {m.version}  "
                         f"started {ago(now - m.started_at)}  heartbeat {ago(now - m.heartbeat_at)}  {state}")
        lines.append(f"Leader: {view.leader or 'none (being elected)'}")
    if view.duties:
        width = max(len(d.duty) for d in view.duties)
        lines.append("Duties:")
        for d in view.duties:
            owner = (f"{d.owner} (generation {d.generation})" if d.owner
                     else f"nobody (lease expired {ago(-d.expires_in)})")
            lines.append(f"  {d.duty:<{width}}  {owner}")
    return "\n".join(lines)
