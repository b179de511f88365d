"""turns anywhere: a session's inbox rows name their session, and one process claims a session at a time

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turn_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_key", sa.Text(), nullable=True))
        batch_op.create_index("turn_inbox_session", ["session_key", "id"])
    op.create_table(
        "turn_claims",
        sa.Column("session_key", sa.Text(), primary_key=True),
        sa.Column("owner", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("generation", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False),
        sa.Column("previous", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("stop_requested", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("turn_claims")
    with op.batch_alter_table("turn_inbox", schema=None) as batch_op:
        batch_op.drop_index("turn_inbox_session")
        batch_op.drop_column("session_key")
