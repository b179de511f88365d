"""Every table of the store, defined once for SQLite and PostgreSQL (SQLAlchemy Core).

Times are seconds since the epoch as double precision; flags are integers (0/1) as they always
were on SQLite, so old rows and new ones read the same. Migrations live in `gateway/store/alembic/`
and are frozen copies: change a table here and add a revision there, never edit an old one.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

Time = sa.Float(precision=53)
"""Epoch seconds: REAL on SQLite, DOUBLE PRECISION on PostgreSQL."""


def _text(name: str, default: str | None = "", *, nullable: bool = False) -> sa.Column[str]:
    """A text column; NOT NULL with a server default unless `default` is None."""
    if default is None:
        return sa.Column(name, sa.Text, nullable=nullable)
    return sa.Column(name, sa.Text, nullable=False, server_default=sa.text(f"'{default}'"))


def _int(name: str, default: int | None = 0) -> sa.Column[int]:
    if default is None:
        return sa.Column(name, sa.Integer, nullable=False)
    return sa.Column(name, sa.Integer, nullable=False, server_default=sa.text(str(default)))


def _serial() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


AUTOINCREMENT = {"sqlite_autoincrement": True}

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _text("key", None),
    _text("platform"), _text("chat_id"), _text("user_id"), _text("team"), _text("title"),
    _int("archived"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Index("sessions_key", "key", "archived"),
)

messages = sa.Table(
    "messages", metadata,
    _serial(),
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    _int("seq", None),
    _text("role", None),
    _text("data", None),
    _int("active", 1),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("messages_session", "session_id", "active", "seq"),
    **AUTOINCREMENT,
)

tool_calls = sa.Table(
    "tool_calls", metadata,
    _serial(),
    sa.Column("session_id", sa.Text, sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    _text("call_id", None), _text("name", None), _text("arguments", None),
    _int("ok", None),
    _text("result", None),
    sa.Column("duration_ms", Time, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("tool_calls_session", "session_id"),
    **AUTOINCREMENT,
)

usage = sa.Table(
    "usage", metadata,
    _serial(),
    _text("session_id", None), _text("model", None), _text("purpose", "chat"),
    _int("prompt_tokens", None), _int("completion_tokens", None),
    sa.Column("cost", Time, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("usage_session", "session_id"),
    sa.Index("usage_time", "created_at"),
    **AUTOINCREMENT,
)

pairing_requests = sa.Table(
    "pairing_requests", metadata,
    sa.Column("code", sa.Text, primary_key=True),
    _text("platform", None), _text("user_id", None), _text("display_name"), _text("chat_id"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.UniqueConstraint("platform", "user_id"),
)

allow_grants = sa.Table(
    "allow_grants", metadata,
    sa.Column("platform", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    _text("display_name"), _text("approved_by"),
    sa.Column("created_at", Time, nullable=False),
)

inbound_dedup = sa.Table(
    "inbound_dedup", metadata,
    sa.Column("platform", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("inbound_dedup_time", "created_at"),
)

undelivered = sa.Table(
    "undelivered", metadata,
    _serial(),
    _text("platform", None), _text("chat_id", None),
    _text("thread_id", None, nullable=True), _text("reply_to", None, nullable=True),
    _text("text", None), _text("idempotency_key"), _text("error", None),
    _int("attempts", None),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("undelivered_time", "created_at"),
    **AUTOINCREMENT,
)

outbound_sent = sa.Table(
    "outbound_sent", metadata,
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    _text("platform", None), _text("chat_id", None), _text("message_id", None),
    _text("thread_id", None, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("outbound_sent_time", "created_at"),
)

learning_checkpoints = sa.Table(
    "learning_checkpoints", metadata,
    _serial(),
    _text("session_id", None), _text("team"), _text("cause", None), _text("status", None), _text("model"),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("finished_at", Time, nullable=True),
    _text("decisions"), _text("skills", "[]"), _text("memory", "[]"),
    _int("prompt_tokens"), _int("completion_tokens"),
    _text("error"),
    sa.Column("review_id", sa.Integer, nullable=True),
    _text("refusals", "[]"),
    sa.Index("learning_checkpoints_time", "started_at"),
    sa.Index("learning_checkpoints_session", "session_id"),
    sa.Index("learning_checkpoints_team", "team", "started_at"),
    **AUTOINCREMENT,
)

learning_proposals = sa.Table(
    "learning_proposals", metadata,
    _serial(),
    sa.Column("checkpoint_id", sa.Integer, sa.ForeignKey("learning_checkpoints.id", ondelete="SET NULL"),
              nullable=True),
    _text("session_id", None), _text("team"), _text("skill", None), _text("action", None),
    _text("arguments", None), _text("summary"), _text("status", "pending"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("decided_at", Time, nullable=True),
    _text("decided_by"), _text("result"),
    _text("platform"), _text("chat_id"), _text("user_id"), _text("origin", "checkpoint"),
    _text("kind", "skill"), _text("content_hash"), _text("reason"), _text("announce"),
    sa.Index("learning_proposals_status", "status", "created_at"),
    sa.Index("learning_proposals_team", "team", "status", "id"),
    sa.Index("learning_proposals_hash", "team", "content_hash"),
    sa.Index("learning_proposals_announce", "announce"),
    **AUTOINCREMENT,
)

cron_jobs = sa.Table(
    "cron_jobs", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _text("name", None), _text("schedule", None), _text("kind", None), _text("timezone", None),
    _text("prompt"), _text("skill"), _text("model"), _text("target", None),
    _text("origin_session"), _text("owner"), _text("team"),
    _int("paused"), _int("done"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    _text("paused_reason"),
    sa.Index("cron_jobs_owner", "owner"),
)

cron_runs = sa.Table(
    "cron_runs", metadata,
    _serial(),
    sa.Column("job_id", sa.Text, sa.ForeignKey("cron_jobs.id", ondelete="CASCADE"), nullable=False),
    _text("scheduled_time", None), _text("cause", "schedule"), _text("session_id"),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("finished_at", Time, nullable=True),
    _text("status", None),
    sa.Column("duration_ms", Time, nullable=False, server_default=sa.text("0")),
    _int("prompt_tokens"), _int("completion_tokens"),
    _text("output_excerpt"), _text("error"), _text("delivery_error"),
    sa.UniqueConstraint("job_id", "scheduled_time"),
    sa.Index("cron_runs_job", "job_id", "started_at"),
    **AUTOINCREMENT,
)

approval_requests = sa.Table(
    "approval_requests", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _text("session_id", None), _text("platform", None), _text("chat_id", None), _text("user_id", None),
    _text("tool", None), _text("description", None), _text("rule", None),
    _text("outcome", "pending"), _text("scope"), _text("answered_by"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("answered_at", Time, nullable=True),
    sa.Index("approval_requests_session", "session_id"),
)

approval_rules = sa.Table(
    "approval_rules", metadata,
    sa.Column("session_id", sa.Text, primary_key=True, server_default=sa.text("''")),
    sa.Column("tool", sa.Text, primary_key=True),
    sa.Column("rule", sa.Text, primary_key=True),
    _text("created_by", None),
    sa.Column("created_at", Time, nullable=False),
)

learning_reviews = sa.Table(
    "learning_reviews", metadata,
    _serial(),
    _text("session_id", None), _text("team"),
    _text("reason", None),         # end_of_turn | mid_task | correction | user_turns | idle
    _text("slice", None),          # JSON list of the messages the review sees
    _text("context", "{}"),        # JSON: skills used, speakers, the task's earlier review
    _text("status", "queued"),     # queued | running | deferred | done | failed | capped | merged
    _text("owner"),                # boot id, pid and start time of the process running it
    _int("attempts"),
    _text("writes", "[]"),         # JSON journal of the writes made so far (re-runs skip them)
    sa.Column("checkpoint_id", sa.Integer, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Index("learning_reviews_status", "status", "id"),
    sa.Index("learning_reviews_session", "session_id"),
    **AUTOINCREMENT,
)

learning_counters = sa.Table(
    "learning_counters", metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    _text("team"),
    _int("tool_calls"), _int("user_turns"), _int("reviewed_seq"), _int("turn_seq"), _int("task_review"),
    sa.Column("last_activity", Time, nullable=False, server_default=sa.text("0")),
    sa.Index("learning_counters_idle", "user_turns", "last_activity"),
)

learning_notices = sa.Table(
    "learning_notices", metadata,
    sa.Column("team", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("chat", sa.Text, primary_key=True),
    sa.Column("sent_at", Time, nullable=False),
)

web_sessions = sa.Table(
    "web_sessions", metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    _text("address"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Index("web_sessions_expiry", "expires_at"),
)

turn_inbox = sa.Table(
    "turn_inbox", metadata,
    _serial(),
    _text("platform", None), _text("dedup"), _text("message", None),
    _int("attempts"),
    sa.Column("created_at", Time, nullable=False),
    _text("session_id", None, nullable=True),          # where the turn started (revision 0005)
    sa.Column("start_seq", sa.Integer, nullable=True),
    _text("session_key", None, nullable=True),         # the session whose queue it is in (revision 0009)
    sa.Index("turn_inbox_dedup", "platform", "dedup"),
    sa.Index("turn_inbox_session", "session_key", "id"),
    **AUTOINCREMENT,
)

turn_claims = sa.Table(
    "turn_claims", metadata,
    sa.Column("session_key", sa.Text, primary_key=True),
    _text("owner"),                  # the process running the session's turns; "" = free
    _int("generation"),              # bumps on every claim: a process knows whether its cache is current
    sa.Column("expires_at", Time, nullable=False),
    _text("previous"),               # the owner before this claim ("" when it was released)
    _int("stop_requested"),          # /stop from another process: the owner interrupts its turn
)
"""One row per session whose turns ran somewhere: who runs them now (one process in the cluster)."""

send_pacing = sa.Table(
    "send_pacing", metadata,
    sa.Column("key", sa.Text, primary_key=True),     # "telegram" (all its sends) or "telegram:<chat id>"
    sa.Column("tat", Time, nullable=False),          # the theoretical time of the next send (GCRA)
)
"""Sends to a platform, and to one chat of it, paced across every process of the cluster."""

api_sessions = sa.Table(
    "api_sessions", metadata,
    sa.Column("token_id", sa.Text, primary_key=True),
    sa.Column("session_id", sa.Text, primary_key=True),
    _text("user_id"),
    sa.Column("created_at", Time, nullable=False),
)

api_responses = sa.Table(
    "api_responses", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _text("token_id", None),
    _text("previous_response_id", None, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    _text("response", None), _text("messages", None),
    sa.Index("api_responses_token", "token_id", "created_at"),
    sa.Index("api_responses_time", "created_at"),          # retention pruning
)

leases = sa.Table(
    "leases", metadata,
    sa.Column("duty", sa.Text, primary_key=True),
    _text("owner", None),
    _int("generation"),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("heartbeat_at", Time, nullable=False),
    _text("cursor"),
)
"""One row per duty that runs once in the cluster: who holds it, under which generation (fencing)."""

cluster_members = sa.Table(
    "cluster_members", metadata,
    sa.Column("process", sa.Text, primary_key=True),
    _text("host", None),
    _int("pid"),
    _text("version"),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("heartbeat_at", Time, nullable=False),
)
"""The gateway processes sharing this store (a row per process, removed on a clean stop)."""

skill_heads = sa.Table(
    "skill_heads", metadata,
    sa.Column("library", sa.Text, primary_key=True),   # "" = the home's library, else the team
    sa.Column("name", sa.Text, primary_key=True),
    _int("seq"),                     # bumps with every write: the token a compare-and-set compares
    _int("version"),                 # number of the skill's last history entry
    _text("category"),
    _int("present", 1),              # 0 once deleted (the history stays)
    _text("owner_fingerprint", None, nullable=True),  # provenance: what a checkpoint last wrote
    _text("owner_origin"), _text("owner_time"),
    sa.Column("updated_at", Time, nullable=False),
)
"""One row per skill of a library: its current version and who last wrote it (provenance)."""

skill_files = sa.Table(
    "skill_files", metadata,
    sa.Column("library", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("file", sa.Text, primary_key=True),    # SKILL.md or a supporting file's relative path
    _text("content", None),
    _text("digest", None),           # SHA-256 of the text as written to the file (before redaction)
    sa.ForeignKeyConstraint(["library", "name"], ["skill_heads.library", "skill_heads.name"], ondelete="CASCADE"),
)
"""The current text of every file of every present skill (what the files on disk are kept equal to)."""

skill_versions = sa.Table(
    "skill_versions", metadata,
    sa.Column("library", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    _text("action", None), _text("file", None),
    sa.Column("time", Time, nullable=False),
    _text("origin"),
    _text("before", None, nullable=True), _text("after", None, nullable=True),
    _text("diff"),
    _text("digest"),                 # of `after` (SKILL.md: its fingerprint), to tell a stale copy from an edit
    sa.ForeignKeyConstraint(["library", "name"], ["skill_heads.library", "skill_heads.name"], ondelete="CASCADE"),
    sa.Index("skill_versions_digest", "library", "name", "file", "digest"),
)
"""Every change to one file of a skill: the history `hermes skills history/revert` show and use."""

memory_files = sa.Table(
    "memory_files", metadata,
    sa.Column("key", sa.Text, primary_key=True),    # the file's path under HERMES_HOME
    _int("version"),
    _text("content", None, nullable=True),           # None: the file does not exist
    _text("digest"),
    sa.Column("updated_at", Time, nullable=False),
)
"""Each MEMORY.md and USER.md as the store holds it; the file under HERMES_HOME is kept equal."""

memory_versions = sa.Table(
    "memory_versions", metadata,
    sa.Column("key", sa.Text, sa.ForeignKey("memory_files.key", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    _text("action", None), _text("origin"),
    _text("before", None, nullable=True), _text("after", None, nullable=True),
    _text("digest"),
    sa.Column("time", Time, nullable=False),
    sa.Index("memory_versions_digest", "key", "digest"),
)
"""Every change to a memory file (a person's edit of the file included, as action "file")."""

outbox = sa.Table(
    "outbox", metadata,
    _serial(),
    _text("target", None),             # a platform target: "telegram:42", "slack:C1/1700.1" ...
    _text("text", None),
    _text("idempotency_key", None),
    _text("origin"),                   # who asked, for the log: "cron run 3f2a..."
    _text("state", "queued"),          # queued -> sending -> delivered | failed; queued -> expired;
                                       # sending -> queued | failed when its sender stopped (reaped)
    _text("claimed_by"),
    sa.Column("claimed_at", Time),     # the claim, renewed while its gateway is sending
    _text("error"),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("finished_at", Time),
    _int("attempts"),                  # claims so far (revision 0008)
    sa.UniqueConstraint("idempotency_key", name="outbox_key"),
    sa.Index("outbox_state", "state", "created_at"),
    **AUTOINCREMENT,
)
"""Messages a process without platform connections (`hermes cron run`) hands to a running gateway."""
