"""Repository functions over the theme database. Every write takes the caller's Session, so the
caller decides the transaction (a page and its checkpoint commit together).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, update
from sqlalchemy import select as core_select  # more than four columns
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from connectors.records import FieldIds, MessageRecord, Page
from journey.identity import hashed_emails
from journey.journey_map import steps as journey_steps
from journey.journey_map import upkeep as map_upkeep
from journey.lock import hold_map_upkeep
from journey.models import (
    Classification,
    Conversation,
    ConversationTheme,
    Message,
    Person,
    Source,
    SyncRun,
    SyncState,
    Writeback,
    table,
    utcnow,
)
from miner import MessageIn, Prediction, customer_text


def _insert(session: Session, table: Any) -> Any:
    """INSERT … ON CONFLICT for the dialect in use (SQLite and PostgreSQL share the syntax)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _upsert(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    refresh: Sequence[str] = (),
) -> None:
    """INSERT … ON CONFLICT as one statement executed for many rows.

    Passing the rows as parameters (executemany) lets SQLAlchemy compile the statement once and
    batch the rows itself; `.values(rows)` would compile a new statement for every page.
    """
    # One statement may not touch a row twice (PostgreSQL refuses): the last version wins.
    unique = {tuple(row[k] for k in keys): row for row in rows}
    statement = _insert(session, table)
    if refresh:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in refresh}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(statement, list(unique.values()))


def ensure_source(session: Session, name: str, kind: str, base_url: str) -> Source:
    source = session.execute(select(Source).where(Source.name == name)).scalars().first()
    if source is None:
        source = Source(name=name, kind=kind, base_url=base_url)
        session.add(source)
        session.flush()
    elif source.base_url != base_url or source.kind != kind:
        source.base_url, source.kind = base_url, kind
        session.add(source)
    return source


def save_field_ids(session: Session, source_name: str, fields: FieldIds) -> None:
    """Remember where cjm's fields live (`cjm setup-fields`, or a sync that had to list them),
    so later syncs read the ids back instead of listing every field again; `FieldIds()` forgets
    them (the helpdesk said the saved id is gone)."""
    session.execute(
        update(Source)
        .where(col(Source.name) == source_name)
        .values(stage_field_id=fields.stage, confidence_field_id=fields.confidence)
    )


def get_checkpoint(session: Session, source_id: int, stream: str) -> str | None:
    row = session.execute(
        select(SyncState.checkpoint).where(
            SyncState.source_id == source_id, SyncState.stream == stream
        )
    ).first()
    return row[0] if row else None


def save_checkpoint(
    session: Session, source_id: int, stream: str, checkpoint: str | None, records: int
) -> None:
    statement = _insert(session, table(SyncState)).values(
        source_id=source_id,
        stream=stream,
        checkpoint=checkpoint,
        pages=1,
        records=records,
        updated_at=utcnow(),
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["source_id", "stream"],
            set_={
                "checkpoint": checkpoint,
                "pages": table(SyncState).c.pages + 1,
                "records": table(SyncState).c.records + records,
                "updated_at": utcnow(),
            },
        )
    )


def known_roles(session: Session, source_id: int, ids: Iterable[str]) -> dict[str, str]:
    wanted = list({i for i in ids if i})
    roles: dict[str, str] = {}
    for chunk in _chunks(wanted, 500):
        rows = session.execute(
            select(Person.external_id, Person.role).where(
                Person.source_id == source_id,
                Person.external_id.in_(chunk),  # type: ignore[attr-defined]
            )
        )
        roles.update(dict(rows.all()))
    return roles


def upsert_people(session: Session, source_id: int, people: Sequence[tuple[str, str]]) -> None:
    if not people:
        return
    rows = [{"source_id": source_id, "external_id": e, "role": r} for e, r in dict(people).items()]
    _upsert(session, table(Person), rows, ("source_id", "external_id"), ("role",))


