"""The write-back outbox: desired tags/fields per conversation → minimal deltas → the helpdesk.

Rules (DESIGN §5): only differences are sent; tags are added/removed only under our own
prefixes and only when cjm put them there; a stage an agent set or changed by hand wins and is
recorded as a training label; closed and deleted tickets are never written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from connectors.base import HelpdeskConnector, ResumesJobs
from connectors.records import FieldIds, TicketUpdate
from journey.db import session_scope
from journey.models import Classification, Conversation, Label, Writeback, utcnow
from journey.progress import report_count
from journey.store import themes_of
from miner import confidence_bands

STAGE_PREFIX = "stage__"
PAIN_PREFIX = "pain__"
CONFIDENCE_PREFIX = "stage_confidence__"
#: high / medium / low from the precision measured on held-out domains (miner.confidence_bands:
#: "high" where messages of that confidence are right at least 9 times in 10, "medium" 7 in 10)
CONFIDENCE_LEVELS = confidence_bands()
NOT_WRITABLE = frozenset({"closed", "deleted", "unknown"})


def stage_option(stage: str) -> str:
    return f"{STAGE_PREFIX}{stage}"


def confidence_option(confidence: float) -> str:
    for level, floor in CONFIDENCE_LEVELS:
        if confidence >= floor:
            return f"{CONFIDENCE_PREFIX}{level}"
    return f"{CONFIDENCE_PREFIX}low"


def pain_tags(themes: Iterable[str]) -> list[str]:
    """The ticket tags that carry `themes` (sorted: the outbox compares them as a set)."""
    return sorted(f"{PAIN_PREFIX}{t}" for t in themes)


def desired_state(classification: Classification, themes: Iterable[str]) -> dict[str, Any]:
    """What cjm wants on the ticket, derived from the latest classification and its theme rows
    (`store.themes_of`). The outbox keeps this as a snapshot on purpose: it is the delta to
    send, compared with what was last applied, not a second home of the themes."""
    return {
        "stage": stage_option(classification.stage) if classification.stage else None,
        "confidence": confidence_option(classification.stage_confidence)
        if classification.stage
        else None,
        "pain": pain_tags(themes),
    }


def with_override(desired: Mapping[str, Any], agent: Mapping[str, Any] | None) -> dict[str, Any]:
    """The desired state once an agent's correction (the sidebar app's "correct stage") is
    applied on top of the miner's: the agent's stage and/or themes win and stay, whatever the
    miner says later (re-mining keeps `agent` in the row; see `refresh_outbox`). The confidence
    field is cleared: it describes the miner's guess, which the ticket no longer shows."""
    merged = dict(desired)
    if not agent:
        return merged
    if agent.get("stage"):
        merged["stage"] = stage_option(str(agent["stage"]))
        merged["confidence"] = None
    if agent.get("themes") is not None:
        merged["pain"] = pain_tags(agent["themes"])
    merged["agent"] = dict(agent)
    return merged


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
    sent: Mapping[str, Any] | None = None,
    setter: Mapping[str, Any] | None = None,
) -> Plan:
    """Pure: compare desired, last applied and current ticket state; return the minimal delta.

    `sent` is a delta cjm recorded before sending it (an interrupted run: it may have landed);
    `setter` is who last set the stage as the helpdesk tells it ({"value", "by_cjm"}). A stage
    that differs from the applied one is an agent's only when neither shows it as cjm's own.
    """
    tags = set(current_tags)
    set_fields: list[tuple[str, str | None]] = []
    agent_stage: str | None = None
    if fields.stage:
        current_stage = _as_option(current_fields.get(fields.stage))
        applied_stage = applied.get("stage")
        if not stage_locked and current_stage != applied_stage:
            setter_ = _stage_setter(current_stage, applied, desired, sent, setter)
            if setter_ == "cjm":
                applied_stage = current_stage  # cjm's own value: compare from there
            elif setter_ == "agent":
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


def _stage_setter(
    current: str | None,
    applied: Mapping[str, Any],
    desired: Mapping[str, Any],
    sent: Mapping[str, Any] | None,
    setter: Mapping[str, Any] | None,
) -> str:
    """Who put `current` on the ticket when it is not the stage cjm last applied: "cjm",
    "agent" or "nobody" (both empty). The helpdesk's word wins over local guesses."""
    if sent is not None and "stage" in sent and sent["stage"] == current:
        return "cjm"  # the delta of an interrupted run landed
    if setter and setter.get("by_cjm") is not None and setter.get("value") == current:
        return "cjm" if setter["by_cjm"] else "agent"
    if current is None and applied.get("stage") is None:
        return "nobody"
    if not applied and sent is None and current == desired.get("stage"):
        # No record at all (a new or recreated database) and a helpdesk that cannot name the
        # updater: the value cjm would write anyway is not taken for an agent's correction.
        return "cjm"
    return "agent"


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
    themes = themes_of(session, conversation_ids)
    existing = {
        w.conversation_id: w
        for w in session.execute(
            select(Writeback).where(Writeback.conversation_id.in_(conversation_ids))  # type: ignore[attr-defined]
        ).scalars()
    }
    for classification in rows:
        outbox = existing.get(classification.conversation_id)
        agent = outbox.desired.get("agent") if outbox is not None else None
        desired = with_override(
            desired_state(classification, themes[classification.conversation_id]), agent
        )
        if outbox is None:
            session.add(Writeback(conversation_id=classification.conversation_id, desired=desired))
        elif outbox.desired != desired:
            outbox.desired = desired
            outbox.status = "pending"
            outbox.updated_at = utcnow()
            session.add(outbox)


