"""map rollups: journey steps (each live conversation's place in its customer's journey:
previous staged stage and time, next contact) and daily rollups of the map's two scans, so a map
at 1,000,000 conversations reads range scans and a few thousand rolled-up rows

Revision ID: 0012
Revises: 0011

Derived data, filled here for an existing database (INSERT … SELECT from the raw tables:
`journey.journey_map.steps.rebuild`, `journey.journey_map.rollups.rebuild`) and kept in step by
the store afterwards; `cjm map` rebuilds them itself when their counts disagree with the
conversations (a database filled by other means than the sync, e.g. a bulk load).
"""

import sqlalchemy as sa
from alembic import op

from journey.journey_map import rollups

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey_step",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_key", sa.String(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(), nullable=True),
        sa.Column("sentiment", sa.Float(), nullable=True),
        sa.Column("prev_stage", sa.String(), nullable=True),
        sa.Column("prev_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prev_any_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prev_source_id", sa.Integer(), nullable=True),
        sa.Column("next1_stage", sa.String(), nullable=True),
        sa.Column("next2_stage", sa.String(), nullable=True),
        sa.Column("next3_stage", sa.String(), nullable=True),
        sa.Column("next1_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next2_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next3_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next4_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_index("ix_journey_step_created", "journey_step", ["created_at"])
    op.create_index("ix_journey_step_customer", "journey_step", ["customer_key", "created_at"])
    op.create_table(
        "journey_theme_step",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("theme", sa.String(), nullable=False),
        sa.Column("customer_key", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev2_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("conversation_id", "theme"),
    )
    op.create_index("ix_journey_theme_step_created", "journey_theme_step", ["created_at"])
    op.create_index(
        "ix_journey_step_churn",
        "journey_step",
        ["created_at", "sentiment", "next_at", "customer_key", "stage"],
    )
    op.create_index(
        "ix_journey_theme_step_repeat",
        "journey_theme_step",
        ["created_at", "prev2_at", "customer_key", "theme"],
    )
    for table in ("map_day", "map_theme_day"):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("day", sa.DateTime(timezone=True), nullable=False),
            sa.Column("source_id", sa.Integer(), nullable=False),
            sa.Column("channel", sa.String(), nullable=False),
            sa.Column("stage", sa.String(), nullable=True),
            *(
                [sa.Column("theme", sa.String(), nullable=False)]
                if table == "map_theme_day"
                else [
                    sa.Column("csat", sa.Integer(), nullable=False),
                    sa.Column("deleted", sa.Boolean(), nullable=False),
                ]
            ),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
            sa.Column("s", sa.Float(), nullable=False),
            sa.Column("ss", sa.Float(), nullable=False),
            sa.Column("neg", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(f"ix_{table}_day", table, ["day"])
    # the steps are filled by 0013 (`steps.rebuild` writes the columns 0013 adds)
    rollups.rebuild(op.get_bind(), emotions=False)  # the emotion days come with 0013


def downgrade() -> None:
    for table in ("map_theme_day", "map_day"):
        op.drop_index(f"ix_{table}_day", table_name=table)
        op.drop_table(table)
    op.drop_index("ix_journey_theme_step_repeat", table_name="journey_theme_step")
    op.drop_index("ix_journey_step_churn", table_name="journey_step")
    op.drop_index("ix_journey_theme_step_created", table_name="journey_theme_step")
    op.drop_table("journey_theme_step")
    op.drop_index("ix_journey_step_customer", table_name="journey_step")
    op.drop_index("ix_journey_step_created", table_name="journey_step")
    op.drop_table("journey_step")
