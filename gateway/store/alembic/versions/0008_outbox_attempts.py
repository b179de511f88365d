"""outbox: how many times a message was claimed, so one whose sender keeps dying is not retried forever

A row left in `sending` by a gateway that stopped mid-send goes back to the queue (the relay's
reaper); `attempts` counts the claims, and the reaper fails the row instead once it is spent.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("attempts")
