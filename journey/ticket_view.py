"""What the agent sidebar shows for one ticket, read from the theme database (pure SQL reads).

`cjm serve`'s `/api/v1/tickets/{source}/{id}` returns :func:`ticket_view` as JSON; the Zendesk
and Freshdesk apps render it. One query per table, no writes, no model: the sidebar must answer
in milliseconds and must never make a ticket look mined when it is not. The three states an app
shows come from here: ``not_mined`` (no classification yet), ``abstained`` (mined, but the miner
named no stage: too unsure, or not a language it labels) and ``classified``.

An agent's correction (the sidebar's "correct stage", or a stage set by hand in the helpdesk
that the write-back noticed) *overrides* the miner: the view returns both, so the app can show
"cjm: X → agent: Y" with who and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from journey.models import (
    Classification,
    Conversation,
    Label,
    Message,
    Person,
    Source,
    Writeback,
)
from journey.store import themes_of
from journey.writeback import CONFIDENCE_LEVELS

JOURNEY_LIMIT = 50  # the sidebar shows a customer's newest 50 conversations at most
EVIDENCE_LIMIT = 5


@dataclass(frozen=True)
class TicketRef:
    """The database ids behind a helpdesk ticket (source name + the helpdesk's ticket id)."""

    source_id: int
    source_kind: str
    conversation_id: int


def find_ticket(session: Session, source: str, ticket_id: str) -> TicketRef | None:
    """The stored conversation for `source`/`ticket_id`, or None (unknown source or ticket)."""
    row = session.execute(
        select(Source.id, Source.kind, Conversation.id)
        .join(Conversation, col(Conversation.source_id) == Source.id)
        .where(Source.name == source, Conversation.external_id == str(ticket_id))
        .where(Conversation.deleted.is_(False))  # type: ignore[attr-defined]
    ).first()
    if row is None:
        return None
    return TicketRef(source_id=row[0], source_kind=row[1], conversation_id=row[2])


def source_exists(session: Session, source: str) -> bool:
    return session.execute(select(Source.id).where(Source.name == source)).first() is not None


def confidence_band(confidence: float) -> str:
    """high / medium / low, with the same bands the *Journey stage confidence* field uses."""
    for level, floor in CONFIDENCE_LEVELS:
        if confidence >= floor:
            return level
    return "low"


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def _source_message(key: str, subject: str, customer: list[Message]) -> Message | None:
    """The first customer message holding the sentence `key` (squashed). The miner reads the
    subject and the messages as one text, so a sentence may start in the subject: then it is
    the message holding the rest."""
    found = next((m for m in customer if key and key in _squash(m.text)), None)
    if found is None and subject and key.startswith(subject):
        rest = key[len(subject) :].strip()
        found = next((m for m in customer if rest in _squash(m.text)), None)
    return found


def _evidence(
    classification: Classification, subject: str | None, messages: list[Message]
) -> list[dict[str, Any]]:
    """Each evidence sentence with the customer message it came from (the first that holds
    it), so an agent can jump to the comment; None when it is no longer found (edited text)."""
    sentences = list(
        dict.fromkeys(
            [classification.stage_evidence or "", *classification.evidence]  # stage's first
        )
    )
    customer = [m for m in messages if m.author_role in (None, "end_user")] or messages
    found = []
    for sentence in [s for s in sentences if s.strip()][:EVIDENCE_LIMIT]:
        source = _source_message(_squash(sentence), _squash(subject or ""), customer)
        found.append(
            {
                "sentence": sentence,
                "for_stage": sentence == classification.stage_evidence,
                "message": None
                if source is None
                else {
                    "id": source.external_id,
                    "created_at": _iso(source.created_at),
                    "author_role": source.author_role,
                },
            }
        )
    return found


def _emotions(classification: Classification | None) -> list[dict[str, Any]]:
    return [
        {
            "emotion": str(e.get("emotion")),
            "score": round(float(e.get("score") or 0.0), 3),
            "sentence": e.get("sentence"),
        }
        for e in (classification.emotions or [] if classification is not None else [])
        if e.get("emotion")
    ]


def _override(session: Session, conversation_id: int) -> dict[str, Any] | None:
    """The newest human label of this conversation (agents' corrections and `cjm label`)."""
    label = session.execute(
        select(Label)
        .where(Label.conversation_id == conversation_id)
        .order_by(Label.created_at.desc(), Label.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(1)
    ).scalar_one_or_none()
    if label is None:
        return None
    return {
        "stage": label.stage,
        "themes": list(label.themes or []),
        "by": label.labeller,
        "at": _iso(label.created_at),
        "origin": label.origin,
    }


def _human_stages(session: Session, conversation_ids: list[int]) -> dict[int, str]:
    """The newest human label's stage per conversation (those with one)."""
    stages: dict[int, str] = {}
    rows = session.execute(
        select(Label.conversation_id, Label.stage)
        .where(Label.conversation_id.in_(conversation_ids))  # type: ignore[union-attr]
        .where(Label.stage.is_not(None))  # type: ignore[union-attr]
        .order_by(Label.created_at, Label.id)  # type: ignore[arg-type]
    ).all()
    for conversation_id, stage in rows:
        stages[conversation_id] = stage  # later rows overwrite: the newest wins
    return stages


def _same_customer(session: Session, conversation: Conversation) -> list[tuple[int, str]]:
    """(source id, requester id) of every requester record that is this conversation's customer:
    the requester itself, plus — when the helpdesk gave an e-mail — every requester in any
    source with the same hashed e-mail. The same rule as the map's journeys
    (`journey_map.customers.customer_key`), so the sidebar and the map show one journey."""
    assert conversation.requester_id is not None
    own = (conversation.source_id, conversation.requester_id)
    email_hash = session.execute(
        select(Person.email_hash).where(
            Person.source_id == conversation.source_id,
            Person.external_id == conversation.requester_id,
        )
    ).scalar_one_or_none()
    if not email_hash:
        return [own]
    others = session.execute(
        select(Person.source_id, Person.external_id).where(Person.email_hash == email_hash)
    ).all()
    return list(dict.fromkeys([own, *((s, e) for s, e in others)]))


def _journey(
    session: Session, conversation: Conversation
) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
    """The customer's conversations, oldest first (this one included), across sources when the
    requester's hashed e-mail matches another source's requester (as in the journey map), and
    the themes of those and of this one (one query for the whole sidebar)."""
    if not conversation.requester_id:
        rows = [(conversation, None)]
    else:
        same = _same_customer(session, conversation)
        rows = list(
            session.execute(
                select(Conversation, Classification)
                .outerjoin(Classification, col(Classification.conversation_id) == Conversation.id)
                .where(
                    or_(
                        *(
                            and_(
                                col(Conversation.source_id) == source_id,
                                col(Conversation.requester_id) == requester_id,
                            )
                            for source_id, requester_id in same
                        )
                    ),
                    Conversation.deleted.is_(False),  # type: ignore[attr-defined]
                )
                .order_by(col(Conversation.created_at).desc(), col(Conversation.id).desc())
                .limit(JOURNEY_LIMIT)
            ).all()
        )
    names = _source_names(session, {other.source_id for other, _ in rows})
    ids = [other.id for other, _ in rows if other.id is not None]
    corrected = _human_stages(session, ids)
    assert conversation.id is not None  # read from the database
    themes = themes_of(session, [*ids, conversation.id])
    steps: list[dict[str, Any]] = []
    for other, classification in reversed(rows):
        assert other.id is not None  # read from the database
        emotions = _emotions(classification)
        model_stage = classification.stage if classification is not None else None
        steps.append(
            {
                "ticket_id": other.external_id,
                # another helpdesk's ticket: the app names its source and opens no link to it
                "source": names.get(other.source_id),
                "elsewhere": other.source_id != conversation.source_id,
                "subject": other.subject,
                "created_at": _iso(other.created_at),
                "channel": other.channel,
                "status": other.status,
                # a person's label wins over the miner's guess, as on the ticket itself
                "stage": corrected.get(other.id, model_stage),
                "model_stage": model_stage,
                "corrected": other.id in corrected,
                "mined": classification is not None,
                "themes": themes[other.id] if classification is not None else [],
                "emotion": emotions[0]["emotion"] if emotions else None,
                "current": other.id == conversation.id,
            }
        )
    return steps, themes


def _source_names(session: Session, source_ids: set[int]) -> dict[int, str]:
    rows = session.execute(
        select(Source.id, Source.name).where(col(Source.id).in_(sorted(source_ids)))
    ).all()
    return {source_id: name for source_id, name in rows if source_id is not None}


def ticket_view(session: Session, ref: TicketRef) -> dict[str, Any]:
    """Everything the sidebar shows for one ticket (the JSON of `GET /api/v1/tickets/…`)."""
    conversation = session.get(Conversation, ref.conversation_id)
    assert conversation is not None
    classification = session.execute(
        select(Classification).where(Classification.conversation_id == ref.conversation_id)
    ).scalar_one_or_none()
    outbox = session.execute(
        select(Writeback).where(Writeback.conversation_id == ref.conversation_id)
    ).scalar_one_or_none()
    messages = list(
        session.execute(
            select(Message)
            .where(Message.conversation_id == ref.conversation_id)
            .order_by(Message.created_at, Message.id)  # type: ignore[arg-type]
        ).scalars()
    )
    override = _override(session, ref.conversation_id)
    journey, themes = _journey(session, conversation)
    view: dict[str, Any] = {
        "ticket_id": conversation.external_id,
        "subject": conversation.subject,
        "status": "not_mined",
        "stage": None,
        "confidence": None,
        "confidence_band": None,
        "themes": [],
        "evidence": [],
        "emotions": [],
        "sentiment": None,
        "language": None,
        "model_version": None,
        "classified_at": None,
        "override": override,
        "stage_locked": bool(outbox.stage_locked) if outbox is not None else False,
        # the themes an agent set through an app (None: the miner's themes stand)
        "agent_themes": ((outbox.desired.get("agent") or {}).get("themes") if outbox else None),
        "writeback": outbox.status if outbox is not None else None,
        "journey": journey,
    }
    if classification is None:
        return view
    view.update(
        status="classified" if classification.stage else "abstained",
        stage=classification.stage,
        confidence=round(float(classification.stage_confidence), 4),
        confidence_band=confidence_band(classification.stage_confidence)
        if classification.stage
        else None,
        themes=[
            {"name": t, "score": round(float(classification.theme_scores.get(t, 0.0)), 3)}
            for t in themes[ref.conversation_id]
        ],
        evidence=_evidence(classification, conversation.subject, messages),
        emotions=_emotions(classification),
        sentiment=round(float(classification.sentiment), 3),
        language=classification.language,
        model_version=classification.model_version,
        classified_at=_iso(classification.classified_at),
    )
    return view