def set_email_hashes(session: Session, source_id: int, hashes: Mapping[str, str]) -> None:
    """Record the hashed e-mail of people the helpdesk returned with an address (a person seen
    without one keeps the hash they had)."""
    if not hashes:
        return
    rows = [
        {"source_id": source_id, "external_id": e, "role": "end_user", "email_hash": h}
        for e, h in sorted(hashes.items())
    ]
    changed = map_upkeep.changed_hashes(session, source_id, hashes)  # the same hash: no merge
    _upsert(session, table(Person), rows, ("source_id", "external_id"), ("email_hash",))
    if changed:
        hold_map_upkeep(session)  # the derived rows are shared with other sources' writers
        journey_steps.refresh_people(session, source_id, changed)  # a merge moves journeys


def upsert_conversations(session: Session, source_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or refresh conversations; new ones are marked for mining."""
    if not rows:
        return
    now = utcnow()
    values = [{**row, "source_id": source_id, "synced_at": now} for row in rows]
    known = conversation_ids(session, source_id, [row["external_id"] for row in rows])
    before = map_upkeep.snapshot(session, known.values())  # what the map reads, before
    _upsert(
        session,
        table(Conversation),
        values,
        ("source_id", "external_id"),
        (
            "kind",
            "channel",
            "subject",
            "status",
            "requester_id",
            "organization_id",
            "created_at",
            "updated_at",
            "tags",
            "custom_fields",
            "deleted",
            "synced_at",
        ),
    )
    ids = conversation_ids(session, source_id, [row["external_id"] for row in rows])
    map_upkeep.refresh(session, ids.values(), before)  # the map's stored rows, where it changed


def recheck_outbox(session: Session, source_id: int, external_ids: Iterable[str]) -> None:
    """The helpdesk sent these tickets again (an agent, a customer or cjm's own write changed
    them): their applied outbox rows go back to `pending`, so write-back compares them with the
    ticket once more. Write-back reads only rows that are not applied."""
    for chunk in _chunks(list(external_ids), 500):
        changed = select(Conversation.id).where(
            Conversation.source_id == source_id,
            Conversation.external_id.in_(chunk),  # type: ignore[attr-defined]
        )
        session.execute(
            update(Writeback)
            .where(
                Writeback.conversation_id.in_(changed),  # type: ignore[attr-defined]
                Writeback.status.in_(("applied", "skipped")),  # type: ignore[attr-defined]
            )
            .values(status="pending")
        )


def record_field_setters(
    session: Session,
    source_id: int,
    changes: Sequence[tuple[str, str, str | None, bool | None, datetime]],
) -> None:
    """Keep, per conversation and field, the latest (value, set by cjm?) the helpdesk's audit
    trail reported. `changes` are (external id, field, value, by cjm, at), oldest first; the
    later of two changes wins, also across pages and runs."""
    latest: dict[str, dict[str, dict[str, Any]]] = {}
    for external_id, field_id, value, by_cjm, at in changes:
        latest.setdefault(external_id, {})[field_id] = {
            "value": value,
            "by_cjm": by_cjm,
            "at": at.timestamp(),
        }
    if not latest:
        return
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(list(latest), 500):
        stored = session.execute(
            select(Conversation.id, Conversation.external_id, Conversation.field_setters).where(
                Conversation.source_id == source_id,
                Conversation.external_id.in_(chunk),  # type: ignore[attr-defined]
            )
        )
        for cid, external_id, setters in stored:
            merged = dict(setters or {})
            for field_id, change in latest[external_id].items():
                old = merged.get(field_id)
                if old is None or old.get("at", 0) <= change["at"]:
                    merged[field_id] = change
            if merged != (setters or {}):
                rows.append({"cid": cid, "setters": merged})
    if rows:
        conversations = table(Conversation)
        session.execute(
            conversations.update()
            .where(conversations.c.id == bindparam("cid"))
            .values(field_setters=bindparam("setters")),
            rows,
        )


def conversation_ids(
    session: Session, source_id: int, external_ids: Iterable[str]
) -> dict[str, int]:
    wanted = list(set(external_ids))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted, 500):
        rows = session.execute(
            select(Conversation.external_id, Conversation.id).where(
                Conversation.source_id == source_id,
                Conversation.external_id.in_(chunk),  # type: ignore[attr-defined]
            )
        )
        found.update(dict(rows.all()))
    return found


def ensure_stub_conversations(
    session: Session, source_id: int, first_seen: dict[str, datetime]
) -> dict[str, int]:
    """Messages can arrive before their ticket (created after the ticket pass): keep a stub that
    the next ticket pass fills in, rather than dropping the messages."""
    ids = conversation_ids(session, source_id, first_seen)
    missing = [e for e in first_seen if e not in ids]
    if missing:
        stubs = [
            {
                "external_id": external_id,
                "created_at": first_seen[external_id],
                "updated_at": first_seen[external_id],
                "status": "unknown",
                "tags": [],
                "custom_fields": {},
            }
            for external_id in missing
        ]
        now = utcnow()
        _upsert(
            session,
            table(Conversation),
            [{**s, "source_id": source_id, "synced_at": now} for s in stubs],
            ("source_id", "external_id"),
        )
        ids.update(conversation_ids(session, source_id, missing))
    return ids


def upsert_messages(session: Session, source_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or refresh messages (a redaction re-pull replaces the text); returns rows written."""
    if not rows:
        return 0
    values = [{**row, "source_id": source_id} for row in rows]
    surveyed_before = map_upkeep.snapshot(
        session, {row["conversation_id"] for row in rows if row.get("solicited")}
    )
    _upsert(
        session,
        table(Message),
        values,
        ("source_id", "external_id"),
        ("text", "public", "author_role", "author_id", "redacted"),
    )
    touched = {row["conversation_id"] for row in rows}
    session.execute(
        update(Conversation)
        .where(Conversation.id.in_(touched))  # type: ignore[union-attr]
        .values(needs_mining=True)
    )
    surveyed = {row["conversation_id"] for row in rows if row.get("solicited")}
    if surveyed:  # a first CSAT comment: a dimension of the map's daily rollup
        map_upkeep.refresh(session, surveyed, surveyed_before)
    return len(rows)


def purge_conversations(session: Session, conversation_ids_: Iterable[int]) -> int:
    """Tombstone: keep the row (marked deleted) but remove every piece of its text."""
    ids = list(conversation_ids_)
    if not ids:
        return 0
    before = map_upkeep.snapshot(session, ids)
    session.execute(delete(Message).where(Message.conversation_id.in_(ids)))  # type: ignore[attr-defined]
    session.execute(
        delete(ConversationTheme).where(ConversationTheme.conversation_id.in_(ids))  # type: ignore[attr-defined]
    )
    session.execute(delete(Classification).where(Classification.conversation_id.in_(ids)))  # type: ignore[attr-defined]
    session.execute(
        update(Conversation)
        .where(Conversation.id.in_(ids))  # type: ignore[union-attr]
        .values(subject=None, deleted=True, needs_mining=False)
    )
    map_upkeep.refresh(session, ids, before)  # the map's stored rows (unless purged before)
    return len(ids)


def conversation_texts(session: Session, conversation_ids: Sequence[int]) -> dict[int, str]:
    """The customer's own words per conversation, from the stored (redacted) messages.

    The ticket subject leads when there is customer text: on e-mail and web-form tickets it is
    the customer's own one-line summary ("Where is my order?"), and it lifted zero-shot stage
    accuracy and coverage on the simulator (+4 and +3 points). Tickets with no customer text stay
    empty, so an agent-written subject alone never gets mined.
    """
    messages: dict[int, list[MessageIn]] = {cid: [] for cid in conversation_ids}
    subjects: dict[int, str | None] = {}
    for start in range(0, len(conversation_ids), 500):
        chunk = conversation_ids[start : start + 500]
        subjects.update(
            session.execute(
                select(Conversation.id, Conversation.subject).where(col(Conversation.id).in_(chunk))
            ).all()
        )
        rows = session.execute(
            core_select(
                col(Message.conversation_id),
                col(Message.author_role),
                col(Message.public),
                col(Message.text),
                col(Message.solicited),
            )
            .where(col(Message.conversation_id).in_(chunk))
            .order_by(col(Message.conversation_id), col(Message.created_at), col(Message.id))
        )
        for cid, role, public, text, solicited in rows:
            messages[cid].append(
                MessageIn(role=role or "end_user", public=public, text=text, solicited=solicited)
            )
    texts = {cid: customer_text(msgs) for cid, msgs in messages.items()}
    return {
        cid: f"{subjects[cid]}\n{text}" if text and subjects.get(cid) else text
        for cid, text in texts.items()
    }


def count(session: Session, model: Any, *where: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ---- the pipeline's steps: what `journey/sync.py` stores and reads ---------------------------


def store_page(
    session: Session,
    source_id: int,
    page: Page,
    roles: Mapping[str, str],
    *,
    clean_message: Callable[[MessageRecord], str],
    clean_subject: Callable[[str], str],
    named: Mapping[str, str],
    cjm_fields: set[str],
    redacted: bool = True,
) -> tuple[int, int]:
    """One page's records as rows, in the caller's transaction (with the page's checkpoint).
    Returns (conversations, messages) stored."""
    upsert_people(session, source_id, sorted(roles.items()))
    set_email_hashes(
        session,
        source_id,
        hashed_emails(
            session, ((p.external_id, p.email) for p in (*page.people, *page.requesters))
        ),
    )
    conversations = messages = 0
    if page.conversations:
        upsert_conversations(
            session,
            source_id,
            [
                {
                    "external_id": c.external_id,
                    "kind": c.kind,
                    "channel": c.channel,
                    "subject": clean_subject(c.subject) if c.subject else None,
                    "status": c.status,
                    "requester_id": c.requester_id,
                    "organization_id": c.organization_id,
                    "created_at": c.created_at,
                    "updated_at": c.updated_at,
                    "tags": list(c.tags),
                    "custom_fields": with_field_names(c.custom_fields, named),
                    "deleted": c.deleted,
                }
                for c in page.conversations
            ],
        )
        conversations = len(page.conversations)
        recheck_outbox(session, source_id, [c.external_id for c in page.conversations])
        deleted = [c.external_id for c in page.conversations if c.deleted]
        if deleted:
            ids = ensure_stub_conversations(
                session, source_id, {e: datetime.now(UTC) for e in deleted}
            )
            purge_conversations(session, ids.values())
    if page.messages:
        first_seen: dict[str, datetime] = {}
        for m in page.messages:
            first_seen.setdefault(m.conversation_id, m.created_at)
        ids = ensure_stub_conversations(session, source_id, first_seen)
        tombstones = deleted_ids(session, list(ids.values()))
        rows = [
            {
                "external_id": m.external_id,
                "conversation_id": ids[m.conversation_id],
                "author_id": m.author_id,
                "author_role": m.author_role or roles.get(m.author_id or "", "end_user"),
                "public": m.public,
                "solicited": m.solicited,
                "channel": m.channel,
                "created_at": m.created_at,
                "text": clean_message(m),
                "redacted": redacted,
            }
            for m in page.messages
            if ids[m.conversation_id] not in tombstones
        ]
        messages = upsert_messages(session, source_id, rows)
    changes = [
        (c.conversation_id, c.field, c.value, c.by_self, c.at)
        for c in page.field_changes
        if c.field in cjm_fields
    ]
    if changes:
        record_field_setters(session, source_id, changes)
    return conversations, messages


def with_field_names(custom_fields: Mapping[str, Any], named: Mapping[str, str]) -> dict[str, Any]:
    """The helpdesk's fields by key, plus the same values under their titles' slugs, so
    `cjm map --segment plan=pro` works whatever id the helpdesk gave the field."""
    stored = dict(custom_fields)
    for key, value in custom_fields.items():
        slug = named.get(key)
        if slug and slug not in custom_fields:
            stored[slug] = value
    return stored


def deleted_ids(session: Session, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    rows = session.execute(
        select(Conversation.id).where(col(Conversation.id).in_(ids), Conversation.deleted)
    )
    return {row[0] for row in rows}


def stored_versions(
    session: Session, source_id: int, external_ids: Sequence[str]
) -> dict[str, tuple[datetime, bool, str]]:
    """(updated_at, deleted, status) of the stored conversations among `external_ids`."""
    rows = session.execute(
        select(
            Conversation.external_id,
            Conversation.updated_at,
            Conversation.deleted,
            Conversation.status,
        ).where(
            Conversation.source_id == source_id,
            Conversation.external_id.in_(external_ids),  # type: ignore[attr-defined]
        )
    )
    return {
        external_id: (updated, deleted, status) for external_id, updated, deleted, status in rows
    }


def unresolved_stubs(session: Session, source_id: int, limit: int) -> list[tuple[str, datetime]]:
    """Conversations something referenced but no list returned: (external id, first seen)."""
    rows = session.execute(
        select(Conversation.external_id, Conversation.created_at)
        .where(
            Conversation.source_id == source_id,
            Conversation.status == "unknown",
            Conversation.deleted.is_(False),  # type: ignore[attr-defined]
        )
        .limit(limit)
    )
    return [(external_id, created) for external_id, created in rows]


def dirty_conversations(
    session: Session,
    source_id: int,
    after_id: int,
    limit: int,
    model_version: str,
    tickets: Sequence[str] | None = None,
) -> list[int]:
    """Ids of conversations to mine, in id order after `after_id`: marked for mining (new or
    changed customer text), or classified by another model version (history follows the model:
    a new model, taxonomy, threshold or embeddings re-labels what is stored). `tickets`: only
    these external ids (a real-time batch mines its own tickets, not the source's history)."""
    query = (
        select(Conversation.id)
        .outerjoin(Classification, col(Classification.conversation_id) == Conversation.id)
        .where(
            Conversation.source_id == source_id,
            Conversation.id > after_id,  # type: ignore[operator]
            _dirty(model_version),
        )
    )
    if tickets is not None:
        query = query.where(col(Conversation.external_id).in_(list(tickets)))
    return list(session.execute(query.order_by(col(Conversation.id)).limit(limit)).scalars())


def _dirty(model_version: str) -> Any:
    """Live, and new/changed text or another model's labels."""
    return and_(
        col(Conversation.deleted).is_(False),
        or_(
            col(Conversation.needs_mining),
            col(Classification.model_version) != model_version,
        ),
    )


def last_run_started(session: Session, source_id: int) -> datetime | None:
    """When the source's latest sync run began (None: never synced)."""
    return session.execute(
        select(func.max(SyncRun.started_at)).where(SyncRun.source_id == source_id)
    ).scalar_one()


def count_dirty_conversations(
    session: Session, source_id: int, model_version: str, tickets: Sequence[str] | None = None
) -> int:
    """How many conversations `dirty_conversations` will walk (the mining bar's total)."""
    query = (
        select(func.count())
        .select_from(Conversation)
        .outerjoin(Classification, col(Classification.conversation_id) == Conversation.id)
        .where(Conversation.source_id == source_id, _dirty(model_version))
    )
    if tickets is not None:
        query = query.where(col(Conversation.external_id).in_(list(tickets)))
    return int(session.execute(query).scalar_one())


def outdated_classifications(session: Session, source_id: int, model_version: str) -> int:
    """How many of the source's stored classifications another model version made."""
    return int(
        session.execute(
            select(func.count())
            .select_from(Classification)
            .join(Conversation, col(Conversation.id) == Classification.conversation_id)
            .where(
                Conversation.source_id == source_id,
                Classification.model_version != model_version,
            )
        ).scalar_one()
    )


def classification_versions(
    session: Session, conversation_ids_: Sequence[int]
) -> dict[int, tuple[str, str, str | None]]:
    """(text hash, model version, stage) each conversation was last classified with."""
    rows = session.execute(
        select(
            Classification.conversation_id,
            Classification.text_hash,
            Classification.model_version,
            Classification.stage,
        ).where(Classification.conversation_id.in_(conversation_ids_))  # type: ignore[attr-defined]
    )
    return {cid: (text_hash, version, stage) for cid, text_hash, version, stage in rows}


def save_classifications(
    session: Session, model_version: str, mined: Sequence[tuple[int, str, Prediction]]
) -> None:
    """Store (conversation id, text hash, prediction) as each conversation's classification,
    with one `conversation_theme` row per theme: the one home of a conversation's themes, inserted
    in the miner's order (strongest first) so `themes_of` can read that order back by row id."""
    if not mined:
        return
    ids = [cid for cid, _, _ in mined]
    before = map_upkeep.snapshot(session, ids)  # what the map reads, before re-mining
    previous = {
        c.conversation_id: c
        for c in session.execute(
            select(Classification).where(Classification.conversation_id.in_(ids))  # type: ignore[attr-defined]
        ).scalars()
    }
    for cid, text_hash, prediction in mined:
        row = previous.get(cid) or Classification(
            conversation_id=cid, model_version=model_version, text_hash=""
        )
        row.model_version = model_version
        row.stage = prediction.stage
        row.stage_confidence = float(prediction.stage_confidence)
        row.theme_scores = {k: float(v) for k, v in prediction.theme_scores.items()}
        row.evidence = list(prediction.evidence)
        row.stage_evidence = _best_sentence(prediction, "stage", prediction.stage)
        row.sentiment = float(prediction.sentiment)
        row.emotions = [
            {"emotion": e.emotion, "score": round(e.score, 4), "sentence": e.sentence}
            for e in prediction.emotions
        ]
        row.language = prediction.language
        row.text_hash = text_hash
        row.classified_at = utcnow()
        session.add(row)
    session.execute(
        delete(ConversationTheme).where(ConversationTheme.conversation_id.in_(ids))  # type: ignore[attr-defined]
    )
    themes = [
        {
            "conversation_id": cid,
            "theme": theme,
            "score": float(p.theme_scores.get(theme, 1.0)),
            "evidence": _best_sentence(p, "theme", theme),
        }
        for cid, _, p in mined
        for theme in p.themes
    ]
    if themes:
        session.execute(table(ConversationTheme).insert(), themes)
    session.flush()
    map_upkeep.refresh(session, ids, before)  # the map's stored rows, where stages etc. moved


def themes_of(session: Session, conversation_ids_: Iterable[int]) -> dict[int, list[str]]:
    """Each conversation's themes, in the miner's order (strongest first), from the
    `conversation_theme` rows: the one source of truth (the ticket view, the outbox's pain tags
    and agents' labels all read them here). One query per 500 ids; a conversation without theme
    rows maps to `[]`."""
    ids = list(dict.fromkeys(conversation_ids_))
    themes: dict[int, list[str]] = {cid: [] for cid in ids}
    for chunk in _chunks(ids, 500):
        rows = session.execute(
            select(ConversationTheme.conversation_id, ConversationTheme.theme)
            .where(col(ConversationTheme.conversation_id).in_(chunk))
            .order_by(col(ConversationTheme.conversation_id), col(ConversationTheme.id))
        )
        for cid, theme in rows:
            themes[cid].append(theme)
    return themes


def _best_sentence(prediction: Prediction, head: str, label: str | None) -> str | None:
    """The customer's sentence that most supports `label` (None when there is none)."""
    weighted = [
        (e.weight, e.sentence)
        for e in prediction.evidence_detail
        if e.head == head and e.label == label
    ]
    return max(weighted)[1] if weighted else None


def mark_mined(session: Session, conversation_ids_: Sequence[int]) -> None:
    session.execute(
        update(Conversation)
        .where(Conversation.id.in_(conversation_ids_))  # type: ignore[union-attr]
        .values(needs_mining=False)
    )
