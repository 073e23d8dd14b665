"""label labeller: who gave a label (`cjm label` records the person), and an index on the
label's conversation (the labelling loop skips labelled conversations)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("labeller", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.create_index("ix_label_conversation", ["conversation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.drop_index("ix_label_conversation")
        batch_op.drop_column("labeller")
