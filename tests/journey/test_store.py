"""The store on SQLite and PostgreSQL: idempotent upserts, checkpoints, tombstones."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from journey.db import session_scope
from journey.models import Classification, Conversation, Message, SyncState
from journey.store import (
    ensure_source,
    ensure_stub_conversations,
    get_checkpoint,
    purge_conversations,
    save_checkpoint,
    upsert_conversations,
    upsert_messages,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _conversation(external_id: str, **overrides):  # type: ignore[no-untyped-def]
    row = {
        "external_id": external_id,
        "kind": "ticket",
        "channel": "email",
        "subject": "Where is my order",
        "status": "open",
        "requester_id": "9",
        "created_at": T0,
        "updated_at": T0,
        "tags": ["vip"],
        "custom_fields": {"100": None},
        "deleted": False,
    }
    row.update(overrides)
    return row


def test_upserts_are_idempotent_and_refresh(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        source = ensure_source(session, "acme", "zendesk", "http://x")
        upsert_conversations(session, source.id, [_conversation("1"), _conversation("2")])
    with session_scope(engine) as session:
        upsert_conversations(session, source.id, [_conversation("1", status="solved", tags=["a"])])
        rows = (
            session.execute(select(Conversation).order_by(Conversation.external_id)).scalars().all()
        )
    assert [(c.external_id, c.status, c.tags) for c in rows] == [
        ("1", "solved", ["a"]),
        ("2", "open", ["vip"]),
    ]
    assert rows[0].created_at == T0 and rows[0].created_at.tzinfo is not None


def test_messages_dedupe_and_mark_conversation_for_mining(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        source = ensure_source(session, "acme", "zendesk", "http://x")
        upsert_conversations(session, source.id, [_conversation("1")])
        session.execute(Conversation.__table__.update().values(needs_mining=False))
        ids = ensure_stub_conversations(session, source.id, {"1": T0, "7": T0})
        message = {
            "external_id": "m1",
            "conversation_id": ids["1"],
            "author_id": "9",
            "author_role": "end_user",
            "public": True,
            "solicited": False,
            "channel": "email",
            "created_at": T0,
            "text": "my parcel is late",
            "redacted": True,
        }
        upsert_messages(session, source.id, [message])
        upsert_messages(session, source.id, [{**message, "text": "my parcel is [REDACTED] late"}])
    with session_scope(engine) as session:
        messages = session.execute(select(Message)).scalars().all()
        stub = session.execute(
            select(Conversation).where(Conversation.external_id == "7")
        ).scalar_one()
        first = session.execute(
            select(Conversation).where(Conversation.external_id == "1")
        ).scalar_one()
    assert [m.text for m in messages] == ["my parcel is [REDACTED] late"]
    assert stub.status == "unknown"
    assert first.needs_mining is True


def test_checkpoint_moves_with_its_transaction(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        source = ensure_source(session, "acme", "zendesk", "http://x")
        save_checkpoint(session, source.id, "tickets", "c1", 10)
    try:
        with session_scope(engine) as session:
            save_checkpoint(session, source.id, "tickets", "c2", 10)
            raise RuntimeError("crash after the page, before commit")
    except RuntimeError:
        pass
    with session_scope(engine) as session:
        assert get_checkpoint(session, source.id, "tickets") == "c1"
        state = session.execute(select(SyncState)).scalar_one()
        assert (state.pages, state.records) == (1, 10)


def test_purge_keeps_tombstone_and_drops_text(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        source = ensure_source(session, "acme", "zendesk", "http://x")
        upsert_conversations(session, source.id, [_conversation("1")])
        ids = ensure_stub_conversations(session, source.id, {"1": T0})
        upsert_messages(
            session,
            source.id,
            [
                {
                    "external_id": "m1",
                    "conversation_id": ids["1"],
                    "author_id": "9",
                    "author_role": "end_user",
                    "public": True,
                    "solicited": False,
                    "channel": None,
                    "created_at": T0,
                    "text": "secret story",
                    "redacted": True,
                }
            ],
        )
        session.add(
            Classification(
                conversation_id=ids["1"],
                model_version="v",
                text_hash="h",
                evidence=["secret story"],
            )
        )
    with session_scope(engine) as session:
        purge_conversations(session, [ids["1"]])
    with session_scope(engine) as session:
        conversation = session.execute(select(Conversation)).scalar_one()
        assert conversation.deleted and conversation.subject is None
        assert session.execute(select(Message)).first() is None
        assert session.execute(select(Classification)).first() is None
