"""The flows' moves, journeys and churn signals summed from the steps' daily facts
(`journey_day`, `journey_days.py`) instead of scanning every step of the period.

Used for the unfiltered map by requester (as the steps themselves, `flows._stored`) when the
period starts and ends at midnight UTC (the default period does, and so does any `--since` /
`--until` given as a date): the period and the previous one are then whole days, and so are the
churn windows for the default 30 days. The answers equal the step queries' (`flows.py`) and the
raw ones (`tests/journey_map/test_steps.py`); only the edges of the period need the steps:

- a move or a customer's first conversation of the period whose previous conversation lies
  *before* the period counts differently in the period than in the days' facts: those steps
  (at most one per customer and edge) are read from the period's steps — only when some step
  lies before the period (never for the whole history);
- a journey path is summed with its next stages whatever their time; a path cut short by the
  period's end is corrected from the period's first staged steps — only when some step lies at
  or after the end (never for a period that ends with the data, as the default one).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, distinct, func, or_, select, tuple_
from sqlalchemy.engine import Connection

from journey.journey_map import steps
from journey.journey_map.journey_days import J
from journey.journey_map.model import Period

S = steps.S
PATH_STEPS = 4


def usable(period: Period, churn_days: int) -> bool:
    """Whole days only (the facts are per day); the stored churn signal is for 30 days."""
    return churn_days == steps.SIGNAL_DAYS and all(
        m.astimezone(UTC).timetz() == time(tzinfo=UTC) for m in (period.start, period.end)
    )


class Edges:
    """The first and last step's times: whether a period's edges need correcting."""

    def __init__(self, conn: Connection) -> None:
        # two queries: SQLite reads a lone MIN or MAX off the index, not both in one
        self.first = conn.execute(select(func.min(S.c.created_at))).scalar_one()
        self.last = conn.execute(select(func.max(S.c.created_at))).scalar_one()

    def before(self, moment: datetime) -> bool:
        return self.first is not None and _aware(self.first) < moment

    def at_or_after(self, moment: datetime) -> bool:
        return self.last is not None and _aware(self.last) >= moment


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _facts(conn: Connection, kind: str, window: Period) -> list[tuple[str, str, int]]:
    query = (
        select(J.c.a, J.c.b, func.sum(J.c.n))
        .where(J.c.kind == kind, J.c.day >= window.start, J.c.day < window.end)
        .group_by(J.c.a, J.c.b)
    )
    return [(str(a), str(b), int(n)) for a, b, n in conn.execute(query)]


def _total(conn: Connection, kind: str, window: Period) -> int:
    return sum(n for _a, _b, n in _facts(conn, kind, window))


def _in(window: Period) -> list[Any]:
    return [S.c.created_at >= window.start, S.c.created_at < window.end]


# ---- moves ------------------------------------------------------------------------------------


def moves(
    conn: Connection, period: Period, edges: Edges
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Moves of the period and of the previous one: the days' moves, minus those whose
    previous staged conversation lies before the window (a move into it, not within it)."""
    found = []
    for window in (period, period.previous()):
        counts: Counter[tuple[str, str]] = Counter()
        for a, b, n in _facts(conn, "move", window):
            counts[(a, b)] += n
        if edges.before(window.start):
            for a, b, n in conn.execute(
                select(S.c.prev_stage, S.c.stage, func.count())
                .where(*_in(window), S.c.stage.is_not(None), S.c.prev_at < window.start)
                .group_by(S.c.prev_stage, S.c.stage)
            ):
                counts[(str(a), str(b))] -= int(n)
        found.append({key: n for key, n in counts.items() if n})
    return found[0], found[1]


# ---- journeys ---------------------------------------------------------------------------------


def customers(conn: Connection, window: Period, edges: Edges) -> int:
    """Customers with a conversation in the window: their first ever conversations there, plus
    those whose previous one lies before the window."""
    found = _total(conn, "first", window)
    if edges.before(window.start):
        found += int(
            conn.execute(
                select(func.count()).where(*_in(window), S.c.prev_any_at < window.start)
            ).scalar_one()
        )
    return found


def merged(conn: Connection, period: Period) -> int:
    """Customers with two consecutive conversations of the period in different sources (none
    without any source change in the period's days: then the steps are not read)."""
    if not _total(conn, "switch", period):
        return 0
    return int(
        conn.execute(
            select(func.count(distinct(S.c.customer_key))).where(
                *_in(period),
                S.c.prev_any_at >= period.start,
                S.c.prev_source_id != S.c.source_id,
            )
        ).scalar_one()
    )


