"""skills and memory: skill heads, files and versions; memory files and their versions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

Time = sa.Float(precision=53)


def _text(name: str, default: str | None = "", nullable: bool = False) -> sa.Column:
    if default is None:
        return sa.Column(name, sa.Text(), nullable=nullable)
    return sa.Column(name, sa.Text(), server_default=sa.text(f"'{default}'"), nullable=False)


def _int(name: str, default: int = 0) -> sa.Column:
    return sa.Column(name, sa.Integer(), server_default=sa.text(str(default)), nullable=False)


def upgrade() -> None:
    op.create_table(
        "skill_heads",
        sa.Column("library", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _int("seq"), _int("version"), _text("category"), _int("present", 1),
        _text("owner_fingerprint", None, nullable=True), _text("owner_origin"), _text("owner_time"),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("library", "name"),
    )
    op.create_table(
        "skill_files",
        sa.Column("library", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        _text("content", None), _text("digest", None),
        sa.ForeignKeyConstraint(["library", "name"], ["skill_heads.library", "skill_heads.name"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("library", "name", "file"),
    )
    op.create_table(
        "skill_versions",
        sa.Column("library", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        _text("action", None), _text("file", None),
        sa.Column("time", Time, nullable=False),
        _text("origin"),
        _text("before", None, nullable=True), _text("after", None, nullable=True),
        _text("diff"), _text("digest"),
        sa.ForeignKeyConstraint(["library", "name"], ["skill_heads.library", "skill_heads.name"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("library", "name", "number"),
    )
    op.create_index("skill_versions_digest", "skill_versions", ["library", "name", "file", "digest"])
    op.create_table(
        "memory_files",
        sa.Column("key", sa.Text(), nullable=False),
        _int("version"),
        _text("content", None, nullable=True), _text("digest"),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "memory_versions",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        _text("action", None), _text("origin"),
        _text("before", None, nullable=True), _text("after", None, nullable=True),
        _text("digest"),
        sa.Column("time", Time, nullable=False),
        sa.ForeignKeyConstraint(["key"], ["memory_files.key"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", "version"),
    )
    op.create_index("memory_versions_digest", "memory_versions", ["key", "digest"])


def downgrade() -> None:
    op.drop_index("memory_versions_digest", table_name="memory_versions")
    op.drop_table("memory_versions")
    op.drop_table("memory_files")
    op.drop_index("skill_versions_digest", table_name="skill_versions")
    op.drop_table("skill_versions")
    op.drop_table("skill_files")
    op.drop_table("skill_heads")
