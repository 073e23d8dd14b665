"""The map's emotion lane rolled up per day (`map_emotion_day`, migration 0013).

The lane counts, per stage, the journey emotions its conversations show and quotes the sentence
of each emotion's strongest showing: (a readable sentence first — 12 characters or more — then
the highest score, then the oldest conversation). Read from the raw tables that is a
`json_each` over every classification of the period; here each day × source × channel × stage
× emotion keeps its count and its best showing, so a map sums the days and keeps the best of
the bests (the order is total, so the best of the period is the best of its days' bests).

Kept like the other daily rollups (`rollups.py`): the store recomputes whole days it touches,
a map reads it only when those rollups are usable (whole days, no segment filter).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Float, case, delete, func, insert, select, true
from sqlalchemy.engine import Connection

from journey.journey_map.model import Filters, Period
from journey.journey_map.sql import day_start
from journey.models import Classification, Conversation, MapEmotionDay, Source, table

C = table(Conversation)
K = table(Classification)
E = table(MapEmotionDay)
_COLUMNS = ["day", "source_id", "channel", "stage", "emotion", "n", "best_short", "best_score",
            "best_id", "sentence"]  # fmt: skip


def shown_emotions(dialect: str) -> tuple[Any, Any, Any, Any]:
    """(table-valued rows of `classification.emotions`, emotion, score, sentence) in SQL."""
    if dialect == "postgresql":
        shown = func.json_array_elements(K.c.emotions).table_valued("value")
        return (
            shown,
            shown.c.value.op("->>")("emotion"),
            shown.c.value.op("->>")("score").cast(Float),
            shown.c.value.op("->>")("sentence"),
        )
    shown = func.json_each(K.c.emotions).table_valued("value")
    return (
        shown,
        func.json_extract(shown.c.value, "$.emotion"),
        func.json_extract(shown.c.value, "$.score"),
        func.json_extract(shown.c.value, "$.sentence"),
    )


def short(sentence: Any) -> Any:
    """0 for a quote a person can read (a sentence of some words, not a lone "❓"), else 1."""
    return case((func.length(sentence) >= 12, 0), else_=1)


def _query(dialect: str, *where: Any) -> Any:
    shown, emotion, score, sentence = shown_emotions(dialect)
    day = day_start(C.c.created_at)
    group = (day, C.c.source_id, C.c.channel, K.c.stage, emotion)
    inner = (
        select(
            day.label("day"),
            C.c.source_id.label("source_id"),
            C.c.channel.label("channel"),
            K.c.stage.label("stage"),
            emotion.label("emotion"),
            func.count().over(partition_by=group).label("n"),
            short(sentence).label("best_short"),
            score.label("best_score"),
            C.c.id.label("best_id"),
            sentence.label("sentence"),
            func.row_number()
            .over(partition_by=group, order_by=(short(sentence), score.desc(), C.c.id))
            .label("rn"),
        )
        .select_from(C.join(K, K.c.conversation_id == C.c.id))
        .join(shown, true())
        .where(C.c.deleted.is_(False), K.c.stage.is_not(None), K.c.emotions.is_not(None), *where)
        .subquery()
    )
    return select(*(inner.c[name] for name in _COLUMNS)).where(inner.c.rn == 1)


def _dialect(conn: Any) -> str:
    bind = conn.get_bind() if hasattr(conn, "get_bind") else conn
    return str(bind.dialect.name)


def rebuild(conn: Any) -> None:
    """Recompute every day (migration 0013's backfill; with the other rollups' rebuild)."""
    conn.execute(delete(E))
    conn.execute(insert(E).from_select(_COLUMNS, _query(_dialect(conn))))


def refresh(conn: Any, days: list[Any], within: Any) -> None:
    """Recompute these days (`within`: the SQL condition that selects their conversations)."""
    conn.execute(delete(E).where(E.c.day.in_(days)))
    conn.execute(insert(E).from_select(_COLUMNS, _query(_dialect(conn), within)))


def read(
    conn: Connection, period: Period, filters: Filters
) -> dict[str, list[tuple[str, int, str | None]]]:
    """`aggregate._emotions` from the days: per stage, (emotion, conversations, quote), most
    common first."""
    where = [E.c.day >= period.start, E.c.day < period.end]
    if filters.source is not None:
        where.append(E.c.source_id.in_(select(table(Source).c.id).where(
            table(Source).c.name == filters.source)))  # fmt: skip
    if filters.channel is not None:
        where.append(E.c.channel == filters.channel)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    best: dict[tuple[str, str], tuple[Any, ...]] = {}
    for stage, emotion, n, short_, score, cid, sentence in conn.execute(
        select(E.c.stage, E.c.emotion, E.c.n, E.c.best_short, E.c.best_score, E.c.best_id,
               E.c.sentence).where(*where)
    ):  # fmt: skip
        key = (str(stage), str(emotion))
        counts[key] += int(n)
        rank = (int(short_), -float(score) if score is not None else 0.0, int(cid))
        if key not in best or rank < best[key][0]:
            best[key] = (rank, sentence)
    result: dict[str, list[tuple[str, int, str | None]]] = defaultdict(list)
    for (stage, emotion), n in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1])):
        result[stage].append((emotion, n, best[(stage, emotion)][1]))
    return dict(result)
