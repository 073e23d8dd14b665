"""The write-back outbox: desired tags/fields per conversation → minimal deltas → the helpdesk.

Rules (DESIGN §5): only differences are sent; tags are added/removed only under our own
prefixes and only when cjm put them there; a stage an agent set or changed by hand wins and is
recorded as a training label; closed and deleted tickets are never written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.base import HelpdeskConnector
from connectors.records import FieldIds, TicketUpdate
from journey.db import session_scope
from journey.models import Classification, Conversation, Label, Writeback, utcnow

STAGE_PREFIX = "stage__"
PAIN_PREFIX = "pain__"
CONFIDENCE_PREFIX = "stage_confidence__"
CONFIDENCE_LEVELS = (("high", 0.8), ("medium", 0.6), ("low", 0.0))
NOT_WRITABLE = frozenset({"closed", "deleted", "unknown"})


def stage_option(stage: str) -> str:
    return f"{STAGE_PREFIX}{stage}"


def confidence_option(confidence: float) -> str:
    for level, floor in CONFIDENCE_LEVELS:
        if confidence >= floor:
            return f"{CONFIDENCE_PREFIX}{level}"
    return f"{CONFIDENCE_PREFIX}low"


def desired_state(classification: Classification) -> dict[str, Any]:
    """What cjm wants on the ticket, derived from the latest classification."""
    return {
        "stage": stage_option(classification.stage) if classification.stage else None,
        "confidence": confidence_option(classification.stage_confidence)
        if classification.stage
        else None,
        "pain": sorted(f"{PAIN_PREFIX}{t}" for t in classification.themes),
    }


@dataclass(frozen=True)
class Plan:
    """The delta for one ticket and what it means for the outbox row."""

    update: TicketUpdate
    stage_locked: bool
    agent_stage: str | None = None
    suppressed: tuple[str, ...] = ()


def plan_update(
    external_id: str,
    *,
    current_tags: Iterable[str],
    current_fields: Mapping[str, Any],
    desired: Mapping[str, Any],
    applied: Mapping[str, Any],
    stage_locked: bool,
    fields: FieldIds,
) -> Plan:
    """Pure: compare desired, last applied and current ticket state; return the minimal delta."""
    tags = set(current_tags)
    set_fields: list[tuple[str, str | None]] = []
    agent_stage: str | None = None
    if fields.stage:
        current_stage = _as_option(current_fields.get(fields.stage))
        applied_stage = applied.get("stage")
        if (
            not stage_locked
            and current_stage != applied_stage
            and (applied_stage is not None or current_stage is not None)
        ):
            # Someone else set, changed or cleared the stage since cjm last wrote it.
            stage_locked = True
            agent_stage = current_stage
        if not stage_locked and desired.get("stage") != current_stage:
            if desired.get("stage") is not None or current_stage == applied_stage:
                set_fields.append((fields.stage, desired.get("stage")))
        if fields.confidence and not stage_locked:
            current_conf = _as_option(current_fields.get(fields.confidence))
            if desired.get("confidence") != current_conf:
                set_fields.append((fields.confidence, desired.get("confidence")))
    desired_pain = set(desired.get("pain") or ())
    applied_pain = set(applied.get("pain") or ())
    suppressed = set(applied.get("suppressed") or ()) | (applied_pain - tags)
    suppressed &= desired_pain  # a removed tag stays removed only while cjm would re-add it
    add = desired_pain - tags - suppressed
    remove = (applied_pain - desired_pain) & tags
    return Plan(
        update=TicketUpdate(
            external_id=external_id,
            set_fields=tuple(set_fields),
            add_tags=frozenset(add),
            remove_tags=frozenset(t for t in remove if t.startswith(PAIN_PREFIX)),
        ),
        stage_locked=stage_locked,
        agent_stage=agent_stage,
        suppressed=tuple(sorted(suppressed)),
    )


def _as_option(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


@dataclass
class WritebackReport:
    planned: int = 0
    written: int = 0
    failed: int = 0
    skipped_closed: int = 0
    stage_locked: int = 0
    errors: list[str] = field(default_factory=list)
    preview: list[TicketUpdate] = field(default_factory=list)


def refresh_outbox(session: Session, conversation_ids: Sequence[int]) -> None:
    """Store the desired state for freshly mined conversations, in the caller's transaction:
    mining commits a classification together with its outbox row, so a crash can never leave a
    mined conversation that nothing will write back."""
    rows = session.execute(
        select(Classification).where(Classification.conversation_id.in_(conversation_ids))  # type: ignore[attr-defined]
    ).scalars()
    existing = {
        w.conversation_id: w
        for w in session.execute(
            select(Writeback).where(Writeback.conversation_id.in_(conversation_ids))  # type: ignore[attr-defined]
        ).scalars()
    }
    for classification in rows:
        desired = desired_state(classification)
        outbox = existing.get(classification.conversation_id)
        if outbox is None:
            session.add(Writeback(conversation_id=classification.conversation_id, desired=desired))
        elif outbox.desired != desired:
            outbox.desired = desired
            outbox.status = "pending"
            outbox.updated_at = utcnow()
            session.add(outbox)


async def write_back(
    engine: Engine,
    source_id: int,
    connector: HelpdeskConnector,
    fields: FieldIds,
    *,
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Callable[[str], None] = lambda _message: None,
) -> WritebackReport:
    """Plan deltas for every outbox row and send them; the outbox row records the result."""
    report = WritebackReport()
    last_id = 0
    while True:
        with session_scope(engine) as session:
            # Walk the outbox by its primary key, then join: filtering on the source in SQL let
            # SQLite start from every conversation of the source and sort, once per batch
            # (quadratic: ~4 ms per ticket at 1,000,000 tickets).
            ids = list(
                session.execute(
                    select(Writeback.id)
                    .where(Writeback.id > last_id)
                    .order_by(Writeback.id)
                    .limit(batch_size)
                ).scalars()
            )
            if not ids:
                return report
            last_id = ids[-1]
            # The source is checked here, not in SQL: with it in the WHERE clause SQLite again
            # preferred the source index over 1,000 primary-key look-ups.
            batch = [
                (outbox, conversation)
                for outbox, conversation in session.execute(
                    select(Writeback, Conversation)
                    .join(Conversation, Conversation.id == Writeback.conversation_id)
                    .where(Writeback.id.in_(ids))  # type: ignore[union-attr]
                    .order_by(Writeback.id)
                ).all()
                if conversation.source_id == source_id
            ]
            plans: dict[str, tuple[Writeback, Conversation, Plan]] = {}
            for outbox, conversation in batch:
                if conversation.deleted or conversation.status in NOT_WRITABLE:
                    report.skipped_closed += conversation.status == "closed"
                    continue
                plan = plan_update(
                    conversation.external_id,
                    current_tags=conversation.tags,
                    current_fields=conversation.custom_fields,
                    desired=outbox.desired,
                    applied=outbox.applied,
                    stage_locked=outbox.stage_locked,
                    fields=fields,
                )
                if plan.stage_locked and not outbox.stage_locked:
                    report.stage_locked += 1
                    if not dry_run:
                        _lock_stage(session, outbox, conversation, plan)
                if plan.update.is_empty:
                    if not dry_run and outbox.status != "applied":
                        _mark_applied(outbox, conversation, plan, fields)
                        session.add_all([outbox, conversation])
                    continue
                plans[conversation.external_id] = (outbox, conversation, plan)
        report.planned += len(plans)
        if dry_run:
            report.preview.extend(p.update for _, _, p in list(plans.values())[:20])
            continue
        if not plans:
            continue
        progress(f"write-back: sending {len(plans)} ticket updates")
        results = await connector.apply_updates([p.update for _, _, p in plans.values()])
        with session_scope(engine) as session:
            for result in results:
                outbox, conversation, plan = plans[result.external_id]
                if result.ok:
                    report.written += 1
                    _mark_applied(outbox, conversation, plan, fields)
                    _apply_locally(conversation, plan.update)
                else:
                    report.failed += 1
                    outbox.status = "failed"
                    outbox.attempts += 1
                    outbox.last_error = (result.error or "failed")[:500]
                    if len(report.errors) < 5:
                        report.errors.append(f"ticket {result.external_id}: {outbox.last_error}")
                outbox.updated_at = utcnow()
                session.add_all([outbox, conversation])


def _lock_stage(session: Any, outbox: Writeback, conversation: Conversation, plan: Plan) -> None:
    """An agent's stage wins from now on, and becomes a training label."""
    outbox.stage_locked = True
    session.add(outbox)
    if plan.agent_stage and plan.agent_stage.startswith(STAGE_PREFIX):
        session.add(
            Label(
                conversation_id=conversation.id,
                origin="agent",
                stage=plan.agent_stage.removeprefix(STAGE_PREFIX),
            )
        )


def _mark_applied(
    outbox: Writeback, conversation: Conversation, plan: Plan, fields: FieldIds
) -> None:
    applied = dict(outbox.desired)
    if plan.stage_locked and fields.stage:
        applied["stage"] = _as_option(conversation.custom_fields.get(fields.stage))
    applied["suppressed"] = list(plan.suppressed)
    outbox.applied = applied
    outbox.status = "applied"
    outbox.last_error = None
    outbox.updated_at = utcnow()


def _apply_locally(conversation: Conversation, update: TicketUpdate) -> None:
    """Mirror a successful write in the stored ticket, so a write-back run before the next pull
    does not mistake cjm's own change for an agent's."""
    tags = (set(conversation.tags) | update.add_tags) - update.remove_tags
    fields = dict(conversation.custom_fields)
    for field_id, value in update.set_fields:
        old = fields.get(field_id)
        if old:
            tags.discard(str(old))
        fields[field_id] = value
        if value:
            tags.add(value)
    conversation.tags = sorted(tags)
    conversation.custom_fields = fields