NEEDS_WORK = ("pending", "sending", "failed")  # every status but applied and skipped


async def write_back(
    engine: Engine,
    source_id: int,
    connector: HelpdeskConnector,
    fields: FieldIds,
    *,
    dry_run: bool = False,
    batch_size: int = 1000,
    progress: Callable[[str], None] = lambda _message: None,
    conversation_ids: Sequence[int] | None = None,
) -> WritebackReport:
    """Plan deltas for the outbox rows that can need work and send them.

    Crash safety: a delta is recorded on its row (`sent`, status `sending`) in the transaction
    that planned it, before anything is sent, and each helpdesk job's id as soon as the job is
    accepted. A run killed meanwhile leaves those records: the next run polls the recorded jobs
    to the end instead of sending them again, and takes a ticket value equal to a recorded delta
    for cjm's own, never for an agent's edit.

    `conversation_ids` limits the run to those conversations (an agent's correction from the
    sidebar is written at once, without sending the rest of the outbox).
    """
    report = WritebackReport()
    if not dry_run and isinstance(connector, ResumesJobs):
        await _resume_jobs(engine, source_id, connector, fields, progress)
    last_id = 0
    while True:
        with session_scope(engine) as session:
            # Only rows that can need work (not applied: new or changed desired state, a ticket
            # the pull saw change, a failed or interrupted write), walked by primary key through
            # the status index, then joined: filtering on the source in SQL let SQLite start
            # from every conversation of the source and sort, once per batch (quadratic).
            ids = list(
                session.execute(
                    select(Writeback.id)
                    .where(
                        Writeback.status.in_(NEEDS_WORK),  # type: ignore[attr-defined]
                        Writeback.id > last_id,  # type: ignore[operator]
                        *(
                            [Writeback.conversation_id.in_(list(conversation_ids))]  # type: ignore[attr-defined]
                            if conversation_ids is not None
                            else []
                        ),
                    )
                    .order_by(col(Writeback.id))
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
                    .join(Conversation, col(Conversation.id) == Writeback.conversation_id)
                    .where(Writeback.id.in_(ids))  # type: ignore[union-attr]
                    .order_by(col(Writeback.id))
                ).all()
                if conversation.source_id == source_id
            ]
            plans: dict[str, tuple[Writeback, Conversation, Plan]] = {}
            for outbox, conversation in batch:
                if conversation.deleted or conversation.status in NOT_WRITABLE:
                    report.skipped_closed += conversation.status == "closed"
                    if not dry_run:
                        outbox.status = "skipped"  # until the pull sees the ticket again
                        session.add(outbox)
                    continue
                setters = conversation.field_setters or {}
                plan = plan_update(
                    conversation.external_id,
                    current_tags=conversation.tags,
                    current_fields=conversation.custom_fields,
                    desired=outbox.desired,
                    applied=outbox.applied,
                    stage_locked=outbox.stage_locked,
                    fields=fields,
                    sent=outbox.sent,
                    setter=setters.get(fields.stage) if fields.stage else None,
                )
                if plan.stage_locked and not outbox.stage_locked:
                    report.stage_locked += 1
                    if not dry_run:
                        _lock_stage(session, outbox, conversation, plan)
                if plan.update.is_empty:
                    if not dry_run:
                        _mark_applied(outbox, conversation, plan, fields)
                        session.add_all([outbox, conversation])
                    continue
                plans[conversation.external_id] = (outbox, conversation, plan)
                if not dry_run:
                    # Recorded before sending, committed with the plan.
                    outbox.status = "sending"
                    outbox.sent = _sent_record(plan.update, fields)
                    outbox.job_id = None
                    outbox.updated_at = utcnow()
                    session.add(outbox)
        report.planned += len(plans)
        if dry_run:
            report.preview.extend(p.update for _, _, p in list(plans.values())[:20])
            continue
        if not plans:
            continue
        progress(f"write-back: sending {len(plans)} ticket updates")
        updates = [p.update for _, _, p in plans.values()]
        if isinstance(connector, ResumesJobs):

            def on_job(job_id: str, external_ids: list[str], plans: Any = plans) -> None:
                rows = [plans[e][0] for e in external_ids]
                _record_job(engine, job_id, [row.id for row in rows])
                for row in rows:  # what the database now holds: the result below clears it
                    set_committed_value(row, "job_id", job_id)
                progress(f"write-back: job {job_id} accepted for {len(external_ids)} tickets")

            results = await connector.apply_updates(updates, on_job=on_job)
        else:
            results = await connector.apply_updates(updates)
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
                    outbox.sent, outbox.job_id = None, None
                    if len(report.errors) < 5:
                        report.errors.append(f"ticket {result.external_id}: {outbox.last_error}")
                outbox.updated_at = utcnow()
                session.add_all([outbox, conversation])
        report_count(
            progress,
            "write-back",
            report.written + report.failed,
            None,
            f"write-back: {report.written} tickets updated, {report.failed} failed",
        )