def paths(conn: Connection, period: Period, edges: Edges) -> list[tuple[Any, ...]]:
    """(s1, s2, s3, s4, customers, customers with more) of the period's journeys, as
    `flows._journeys_of` reads them."""
    counts: Counter[tuple[Any, ...]] = Counter()
    longer: Counter[tuple[Any, ...]] = Counter()
    for a, b, n in _facts(conn, "path", period):
        key = tuple(json.loads(a))
        counts[key] += n
        longer[key] += n if b == "1" else 0

    def truncated(*where: Any) -> Any:
        then = [
            case((S.c[f"next{k}_at"] < period.end, S.c[f"next{k}_stage"]), else_=None)
            for k in (1, 2, 3)
        ]
        more = case((S.c.next4_at < period.end, 1), else_=0)
        return select(S.c.stage, *then, more, S.c.next1_stage, S.c.next2_stage,
                      S.c.next3_stage, S.c.next4_at).where(
            *_in(period), S.c.stage.is_not(None), *where
        )  # fmt: skip

    if edges.before(period.start):  # first staged in the period, after an earlier one: add
        for s1, s2, s3, s4, more, *_full in conn.execute(truncated(S.c.prev_at < period.start)):
            counts[(s1, s2, s3, s4)] += 1
            longer[(s1, s2, s3, s4)] += int(more)
    if edges.at_or_after(period.end):  # summed whole, cut by the period's end: swap
        cut = or_(*(S.c[f"next{k}_at"] >= period.end for k in (1, 2, 3, 4)))
        for s1, s2, s3, s4, more, n1, n2, n3, n4_at in conn.execute(
            truncated(S.c.prev_at.is_(None), cut)
        ):
            whole = (s1, n1, n2, n3)
            counts[whole] -= 1
            longer[whole] -= 1 if n4_at is not None else 0
            counts[(s1, s2, s3, s4)] += 1
            longer[(s1, s2, s3, s4)] += int(more)
    return [(*key, n, longer[key]) for key, n in counts.items() if n]


def journey_numbers(
    conn: Connection, period: Period, edges: Edges
) -> tuple[int, int, int, int, int, list[tuple[Any, ...]]]:
    """(conversations, staged, customers, previous customers, merged, path rows)."""
    return (
        _total(conn, "rows", period),
        _total(conn, "staged", period),
        customers(conn, period, edges),
        customers(conn, period.previous(), edges),
        merged(conn, period),
        paths(conn, period, edges),
    )


# ---- churn signals ----------------------------------------------------------------------------


def churn(
    conn: Connection, period: Period, examples: int
) -> tuple[dict[int, int], dict[str, int], int, list[str]]:
    """(signals per bucket 1 = period, 2 = previous, 3 = pending; per stage of the period;
    customers; example customer keys) of the 30-day churn signal, as `flows._churn` counts:
    a signal is counted in the period in which its 30 days run out."""
    days = timedelta(days=steps.SIGNAL_DAYS)
    now = Period(period.start - days, period.end - days)
    before = Period(period.previous().start - days, period.start - days)
    by_stage: dict[str, int] = defaultdict(int)
    counts = {1: 0, 2: 0, 3: 0}
    for bucket, window in ((1, now), (2, before)):
        for stage, _b, n in _facts(conn, "signal", window):
            counts[bucket] += n
            if bucket == 1:
                by_stage[stage or "unstaged"] += n
    counts[3] = int(
        conn.execute(
            select(func.count()).where(
                S.c.created_at >= period.end - days,
                S.c.created_at < period.end,
                S.c.sentiment < steps.NEGATIVE,
                or_(S.c.next_at.is_(None), S.c.next_at >= period.end),
            )
        ).scalar_one()
    )
    if not counts[1]:
        return counts, dict(by_stage), 0, []
    in_window = [S.c.signal_at >= now.start, S.c.signal_at < now.end]
    customers = conn.execute(
        select(func.count(distinct(S.c.customer_key))).where(*in_window)
    ).scalar_one()
    return counts, dict(by_stage), int(customers), _first_per_stage(conn, now, by_stage)[:examples]


def _first_per_stage(conn: Connection, window: Period, stages: dict[str, int]) -> list[str]:
    """The smallest customer key of each stage's signals in the window (as SQL orders keys),
    then sorted in Python: `flows._churn`'s example customers. Walks the customer index in key
    order (a page at a time) until every stage is seen, instead of reading every signal."""
    signal = func.coalesce(S.c.signal_at, S.c.signal_at)  # not the signal index: key order
    order = (S.c.customer_key, S.c.created_at, S.c.conversation_id)
    first: dict[str, str] = {}
    after: tuple[Any, ...] | None = None
    while len(first) < len(stages):
        query = select(*order, S.c.stage).where(signal >= window.start, signal < window.end)
        if after is not None:
            query = query.where(tuple_(*order) > tuple_(*after))
        page = conn.execute(query.order_by(*order).limit(500)).all()
        for key, _created, _cid, stage in page:
            first.setdefault(stage or "unstaged", str(key))
        if len(page) < 500:
            break
        after = tuple(page[-1][:3])
    return sorted(set(first.values()))
