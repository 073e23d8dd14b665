"""map speed: the journey steps' daily facts (`journey_day`), a stored churn signal per step,
and indexes that let the map's quotes read a few rows in index order instead of ranking every
conversation of the period (issue 19 item 5)

Revision ID: 0013
Revises: 0012

- `journey_day`: per day, the counts the flows sum (moves, first steps, journey paths, churn
  signals…; `journey.journey_map.journey_days`), backfilled from the steps here and kept by the
  store whenever it recomputes a customer's steps.
- `journey_step.signal_at`: created_at of a 30-day churn signal (negative, no next contact
  within 30 days), backfilled with one UPDATE; indexed with the customer and stage, so a
  window's signals are read from the index alone. `ix_journey_step_moves` covers the backward
  moves and the corrections at a period's edges.

- `conversation_theme (theme, score, conversation_id)`: a (stage, theme) pair's quotes are the
  theme's rows best score first; the query stops after the first ones of the pair's stage and
  period (`aggregate._verbatim_candidates`).
- `classification (stage, sentiment)`: a stage's CSAT quote is its most negative conversation
  with a comment; read in sentiment order, the query stops at the first ones that have one.
- `classification (language)`: the map counts the conversations not in English from two short
  index ranges (below and above "en") instead of scanning the period.

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import and_, case, or_, update

from journey.journey_map import emotion_days, journey_days, steps
from journey.journey_map.sql import epoch_days

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_conversation_theme_rank", "conversation_theme", ["theme", "score", "conversation_id"]
    )
    op.create_index("ix_classification_stage_sentiment", "classification", ["stage", "sentiment"])
    op.create_index("ix_classification_language", "classification", ["language"])
    op.add_column("journey_step", sa.Column("signal_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_journey_step_moves",
        "journey_step",
        ["created_at", "prev_at", "stage", "prev_stage", "customer_key"],
    )
    op.create_index(
        "ix_journey_step_signal", "journey_step", ["signal_at", "customer_key", "stage"]
    )
    op.create_table(
        "journey_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("a", sa.String(), nullable=False),
        sa.Column("b", sa.String(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", "kind", "a", "b", name="uq_journey_day_key"),
    )
    op.create_index("ix_journey_day_kind", "journey_day", ["kind", "day"])
    op.create_table(
        "map_emotion_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("emotion", sa.String(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("best_short", sa.Integer(), nullable=False),
        sa.Column("best_score", sa.Float(), nullable=True),
        sa.Column("best_id", sa.Integer(), nullable=False),
        sa.Column("sentence", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_map_emotion_day_day", "map_emotion_day", ["day"])
    emotion_days.rebuild(op.get_bind())
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(steps.S)).scalar_one():
        S = steps.S  # noqa: N806 - the table, as in the module that owns it
        silent = or_(
            S.c.next_at.is_(None),
            epoch_days(S.c.next_at) - epoch_days(S.c.created_at) > steps.SIGNAL_DAYS,
        )
        signal = case((and_(S.c.sentiment < steps.NEGATIVE, silent), S.c.created_at))
        bind.execute(update(S).values(signal_at=signal))  # filled by 0012's code: one UPDATE
        journey_days.rebuild(bind)
    else:
        steps.rebuild(bind)  # the steps, their signals and their daily facts


def downgrade() -> None:
    op.drop_index("ix_map_emotion_day_day", table_name="map_emotion_day")
    op.drop_table("map_emotion_day")
    op.drop_index("ix_journey_day_kind", table_name="journey_day")
    op.drop_table("journey_day")
    op.drop_index("ix_journey_step_signal", table_name="journey_step")
    op.drop_index("ix_journey_step_moves", table_name="journey_step")
    with op.batch_alter_table("journey_step") as batch:
        batch.drop_column("signal_at")
    op.drop_index("ix_classification_language", table_name="classification")
    op.drop_index("ix_classification_stage_sentiment", table_name="classification")
    op.drop_index("ix_conversation_theme_rank", table_name="conversation_theme")
