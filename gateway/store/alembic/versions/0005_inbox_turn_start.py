"""turn_inbox remembers where its turn started: the session and the first message seq of the turn

A re-run after a crash rewinds the conversation to that point, so its context holds the
conversation up to its own message and nothing the interrupted run had added.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turn_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("start_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turn_inbox", schema=None) as batch_op:
        batch_op.drop_column("start_seq")
        batch_op.drop_column("session_id")
