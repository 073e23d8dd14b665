"""Which stored map rows a store call has to recompute: only those of conversations whose
map-relevant fields changed.

The store recomputes journey steps per customer and daily rollups per day (`steps.py`,
`rollups.py`); both cost far more than the page of conversations that triggers them, because a
customer's journey and a day span many other conversations. Most pages of an incremental sync
change nothing the map reads: a ticket comes back because cjm's own write-back (or an agent)
changed its tags, status or `updated_at`. So each store function takes a `snapshot` of what the
stored tables read before it writes and `refresh` compares it with the state after: only the
conversations whose fields differ (or that are new) are recomputed, steps and rollups each on
their own fields.

- steps read: source, requester, created_at, deleted, stage, sentiment, classified or not,
  themes (the theme steps);
- rollups read: created_at (its day), source, channel, deleted, stage, classified or not,
  sentiment, themes, emotions, and whether the conversation has a CSAT (solicited) comment.

A requester's e-mail hash (the merge key) is compared the same way (`changed_hashes`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_

from journey.journey_map import rollups, steps
from journey.lock import hold_map_upkeep
from journey.models import Classification, Conversation, ConversationTheme, Message, Person, table

C = table(Conversation)
K = table(Classification)
T = table(ConversationTheme)
M = table(Message)
P = table(Person)
CHUNK = 500


@dataclass(frozen=True, slots=True)
class MapFields:
    """What the map's stored tables read of one conversation."""

    source_id: int
    requester_id: str | None
    created_at: datetime
    channel: str | None
    deleted: bool
    classified: bool
    stage: str | None
    sentiment: float | None
    themes: tuple[str, ...]
    csat: bool
    emotions: str  # the classification's emotions, as canonical JSON (the emotion days)

    def step_fields(self) -> tuple[Any, ...]:
        return (self.source_id, self.requester_id, self.created_at, self.deleted,
                self.classified, self.stage, self.sentiment, self.themes)  # fmt: skip

    def rollup_fields(self) -> tuple[Any, ...]:
        return (self.source_id, self.created_at, self.channel, self.deleted, self.classified,
                self.stage, self.sentiment, self.themes, self.csat, self.emotions)  # fmt: skip


Snapshot = dict[int, MapFields]


def snapshot(conn: Any, conversation_ids: Iterable[int]) -> Snapshot:
    """The map-relevant fields of these conversations as stored now (`conn`: Connection or
    Session). Conversations not stored yet are absent."""
    ids = sorted({int(i) for i in conversation_ids})
    found: Snapshot = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        themes: dict[int, list[str]] = defaultdict(list)
        for cid, theme in conn.execute(
            select(T.c.conversation_id, T.c.theme).where(T.c.conversation_id.in_(chunk))
        ):
            themes[int(cid)].append(str(theme))
        surveyed = set(
            conn.execute(
                select(M.c.conversation_id)
                .where(M.c.conversation_id.in_(chunk), M.c.solicited.is_(True))
                .distinct()
            ).scalars()
        )
        rows = conn.execute(
            select(C.c.id, C.c.source_id, C.c.requester_id, C.c.created_at, C.c.channel,
                   C.c.deleted, K.c.id, K.c.stage, K.c.sentiment, K.c.emotions)
            .select_from(C.outerjoin(K, K.c.conversation_id == C.c.id))
            .where(C.c.id.in_(chunk))
        )  # fmt: skip
        for cid, source, requester, created, channel, deleted, kid, stage, sentiment, shown in rows:
            found[int(cid)] = MapFields(
                int(source), requester, created, channel, bool(deleted), kid is not None, stage,
                None if sentiment is None else float(sentiment),
                tuple(sorted(themes.get(int(cid), []))), int(cid) in surveyed,
                json.dumps(_loaded(shown) or [], sort_keys=True),  # none shown: null or []
            )  # fmt: skip
    return found


@dataclass(frozen=True, slots=True)
class Refreshed:
    """How many conversations a store call recomputed steps and rollups for (tests, bench)."""

    steps: int
    rollups: int


def refresh(conn: Any, conversation_ids: Iterable[int], before: Snapshot) -> Refreshed:
    """Recompute the stored steps and rollups of the conversations whose map-relevant fields
    differ from `before` (taken by `snapshot` before the write) — nothing for the others."""
    ids = {int(i) for i in conversation_ids}
    after = snapshot(conn, ids & before.keys())  # a new conversation changed everything
    step_ids, rollup_ids = [], []
    for cid in sorted(ids):
        old, new = before.get(cid), after.get(cid)
        if old is None or new is None:
            step_ids.append(cid)
            rollup_ids.append(cid)
            continue
        if old.step_fields() != new.step_fields():
            step_ids.append(cid)
        if old.rollup_fields() != new.rollup_fields():
            rollup_ids.append(cid)
    if step_ids or rollup_ids:
        hold_map_upkeep(conn)  # other sources' writers wait: the derived rows are shared
    if step_ids:
        steps.refresh_conversations(conn, step_ids)
    if rollup_ids:
        days_before = {before[c].created_at for c in rollup_ids if c in before}
        rollups.refresh_conversations(conn, rollup_ids, days_before)
    return Refreshed(len(step_ids), len(rollup_ids))


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def changed_hashes(conn: Any, source_id: int, hashes: Mapping[str, str]) -> dict[str, str]:
    """The (requester → e-mail hash) pairs that differ from what is stored (a merge to redo)."""
    listed = sorted(hashes)
    stored: dict[str, Any] = {}
    for start in range(0, len(listed), CHUNK):
        chunk = listed[start : start + CHUNK]
        stored.update(
            conn.execute(
                select(P.c.external_id, P.c.email_hash).where(
                    tuple_(P.c.source_id, P.c.external_id).in_([(source_id, e) for e in chunk])
                )
            ).all()
        )
    return {e: h for e, h in hashes.items() if stored.get(e) != h}
