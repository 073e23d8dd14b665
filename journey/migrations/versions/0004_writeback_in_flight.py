"""write-back in flight: the delta and job being sent, and who last set cjm's fields

Revision ID: 0004
Revises: 0003

`writeback.sent` / `writeback.job_id` record a delta before it is sent, so a run killed while
its jobs were running resumes them and never takes cjm's own values for an agent's edit.
`conversation.field_setters` keeps what the helpdesk said about who last set cjm's fields.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("field_setters", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("field_setters")
    with op.batch_alter_table("writeback", schema=None) as batch_op:
        batch_op.drop_column("job_id")
        batch_op.drop_column("sent")
