"""Customer journeys and flows: how customers move between stages across their conversations.

A customer's journey in a period is their staged conversations there, oldest first (customer =
requester, merged across sources by hashed e-mail: `customers.py`; conversations the miner left
without a stage are skipped, not counted as a step). From it, all in SQL with window functions
(LAG/LEAD over the customer's conversations) and GROUP BY, so Python sees only grouped rows and a
handful of example customers:

- **moves** — each pair of consecutive staged conversations of one customer in the period is one
  move `from → to` (the Sankey diagram's links); *backward* when `to` comes earlier in the
  taxonomy's stage order than `from` (delivery → purchase).
- **repeats** — a customer with `repeat_contacts` (3) or more conversations in the period tagged
  with the same theme: one repeat per customer × theme.
- **churn signal** — a negative conversation (sentiment < −0.05) followed by no conversation of
  the same customer (any channel, stage or filter) within `churn_days` (30) days. It is counted in
  the period in which those days run out (created_at + churn_days falls in the period), so a
  signal is only ever reported once it is certain, and data after the period never changes it.
  Negative last contacts of the period's final `churn_days` days are *pending*.

Each count comes with the previous period's count (same definitions) for the trend.

The unfiltered map by requester reads the same answers from the stored journey steps
(`steps.py`: previous/next conversations precomputed per customer), without window functions
over the raw tables; filtered maps, journeys by organisation and `CJM_MAP_RAW=1` take the raw
queries. When the period is whole days (the default period, dates given to `--since/--until`),
the moves, journeys and 30-day churn signals are sums of the steps' daily facts, corrected at
the period's edges (`stored_flows.py`, migration 0013). `tests/journey_map/test_steps.py` and
`test_stored_flows.py` hold the paths to the same output.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, distinct, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from journey.journey_map import steps, stored_flows
from journey.journey_map.customers import C, customer_key, has_requester, with_requester
from journey.journey_map.filters import conversation_conditions
from journey.journey_map.model import (
    ExamplePath,
    Filters,
    FlowLink,
    Flows,
    FlowSignal,
    JourneyPath,
    Journeys,
    PathStep,
    Period,
    SignalCount,
)
from journey.journey_map.sql import customer_words, epoch_days
from journey.models import Classification, ConversationTheme, Message, table

K = table(Classification)
T = table(ConversationTheme)
M = table(Message)
S = steps.S
ST = steps.ST

NEGATIVE = -0.05
PATH_STEPS = 4  # a journey path shows its first four stages (and says when there were more)
QUOTE_CHARS = 200


@dataclass(frozen=True, slots=True)
class FlowOptions:
    churn_days: int = 30
    repeat_contacts: int = 3
    by: str = "requester"  # or "organisation": whose journeys (customers.BY)
    examples: int = 3  # example customers per signal
    paths: int = 8  # most common journey paths shown


def build_flows(
    conn: Connection,
    period: Period,
    filters: Filters,
    stage_names: Sequence[str],
    label: Callable[[str], str],
    theme_label: Callable[[str], str],
    options: FlowOptions = FlowOptions(),
    steps_ready: bool | None = None,
) -> tuple[Journeys, Flows]:
    """Journeys and flows of [period) and, for the trend, the period before it
    (`steps_ready`: what `steps.ensure` just found, spares counting the steps again)."""
    order = {name: i for i, name in enumerate(stage_names)}
    stored = _stored(conn, filters, options.by, steps_ready)
    # whole days: sums of the steps' daily facts, corrected at the edges (`stored_flows.py`)
    edges = (
        stored_flows.Edges(conn)
        if stored and stored_flows.usable(period, options.churn_days)
        else None
    )
    if edges is not None:
        now, before = stored_flows.moves(conn, period, edges)
    else:
        now, before = (_stored_moves if stored else _moves)(conn, period, filters, options.by)
    links = []
    for (src, dst), n in sorted(now.items(), key=lambda kv: (-kv[1], kv[0])):
        links.append(
            FlowLink(src, dst, n, before.get((src, dst), 0), _change(n, before.get((src, dst), 0)),
                     _direction(order, src, dst))
        )  # fmt: skip
    backwards = _backwards(conn, period, filters, now, before, order, label, options, stored)
    repeats = _repeats(conn, period, filters, theme_label, options, stored)
    churn, pending = _churn(conn, period, filters, label, options, stored, edges is not None)
    moves, prev_moves = sum(now.values()), sum(before.values())
    flows = Flows(
        moves=moves,
        previous_moves=prev_moves,
        change=_change(moves, prev_moves),
        links=links,
        backwards=backwards,
        repeats=repeats,
        churn=churn,
        churn_days=options.churn_days,
        repeat_contacts=options.repeat_contacts,
        churn_pending=pending,
    )
    return _journeys(conn, period, filters, options, stored, edges), flows


def _stored(conn: Connection, filters: Filters, by: str, ready: bool | None = None) -> bool:
    """Read the stored journey steps (`steps.py`) instead of windowing the raw tables: for the
    unfiltered map by requester, when the steps are in step. A source, channel or segment filter
    changes who is whose previous contact, and the steps hold the unfiltered journeys, so
    filtered maps (and journeys by organisation) take the raw path."""
    if steps.forced_raw() or by != "requester":
        return False
    if filters.source is not None or filters.channel is not None or filters.segment:
        return False
    return steps.in_step(conn) if ready is None else ready


# ---- the customer's staged sequence ---------------------------------------------------------


def _stage_rank(order: dict[str, int], column: Any) -> Any:
    return case(*((column == name, i) for name, i in order.items()), else_=len(order))


def _sequence(period: Period, filters: Filters, by: str) -> Any:
    """The period's staged conversations with a requester, per customer in time order, with the
    stage of the customer's previous staged conversation in the period."""
    customer = customer_key(by)
    ordering = (C.c.created_at, C.c.id)
    return (
        select(
            customer.label("customer"),
            C.c.id.label("cid"),
            C.c.source_id.label("source_id"),
            K.c.stage.label("stage"),
            func.lag(K.c.stage).over(partition_by=customer, order_by=ordering).label("prev"),
            func.row_number().over(partition_by=customer, order_by=ordering).label("step"),
        )
        .select_from(with_requester(C.join(K, K.c.conversation_id == C.c.id)))
        .where(*conversation_conditions(period, filters), has_requester(by), K.c.stage.is_not(None))
        .subquery()
    )


