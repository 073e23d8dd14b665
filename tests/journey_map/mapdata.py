"""Builders for hand-built theme databases with known answers (used by conftest and tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from journey.models import Classification, Conversation, ConversationTheme, Message, Source


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@dataclass
class Conv:
    """One conversation to insert, with its classification and messages."""

    ext: str
    created: datetime
    stage: str | None = None
    sentiment: float = 0.0
    themes: dict[str, float] = field(default_factory=dict)
    channel: str = "email"
    classified: bool = True
    deleted: bool = False
    source: str = "acme"
    custom_fields: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    csat: str | None = None
    evidence: list[str] = field(default_factory=list)
    status: str = "open"
    language: str | None = "en"
    requester: str | None = None  # the helpdesk requester id (journeys, flows)
    organization: str | None = None  # the requester's organisation (journeys by organisation)


def load(engine: Engine, conversations: Sequence[Conv]) -> None:
    """Insert conversations with Core executemany (fast enough for thousands of rows)."""
    with engine.begin() as conn:
        sources: dict[str, int] = {}
        for name in sorted({c.source for c in conversations}):
            sources[name] = conn.execute(
                insert(Source.__table__).values(
                    name=name,
                    kind="zendesk",
                    base_url=f"https://{name}.example",
                    created_at=utc(2024, 1, 1),
                )
            ).inserted_primary_key[0]
        conv_rows = [
            {
                "source_id": sources[c.source],
                "external_id": c.ext,
                "kind": "ticket",
                "channel": c.channel,
                "status": c.status,
                "created_at": c.created,
                "updated_at": c.created,
                "tags": [],
                "custom_fields": c.custom_fields,
                "requester_id": c.requester,
                "organization_id": c.organization,
                "deleted": c.deleted,
                "needs_mining": False,
                "synced_at": c.created,
            }
            for c in conversations
        ]
        conn.execute(insert(Conversation.__table__), conv_rows)
        ids = dict(conn.execute(text("SELECT external_id, id FROM conversation")).all())
        classifications, themes, messages = [], [], []
        for c in conversations:
            cid = ids[c.ext]
            if c.classified:
                classifications.append(
                    {
                        "conversation_id": cid,
                        "model_version": "test",
                        "stage": c.stage,
                        "stage_confidence": 0.9 if c.stage else 0.2,
                        "theme_scores": c.themes,
                        "evidence": c.evidence,
                        "sentiment": c.sentiment,
                        "language": c.language,
                        "text_hash": hashlib.sha1(c.ext.encode()).hexdigest(),
                        "classified_at": c.created,
                    }
                )
                themes += [
                    {"conversation_id": cid, "theme": t, "score": s} for t, s in c.themes.items()
                ]
            body = c.text or f"customer text of {c.ext}"
            messages.append(_message(sources[c.source], cid, f"{c.ext}-m1", "end_user", body, c))
            messages.append(
                _message(sources[c.source], cid, f"{c.ext}-m2", "agent", "agent reply", c)
            )
            if c.csat:
                messages.append(
                    _message(sources[c.source], cid, f"{c.ext}-csat", "end_user", c.csat, c, True)
                )
        if classifications:
            conn.execute(insert(Classification.__table__), classifications)
        if themes:
            conn.execute(insert(ConversationTheme.__table__), themes)
        conn.execute(insert(Message.__table__), messages)


def _message(
    source_id: int, cid: int, ext: str, role: str, body: str, c: Conv, solicited: bool = False
) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "external_id": ext,
        "conversation_id": cid,
        "author_id": role,
        "author_role": role,
        "public": True,
        "solicited": solicited,
        "channel": c.channel,
        "created_at": c.created,
        "text": body,
        "redacted": True,
    }


# ---- the hand-built map: period 2024-05-06 .. 2024-06-03 (28 days), previous 2024-04-08 .. ----

SINCE = utc(2024, 5, 6)
UNTIL = utc(2024, 6, 3)
PRO = {"plan": "pro"}
BASIC = {"plan": "basic"}

KNOWN = [
    # purchase: 4 conversations in the week of 2024-05-06
    Conv(
        "c1",
        utc(2024, 5, 6, 9),
        "purchase",
        -0.6,
        {"payment_failures": 0.9},
        "email",
        custom_fields=PRO,
        text="My card was declined twice at checkout, email me at [EMAIL].",
        csat="Terrible, nobody helped.",
        evidence=["card declined", "checkout"],
    ),
    Conv(
        "c2",
        utc(2024, 5, 7, 9),
        "purchase",
        -0.4,
        {"payment_failures": 0.7, "checkout_friction": 0.5},
        "chat",
        custom_fields=PRO,
        evidence=["card declined"],
        text="The coupon field | does not accept my code.",
    ),
    Conv(
        "c3",
        utc(2024, 5, 8, 9),
        "purchase",
        0.2,
        {"checkout_friction": 0.8},
        "email",
        custom_fields=BASIC,
    ),
    Conv("c4", utc(2024, 5, 12, 23, 30), "purchase", 0.0, {}, "email", custom_fields=BASIC),
    # delivery: 3 conversations in the week of 2024-05-13
    Conv(
        "d1",
        utc(2024, 5, 13, 0, 0),
        "delivery",
        -0.8,
        {"delays_and_waiting": 0.95, "delivery_problems": 0.4},
        "email",
        custom_fields=PRO,
        text="Still waiting for my parcel after two weeks.",
    ),
    Conv(
        "d2",
        utc(2024, 5, 14, 9),
        "delivery",
        -0.2,
        {"delays_and_waiting": 0.6},
        "phone",
        custom_fields=BASIC,
    ),
    Conv("d3", utc(2024, 5, 15, 9), "delivery", 0.4, {}, "web", custom_fields=BASIC),
    # awareness: 1, in another source; then two unstaged (abstained, not yet mined)
    Conv(
        "a1",
        utc(2024, 5, 20, 9),
        "awareness",
        0.5,
        {},
        "web",
        source="beta",
        custom_fields={"plan": 7},
    ),
    Conv("u1", utc(2024, 5, 21, 9), None, -0.1, {"delays_and_waiting": 0.3}, "chat"),
    Conv("u2", utc(2024, 5, 22, 9), None, 0.0, {}, "web", classified=False),
    # never counted: deleted, and after the period
    Conv(
        "x1",
        utc(2024, 5, 9, 9),
        "purchase",
        -0.9,
        {"payment_failures": 0.99},
        "email",
        deleted=True,
        text="DELETED TEXT",
    ),
    Conv("o1", utc(2024, 6, 3, 0, 0), "purchase", -0.9, {"payment_failures": 0.99}, "email"),
    # the previous period: 3 conversations
    Conv("p1", utc(2024, 4, 10, 9), "purchase", -0.5, {"payment_failures": 0.8}, "email"),
    Conv("p2", utc(2024, 4, 20, 9), "delivery", 0.1, {}, "email"),
    Conv("p3", utc(2024, 4, 25, 9), "delivery", -0.3, {"delays_and_waiting": 0.7}, "email"),
]
