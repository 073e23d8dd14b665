"""Analyst queries behind `cjm themes top|trend|verbatims`: small, filterable, SQL-aggregated
tables, returned as plain rows (lists of dicts) so the CLI can print them, or emit JSON or CSV.

They share the map's filters and period rules (`filters.py`), so a number in `cjm themes top`
is the same number as in the map for the same options.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine

from journey.journey_map.filters import check_filters, conversation_conditions, resolve_period
from journey.journey_map.formatting import period_label
from journey.journey_map.model import Filters, Period
from journey.journey_map.sql import customer_words, week_start, weeks_between
from journey.models import Classification, Conversation, ConversationTheme, Message, table
from miner import Taxonomy

C = table(Conversation)
K = table(Classification)
T = table(ConversationTheme)
M = table(Message)
NEGATIVE = -0.05

Row = dict[str, Any]


class Rows(list[Row]):
    """Result rows plus the period they cover, so an empty result can say which period it is."""

    period: Period | None = None

    def __init__(self, rows: Sequence[Row] = (), period: Period | None = None) -> None:
        super().__init__(rows)
        self.period = period

    @property
    def period_label(self) -> str:
        return period_label(self.period) if self.period is not None else ""


def checked(engine: Engine, taxonomy: Taxonomy, query: Query) -> Query:
    """`query` with its filters, stage and theme resolved to what the database holds; a value it
    has never seen is a ConfigError listing the valid ones (see `filters.check_filters`)."""
    result = check_filters(engine, query.filters, taxonomy, stage=query.stage, theme=query.theme)
    return replace(
        query,
        source=result.filters.source,
        channel=result.filters.channel,
        segment=result.filters.segment,
        stage=result.stage,
        theme=result.theme,
    )


@dataclass(frozen=True, slots=True)
class Query:
    """The options every analyst query takes."""

    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    channel: str | None = None
    segment: Mapping[str, str] = field(default_factory=dict)
    stage: str | None = None
    theme: str | None = None
    limit: int = 20

    @property
    def filters(self) -> Filters:
        return Filters(self.source, self.channel, dict(self.segment))


def _conditions(query: Query, period: Period) -> list[Any]:
    conditions = conversation_conditions(period, query.filters)
    if query.stage is not None:
        conditions.append(K.c.stage == query.stage)
    if query.theme is not None:
        conditions.append(T.c.theme == query.theme)
    return conditions


def _labels(taxonomy: Taxonomy) -> dict[str, str]:
    return {t.name: t.label for t in taxonomy.themes}


def top_themes(engine: Engine, taxonomy: Taxonomy, query: Query) -> Rows:
    """Themes by conversations in the period (default: the last four weeks of data), with share of
    the period's conversations, change vs the previous period and sentiment."""
    query = checked(engine, taxonomy, query)
    period = resolve_period(engine, query.since, query.until)
    previous = period.previous()
    joined = C.join(K, K.c.conversation_id == C.c.id).join(T, T.c.conversation_id == C.c.id)
    labels = _labels(taxonomy)

    def counts(window: Period) -> dict[str, tuple[int, float, int]]:
        statement = (
            select(
                T.c.theme,
                func.count(),
                func.avg(K.c.sentiment),
                func.sum(case((K.c.sentiment < NEGATIVE, 1), else_=0)),
            )
            .select_from(joined)
            .where(*_conditions(query, window))
            .group_by(T.c.theme)
        )
        with engine.connect() as conn:
            return {
                theme: (int(n), float(mean), int(neg))
                for theme, n, mean, neg in conn.execute(statement)
            }

    def total(window: Period) -> int:
        conditions = conversation_conditions(window, query.filters)
        base = select(func.count()).select_from(C.join(K, K.c.conversation_id == C.c.id))
        if query.stage is not None:
            conditions.append(K.c.stage == query.stage)
        else:
            base = select(func.count()).select_from(C)
        with engine.connect() as conn:
            return int(conn.execute(base.where(*conditions)).scalar_one())

    now, before, base = counts(period), counts(previous), total(period)
    ranked = sorted(now.items(), key=lambda item: (-item[1][0], item[0]))[: query.limit]
    rows = [
        {
            "theme": theme,
            "label": labels.get(theme, theme),
            "conversations": n,
            "share": round(n / base, 4) if base else 0.0,
            "previous_conversations": before.get(theme, (0, 0.0, 0))[0],
            "change": _change(n, before.get(theme, (0, 0.0, 0))[0]),
            "mean_sentiment": round(mean, 4),
            "negative_share": round(neg / n, 4) if n else None,
            "since": _iso(period.start),
            "until": _iso(period.end),
        }
        for theme, (n, mean, neg) in ranked
    ]
    return Rows(rows, period)


