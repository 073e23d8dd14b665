"""Daily facts of the journey steps (`journey_day`, migration 0013), so the flows of a long
period sum a few thousand rows instead of scanning (and sorting) every step of it.

Per day (UTC midnight of a step's created_at), counts by kind:

- "rows", "staged": steps, staged steps (the journeys' conversations);
- "first": steps with no previous conversation of the customer at all (a customer's first);
- "move" (a → b): staged steps with a previous staged conversation (prev_stage → stage);
- "path" (a = JSON of four stages, b = "1" when the journey has more): staged steps with no
  previous staged conversation, with their next three staged stages whatever their time;
- "switch": steps whose previous conversation was in another source (a merged customer);
- "signal" (a = stage, '' when unstaged): 30-day churn signals (`signal_at` set).

A period [s, e) whose edges are midnights sums its days; what depends on the edges is
corrected from the steps themselves (`stored_flows.py`): moves and first steps whose previous
conversation lies before s, paths cut short by e. With no step before s and none at or after e
(the whole history, or the default period's end) there is nothing to correct.

The facts are computed in Python from the step rows (one definition for the rebuild and for
the store's upkeep): when the store recomputes a customer's steps (`steps.refresh_customers`)
it subtracts the facts of their old rows and adds those of the new ones, so a day is never
recomputed from scratch.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.engine import Connection

from journey.models import JourneyDay, JourneyStep, table

S = table(JourneyStep)
J = table(JourneyDay)
CHUNK = 400
Key = tuple[datetime, str, str, str]

_FACT_COLUMNS = [
    S.c.created_at, S.c.stage, S.c.prev_stage, S.c.prev_any_at, S.c.source_id,
    S.c.prev_source_id, S.c.next1_stage, S.c.next2_stage, S.c.next3_stage, S.c.next4_at,
    S.c.signal_at, S.c.prev_at,
]  # fmt: skip


def path_label(stages: Iterable[str | None]) -> str:
    """The "path" kind's `a`: a journey's four stages (None past its end) as JSON."""
    return json.dumps(list(stages))


def facts(rows: Iterable[Any]) -> Counter[Key]:
    """The daily facts of these step rows (columns as `_FACT_COLUMNS`)."""
    found: Counter[Key] = Counter()
    for (created, stage, prev_stage, prev_any_at, source, prev_source, n1, n2, n3, n4_at,
         signal_at, prev_at) in rows:  # fmt: skip
        day = midnight(created)
        found[(day, "rows", "", "")] += 1
        if prev_any_at is None:
            found[(day, "first", "", "")] += 1
        elif prev_source is not None and prev_source != source:
            found[(day, "switch", "", "")] += 1
        if signal_at is not None:
            found[(day, "signal", stage or "", "")] += 1
        if stage is None:
            continue
        found[(day, "staged", "", "")] += 1
        if prev_at is not None:
            found[(day, "move", str(prev_stage), stage)] += 1
        else:
            longer = "1" if n4_at is not None else "0"
            found[(day, "path", path_label([stage, n1, n2, n3]), longer)] += 1
    return found


def of_customers(conn: Any, keys: Iterable[str]) -> Counter[Key]:
    """The facts of every stored step of these customers."""
    listed = sorted(set(keys))
    found: Counter[Key] = Counter()
    for start in range(0, len(listed), CHUNK):
        chunk = listed[start : start + CHUNK]
        found.update(facts(conn.execute(select(*_FACT_COLUMNS).where(S.c.customer_key.in_(chunk)))))
    return found


def of_conversations(conn: Any, ids: Any) -> Counter[Key]:
    """The facts of the stored steps of these conversations (`ids`: a list or a SELECT)."""
    return facts(conn.execute(select(*_FACT_COLUMNS).where(S.c.conversation_id.in_(ids))))


def rebuild(conn: Connection) -> None:
    """Recompute every day from the steps (migration 0013's backfill; `steps.rebuild`)."""
    conn.execute(delete(J))
    found = facts(conn.execute(select(*_FACT_COLUMNS)))
    rows = [{"day": k[0], "kind": k[1], "a": k[2], "b": k[3], "n": n} for k, n in found.items()]
    for start in range(0, len(rows), 5000):
        conn.execute(insert(J), rows[start : start + 5000])


def apply(conn: Any, delta: Counter[Key]) -> None:
    """Add `delta` (new facts minus old ones) to the stored days; rows that reach 0 go."""
    changes = {key: n for key, n in delta.items() if n}
    listed = sorted(changes)
    for start in range(0, len(listed), CHUNK):
        chunk = listed[start : start + CHUNK]
        stored = {
            (midnight(day), kind, a, b): (row_id, n)
            for row_id, day, kind, a, b, n in conn.execute(
                select(J.c.id, J.c.day, J.c.kind, J.c.a, J.c.b, J.c.n).where(
                    tuple_(J.c.day, J.c.kind, J.c.a, J.c.b).in_(chunk)
                )
            )
        }
        gone, updates, inserts = [], [], []
        for key in chunk:
            if key in stored:
                row_id, n = stored[key]
                total = n + changes[key]
                if total == 0:
                    gone.append(row_id)
                else:
                    updates.append({"row_id": row_id, "total": total})
            else:
                inserts.append(
                    {"day": key[0], "kind": key[1], "a": key[2], "b": key[3], "n": changes[key]}
                )
        if gone:
            conn.execute(delete(J).where(J.c.id.in_(gone)))
        if updates:
            conn.execute(
                update(J).where(J.c.id == bindparam("row_id")).values(n=bindparam("total")),
                updates,
            )
        if inserts:
            conn.execute(insert(J), inserts)


def in_step(conn: Connection, steps: int | None = None) -> bool:
    """The days count every step once (`steps`: the steps' count, when known)."""
    rolled = conn.execute(select(func.coalesce(func.sum(J.c.n), 0)).where(J.c.kind == "rows"))
    if steps is None:
        steps = int(conn.execute(select(func.count()).select_from(S)).scalar_one())
    return int(rolled.scalar_one()) == steps


def midnight(moment: datetime) -> datetime:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.combine(moment.date(), time(), tzinfo=UTC)
