"""The outbox around a crash and at scale: what write-back reads, resumes and records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import event, select

import journey.writeback as writeback
from connectors.records import FieldIds, TicketUpdate, UpdateResult
from journey.db import session_scope
from journey.models import Conversation, Label, Writeback
from journey.store import ensure_source, recheck_outbox, upsert_conversations
from journey.writeback import write_back
from tests.journey.test_store import _conversation

FIELDS = FieldIds(stage="100")
DESIRED = {"stage": "stage__delivery", "confidence": None, "pain": ["pain__late"]}
ON_TICKET = {
    "tags": ["vip", "pain__late", "stage__delivery"],
    "custom_fields": {"100": "stage__delivery"},
}


class Recorder:
    """A connector that records what it is asked to send; jobs as Zendesk runs them."""

    def __init__(self, resumed: Sequence[UpdateResult] = ()) -> None:
        self.sent: list[TicketUpdate] = []
        self.resumed_jobs: list[Mapping[str, Sequence[str]]] = []
        self._resumed = list(resumed)

    async def apply_updates(
        self,
        updates: Sequence[TicketUpdate],
        *,
        on_job: Callable[[str, list[str]], None] | None = None,
    ) -> list[UpdateResult]:
        self.sent.extend(updates)
        if on_job is not None:
            on_job("job-1", [u.external_id for u in updates])
        return [UpdateResult(u.external_id, True) for u in updates]

    async def resume_jobs(self, jobs: Mapping[str, Sequence[str]]) -> list[UpdateResult]:
        self.resumed_jobs.append(jobs)
        return self._resumed


def _outbox(engine: Any, rows: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> int:
    """Conversations (overrides) with outbox rows (column values); returns the source id."""
    with session_scope(engine) as session:
        source = ensure_source(session, "acme", "zendesk", "http://x")
        upsert_conversations(
            session, source.id, [_conversation(str(i), **c) for i, (c, _) in enumerate(rows)]
        )
        ids = dict(session.execute(select(Conversation.external_id, Conversation.id)).all())
        session.add_all(
            [Writeback(conversation_id=ids[str(i)], **w) for i, (_, w) in enumerate(rows)]
        )
        assert source.id is not None
        return source.id


def _rows(engine: Any) -> dict[str, Writeback]:
    with session_scope(engine) as session:
        found = session.execute(select(Conversation.external_id, Writeback).join(Writeback))
        return {str(row[0]): row[1] for row in found.all()}


def test_write_back_reads_only_rows_that_can_need_work(sqlite_engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    applied = {"desired": DESIRED, "applied": DESIRED, "status": "applied"}
    source_id = _outbox(
        sqlite_engine,
        [(ON_TICKET, applied)] * 1500 + [({}, {"desired": DESIRED})] * 3,
    )
    planned: list[str] = []
    real_plan = writeback.plan_update

    def counting_plan(external_id: str, **kwargs: Any) -> Any:
        planned.append(external_id)
        return real_plan(external_id, **kwargs)

    monkeypatch.setattr(writeback, "plan_update", counting_plan)
    loaded: list[int] = []

    def on_load(row: Writeback, _context: Any) -> None:
        loaded.append(row.id or 0)

    event.listen(Writeback, "load", on_load)
    connector = Recorder()
    try:
        report = asyncio.run(write_back(sqlite_engine, source_id, connector, FIELDS))
    finally:
        event.remove(Writeback, "load", on_load)
    assert sorted(planned) == ["1500", "1501", "1502"]  # the 1,500 applied rows are not read
    assert report.written == 3 and len(connector.sent) == 3
    assert len(loaded) == 3  # outbox rows read from the database


def test_a_ticket_the_pull_saw_again_is_compared_once_more(engine) -> None:  # type: ignore[no-untyped-def]
    """An agent removed cjm's stage: the row was applied, the pull brings the ticket again."""
    applied = {"desired": DESIRED, "applied": DESIRED, "status": "applied"}
    source_id = _outbox(engine, [(ON_TICKET, applied), (ON_TICKET, applied)])
    with session_scope(engine) as session:
        agent_cleared = {**ON_TICKET, "custom_fields": {}}
        upsert_conversations(session, source_id, [_conversation("0", **agent_cleared)])
        recheck_outbox(session, source_id, ["0"])
    report = asyncio.run(write_back(engine, source_id, Recorder(), FIELDS))
    assert report.stage_locked == 1
    rows = _rows(engine)
    assert rows["0"].stage_locked and rows["0"].status == "applied"
    assert not rows["1"].stage_locked


def test_a_job_left_running_by_a_crash_is_resumed_not_sent_again(engine) -> None:  # type: ignore[no-untyped-def]
    """Killed while its job ran: the job finished at the helpdesk, the pull already shows the
    values. The next run polls the job, records it, sends nothing, locks nothing."""
    sent = {"fields": [["100", "stage__delivery"]], "add": ["pain__late"], "remove": [],
            "stage": "stage__delivery"}  # fmt: skip
    in_flight = {"desired": DESIRED, "status": "sending", "sent": sent, "job_id": "job-9"}
    source_id = _outbox(engine, [(ON_TICKET, in_flight)])
    connector = Recorder(resumed=[UpdateResult("0", True)])
    report = asyncio.run(write_back(engine, source_id, connector, FIELDS))
    assert connector.resumed_jobs == [{"job-9": ["0"]}]
    assert connector.sent == [] and report.stage_locked == 0
    row = _rows(engine)["0"]
    assert (row.status, row.sent, row.job_id, row.stage_locked) == ("applied", None, None, False)
    assert row.applied["stage"] == "stage__delivery"
    with session_scope(engine) as session:
        assert session.execute(select(Label)).first() is None


def test_a_delta_recorded_but_never_confirmed_is_cjms_own_on_the_ticket(engine) -> None:  # type: ignore[no-untyped-def]
    """Killed before the job id was recorded (or the job expired): the ticket shows the delta
    cjm recorded, so it is cjm's value, not an agent's correction; only what is missing goes."""
    sent = {"fields": [["100", "stage__delivery"]], "add": ["pain__late"], "remove": [],
            "stage": "stage__delivery"}  # fmt: skip
    on_ticket = {"tags": ["vip", "stage__delivery"], "custom_fields": {"100": "stage__delivery"}}
    old = {**DESIRED, "stage": "stage__purchase", "pain": []}
    source_id = _outbox(
        engine,
        [(on_ticket, {"desired": DESIRED, "applied": old, "status": "sending", "sent": sent})],
    )
    connector = Recorder()
    report = asyncio.run(write_back(engine, source_id, connector, FIELDS))
    assert report.stage_locked == 0
    assert [(u.set_fields, u.add_tags) for u in connector.sent] == [((), {"pain__late"})]
    row = _rows(engine)["0"]
    assert (row.status, row.sent, row.job_id) == ("applied", None, None)


def test_every_delta_is_recorded_before_it_is_sent(engine) -> None:  # type: ignore[no-untyped-def]
    source_id = _outbox(engine, [({}, {"desired": DESIRED})])
    seen: list[tuple[str, Any, Any]] = []

    class Watching(Recorder):
        async def apply_updates(self, updates, *, on_job=None):  # type: ignore[no-untyped-def]
            row = _rows(engine)["0"]
            seen.append((row.status, row.sent, row.job_id))
            return await super().apply_updates(updates, on_job=on_job)

    asyncio.run(write_back(engine, source_id, Watching(), FIELDS))
    status, sent, job_id = seen[0]
    assert status == "sending" and job_id is None
    assert sent["stage"] == "stage__delivery" and sent["add"] == ["pain__late"]