def theme_trend(engine: Engine, taxonomy: Taxonomy, query: Query) -> Rows:
    """Conversations per theme and week (Monday, UTC); default window: the last 12 weeks of data.
    Weeks without conversations on a theme are listed with 0, so series are complete."""
    query = checked(engine, taxonomy, query)
    since = query.since
    if since is None and query.until is not None:
        since = query.until - timedelta(weeks=12)
    period = resolve_period(engine, since, query.until, default=timedelta(weeks=12))
    if since is None:  # start on a Monday so the first week is a whole one
        monday = period.start + timedelta(days=(7 - period.start.weekday()) % 7)
        period = Period(monday.replace(hour=0, minute=0, second=0, microsecond=0), period.end)
    week = week_start(C.c.created_at)
    statement = (
        select(
            week,
            T.c.theme,
            func.count(),
            func.avg(K.c.sentiment),
            func.sum(case((K.c.sentiment < NEGATIVE, 1), else_=0)),
        )
        .select_from(
            C.join(K, K.c.conversation_id == C.c.id).join(T, T.c.conversation_id == C.c.id)
        )
        .where(*_conditions(query, period))
        .group_by(week, T.c.theme)
    )
    with engine.connect() as conn:
        found = {
            (w, t): (int(n), float(m), int(neg)) for w, t, n, m, neg in conn.execute(statement)
        }
    weeks = weeks_between(period.start, period.end)
    themes = sorted(
        {t for _, t in found}, key=lambda t: (-sum(found.get((w, t), (0,))[0] for w in weeks), t)
    )
    themes = themes[: query.limit]
    labels = _labels(taxonomy)
    rows = []
    for theme in themes:
        for w in weeks:
            n, mean, neg = found.get((w, theme), (0, None, 0))
            rows.append(
                {
                    "theme": theme,
                    "label": labels.get(theme, theme),
                    "week": w,
                    "conversations": n,
                    "mean_sentiment": None if mean is None else round(mean, 4),
                    "negative_conversations": neg,
                }
            )
    return Rows(rows, period)


def theme_verbatims(engine: Engine, taxonomy: Taxonomy, query: Query) -> Rows:
    """Redacted customer quotes for a theme (and/or stage): the conversations most typical of it
    (highest theme score), negative ones first, with the customer's own sentence that shows the
    theme (or the stage: `evidence`; None for rows mined before evidence sentences were kept)
    and their first public message (`text`)."""
    query = checked(engine, taxonomy, query)
    period = resolve_period(engine, query.since, query.until)
    joined = C.join(K, K.c.conversation_id == C.c.id)
    columns: list[Any] = [
        C.c.id, C.c.external_id, C.c.created_at, C.c.channel, K.c.stage, K.c.sentiment,
    ]  # fmt: skip
    order: list[Any] = [case((K.c.sentiment < NEGATIVE, 0), else_=1)]
    if query.theme is not None:
        joined = joined.join(T, T.c.conversation_id == C.c.id)
        columns += [T.c.evidence, T.c.theme, T.c.score]
        order.append(T.c.score.desc())
    else:
        columns.append(K.c.stage_evidence)
    order += [K.c.sentiment.asc(), C.c.id.asc()]
    statement = (
        select(*columns)
        .select_from(joined)
        .where(*_conditions(query, period))
        .order_by(*order)
        .limit(query.limit * 3)
    )
    with engine.connect() as conn:
        candidates = [tuple(r) for r in conn.execute(statement)]
        ids = [c[0] for c in candidates]
        texts: dict[int, str] = {}
        if ids:
            messages = (
                select(M.c.conversation_id, M.c.text)
                .where(
                    M.c.conversation_id.in_(ids),
                    *customer_words(M),
                )
                .order_by(M.c.conversation_id, M.c.created_at, M.c.id)
            )
            for cid, text in conn.execute(messages):
                texts.setdefault(cid, " ".join(text.split()))
    labels = _labels(taxonomy)
    rows = []
    for row in candidates:
        cid, external_id, created_at, channel, stage, sentiment = row[:6]
        if cid not in texts:
            continue
        rows.append(
            {
                "external_id": external_id,
                "created_at": _iso(created_at),
                "channel": channel,
                "stage": stage,
                "theme": query.theme,
                "theme_label": labels.get(query.theme, query.theme) if query.theme else None,
                "theme_score": round(row[8], 4) if query.theme else None,
                "sentiment": round(sentiment, 4),
                "evidence": row[6],
                "text": texts[cid],
            }
        )
        if len(rows) >= query.limit:
            break
    return Rows(rows, period)


