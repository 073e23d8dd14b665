"""Write-back reads the outbox with primary-key look-ups, batch after batch: a plan that starts
from every conversation of the source made a 1,000,000-ticket write-back quadratic."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from connectors.records import FieldIds
from journey.db import session_scope
from journey.models import Writeback
from journey.store import ensure_source, upsert_conversations
from journey.writeback import write_back
from tests.journey.test_store import _conversation


class _NoCalls:
    async def apply_updates(self, updates: Any) -> Any:  # pragma: no cover - must not happen
        raise AssertionError("closed tickets are never written")


def test_outbox_batches_use_primary_key_lookups_not_a_source_scan(sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sqlite_engine) as session:
        source = ensure_source(session, "acme", "zendesk", "http://x")
        other = ensure_source(session, "beta", "zendesk", "http://y")
        upsert_conversations(
            session, source.id, [_conversation(str(i), status="closed") for i in range(2500)]
        )
        upsert_conversations(session, other.id, [_conversation("b1", status="closed")])
        source_id = source.id
    with session_scope(sqlite_engine) as session:
        from sqlalchemy import select

        from journey.models import Conversation

        ids = session.execute(select(Conversation.id)).scalars().all()
        session.add_all([Writeback(conversation_id=i, desired={"tags": ["x"]}) for i in ids])

    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "writeback" in statement:
            seen.append((statement, parameters))

    event.listen(sqlite_engine, "before_cursor_execute", capture)
    try:
        report = asyncio.run(write_back(sqlite_engine, source_id, _NoCalls(), FieldIds()))
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", capture)

    assert report.skipped_closed == 2500  # every row of this source visited once, none of beta's
    assert len(seen) >= 3  # several batches
    raw = sqlite_engine.raw_connection()
    try:
        for statement, parameters in seen:
            plan = raw.cursor().execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            details = [row[-1] for row in plan]
            assert not any("source_id" in d or d.startswith("SCAN") for d in details), (
                statement,
                details,
            )
    finally:
        raw.close()
