"""platform rate limits held across the cluster: one pacing row per platform and per chat

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_pacing",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("tat", sa.Float(precision=53), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("send_pacing")
