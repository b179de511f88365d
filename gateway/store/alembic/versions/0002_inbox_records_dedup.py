"""The inbox records its dedup key itself: drop the SQLite trigger of legacy migration 0009.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS turn_inbox_records_dedup")


def downgrade() -> None:
    pass
