"""Journey steps (`journey_step`): each live conversation's place in its customer's journey,
stored, so the map's flows at 1,000,000 conversations are range scans, not window sorts.

Per live conversation with a requester: the customer (the same key as `customers.customer_key`,
by requester, merged across sources by hashed e-mail), its stage and sentiment, the stage and
time of the customer's previous *staged* conversation, and the time of the customer's next
conversation (any). From these the flows read, without LAG/LEAD over every conversation:

- a move `prev_stage → stage` lies in a period when both conversations do (prev_at ≥ start);
- a churn signal is a negative conversation whose next contact is missing or > N days later.

A step depends on the customer's other conversations, so it is never patched: whenever the
store changes a conversation (sync, deletion), its classification (mining, re-mining) or a
requester's e-mail hash (a merge), it recomputes every step of each customer touched — before
and after the change — with the same INSERT … SELECT as the full `rebuild` (migration 0012),
restricted by the requester index. `ensure` rebuilds everything when the row count disagrees
with the conversations (a database filled by a bulk load or by hand), so the map never reads
stale steps; `CJM_MAP_RAW=1` makes the map ignore them (the benchmark's "raw" path).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal_column, or_, select, tuple_
from sqlalchemy.engine import Connection, Engine

from journey.journey_map import journey_days
from journey.journey_map.customers import C, customer_key, with_requester
from journey.journey_map.sql import epoch_days
from journey.models import (
    Classification,
    ConversationTheme,
    JourneyStep,
    JourneyThemeStep,
    Person,
    table,
)

S = table(JourneyStep)
ST = table(JourneyThemeStep)
T = table(ConversationTheme)
K = table(Classification)
P = table(Person)
CHUNK = 400  # customers per statement (SQLite bound-parameter limits)
NEGATIVE = -0.05  # a negative conversation (VADER's convention, as the map)
SIGNAL_DAYS = 30  # `signal_at`: the default churn window (`flows.FlowOptions.churn_days`)


def forced_raw() -> bool:
    """`CJM_MAP_RAW=1`: compute flows from the raw tables (the benchmark's baseline)."""
    return os.environ.get("CJM_MAP_RAW", "") not in ("", "0")


def _computed(*where: Any) -> Any:
    """Every step of the live conversations matching `where`, computed from the raw tables."""
    key = customer_key("requester")
    staged = case((K.c.stage.is_not(None), 1), else_=0)
    order = (C.c.created_at, C.c.id)
    inner = (
        select(
            C.c.id.label("conversation_id"),
            key.label("customer_key"),
            C.c.source_id.label("source_id"),
            C.c.created_at.label("created_at"),
            K.c.stage.label("stage"),
            K.c.sentiment.label("sentiment"),
            func.lag(K.c.stage).over(partition_by=(key, staged), order_by=order).label("ps"),
            func.lag(C.c.created_at).over(partition_by=(key, staged), order_by=order).label("pa"),
            func.lead(C.c.created_at).over(partition_by=key, order_by=order).label("next_at"),
            func.lag(C.c.created_at).over(partition_by=key, order_by=order).label("prev_any_at"),
            func.lag(C.c.source_id).over(partition_by=key, order_by=order).label("prev_src"),
            *(
                func.lead(K.c.stage, literal_column(str(k)))
                .over(partition_by=(key, staged), order_by=order)
                .label(f"n{k}s")
                for k in (1, 2, 3)
            ),
            *(
                func.lead(C.c.created_at, literal_column(str(k)))
                .over(partition_by=(key, staged), order_by=order)
                .label(f"n{k}a")
                for k in (1, 2, 3, 4)
            ),
        )
        .select_from(with_requester(C.outerjoin(K, K.c.conversation_id == C.c.id)))
        .where(C.c.deleted.is_(False), C.c.requester_id.is_not(None), *where)
        .subquery()
    )
    staged_row = inner.c.stage.is_not(None)
    silent = or_(
        inner.c.next_at.is_(None),
        epoch_days(inner.c.next_at) - epoch_days(inner.c.created_at) > SIGNAL_DAYS,
    )
    return select(
        inner.c.conversation_id,
        inner.c.customer_key,
        inner.c.source_id,
        inner.c.created_at,
        inner.c.stage,
        inner.c.sentiment,
        case((staged_row, inner.c.ps), else_=None),
        case((staged_row, inner.c.pa), else_=None),
        inner.c.next_at,
        inner.c.prev_any_at,
        inner.c.prev_src,
        *(case((staged_row, inner.c[f"n{k}s"]), else_=None) for k in (1, 2, 3)),
        *(case((staged_row, inner.c[f"n{k}a"]), else_=None) for k in (1, 2, 3, 4)),
        case((and_(inner.c.sentiment < NEGATIVE, silent), inner.c.created_at), else_=None),
    )


def _computed_themes(*where: Any) -> Any:
    """Every theme step of the live conversations matching `where`: per (conversation, theme),
    when the customer raised that theme the time before last (classified conversations only)."""
    key = customer_key("requester")
    return (
        select(
            C.c.id,
            T.c.theme,
            key,
            C.c.created_at,
            func.lag(C.c.created_at, literal_column("2")).over(
                partition_by=(key, T.c.theme), order_by=(C.c.created_at, C.c.id)
            ),
        )
        .select_from(
            with_requester(
                C.join(K, K.c.conversation_id == C.c.id).join(T, T.c.conversation_id == C.c.id)
            )
        )
        .where(C.c.deleted.is_(False), C.c.requester_id.is_not(None), *where)
    )


_COLUMNS = [
    "conversation_id", "customer_key", "source_id", "created_at", "stage", "sentiment",
    "prev_stage", "prev_at", "next_at", "prev_any_at", "prev_source_id",
    "next1_stage", "next2_stage", "next3_stage", "next1_at", "next2_at", "next3_at", "next4_at",
    "signal_at",
]  # fmt: skip
_THEME_COLUMNS = ["conversation_id", "theme", "customer_key", "created_at", "prev2_at"]


def rebuild(conn: Connection) -> int:
    """Recompute every step (migration 0012's backfill; `ensure` after a bulk load)."""
    conn.execute(delete(ST))
    conn.execute(delete(S))
    conn.execute(insert(S).from_select(_COLUMNS, _computed()))
    conn.execute(insert(ST).from_select(_THEME_COLUMNS, _computed_themes()))
    journey_days.rebuild(conn)
    return int(conn.execute(select(func.count()).select_from(S)).scalar_one())


def in_step(conn: Connection) -> bool:
    """Cheap check that the steps cover the conversations they should (one row per live
    conversation with a requester). Catches bulk loads and hand-made databases; the store keeps
    the contents right between such events."""
    steps = conn.execute(select(func.count()).select_from(S)).scalar_one()
    live = conn.execute(
        select(func.count())
        .select_from(C)
        .where(C.c.deleted.is_(False), C.c.requester_id.is_not(None))
    ).scalar_one()
    return int(steps) == int(live) and journey_days.in_step(conn, int(steps))


def ensure(engine: Engine) -> bool:
    """Rebuild the steps when they are out of step (the one-shot backfill `cjm map` runs);
    True when the map may read them (so it need not count again)."""
    return rebuild_when_out_of_step(engine, in_step, rebuild)


def rebuild_when_out_of_step(
    engine: Engine,
    in_step: Callable[[Connection], bool],
    rebuild: Callable[[Connection], Any],
) -> bool:
    """Rebuild one set of derived tables (steps, rollups) when `in_step` says they disagree with
    the conversations; nothing when the raw path is forced or the database is not ours (False:
    the map must not read them)."""
    if forced_raw() or engine.dialect.name not in ("sqlite", "postgresql"):
        return False
    with engine.connect() as conn:
        if in_step(conn):
            return True
    with engine.begin() as conn:
        rebuild(conn)
    return True


def refresh_conversations(conn: Any, conversation_ids: Iterable[int]) -> None:
    """Recompute the journeys of every customer these conversations belong to (as stored, and as
    the raw tables now say): call after they were inserted, updated, re-mined or deleted.
    `conn` is a Connection or a Session (the store's)."""
    ids = sorted({int(i) for i in conversation_ids})
    keys: set[str] = set()
    pairs: set[tuple[int, str]] = set()
    for chunk in _chunks(ids):
        keys.update(
            conn.execute(select(S.c.customer_key).where(S.c.conversation_id.in_(chunk))).scalars()
        )
        for source_id, requester in conn.execute(
            select(C.c.source_id, C.c.requester_id).where(
                C.c.id.in_(chunk), C.c.requester_id.is_not(None)
            )
        ):
            pairs.add((int(source_id), str(requester)))
    refresh_customers(conn, keys, pairs)


def refresh_people(conn: Any, source_id: int, external_ids: Iterable[str]) -> None:
    """Recompute the journeys of these requesters (call after their e-mail hash changed: a merge
    moves their conversations from one customer to another)."""
    pairs = {(int(source_id), str(e)) for e in external_ids}
    keys = {f"{source_id}:{e}" for _s, e in pairs}
    listed = sorted(e for _s, e in pairs)
    for chunk in _chunks(listed):  # the customers they belonged to (a hash that changed)
        keys.update(
            conn.execute(
                select(S.c.customer_key)
                .distinct()
                .select_from(S.join(C, C.c.id == S.c.conversation_id))
                .where(C.c.source_id == source_id, C.c.requester_id.in_(chunk))
            ).scalars()
        )
    refresh_customers(conn, keys, pairs)


def refresh_customers(
    conn: Any, keys: Iterable[str], pairs: Iterable[tuple[int, str]] = ()
) -> None:
    """Recompute every step of the customers `keys` (and of the requesters `pairs`, whatever
    customer they belong to now): their stored rows go, their conversations are recomputed."""
    keys, pairs = set(keys), set(pairs)
    if not keys and not pairs:
        return
    pairs |= _pairs_of(conn, keys)
    current = _keys_of(conn, pairs)  # where those requesters' conversations belong now
    merged = _pairs_of(conn, set(current.values()) - keys) - pairs  # others in those customers
    current.update(_keys_of(conn, merged))
    pairs |= merged
    keys |= set(current.values())
    old = journey_days.of_customers(conn, keys)  # the daily facts: minus the old rows…
    for chunk in _chunks(sorted(keys)):
        conn.execute(delete(S).where(S.c.customer_key.in_(chunk)))
        conn.execute(delete(ST).where(ST.c.customer_key.in_(chunk)))
    by_key: dict[str, list[tuple[int, str]]] = {}
    for pair in sorted(pairs):
        by_key.setdefault(current[pair], []).append(pair)
    batch: list[tuple[int, str]] = []
    for group in by_key.values():  # a customer's requesters are always in one statement
        batch += group
        if len(batch) >= CHUNK:
            _insert(conn, batch, old)
            batch = []
    if batch:
        _insert(conn, batch, old)
    delta = journey_days.of_customers(conn, keys)  # … plus the new ones
    delta.subtract(old)
    journey_days.apply(conn, delta)


def _insert(conn: Any, pairs: list[tuple[int, str]], old: Counter[journey_days.Key]) -> None:
    sources = sorted({s for s, _ in pairs})
    requesters = sorted({r for _, r in pairs})
    where = [
        C.c.source_id.in_(sources),
        C.c.requester_id.in_(requesters),
        tuple_(C.c.source_id, C.c.requester_id).in_(sorted(pairs)),
    ]
    # rows of these conversations under a key not among the refreshed ones (a requester id that
    # changed) would collide with the new rows: the primary key is the conversation
    ids = select(C.c.id).where(*where)
    old.update(journey_days.of_conversations(conn, ids))
    conn.execute(delete(S).where(S.c.conversation_id.in_(ids)))
    conn.execute(delete(ST).where(ST.c.conversation_id.in_(ids)))
    conn.execute(insert(S).from_select(_COLUMNS, _computed(*where)))
    conn.execute(insert(ST).from_select(_THEME_COLUMNS, _computed_themes(*where)))


def _pairs_of(conn: Any, keys: Iterable[str]) -> set[tuple[int, str]]:
    """The (source, requester) pairs whose conversations a customer key names."""
    pairs: set[tuple[int, str]] = set()
    hashes = []
    for key in keys:
        if key.startswith("e:"):
            hashes.append(key[2:])
        else:
            source, _, requester = key.partition(":")
            if source.isdigit():
                pairs.add((int(source), requester))
    for chunk in _chunks(sorted(hashes)):
        for source_id, external_id in conn.execute(
            select(P.c.source_id, P.c.external_id).where(P.c.email_hash.in_(chunk))
        ):
            pairs.add((int(source_id), str(external_id)))
    return pairs


def _keys_of(conn: Any, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The customer key each (source, requester) pair has now (the e-mail hash wins)."""
    hashed: dict[tuple[int, str], str] = {}
    listed = sorted(pairs)
    for start in range(0, len(listed), CHUNK):
        chunk = listed[start : start + CHUNK]
        for source_id, external_id, email_hash in conn.execute(
            select(P.c.source_id, P.c.external_id, P.c.email_hash).where(
                P.c.email_hash.is_not(None),
                tuple_(P.c.source_id, P.c.external_id).in_(chunk),
            )
        ):
            hashed[(int(source_id), str(external_id))] = "e:" + str(email_hash)
    return {pair: hashed.get(pair, f"{pair[0]}:{pair[1]}") for pair in pairs}


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
