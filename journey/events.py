"""The durable webhook queue (`webhook_event`): enqueue with dedupe, claim, complete, retry.

Why a table in the theme database and not a broker: the webhook handler must persist before it
answers 202, and the store is already there, on SQLite and PostgreSQL alike (notes §5.2).

- **enqueue**: one row per (source, delivery, ticket); a repeated delivery hits the unique key
  and changes nothing (`INSERT … ON CONFLICT DO NOTHING`). Deliveries without a helpdesk id
  (Freshdesk) are keyed by a hash of the body and, when the earlier one is already done, queued
  again: a new comment on the same ticket may well send the same body.
- **claim**: one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING` marks due rows `claimed` by
  a worker. PostgreSQL adds `FOR UPDATE SKIP LOCKED` so concurrent workers (several machines)
  never claim one row twice; SQLite has one writer at a time, so the statement alone is atomic.
- **coalescing**: a claim takes every due event of the tickets it picked, so repeats for one
  ticket (a burst of comments, duplicate deliveries) become one read and at most one write.
- **complete / retry**: done rows keep `finished_at`; a failed attempt goes back to `queued`
  with an exponential `next_attempt_at` and `last_error`, and after MAX_ATTEMPTS stays `failed`
  (visible in /healthz; the nightly sync reconciles the ticket anyway).
- **crash**: a claim belongs to a worker whose heartbeat (`worker_heartbeat`) must stay fresh;
  claims of a worker silent for longer than `stale` are put back (`reclaim_stale`), so kill -9
  loses nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, func, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import select

from journey.db import session_scope
from journey.models import WebhookEvent, WorkerHeartbeat, table, utcnow

MAX_ATTEMPTS = 8
BACKOFF_BASE = 5.0  # seconds: 5, 10, 20, … capped at BACKOFF_CAP
BACKOFF_CAP = 3600.0
STALE_AFTER = timedelta(seconds=30)  # a worker silent this long is dead: its claims go back
KEEP_DONE = timedelta(days=3)  # done rows are kept this long (the dedupe window), then pruned
BODY_KEY = "body:"  # deliveries without a helpdesk id: keyed by the body's hash


@dataclass(frozen=True)
class Claimed:
    id: int
    source: str
    ticket: str
    attempts: int


@dataclass(frozen=True)
class QueueStats:
    queued: int
    claimed: int
    failed: int
    oldest_age_seconds: float | None  # of the oldest queued or claimed event


def body_key(body: bytes) -> str:
    """The delivery key of a webhook that carries no delivery id of its own."""
    return BODY_KEY + hashlib.sha256(body).hexdigest()[:32]


def enqueue(engine: Engine, source: str, delivery: str, tickets: Sequence[str]) -> int:
    """Store one delivery for each ticket; returns how many rows were new (0: a duplicate)."""
    now = utcnow()
    rows = [
        {
            "source": source,
            "delivery": delivery,
            "ticket": ticket,
            "received_at": now,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
        }
        for ticket in dict.fromkeys(tickets)
    ]
    if not rows:
        return 0
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    events = table(WebhookEvent)
    statement = insert(events).values(rows).on_conflict_do_nothing().returning(events.c.id)
    with session_scope(engine) as session:
        added = len(session.execute(statement).all())
        if delivery.startswith(BODY_KEY) and added < len(rows):
            # The same body again after the earlier delivery was handled: a new event.
            session.execute(
                update(WebhookEvent)
                .where(
                    WebhookEvent.source == source,  # type: ignore[arg-type]
                    WebhookEvent.delivery == delivery,  # type: ignore[arg-type]
                    WebhookEvent.ticket.in_([r["ticket"] for r in rows]),  # type: ignore[attr-defined]
                    WebhookEvent.status.in_(("done", "failed")),  # type: ignore[attr-defined]
                )
                .values(
                    status="queued",
                    attempts=0,
                    next_attempt_at=now,
                    received_at=now,
                    finished_at=None,
                    last_error=None,
                )  # fmt: skip
            )
    return added


_CLAIM = """
WITH picked AS (
    SELECT id, ticket FROM webhook_event
    WHERE status = 'queued' AND next_attempt_at <= :now AND source = :source
    ORDER BY id LIMIT :tickets {lock}
)
UPDATE webhook_event SET status = 'claimed', claimed_by = :worker, claimed_at = :now,
    attempts = attempts + 1
