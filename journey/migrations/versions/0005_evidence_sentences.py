"""evidence sentences: the customer's own sentence behind the stage and behind each theme

Revision ID: 0005
Revises: 0004

`classification.stage_evidence` and `conversation_theme.evidence` hold the whole sentence (as
stored, redacted) that most supports the stage and each theme, so verbatims quote the sentence
that shows the pain instead of the start of the conversation. Rows mined before this revision
have none until they are mined again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage_evidence", sa.Text(), nullable=True))
    with op.batch_alter_table("conversation_theme", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation_theme", schema=None) as batch_op:
        batch_op.drop_column("evidence")
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.drop_column("stage_evidence")
