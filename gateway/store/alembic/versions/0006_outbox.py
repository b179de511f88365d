"""outbox: messages a process without platform connections hands to a running gateway

`hermes cron run` has no Telegram or Slack connection of its own; it queues its result here and a
gateway process sharing the store sends it through its adapters.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

Time = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("state", sa.Text(), nullable=False, server_default=sa.text("'queued'")),
        sa.Column("claimed_by", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("claimed_at", Time, nullable=True),
        sa.Column("error", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
        sa.Column("finished_at", Time, nullable=True),
        sa.UniqueConstraint("idempotency_key", name="outbox_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("outbox_state", "outbox", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("outbox_state", table_name="outbox")
    op.drop_table("outbox")