WHERE id IN (
    SELECT id FROM webhook_event
    WHERE status = 'queued' AND next_attempt_at <= :now AND source = :source
      AND ticket IN (SELECT ticket FROM picked)
    {lock}
)
RETURNING id, source, ticket, attempts
"""


def claim(engine: Engine, worker: str, source: str, max_tickets: int = 100) -> list[Claimed]:
    """Claim the due events of up to `max_tickets` tickets of `source`, oldest first, every
    due event of each picked ticket included (coalescing). On PostgreSQL both the pick and the
    expansion skip rows another worker has locked, so concurrent claimers take different
    tickets instead of colliding on the oldest one."""
    postgres = engine.dialect.name == "postgresql"
    statement = text(_CLAIM.format(lock="FOR UPDATE SKIP LOCKED" if postgres else "")).bindparams(
        bindparam("now", type_=table(WebhookEvent).c.claimed_at.type)
    )
    with session_scope(engine) as session:
        rows = session.execute(
            statement,
            {"worker": worker, "now": utcnow(), "source": source, "tickets": max_tickets},
        ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def due_sources(engine: Engine, only: str | None = None) -> list[str]:
    """Sources with events due now (the worker loop visits them in turn)."""
    query = (
        select(WebhookEvent.source)
        .where(
            WebhookEvent.status == "queued",
            WebhookEvent.next_attempt_at <= utcnow(),
        )
        .distinct()
    )
    if only is not None:
        query = query.where(WebhookEvent.source == only)
    with session_scope(engine) as session:
        return sorted(session.execute(query).scalars())


def complete(engine: Engine, ids: Sequence[int]) -> None:
    if not ids:
        return
    with session_scope(engine) as session:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(ids))  # type: ignore[union-attr]
            .values(status="done", finished_at=utcnow(), last_error=None)
        )


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1)))


def fail(engine: Engine, events: Sequence[Claimed], error: str) -> None:
    """A failed attempt: back to the queue after a back-off, or `failed` after MAX_ATTEMPTS."""
    now = utcnow()
    with session_scope(engine) as session:
        for event in events:
            gave_up = event.attempts >= MAX_ATTEMPTS
            session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id == event.id)  # type: ignore[arg-type]
                .values(
                    status="failed" if gave_up else "queued",
                    next_attempt_at=now + backoff(event.attempts),
                    last_error=error[:500],
                    finished_at=now if gave_up else None,
                )
            )


def reclaim_stale(engine: Engine, stale: timedelta = STALE_AFTER) -> int:
    """Put back the claims of workers whose heartbeat stopped (killed, host lost); returns
    how many. Their attempt still counts, so an event that kills its worker ends `failed`."""
    cutoff = utcnow() - stale
    alive = select(WorkerHeartbeat.worker).where(WorkerHeartbeat.beat_at >= cutoff)
    with session_scope(engine) as session:
        result = session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.status == "claimed",  # type: ignore[arg-type]
                WebhookEvent.claimed_at < cutoff,  # type: ignore[arg-type,operator,operator]
                WebhookEvent.claimed_by.not_in(alive),  # type: ignore[union-attr]
            )
            .values(status="queued", claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        return _affected(result)


def reclaim_dead_local(engine: Engine, host: str) -> int:
    """Put back at once the claims of workers on this host whose process is gone (kill -9,
    OOM): a restarted `cjm serve` need not wait for their heartbeat to go stale."""
    with session_scope(engine) as session:
        local = list(
            session.execute(select(WorkerHeartbeat).where(WorkerHeartbeat.host == host)).scalars()
        )
        dead = [w.worker for w in local if w.pid != os.getpid() and not _alive(w.pid)]
        if not dead:
            return 0
        result = session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.status == "claimed",  # type: ignore[arg-type]
                WebhookEvent.claimed_by.in_(dead),  # type: ignore[union-attr]
            )
            .values(status="queued", claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        for worker in local:
            if worker.worker in dead:
                session.delete(worker)
        return _affected(result)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune(engine: Engine, keep: timedelta = KEEP_DONE) -> int:
    """Delete done rows older than `keep` (past the window in which a helpdesk re-delivers)."""
    from sqlalchemy import delete

    with session_scope(engine) as session:
        result = session.execute(
            delete(WebhookEvent).where(
                WebhookEvent.status == "done",  # type: ignore[arg-type]
                WebhookEvent.finished_at < utcnow() - keep,  # type: ignore[arg-type,operator]
            )
        )
        return _affected(result)


def stats(engine: Engine, now: datetime | None = None) -> QueueStats:
    now = now or utcnow()
    with session_scope(engine) as session:
        counts = dict(
            session.execute(
                select(WebhookEvent.status, func.count())
                .where(WebhookEvent.status != "done")
                .group_by(WebhookEvent.status)
            ).all()
        )
        oldest = session.execute(
            select(func.min(WebhookEvent.received_at)).where(
                WebhookEvent.status.in_(("queued", "claimed"))  # type: ignore[attr-defined]
            )
        ).scalar_one_or_none()
    if isinstance(oldest, str):  # SQLite aggregate results skip the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return QueueStats(
        queued=counts.get("queued", 0),
        claimed=counts.get("claimed", 0),
        failed=counts.get("failed", 0),
        oldest_age_seconds=(now - oldest).total_seconds() if oldest else None,
    )


# ---- heartbeats -------------------------------------------------------------------------------


def beat(
    engine: Engine, worker: str, *, host: str, pid: int, source: str | None, processed: int
) -> None:
    with session_scope(engine) as session:
        row = session.get(WorkerHeartbeat, worker)
        if row is None:
            row = WorkerHeartbeat(worker=worker, host=host, pid=pid, source=source)
        row.beat_at = utcnow()
        row.processed = processed
        session.add(row)


def forget(engine: Engine, worker: str) -> None:
    """A worker that stops cleanly removes its heartbeat row."""
    with session_scope(engine) as session:
        row = session.get(WorkerHeartbeat, worker)
        if row is not None:
            session.delete(row)


def heartbeats(engine: Engine) -> list[WorkerHeartbeat]:
    with session_scope(engine) as session:
        return list(session.execute(select(WorkerHeartbeat)).scalars())


def _affected(result: object) -> int:
    """Rows an UPDATE touched (`Session.execute` is typed as returning any `Result`)."""
    return cast("CursorResult[Any]", result).rowcount or 0
