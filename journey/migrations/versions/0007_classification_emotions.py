"""classification emotions: the journey emotions a conversation shows, with their sentences

Revision ID: 0007
Revises: 0006

`classification.emotions` is a JSON list of {"emotion", "score", "sentence"} (miner.emotion,
strongest first), so the map can name the dominant emotions per stage with a quote. Rows mined
before this revision have none until they are mined again (a model change re-mines them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("emotions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.drop_column("emotions")
