"""themes in one home: drop `classification.themes`; `conversation_theme` is the source of truth

Revision ID: 0014
Revises: 0013

A conversation's themes were stored three times: the JSON list `classification.themes`, one
`conversation_theme` row per theme (theme, score, evidence sentence: what the map, the views and
analysts read) and the outbox's desired pain tags. The rows stay; the JSON copy goes, and every
reader asks `journey.store.themes_of`. The rows were always written from the same prediction in
the same order (`store.save_classifications`), so nothing is lost. The downgrade re-fills the
column from the rows, ordered by row id (the miner's order, strongest first), as it was.

The analyst views are dropped and re-created around the change: SQLite re-creates the table to
drop a column, and a view naming the table would stop that; `v_customer_journey` now builds its
`themes` column from the rows (same JSON array, same meaning, on SQLite and PostgreSQL).
"""

from itertools import groupby

import sqlalchemy as sa
from alembic import op

from journey.journey_views import create_journey_views, drop_journey_views
from journey.views import create_views, drop_views

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _drop_all_views() -> None:
    drop_journey_views(op.get_bind())
    drop_views(op.get_bind())


def _create_all_views() -> None:
    create_views(op.get_bind())
    create_journey_views(op.get_bind())


def upgrade() -> None:
    _drop_all_views()
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.drop_column("themes")
    _create_all_views()


def downgrade() -> None:
    _drop_all_views()
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("themes", sa.JSON(), nullable=True))
    bind = op.get_bind()
    classification = sa.table(
        "classification", sa.column("conversation_id", sa.Integer), sa.column("themes", sa.JSON)
    )
    theme = sa.table(
        "conversation_theme",
        sa.column("id", sa.Integer),
        sa.column("conversation_id", sa.Integer),
        sa.column("theme", sa.String),
    )
    bind.execute(sa.update(classification).values(themes=[]))
    rows = bind.execute(
        sa.select(theme.c.conversation_id, theme.c.theme).order_by(
            theme.c.conversation_id, theme.c.id
        )
    )
    filled = [
        {"cid": cid, "themes": [name for _, name in group]}
        for cid, group in groupby(rows, key=lambda row: row[0])
    ]
    if filled:
        bind.execute(
            sa.update(classification)
            .where(classification.c.conversation_id == sa.bindparam("cid"))
            .values(themes=sa.bindparam("themes", type_=sa.JSON)),
            filled,
        )
    with op.batch_alter_table("classification", schema=None) as batch_op:
        batch_op.alter_column("themes", existing_type=sa.JSON(), nullable=False)
    _create_all_views()
