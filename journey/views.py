"""SQL views for analysts: the theme database in shapes any SQL client can chart directly.

Views (documented in docs/journey-map.md; deleted conversations never appear):

- `v_conversation_theme_week` — one row per conversation × theme (a conversation without themes
  appears once with theme NULL): source, ids, channel, status, created_at, week, stage, stage
  confidence, sentiment, theme, theme score.
- `v_theme_week` — theme × week: conversations, mean sentiment, negative conversations.
- `v_stage_sentiment` — stage × week × sentiment band (negative / neutral / positive):
  conversations and mean sentiment (stage NULL = the miner abstained).

Each view is compiled from a SQLAlchemy query for the engine's dialect, so SQLite and PostgreSQL
get the same columns and the same week boundaries as the journey map itself (Monday, UTC).
`create_views` is idempotent (drop, then create) and meant to be called from a migration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Select, case, func, literal_column, select
from sqlalchemy.engine import Connection, Engine

from journey.journey_map.sql import week_start
from journey.models import Classification, Conversation, ConversationTheme, Source, table

NEGATIVE, POSITIVE = -0.05, 0.05  # VADER's thresholds, as in the journey map

C = table(Conversation)
K = table(Classification)
T = table(ConversationTheme)
S = table(Source)


def _conversation_theme_week() -> Select:
    return (
        select(
            C.c.id.label("conversation_id"),
            S.c.name.label("source"),
            C.c.external_id,
            C.c.kind,
            C.c.channel,
            C.c.status,
            C.c.created_at,
            week_start(C.c.created_at).label("week"),
            K.c.stage,
            K.c.stage_confidence,
            K.c.sentiment,
            T.c.theme,
            T.c.score.label("theme_score"),
        )
        .select_from(
            C.join(S, S.c.id == C.c.source_id)
            .outerjoin(K, K.c.conversation_id == C.c.id)
            .outerjoin(T, T.c.conversation_id == C.c.id)
        )
        .where(C.c.deleted.is_(False))
    )


def _theme_week() -> Select:
    week = week_start(C.c.created_at)
    return (
        select(
            T.c.theme,
            week.label("week"),
            func.count().label("conversations"),
            func.avg(K.c.sentiment).label("mean_sentiment"),
            func.sum(case((K.c.sentiment < NEGATIVE, 1), else_=0)).label("negative_conversations"),
        )
        .select_from(
            C.join(T, T.c.conversation_id == C.c.id).join(K, K.c.conversation_id == C.c.id)
        )
        .where(C.c.deleted.is_(False))
        .group_by(T.c.theme, week)
    )


def _stage_sentiment() -> Select:
    week = week_start(C.c.created_at)
    band = case(
        (K.c.sentiment < NEGATIVE, literal_column("'negative'")),
        (K.c.sentiment > POSITIVE, literal_column("'positive'")),
        else_=literal_column("'neutral'"),
    )
    return (
        select(
            K.c.stage,
            week.label("week"),
            band.label("sentiment_band"),
            func.count().label("conversations"),
            func.avg(K.c.sentiment).label("mean_sentiment"),
        )
        .select_from(C.join(K, K.c.conversation_id == C.c.id))
        .where(C.c.deleted.is_(False))
        .group_by(K.c.stage, week, band)
    )


VIEWS = {
    "v_conversation_theme_week": _conversation_theme_week,
    "v_theme_week": _theme_week,
    "v_stage_sentiment": _stage_sentiment,
}


def view_sql(name: str, connection: Connection | Engine) -> str:
    """The CREATE VIEW statement for `name` in the connection's dialect (for docs and reviews)."""
    query = VIEWS[name]().compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
    )
    return f"CREATE VIEW {name} AS\n{query}"


def create_views(bind: Engine | Connection) -> list[str]:
    """(Re)create every analyst view; returns their names. Accepts an engine or a connection
    (Alembic's `op.get_bind()`), so a migration runs it inside its own transaction."""
    return replace_views(bind, list(VIEWS), view_sql)


def drop_views(bind: Engine | Connection) -> None:
    """Drop the analyst views if present (a migration's downgrade)."""
    drop_named_views(bind, list(VIEWS))


def replace_views(
    bind: Engine | Connection,
    names: Sequence[str],
    sql_for: Callable[[str, Connection], str],
) -> list[str]:
    """Drop and create the views `names` (in order) from `sql_for(name, connection)`, in one
    transaction; each migration that adds views passes its own set, so an old migration never
    creates a view whose tables a later one adds."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            return replace_views(connection, names, sql_for)
    drop_named_views(bind, names)
    for name in names:
        bind.exec_driver_sql(sql_for(name, bind))
    return list(names)


def drop_named_views(bind: Engine | Connection, names: Sequence[str]) -> None:
    """Drop the views `names` if present, dependants first (CASCADE on PostgreSQL)."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            drop_named_views(connection, names)
            return
    cascade = " CASCADE" if bind.dialect.name == "postgresql" else ""
    for name in reversed(list(names)):
        bind.exec_driver_sql(f"DROP VIEW IF EXISTS {name}{cascade}")
