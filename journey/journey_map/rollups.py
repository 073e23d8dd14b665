"""Daily rollups of the map's two big scans (`map_day`, `map_theme_day`, migration 0012).

The map groups every conversation of its window (previous period + trend weeks + period) by
(bucket, week, stage, channel, CSAT comment) and every conversation × theme by (bucket, week,
stage, theme), with sentiment sums. When the period, the previous period and the trend window
all start and end at midnight UTC — the default period always does, and so does any
`--since/--until` given as a date — those groups are sums of per-day groups, so the map reads a
few thousand rolled-up rows instead of a million conversations. A source or channel filter is a
rollup dimension; a segment filter (status, kind, requester, custom fields) is not, so a segment
map scans the raw tables (as does `CJM_MAP_RAW=1`, and any period with a time of day).

A day is never patched: the store recomputes every day a change touches (its conversations' days
before and after) from the raw tables, with the same SELECT as the full `rebuild`. Deleted
conversations are counted in their own rows (never read by the map) so that the rollup's
conversations add up to the table's: `ensure` compares the two counts and rebuilds after a bulk
load or a hand-made database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, insert, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from journey.journey_map import emotion_days
from journey.journey_map.model import Filters, Period
from journey.journey_map.sql import day_start
from journey.journey_map.steps import forced_raw, rebuild_when_out_of_step
from journey.models import (
    Classification,
    Conversation,
    ConversationTheme,
    MapDay,
    MapThemeDay,
    Message,
    table,
)

C = table(Conversation)
K = table(Classification)
T = table(ConversationTheme)
M = table(Message)
D = table(MapDay)
DT = table(MapThemeDay)
NEGATIVE = -0.05
CHUNK = 200


def sums_of(sentiment: Any, classified: Any) -> list[Any]:
    """(classified, conversations, Σ sentiment, Σ sentiment², negatives) of a group."""
    return [
        func.count(classified),
        func.count(),
        func.coalesce(func.sum(sentiment), 0.0),
        func.coalesce(func.sum(sentiment * sentiment), 0.0),
        func.coalesce(func.sum(case((sentiment < NEGATIVE, 1), else_=0)), 0),
    ]


_DAY_COLUMNS = ["day", "source_id", "channel", "stage", "csat", "deleted",
                "n", "total", "s", "ss", "neg"]  # fmt: skip
_THEME_COLUMNS = ["day", "source_id", "channel", "stage", "theme", "n", "total", "s", "ss", "neg"]


def _days_query(*where: Any) -> Any:
    has_csat = exists().where(M.c.conversation_id == C.c.id, M.c.solicited.is_(True))
    inner = (
        select(
            day_start(C.c.created_at).label("day"),
            C.c.source_id.label("source_id"),
            C.c.channel.label("channel"),
            K.c.stage.label("stage"),
            case((has_csat, 1), else_=0).label("csat"),
            C.c.deleted.label("deleted"),
            K.c.id.label("kid"),
            K.c.sentiment.label("sentiment"),
        )
        .select_from(C.outerjoin(K, K.c.conversation_id == C.c.id))
        .where(*where)
        .subquery()
    )
    keys = [inner.c[name] for name in _DAY_COLUMNS[:6]]
    return select(*keys, *sums_of(inner.c.sentiment, inner.c.kid)).group_by(*keys)


def _themes_query(*where: Any) -> Any:
    inner = (
        select(
            day_start(C.c.created_at).label("day"),
            C.c.source_id.label("source_id"),
            C.c.channel.label("channel"),
            K.c.stage.label("stage"),
            T.c.theme.label("theme"),
            K.c.id.label("kid"),
            K.c.sentiment.label("sentiment"),
        )
        .select_from(
            C.join(K, K.c.conversation_id == C.c.id).join(T, T.c.conversation_id == C.c.id)
        )
        .where(C.c.deleted.is_(False), *where)
        .subquery()
    )
    keys = [inner.c[name] for name in _THEME_COLUMNS[:5]]
    return select(*keys, *sums_of(inner.c.sentiment, inner.c.kid)).group_by(*keys)


def rebuild(conn: Connection, *, emotions: bool = True) -> None:
    """Recompute every day (migration 0012's backfill, which predates the emotion days:
    `emotions=False`; `ensure` after a bulk load)."""
    conn.execute(delete(D))
    conn.execute(delete(DT))
    conn.execute(insert(D).from_select(_DAY_COLUMNS, _days_query()))
    conn.execute(insert(DT).from_select(_THEME_COLUMNS, _themes_query()))
    if emotions:
        emotion_days.rebuild(conn)


def in_step(conn: Connection) -> bool:
    """The rollup counts every conversation once (deleted ones in their own rows)."""
    rolled = conn.execute(select(func.coalesce(func.sum(D.c.total), 0))).scalar_one()
    stored = conn.execute(select(func.count()).select_from(C)).scalar_one()
    return int(rolled) == int(stored)


def ensure(engine: Engine) -> bool:
    """Rebuild the rollups when they do not add up (the one-shot backfill `cjm map` runs);
    True when the map may read them."""
    return rebuild_when_out_of_step(engine, in_step, rebuild)


def days_of(conn: Any, conversation_ids: Iterable[int]) -> set[datetime]:
    """The days (midnight UTC) of these conversations, as stored now."""
    ids = sorted({int(i) for i in conversation_ids})
    days: set[datetime] = set()
    for start in range(0, len(ids), 500):
        for (created,) in conn.execute(
            select(C.c.created_at).where(C.c.id.in_(ids[start : start + 500]))
        ):
            days.add(_midnight(created))
    return days


def refresh_days(conn: Any, days: Iterable[datetime]) -> None:
    """Recompute these days of both rollups from the raw tables (call after a change to their
    conversations, classifications, themes or CSAT comments). `conn`: Connection or Session."""
    listed = sorted({_midnight(d) for d in days})
    for start in range(0, len(listed), CHUNK):
        chunk = listed[start : start + CHUNK]
        conn.execute(delete(D).where(D.c.day.in_(chunk)))
        conn.execute(delete(DT).where(DT.c.day.in_(chunk)))
        within = or_(
            *(and_(C.c.created_at >= d, C.c.created_at < d + timedelta(days=1)) for d in chunk)
        )
        conn.execute(insert(D).from_select(_DAY_COLUMNS, _days_query(within)))
        conn.execute(insert(DT).from_select(_THEME_COLUMNS, _themes_query(within)))
        emotion_days.refresh(conn, chunk, within)


def refresh_conversations(
    conn: Any, conversation_ids: Iterable[int], before: set[datetime]
) -> None:
    """Recompute the days these conversations lie on now and lay on `before` the change."""
    refresh_days(conn, before | days_of(conn, conversation_ids))


def _midnight(moment: datetime) -> datetime:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.combine(moment.date(), time(), tzinfo=UTC)


# ---- reading ---------------------------------------------------------------------------------


def usable(
    conn: Connection, filters: Filters, *moments: datetime, ready: bool | None = None
) -> bool:
    """Can the map's scans read the rollups? Midnight boundaries, no segment filter, in step
    (`ready`: what `ensure` just found, spares counting every conversation again)."""
    if forced_raw() or filters.segment:
        return False
    if any(m.astimezone(UTC).timetz() != time(tzinfo=UTC) for m in moments):
        return False
    return in_step(conn) if ready is None else ready


def _conditions(table: Any, window: Period, filters: Filters) -> list[Any]:
    from journey.models import Source  # local: only the filtered maps need it

    conditions = [table.c.day >= window.start, table.c.day < window.end]
    if filters.source is not None:
        conditions.append(
            table.c.source_id.in_(select(col(Source.id)).where(col(Source.name) == filters.source))
        )
    if filters.channel is not None:
        conditions.append(table.c.channel == filters.channel)
    return conditions


def scan_conversations(
    conn: Connection, window: Period, period: Period, previous: Period, filters: Filters, week: Any
) -> list[tuple[Any, ...]]:
    """`aggregate._scan_conversations`'s groups, summed from the daily rollup."""
    bucket = case((D.c.day >= period.start, 1), (D.c.day >= previous.start, 2), else_=0)
    csat = case((D.c.day < period.start, 0), else_=D.c.csat)
    keys = [bucket, week(D.c.day), D.c.stage, D.c.channel, csat]
    query = (
        select(*keys, *(func.sum(D.c[name]) for name in ("n", "total", "s", "ss", "neg")))
        .where(D.c.deleted.is_(False), *_conditions(D, window, filters))
        .group_by(*keys)
    )
    return [tuple(row) for row in conn.execute(query)]


def scan_themes(
    conn: Connection, window: Period, period: Period, previous: Period, filters: Filters, week: Any
) -> list[tuple[Any, ...]]:
    """`aggregate._scan_themes`'s groups, summed from the daily theme rollup."""
    bucket = case((DT.c.day >= period.start, 1), (DT.c.day >= previous.start, 2), else_=0)
    keys = [bucket, week(DT.c.day), DT.c.stage, DT.c.theme]
    query = (
        select(*keys, *(func.sum(DT.c[name]) for name in ("n", "total", "s", "ss", "neg")))
        .where(*_conditions(DT, window, filters))
        .group_by(*keys)
    )
    return [tuple(row) for row in conn.execute(query)]