def _sent_record(update: TicketUpdate, fields: FieldIds) -> dict[str, Any]:
    sent: dict[str, Any] = {
        "fields": [[k, v] for k, v in update.set_fields],
        "add": sorted(update.add_tags),
        "remove": sorted(update.remove_tags),
    }
    for key, field_id in (("stage", fields.stage), ("confidence", fields.confidence)):
        for k, v in update.set_fields:
            if field_id and k == field_id:
                sent[key] = v
    return sent


def _sent_update(external_id: str, sent: Mapping[str, Any]) -> TicketUpdate:
    return TicketUpdate(
        external_id=external_id,
        set_fields=tuple((str(k), v) for k, v in sent.get("fields") or ()),
        add_tags=frozenset(sent.get("add") or ()),
        remove_tags=frozenset(sent.get("remove") or ()),
    )


def _record_job(engine: Engine, job_id: str, outbox_ids: Sequence[int | None]) -> None:
    """The helpdesk accepted a job: remember it, so a crash resumes it instead of re-sending."""
    with session_scope(engine) as session:
        session.execute(
            update(Writeback)
            .where(Writeback.id.in_(outbox_ids))  # type: ignore[union-attr]
            .values(job_id=job_id)
        )


async def _resume_jobs(
    engine: Engine,
    source_id: int,
    connector: ResumesJobs,
    fields: FieldIds,
    progress: Callable[[str], None],
) -> None:
    """Poll the jobs an interrupted run left running, and record what they applied. A delta
    whose job is gone stays recorded: planning then compares it with the ticket."""
    with session_scope(engine) as session:
        rows = [
            (outbox, conversation)
            for outbox, conversation in session.execute(
                select(Writeback, Conversation)
                .join(Conversation, col(Conversation.id) == Writeback.conversation_id)
                .where(
                    Writeback.status.in_(NEEDS_WORK),  # type: ignore[attr-defined]
                    Writeback.job_id.is_not(None),  # type: ignore[union-attr]
                )
            ).all()
            if conversation.source_id == source_id
        ]
    if not rows:
        return
    jobs: dict[str, list[str]] = {}
    by_ticket: dict[str, tuple[Writeback, Conversation]] = {}
    for outbox, conversation in rows:
        assert outbox.job_id is not None
        jobs.setdefault(outbox.job_id, []).append(conversation.external_id)
        by_ticket[conversation.external_id] = (outbox, conversation)
    progress(f"write-back: resuming {len(jobs)} jobs of an interrupted run")
    results = await connector.resume_jobs(jobs)
    with session_scope(engine) as session:
        for outbox, _ in rows:
            outbox.job_id = None  # polled to the end, or gone
            session.add(outbox)
        for result in results:
            outbox, conversation = by_ticket[result.external_id]
            if result.ok and outbox.sent is not None:
                # Landed: now part of what cjm applied. Planning (same run) compares it with
                # the desired state again, which may have changed since.
                applied = dict(outbox.applied)
                for key in ("stage", "confidence"):
                    if key in outbox.sent:
                        applied[key] = outbox.sent[key]
                pain = set(applied.get("pain") or ()) | set(outbox.sent.get("add") or ())
                applied["pain"] = sorted(pain - set(outbox.sent.get("remove") or ()))
                outbox.applied = applied
                _apply_locally(conversation, _sent_update(conversation.external_id, outbox.sent))
                outbox.sent = None
                outbox.status = "pending"
                session.add(conversation)
            elif not result.ok and outbox.sent is not None:
                outbox.sent = None  # the helpdesk refused it: plan and send again
                outbox.status = "failed"
                outbox.attempts += 1
                outbox.last_error = (result.error or "failed")[:500]
            outbox.updated_at = utcnow()
            session.add(outbox)


def _lock_stage(session: Any, outbox: Writeback, conversation: Conversation, plan: Plan) -> None:
    """An agent's stage wins from now on, and becomes a training label."""
    outbox.stage_locked = True
    session.add(outbox)
    corrected = (outbox.desired.get("agent") or {}).get("stage")
    if corrected and plan.agent_stage == stage_option(corrected):
        return  # the agent saved the stage the sidebar app already recorded as a label
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
    outbox.sent, outbox.job_id = None, None
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
