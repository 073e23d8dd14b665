"""webhook events: the real-time inbox (`webhook_event`) and worker heartbeats

Revision ID: 0008
Revises: 0007

`cjm serve` stores each signed webhook delivery as a `webhook_event` row before answering 202
(unique on source + delivery + ticket: a repeated delivery is stored once); workers claim the
due rows, process the tickets and mark them done, or put them back with a later
`next_attempt_at`. `worker_heartbeat` has one row per running worker for /healthz.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import journey.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = journey.models.UTCDateTime
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", text(), nullable=False),
        sa.Column("delivery", text(), nullable=False),
        sa.Column("ticket", text(), nullable=False),
        sa.Column("received_at", when(timezone=True), nullable=False),
        sa.Column("status", text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when(timezone=True), nullable=False),
        sa.Column("claimed_by", text(), nullable=True),
        sa.Column("claimed_at", when(timezone=True), nullable=True),
        sa.Column("finished_at", when(timezone=True), nullable=True),
        sa.Column("last_error", text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "delivery", "ticket"),
    )
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_event_due", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "worker_heartbeat",
        sa.Column("worker", text(), nullable=False),
        sa.Column("host", text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("source", text(), nullable=True),
        sa.Column("started_at", when(timezone=True), nullable=False),
        sa.Column("beat_at", when(timezone=True), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("worker"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeat")
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_event_due")
    op.drop_table("webhook_event")
