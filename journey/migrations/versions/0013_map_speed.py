"""map speed: indexes that let the map's quotes read a few rows in index order instead of
ranking every conversation of the period (issue 19 item 5)

Revision ID: 0013
Revises: 0012

- `conversation_theme (theme, score, conversation_id)`: a (stage, theme) pair's quotes are the
  theme's rows best score first; the query stops after the first ones of the pair's stage and
  period (`aggregate._verbatim_candidates`).
- `classification (stage, sentiment)`: a stage's CSAT quote is its most negative conversation
  with a comment; read in sentiment order, the query stops at the first ones that have one.

Indexes only: nothing to backfill.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_conversation_theme_rank", "conversation_theme", ["theme", "score", "conversation_id"]
    )
    op.create_index("ix_classification_stage_sentiment", "classification", ["stage", "sentiment"])


def downgrade() -> None:
    op.drop_index("ix_classification_stage_sentiment", table_name="classification")
    op.drop_index("ix_conversation_theme_rank", table_name="conversation_theme")