@dataclass(frozen=True, slots=True)
class Column:
    """How a terminal table shows one column of query rows."""

    key: str
    header: str
    justify: str = "left"
    min_width: int | None = None


_HIDDEN = {"since", "until", "theme_label"}  # the period is in the title; labels sit beside ids
_PERCENT = {"share", "negative_share"}
_HEADERS = {"theme": "theme (id)", "external_id": "ticket"}


def for_display(rows: Sequence[Row]) -> tuple[list[Column], list[list[str]]]:
    """Columns and text cells for a terminal table of query rows: shares as percentages, change
    as a signed percentage (or "new"), the theme id to pass back as THEME, dates to the minute,
    and room for quoted text. JSON and CSV keep the raw values."""
    if not rows:
        return [], []
    if "week" in rows[0]:
        return _trend_pivot(rows)
    columns = []
    for key in rows[0]:
        if key in _HIDDEN or all(row[key] is None for row in rows):
            continue
        numeric = isinstance(rows[0][key], int | float) or key in _PERCENT | {"change"}
        width = {"text": 48, "created_at": 16}.get(key)
        if key == "theme":  # never cut: it is what the THEME argument takes
            width = max(len(str(row[key])) for row in rows)
        columns.append(
            Column(
                key,
                _HEADERS.get(key, key.replace("_", " ")),
                "right" if numeric else "left",
                width,
            )
        )
    return columns, [[_cell(c.key, row) for c in columns] for row in rows]


def _trend_pivot(rows: Sequence[Row]) -> tuple[list[Column], list[list[str]]]:
    """`themes trend` as one line per theme and one column per week (conversations), instead of
    a row per theme and week: ten themes over twelve weeks fit one screen."""
    weeks = list(dict.fromkeys(row["week"] for row in rows))
    themes = list(dict.fromkeys(row["theme"] for row in rows))
    counts = {(row["theme"], row["week"]): row["conversations"] for row in rows}
    width = max(len(theme) for theme in themes)
    columns = [Column("theme", "theme (id)", min_width=width)]
    columns += [Column(week, week[5:], "right") for week in weeks]  # "MM-DD" of the Monday
    cells = [[theme, *(str(counts.get((theme, week), 0)) for week in weeks)] for theme in themes]
    return columns, cells


def _cell(key: str, row: Row) -> str:
    value = row[key]
    if key == "change":
        if value is None:
            return "new" if row.get("previous_conversations") == 0 else "–"
        return f"{value:+.0%}".replace("-", "−")
    if value is None:
        return "–"
    if key in _PERCENT:
        return f"{value:.1%}"
    if key == "created_at":
        return str(value)[:16].replace("T", " ")
    return str(value)


def to_json(rows: Sequence[Row]) -> str:
    return json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n"


def to_csv(rows: Sequence[Row]) -> str:
    """CSV with a header row (RFC 4180 quoting); empty string for no rows."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _change(current: int, previous: int) -> float | None:
    if not previous:
        return None if current else 0.0
    return round((current - previous) / previous, 4)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