def _moves(
    conn: Connection, period: Period, filters: Filters, by: str
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Moves of this period and of the previous one, in one pass: each customer's sequence is
    taken within its period (partitioned by period, then customer), as each map would."""
    previous = period.previous()
    customer = customer_key(by)
    bucket = case((C.c.created_at >= period.start, 1), else_=2)
    seq = (
        select(
            bucket.label("bucket"),
            K.c.stage.label("stage"),
            func.lag(K.c.stage)
            .over(partition_by=(bucket, customer), order_by=(C.c.created_at, C.c.id))
            .label("prev"),
        )
        .select_from(with_requester(C.join(K, K.c.conversation_id == C.c.id)))
        .where(
            *conversation_conditions(Period(previous.start, period.end), filters),
            has_requester(by),
            K.c.stage.is_not(None),
        )
        .subquery()
    )
    query = (
        select(seq.c.bucket, seq.c.prev, seq.c.stage, func.count())
        .where(seq.c.prev.is_not(None))
        .group_by(seq.c.bucket, seq.c.prev, seq.c.stage)
    )
    moves: dict[int, dict[tuple[str, str], int]] = {1: {}, 2: {}}
    for b, a, z, n in conn.execute(query):
        moves[int(b)][(str(a), str(z))] = int(n)
    return moves[1], moves[2]


def _stored_moves(
    conn: Connection, period: Period, filters: Filters, by: str
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """`_moves` from the stored steps: a move lies in a period when the customer's previous
    staged conversation does too (so it is the previous one within the period)."""
    del filters, by  # the unfiltered map by requester only (`_stored`)
    previous = period.previous()
    bucket = case((S.c.created_at >= period.start, 1), else_=2)
    same_period = or_(
        and_(S.c.created_at >= period.start, S.c.prev_at >= period.start),
        and_(S.c.created_at < period.start, S.c.prev_at >= previous.start),
    )
    query = (
        select(bucket, S.c.prev_stage, S.c.stage, func.count())
        .where(
            S.c.created_at >= previous.start,
            S.c.created_at < period.end,
            S.c.stage.is_not(None),
            S.c.prev_stage.is_not(None),
            same_period,
        )
        .group_by(bucket, S.c.prev_stage, S.c.stage)
    )
    moves: dict[int, dict[tuple[str, str], int]] = {1: {}, 2: {}}
    for b, a, z, n in conn.execute(query):
        moves[int(b)][(str(a), str(z))] = int(n)
    return moves[1], moves[2]


def _stored_sequence(period: Period, *, numbered: bool = True) -> Any:
    """`_sequence` from the stored steps (`numbered`: with the step number, a window; the
    backward moves need only `prev`)."""
    columns = [
        S.c.customer_key.label("customer"),
        S.c.conversation_id.label("cid"),
        S.c.source_id.label("source_id"),
        S.c.stage.label("stage"),
        case((S.c.prev_at >= period.start, S.c.prev_stage), else_=None).label("prev"),
    ]
    if numbered:
        columns.append(
            func.row_number()
            .over(partition_by=S.c.customer_key, order_by=(S.c.created_at, S.c.conversation_id))
            .label("step")
        )
    return (
        select(*columns)
        .where(S.c.created_at >= period.start, S.c.created_at < period.end, S.c.stage.is_not(None))
        .subquery()
    )


def _direction(order: dict[str, int], src: str, dst: str) -> str:
    a, b = order.get(src, len(order)), order.get(dst, len(order))
    return "same" if a == b else "backward" if b < a else "forward"


def _journeys(
    conn: Connection,
    period: Period,
    filters: Filters,
    options: FlowOptions,
    stored: bool = False,
    edges: stored_flows.Edges | None = None,
) -> Journeys:
    if edges is not None:
        conversations, staged, customers, before, merged, path_rows = stored_flows.journey_numbers(
            conn, period, edges
        )
        return _journeys_of(
            path_rows, customers, before, conversations, staged, merged, options.paths
        )
    if stored:
        return _stored_journeys(conn, period, options)
    by = options.by
    customer = customer_key(by)
    base = with_requester(C.outerjoin(K, K.c.conversation_id == C.c.id))
    where = [*conversation_conditions(period, filters), has_requester(by)]
    per_customer = (
        select(
            func.count().label("n"),
            func.count(K.c.stage).label("staged"),
            func.count(distinct(C.c.source_id)).label("sources"),
        )
        .select_from(base)
        .where(*where)
        .group_by(customer)
        .subquery()
    )
    conversations, staged, customers, merged = conn.execute(
        select(
            func.coalesce(func.sum(per_customer.c.n), 0),
            func.coalesce(func.sum(per_customer.c.staged), 0),
            func.count(),
            func.coalesce(func.sum(case((per_customer.c.sources > 1, 1), else_=0)), 0),
        )
    ).one()
    previous_customers = conn.execute(
        select(func.count(distinct(customer)))
        .select_from(base)
        .where(*conversation_conditions(period.previous(), filters), has_requester(by))
    ).scalar_one()

    seq = _sequence(period, filters, by)
    columns = [
        func.max(case((seq.c.step == i, seq.c.stage), else_=None)).label(f"s{i}")
        for i in range(1, PATH_STEPS + 1)
    ]
    paths_q = select(*columns, func.count().label("n")).group_by(seq.c.customer).subquery()
    keys = [paths_q.c[f"s{i}"] for i in range(1, PATH_STEPS + 1)]
    longer = func.sum(case((paths_q.c.n > PATH_STEPS, 1), else_=0))
    rows = conn.execute(select(*keys, func.count(), longer).group_by(*keys)).all()
    return _journeys_of(
        rows, customers, previous_customers, conversations, staged, merged, options.paths
    )


def _journeys_of(
    rows: Sequence[Any],
    customers: int,
    previous_customers: int,
    conversations: int,
    staged: int,
    merged: int,
    limit: int,
) -> Journeys:
    """`Journeys` from the path rows (s1…s4, customers, customers with more than four steps)."""
    returning = sum(int(r[PATH_STEPS]) for r in rows if r[1] is not None)
    paths = [
        JourneyPath([s for s in r[:PATH_STEPS] if s is not None], int(r[PATH_STEPS]),
                    int(r[PATH_STEPS + 1] or 0))
        for r in rows
        if r[1] is not None  # a path of one conversation is not a journey between stages
    ]  # fmt: skip
    paths.sort(key=lambda p: (-p.customers, p.stages))
    return Journeys(
        customers=int(customers or 0),
        previous_customers=int(previous_customers or 0),
        returning=returning,
        conversations=int(conversations or 0),
        staged_conversations=int(staged or 0),
        merged=int(merged or 0),
        paths=paths[:limit],
    )


def _stored_journeys(conn: Connection, period: Period, options: FlowOptions) -> Journeys:
    """`_journeys` from the stored steps, with no GROUP BY customer: a customer is counted at
    their first conversation of the period (the previous one is older), merged when two
    consecutive conversations of the period come from different sources, and their path is read
    off their first staged conversation of the period (its next three staged stages)."""
    assert PATH_STEPS == 4  # the steps store the next three staged stages and four times
    previous = period.previous()

    def first_in(window: Period) -> Any:
        return or_(S.c.prev_any_at.is_(None), S.c.prev_any_at < window.start)

    conversations, staged, customers = conn.execute(
        select(
            func.count(),
            func.count(S.c.stage),
            func.coalesce(func.sum(case((first_in(period), 1), else_=0)), 0),
        ).where(S.c.created_at >= period.start, S.c.created_at < period.end)
    ).one()
    merged = conn.execute(
        select(func.count(distinct(S.c.customer_key))).where(
            S.c.created_at >= period.start,
            S.c.created_at < period.end,
            S.c.prev_any_at >= period.start,
            S.c.prev_source_id != S.c.source_id,
        )
    ).scalar_one()
    previous_customers = conn.execute(
        select(func.count()).where(
            S.c.created_at >= previous.start, S.c.created_at < previous.end, first_in(previous)
        )
    ).scalar_one()
    then = [  # the next staged stages that fall in the period
        case((S.c[f"next{k}_at"] < period.end, S.c[f"next{k}_stage"]), else_=None).label(
            f"s{k + 1}"
        )
        for k in (1, 2, 3)
    ]
    paths_q = (
        select(S.c.stage.label("s1"), *then)
        .where(
            S.c.created_at >= period.start,
            S.c.created_at < period.end,
            S.c.stage.is_not(None),
            or_(S.c.prev_at.is_(None), S.c.prev_at < period.start),
        )
        .add_columns(case((S.c.next4_at < period.end, 1), else_=0).label("longer"))
        .subquery()
    )
    keys = [paths_q.c[f"s{i}"] for i in range(1, PATH_STEPS + 1)]
    rows = conn.execute(
        select(*keys, func.count(), func.sum(paths_q.c.longer)).group_by(*keys)
    ).all()
    return _journeys_of(
        rows, customers, previous_customers, conversations, staged, merged, options.paths
    )


# ---- signals ----------------------------------------------------------------------------------


def _backwards(
    conn: Connection,
    period: Period,
    filters: Filters,
    now: dict[tuple[str, str], int],
    before: dict[tuple[str, str], int],
    order: dict[str, int],
    label: Callable[[str], str],
    options: FlowOptions,
    stored: bool = False,
) -> FlowSignal:
    by = options.by
    count = sum(n for (a, b), n in now.items() if _direction(order, a, b) == "backward")
    previous = sum(n for (a, b), n in before.items() if _direction(order, a, b) == "backward")
    to_stage: dict[str, int] = defaultdict(int)
    for (a, b), n in now.items():
        if _direction(order, a, b) == "backward":
            to_stage[b] += n
    seq = _stored_sequence(period, numbered=False) if stored else _sequence(period, filters, by)
    back = _stage_rank(order, seq.c.stage) < _stage_rank(order, seq.c.prev)
    per_customer = (
        select(seq.c.customer.label("customer"), func.count().label("n"))
        .where(seq.c.prev.is_not(None), back)
        .group_by(seq.c.customer)
        .subquery()
    )
    rows = conn.execute(
        select(per_customer.c.customer, func.count().over().label("customers"))
        .order_by(per_customer.c.n.desc(), per_customer.c.customer)
        .limit(options.examples)
    ).all()  # the examples (most backward moves first) and, on each row, how many customers
    customers = int(rows[0][1]) if rows else 0
    examples = [str(r[0]) for r in rows]
    return FlowSignal(
        kind="backwards",
        count=count,
        previous=previous,
        change=_change(count, previous),
        customers=int(customers),
        breakdown=_breakdown(to_stage, label),
        examples=_example_paths(conn, period, filters, examples, by, stored),
    )


def _repeat_groups(
    period: Period, filters: Filters, options: FlowOptions, stored: bool = False
) -> Any:
    by = options.by
    customer = customer_key(by)
    if stored and options.repeat_contacts == 3:
        # a customer × theme with k ≥ 3 contacts in the period has k − 2 of them whose
        # time-before-last on that theme is in the period too: n = 2 + that count
        return (
            select(
                ST.c.customer_key.label("customer"),
                ST.c.theme.label("theme"),
                (func.count() + 2).label("n"),
            )
            .where(
                ST.c.created_at >= period.start,
                ST.c.created_at < period.end,
                ST.c.prev2_at >= period.start,
            )
            .group_by(ST.c.customer_key, ST.c.theme)
            .subquery()
        )
    return (
        select(customer.label("customer"), T.c.theme.label("theme"), func.count().label("n"))
        .select_from(
            with_requester(C.join(K, K.c.conversation_id == C.c.id)).join(
                T, T.c.conversation_id == C.c.id
            )
        )
        .where(*conversation_conditions(period, filters), has_requester(by))
        .group_by(customer, T.c.theme)
        .having(func.count() >= options.repeat_contacts)
        .subquery()
    )


def _repeats(
    conn: Connection,
    period: Period,
    filters: Filters,
    theme_label: Callable[[str], str],
    options: FlowOptions,
    stored: bool = False,
) -> FlowSignal:
    by = options.by
    groups = _repeat_groups(period, filters, options, stored)
    by_theme = {
        str(theme): int(n)
        for theme, n in conn.execute(select(groups.c.theme, func.count()).group_by(groups.c.theme))
    }
    before = _repeat_groups(period.previous(), filters, options, stored)
    previous = int(conn.execute(select(func.count()).select_from(before)).scalar_one())
    per_customer = (
        select(groups.c.customer.label("customer"), func.max(groups.c.n).label("n"))
        .group_by(groups.c.customer)
        .subquery()
    )
    rows = conn.execute(
        select(per_customer.c.customer, func.count().over().label("customers"))
        .order_by(per_customer.c.n.desc(), per_customer.c.customer)
        .limit(options.examples)
    ).all()
    customers = int(rows[0][1]) if rows else 0
    examples = [str(r[0]) for r in rows]
    count = sum(by_theme.values())
    return FlowSignal(
        kind="repeats",
        count=count,
        previous=previous,
        change=_change(count, previous),
        customers=int(customers),
        breakdown=_breakdown(by_theme, theme_label),
        examples=_example_paths(conn, period, filters, examples, by, stored),
    )


def _churn(
    conn: Connection,
    period: Period,
    filters: Filters,
    label: Callable[[str], str],
    options: FlowOptions,
    stored: bool = False,
    daily: bool = False,
) -> tuple[FlowSignal, int]:
    """Negative contacts with no later contact within N days, counted when the N days run out."""
    by = options.by
    days = timedelta(days=options.churn_days)
    if daily:  # the stored signals' daily facts (`stored_flows.churn`)
        found = stored_flows.churn(conn, period, options.examples)
        return _churn_signal(conn, period, filters, label, options, *found, stored), found[0][3]
    previous = period.previous()
    customer = customer_key(by)
    at = epoch_days(C.c.created_at)
    ordering = (C.c.created_at, C.c.id)
    selected: ColumnElement[Any] = and_(*conversation_conditions(None, filters))
    timeline = (
        select(
            customer.label("customer"),
            C.c.id.label("cid"),
            C.c.created_at.label("created_at"),
            K.c.stage.label("stage"),
            K.c.sentiment.label("sentiment"),
            case((selected, 1), else_=0).label("selected"),
            (func.lead(at).over(partition_by=customer, order_by=ordering) - at).label("gap"),
        )
        .select_from(with_requester(C.outerjoin(K, K.c.conversation_id == C.c.id)))
        .where(
            C.c.deleted.is_(False),
            has_requester(by),
            C.c.created_at >= previous.start - days,
            C.c.created_at < period.end,
        )
        .subquery()
    )
    if stored:  # the next contact is stored; one after the period is unknown to this map
        after = epoch_days(S.c.next_at) - epoch_days(S.c.created_at)
        timeline = (
            select(
                S.c.customer_key.label("customer"),
                S.c.conversation_id.label("cid"),
                S.c.created_at.label("created_at"),
                S.c.stage.label("stage"),
                S.c.sentiment.label("sentiment"),
                literal(1).label("selected"),
                case((S.c.next_at < period.end, after), else_=None).label("gap"),
            )
            .where(
                S.c.created_at >= previous.start - days,
                S.c.created_at < period.end,
                S.c.sentiment < NEGATIVE,
            )
            .subquery()
        )
    silent = or_(timeline.c.gap.is_(None), timeline.c.gap > options.churn_days)
    negative = and_(timeline.c.selected == 1, timeline.c.sentiment < NEGATIVE, silent)
    bucket = case(
        (_within(timeline.c.created_at, period.start - days, period.end - days), literal(1)),
        (_within(timeline.c.created_at, previous.start - days, previous.end - days), literal(2)),
        (_within(timeline.c.created_at, period.end - days, period.end), literal(3)),
        else_=literal(0),
    )
    signals = (
        select(timeline.c.customer, timeline.c.stage, bucket.label("bucket"))
        .where(negative)
        .subquery()
    )
    # per bucket and stage the signals, the customers counted once (at their first signal of
    # the bucket) and the smallest customer key (a deterministic example). Raw: one pass with a
    # window (the timeline is costly to compute twice); stored: a second, cheap pass for the
    # distinct customers spares sorting every signal.
    first = func.row_number().over(
        partition_by=(signals.c.bucket, signals.c.customer), order_by=signals.c.stage
    )
    source = signals
    firsts: Any = literal(0)
    if not stored:
        source = select(signals, first.label("first")).where(signals.c.bucket > 0).subquery()
        firsts = func.sum(case((source.c.first == 1, 1), else_=0))
    by_stage: dict[str, int] = defaultdict(int)
    counts = {1: 0, 2: 0, 3: 0}
    customers = 0
    candidates: list[str] = []
    for b, stage, n, firsts_n, example in conn.execute(
        select(source.c.bucket, source.c.stage, func.count(), firsts, func.min(source.c.customer))
        .where(source.c.bucket > 0)
        .group_by(source.c.bucket, source.c.stage)
    ):
        counts[int(b)] += int(n)
        if int(b) == 1:
            by_stage[str(stage) if stage is not None else "unstaged"] += int(n)
            customers += int(firsts_n or 0)
            candidates.append(str(example))
    if stored and counts[1]:
        customers = conn.execute(
            select(func.count(distinct(signals.c.customer))).where(signals.c.bucket == 1)
        ).scalar_one()
    examples = sorted(set(candidates))[: options.examples]
    signal = _churn_signal(
        conn, period, filters, label, options, counts, by_stage, customers, examples, stored
    )
    return signal, counts[3]


def _churn_signal(
    conn: Connection,
    period: Period,
    filters: Filters,
    label: Callable[[str], str],
    options: FlowOptions,
    counts: dict[int, int],
    by_stage: dict[str, int],
    customers: int,
    examples: list[str],
    stored: bool,
) -> FlowSignal:
    # the example path is the customer's conversations up to the silent last contact
    days = timedelta(days=options.churn_days)
    window = Period(period.start - days, period.end - days)
    return FlowSignal(
        kind="churn",
        count=counts[1],
        previous=counts[2],
        change=_change(counts[1], counts[2]),
        customers=int(customers),
        breakdown=_breakdown(by_stage, lambda s: "Unstaged" if s == "unstaged" else label(s)),
        examples=_example_paths(conn, window, filters, examples, options.by, stored),
    )


def _within(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


# ---- example customers ------------------------------------------------------------------------


def customer_label(key: str) -> str:
    """An opaque, stable name for a customer in a published map (no helpdesk id, no e-mail)."""
    return "customer " + hashlib.sha256(key.encode()).hexdigest()[:8]


def _example_paths(
    conn: Connection,
    period: Period,
    filters: Filters,
    keys: list[str],
    by: str,
    stored: bool = False,
) -> list[ExamplePath]:
    """The example customers' conversations in `period`, with a short redacted quote each: the
    stage's evidence sentence, else the first evidence sentence, else the first customer message."""
    if not keys:
        return []
    customer = customer_key(by)
    source = with_requester(C.outerjoin(K, K.c.conversation_id == C.c.id))
    where = [*conversation_conditions(period, filters), has_requester(by), customer.in_(keys)]
    if stored:  # found through the steps' customer index, not a key computed for every row
        customer = S.c.customer_key
        source = S.join(C, C.c.id == S.c.conversation_id).outerjoin(
            K, K.c.conversation_id == C.c.id
        )
        where = [S.c.customer_key.in_(keys), S.c.created_at >= period.start,
                 S.c.created_at < period.end]  # fmt: skip
    rows = conn.execute(
        select(
            customer,
            C.c.id,
            C.c.external_id,
            C.c.created_at,
            K.c.stage,
            K.c.theme_scores,
            K.c.sentiment,
            K.c.stage_evidence,
            K.c.evidence,
        )
        .select_from(source)
        .where(*where)
        .order_by(customer, C.c.created_at, C.c.id)
    ).all()
    missing = [r[1] for r in rows if not r[7] and not _json_list(r[8])]
    texts = _first_customer_texts(conn, missing)
    steps: dict[str, list[PathStep]] = defaultdict(list)
    for key, cid, ext, created, stage, scores, sentiment, said, evidence in rows:
        theme_scores = _json_dict(scores)
        theme = max(sorted(theme_scores), key=lambda t: theme_scores[t]) if theme_scores else None
        quote = said or next(iter(_json_list(evidence)), None) or texts.get(cid)
        steps[str(key)].append(
            PathStep(ext, created, stage, theme,
                     None if sentiment is None else round(float(sentiment), 4),
                     _short(quote) if quote else None)
        )  # fmt: skip
    return [ExamplePath(customer_label(k), steps[k]) for k in keys if steps.get(k)]


def _first_customer_texts(conn: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    texts: dict[int, str] = {}
    for cid, text in conn.execute(
        select(M.c.conversation_id, M.c.text)
        .where(M.c.conversation_id.in_(sorted(ids)), *customer_words(M))
        .order_by(M.c.conversation_id, M.c.created_at, M.c.id)
    ):
        texts.setdefault(int(cid), str(text))
    return texts


def _short(text: str, limit: int = QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(",.;:-") + "…"


def _json_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def _json_dict(value: Any) -> dict[str, float]:
    if isinstance(value, str):
        value = json.loads(value)
    return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _breakdown(counts: dict[str, int], label: Callable[[str], str]) -> list[SignalCount]:
    return [
        SignalCount(key, label(key), n)
        for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _change(current: int, previous: int) -> float | None:
    if not previous:
        return None if current else 0.0
    return round((current - previous) / previous, 4)
