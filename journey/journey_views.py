"""Analyst views of customer journeys and emotions (migration 0010): each customer's
conversations in time order, and the journey emotions each conversation shows.

- `v_customer_journey` — one row per live conversation that has a requester: the customer (the
  requester, merged across sources by hashed e-mail: `journey.journey_map.customers`), the
  conversation's step in that customer's journey (1 = first), its stage and the previous
  conversation's stage, themes (a JSON array of the `conversation_theme` rows), sentiment,
  strongest emotion, channel and the days since the customer's previous conversation.
- `v_conversation_emotion` — one row per live conversation × journey emotion it shows
  (`classification.emotions`, migration 0007), with score and the customer's sentence; a
  conversation showing none appears once with emotion NULL (not mined since 0007, or calm).

These live apart from `journey.views` on purpose: migration 0003 calls `journey.views.create_views`
on a fresh database, before the columns read here exist. Both are derived on every read, so a
re-mined, merged or deleted conversation is reflected at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, case, func, literal_column, select, true
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection, Engine

from journey.journey_map.customers import C, customer_key, has_requester, with_requester
from journey.journey_map.sql import epoch_days, week_start
from journey.models import Classification, ConversationTheme, Source, table
from journey.views import drop_named_views, replace_views

NEGATIVE, POSITIVE = -0.05, 0.05  # the map's thresholds

K = table(Classification)
S = table(Source)
T = table(ConversationTheme)


def _band(sentiment: object) -> ColumnElement[Any]:
    return case(
        (K.c.sentiment < NEGATIVE, literal_column("'negative'")),
        (K.c.sentiment > POSITIVE, literal_column("'positive'")),
        else_=literal_column("'neutral'"),
    )


def _strongest_emotion(dialect: str) -> ColumnElement[Any]:
    """The first (strongest) emotion's name in `classification.emotions`, NULL when none."""
    if dialect == "postgresql":
        return case(
            (
                func.json_typeof(K.c.emotions) == "array",
                K.c.emotions.op("->")(0).op("->>")("emotion"),
            ),
            else_=None,
        )
    return func.json_extract(K.c.emotions, "$[0].emotion")


def _themes(dialect: str) -> ColumnElement[Any]:
    """The conversation's themes as a JSON array in the miner's order (the `conversation_theme`
    rows by id), `[]` when mined without themes, NULL when not mined: the shape the view had
    when it read the (dropped, migration 0014) `classification.themes` column."""
    if dialect == "postgresql":
        listed: ColumnElement[Any] = (
            select(
                func.coalesce(
                    func.json_agg(aggregate_order_by(T.c.theme, T.c.id)),
                    literal_column("'[]'::json"),
                )
            )
            .where(T.c.conversation_id == C.c.id)
            .scalar_subquery()
        )
    else:  # SQLite before 3.44 has no ORDER BY inside an aggregate: order a subquery instead
        ordered = (
            select(T.c.theme)
            .where(T.c.conversation_id == C.c.id)
            .order_by(T.c.id)
            .correlate(C)
            .subquery()
        )
        listed = select(func.json_group_array(ordered.c.theme)).scalar_subquery()
    return case((K.c.id.is_(None), None), else_=listed)


def _customer_journey(dialect: str) -> Select:
    customer = customer_key()
    order = (C.c.created_at, C.c.id)
    previous_at = func.lag(epoch_days(C.c.created_at)).over(partition_by=customer, order_by=order)
    return (
        select(
            customer.label("customer"),
            S.c.name.label("source"),
            C.c.requester_id,
            C.c.organization_id,
            C.c.id.label("conversation_id"),
            C.c.external_id,
            func.row_number().over(partition_by=customer, order_by=order).label("step"),
            C.c.created_at,
            week_start(C.c.created_at).label("week"),
            C.c.channel,
            K.c.stage,
            func.lag(K.c.stage).over(partition_by=customer, order_by=order).label("previous_stage"),
            K.c.stage_confidence,
            _themes(dialect).label("themes"),
            K.c.sentiment,
            _strongest_emotion(dialect).label("emotion"),
            (epoch_days(C.c.created_at) - previous_at).label("days_since_previous"),
        )
        .select_from(
            with_requester(
                C.join(S, S.c.id == C.c.source_id).outerjoin(K, K.c.conversation_id == C.c.id)
            )
        )
        .where(C.c.deleted.is_(False), has_requester())
    )


def _conversation_emotion(dialect: str) -> Select:
    emotion: ColumnElement[Any]
    score: ColumnElement[Any]
    sentence: ColumnElement[Any]
    if dialect == "postgresql":
        arrays = case((func.json_typeof(K.c.emotions) == "array", K.c.emotions), else_=None)
        shown = func.json_array_elements(arrays).table_valued("value")
        emotion = shown.c.value.op("->>")("emotion")
        score = shown.c.value.op("->>")("score").cast(Float)
        sentence = shown.c.value.op("->>")("sentence")
    else:
        arrays = case((func.json_type(K.c.emotions) == "array", K.c.emotions), else_=None)
        shown = func.json_each(arrays).table_valued("value")
        emotion = func.json_extract(shown.c.value, "$.emotion")
        score = func.json_extract(shown.c.value, "$.score")
        sentence = func.json_extract(shown.c.value, "$.sentence")
    return (
        select(
            C.c.id.label("conversation_id"),
            customer_key().label("customer"),
            S.c.name.label("source"),
            C.c.external_id,
            C.c.channel,
            C.c.created_at,
            week_start(C.c.created_at).label("week"),
            K.c.stage,
            K.c.sentiment,
            _band(K.c.sentiment).label("sentiment_band"),
            emotion.label("emotion"),
            score.label("score"),
            sentence.label("sentence"),
        )
        .select_from(
            with_requester(
                C.join(S, S.c.id == C.c.source_id).join(K, K.c.conversation_id == C.c.id)
            ).outerjoin(shown, true())
        )
        .where(C.c.deleted.is_(False))
    )


JOURNEY_VIEWS: dict[str, Callable[[str], Select]] = {
    "v_customer_journey": _customer_journey,
    "v_conversation_emotion": _conversation_emotion,
}


def journey_view_sql(name: str, connection: Connection | Engine) -> str:
    """The CREATE VIEW statement for `name` in the connection's dialect."""
    query = JOURNEY_VIEWS[name](connection.dialect.name).compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
    )
    return f"CREATE VIEW {name} AS\n{query}"


def create_journey_views(bind: Engine | Connection) -> list[str]:
    """(Re)create the journey views; returns their names (idempotent, for migrations)."""
    return replace_views(bind, list(JOURNEY_VIEWS), journey_view_sql)


def drop_journey_views(bind: Engine | Connection) -> None:
    """Drop the journey views if present (a migration's downgrade)."""
    drop_named_views(bind, list(JOURNEY_VIEWS))
