"""conversation requester index: the agent sidebar shows a customer's journey (their
conversations in this source, in time order) on every ticket it opens; without the index that
is a scan of every conversation

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_requester", ["source_id", "requester_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_requester")
