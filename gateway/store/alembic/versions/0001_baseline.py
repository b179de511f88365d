"""baseline: the schema of the SQLite store before Alembic (user_version 11)

Revision ID: 0001
Revises: 
Frozen: later changes to gateway/store/schema.py come as new revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('allow_grants',
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('approved_by', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'user_id')
    )
    op.create_table('api_responses',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('token_id', sa.Text(), nullable=False),
    sa.Column('previous_response_id', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('messages', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('api_responses', schema=None) as batch_op:
        batch_op.create_index('api_responses_token', ['token_id', 'created_at'], unique=False)

    op.create_table('api_sessions',
    sa.Column('token_id', sa.Text(), nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('token_id', 'session_id')
    )
    op.create_table('approval_requests',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('chat_id', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Text(), nullable=False),
    sa.Column('tool', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Text(), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('scope', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('answered_by', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('answered_at', sa.Float(precision=53), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.create_index('approval_requests_session', ['session_id'], unique=False)

    op.create_table('approval_rules',
    sa.Column('session_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('tool', sa.Text(), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('session_id', 'tool', 'rule')
    )
    op.create_table('cron_jobs',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('schedule', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('timezone', sa.Text(), nullable=False),
    sa.Column('prompt', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('skill', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('model', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('origin_session', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('owner', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('team', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('paused', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('done', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('updated_at', sa.Float(precision=53), nullable=False),
    sa.Column('paused_reason', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cron_jobs', schema=None) as batch_op:
        batch_op.create_index('cron_jobs_owner', ['owner'], unique=False)

    op.create_table('inbound_dedup',
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'key')
    )
    with op.batch_alter_table('inbound_dedup', schema=None) as batch_op:
        batch_op.create_index('inbound_dedup_time', ['created_at'], unique=False)

    op.create_table('learning_checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('team', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('model', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('started_at', sa.Float(precision=53), nullable=False),
    sa.Column('finished_at', sa.Float(precision=53), nullable=True),
    sa.Column('decisions', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('skills', sa.Text(), server_default=sa.text("'[]'"), nullable=False),
    sa.Column('memory', sa.Text(), server_default=sa.text("'[]'"), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('error', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=True),
    sa.Column('refusals', sa.Text(), server_default=sa.text("'[]'"), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('learning_checkpoints', schema=None) as batch_op:
        batch_op.create_index('learning_checkpoints_session', ['session_id'], unique=False)
        batch_op.create_index('learning_checkpoints_team', ['team', 'started_at'], unique=False)
        batch_op.create_index('learning_checkpoints_time', ['started_at'], unique=False)

    op.create_table('learning_counters',
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('team', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('tool_calls', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('user_turns', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('reviewed_seq', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('turn_seq', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('task_review', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_activity', sa.Float(precision=53), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    with op.batch_alter_table('learning_counters', schema=None) as batch_op:
        batch_op.create_index('learning_counters_idle', ['user_turns', 'last_activity'], unique=False)

    op.create_table('learning_notices',
    sa.Column('team', sa.Text(), nullable=False),
    sa.Column('day', sa.Text(), nullable=False),
    sa.Column('chat', sa.Text(), nullable=False),
    sa.Column('sent_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('team', 'day', 'chat')
    )
    op.create_table('learning_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('team', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('slice', sa.Text(), nullable=False),
    sa.Column('context', sa.Text(), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('status', sa.Text(), server_default=sa.text("'queued'"), nullable=False),
    sa.Column('owner', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('writes', sa.Text(), server_default=sa.text("'[]'"), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('updated_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('learning_reviews', schema=None) as batch_op:
        batch_op.create_index('learning_reviews_session', ['session_id'], unique=False)
        batch_op.create_index('learning_reviews_status', ['status', 'id'], unique=False)

    op.create_table('outbound_sent',
    sa.Column('idempotency_key', sa.Text(), nullable=False),
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('chat_id', sa.Text(), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('thread_id', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('idempotency_key')
    )
    with op.batch_alter_table('outbound_sent', schema=None) as batch_op:
        batch_op.create_index('outbound_sent_time', ['created_at'], unique=False)

    op.create_table('pairing_requests',
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('chat_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('expires_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('code'),
    sa.UniqueConstraint('platform', 'user_id')
    )
    op.create_table('sessions',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('platform', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('chat_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('user_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('team', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('title', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('archived', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('updated_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('sessions_key', ['key', 'archived'], unique=False)

    op.create_table('turn_inbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('dedup', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('turn_inbox', schema=None) as batch_op:
        batch_op.create_index('turn_inbox_dedup', ['platform', 'dedup'], unique=False)

    op.create_table('undelivered',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('chat_id', sa.Text(), nullable=False),
    sa.Column('thread_id', sa.Text(), nullable=True),
    sa.Column('reply_to', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('undelivered', schema=None) as batch_op:
        batch_op.create_index('undelivered_time', ['created_at'], unique=False)

    op.create_table('usage',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('purpose', sa.Text(), server_default=sa.text("'chat'"), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Float(precision=53), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('usage', schema=None) as batch_op:
        batch_op.create_index('usage_session', ['session_id'], unique=False)
        batch_op.create_index('usage_time', ['created_at'], unique=False)

    op.create_table('web_sessions',
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('address', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('expires_at', sa.Float(precision=53), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index('web_sessions_expiry', ['expires_at'], unique=False)

    op.create_table('cron_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.Text(), nullable=False),
    sa.Column('scheduled_time', sa.Text(), nullable=False),
    sa.Column('cause', sa.Text(), server_default=sa.text("'schedule'"), nullable=False),
    sa.Column('session_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('started_at', sa.Float(precision=53), nullable=False),
    sa.Column('finished_at', sa.Float(precision=53), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('duration_ms', sa.Float(precision=53), server_default=sa.text('0'), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('output_excerpt', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('error', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('delivery_error', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['cron_jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'scheduled_time'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('cron_runs', schema=None) as batch_op:
        batch_op.create_index('cron_runs_job', ['job_id', 'started_at'], unique=False)

    op.create_table('learning_proposals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('team', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('skill', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('arguments', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('status', sa.Text(), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.Column('decided_at', sa.Float(precision=53), nullable=True),
    sa.Column('decided_by', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('result', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('platform', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('chat_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('user_id', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('origin', sa.Text(), server_default=sa.text("'checkpoint'"), nullable=False),
    sa.Column('kind', sa.Text(), server_default=sa.text("'skill'"), nullable=False),
    sa.Column('content_hash', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('reason', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.Column('announce', sa.Text(), server_default=sa.text("('')"), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['learning_checkpoints.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('learning_proposals', schema=None) as batch_op:
        batch_op.create_index('learning_proposals_announce', ['announce'], unique=False)
        batch_op.create_index('learning_proposals_hash', ['team', 'content_hash'], unique=False)
        batch_op.create_index('learning_proposals_status', ['status', 'created_at'], unique=False)
        batch_op.create_index('learning_proposals_team', ['team', 'status', 'id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('active', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('messages_session', ['session_id', 'active', 'seq'], unique=False)

    op.create_table('tool_calls',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('call_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('arguments', sa.Text(), nullable=False),
    sa.Column('ok', sa.Integer(), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.Column('duration_ms', sa.Float(precision=53), nullable=False),
    sa.Column('created_at', sa.Float(precision=53), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.create_index('tool_calls_session', ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.drop_index('tool_calls_session')

    op.drop_table('tool_calls')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('messages_session')

    op.drop_table('messages')
    with op.batch_alter_table('learning_proposals', schema=None) as batch_op:
        batch_op.drop_index('learning_proposals_team')
        batch_op.drop_index('learning_proposals_status')
        batch_op.drop_index('learning_proposals_hash')
        batch_op.drop_index('learning_proposals_announce')

    op.drop_table('learning_proposals')
    with op.batch_alter_table('cron_runs', schema=None) as batch_op:
        batch_op.drop_index('cron_runs_job')

    op.drop_table('cron_runs')
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index('web_sessions_expiry')

    op.drop_table('web_sessions')
    with op.batch_alter_table('usage', schema=None) as batch_op:
        batch_op.drop_index('usage_time')
        batch_op.drop_index('usage_session')

    op.drop_table('usage')
    with op.batch_alter_table('undelivered', schema=None) as batch_op:
        batch_op.drop_index('undelivered_time')

    op.drop_table('undelivered')
    with op.batch_alter_table('turn_inbox', schema=None) as batch_op:
        batch_op.drop_index('turn_inbox_dedup')

    op.drop_table('turn_inbox')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('sessions_key')

    op.drop_table('sessions')
    op.drop_table('pairing_requests')
    with op.batch_alter_table('outbound_sent', schema=None) as batch_op:
        batch_op.drop_index('outbound_sent_time')

    op.drop_table('outbound_sent')
    with op.batch_alter_table('learning_reviews', schema=None) as batch_op:
        batch_op.drop_index('learning_reviews_status')
        batch_op.drop_index('learning_reviews_session')

    op.drop_table('learning_reviews')
    op.drop_table('learning_notices')
    with op.batch_alter_table('learning_counters', schema=None) as batch_op:
        batch_op.drop_index('learning_counters_idle')

    op.drop_table('learning_counters')
    with op.batch_alter_table('learning_checkpoints', schema=None) as batch_op:
        batch_op.drop_index('learning_checkpoints_time')
        batch_op.drop_index('learning_checkpoints_team')
        batch_op.drop_index('learning_checkpoints_session')

    op.drop_table('learning_checkpoints')
    with op.batch_alter_table('inbound_dedup', schema=None) as batch_op:
        batch_op.drop_index('inbound_dedup_time')

    op.drop_table('inbound_dedup')
    with op.batch_alter_table('cron_jobs', schema=None) as batch_op:
        batch_op.drop_index('cron_jobs_owner')

    op.drop_table('cron_jobs')
    op.drop_table('approval_rules')
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.drop_index('approval_requests_session')

    op.drop_table('approval_requests')
    op.drop_table('api_sessions')
    with op.batch_alter_table('api_responses', schema=None) as batch_op:
        batch_op.drop_index('api_responses_token')

    op.drop_table('api_responses')
    op.drop_table('allow_grants')
