"""analyst views: conversation × stage × theme × week, theme × week, stage × sentiment

Revision ID: 0003
Revises: 0002

Views are derived objects: a later change to their definitions gets a new migration that calls
`create_views` again. On PostgreSQL, `ALTER DEFAULT PRIVILEGES` (docs/journey-map.md) gives a
read-only analyst role SELECT on views re-created by cjm's role.
"""

from alembic import op

from journey.views import create_views, drop_views

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_views(op.get_bind())


def downgrade() -> None:
    drop_views(op.get_bind())
