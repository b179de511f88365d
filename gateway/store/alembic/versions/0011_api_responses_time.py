"""stored /v1/responses are pruned with the transcripts: an index on their time

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("api_responses_time", "api_responses", ["created_at"])


def downgrade() -> None:
    op.drop_index("api_responses_time", table_name="api_responses")
