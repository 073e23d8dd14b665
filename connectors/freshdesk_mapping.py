"""Pure functions: Freshdesk / Freshchat JSON → cjm records, and cjm deltas → Freshdesk bodies.

Kept free of I/O so they can be tested on hand-written payloads of the documented shapes
(../shared/notes/helpdesk-apis.md §2). Freshdesk speaks numeric codes (status, source) where
Zendesk speaks words; both end up as the same neutral names here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.errors import mapper
from connectors.records import ConversationRecord, MessageRecord, PersonRecord, Role, TicketUpdate

# Ticket `status` codes. Custom statuses (6+) behave like open tickets.
STATUSES: Mapping[int, str] = {2: "open", 3: "pending", 4: "solved", 5: "closed"}

# Ticket `source` codes → cjm's neutral touchpoint names (15: current web chat, per chatwoot).
TICKET_SOURCES: Mapping[int, str] = {
    1: "email",
    2: "web",
    3: "phone",
    4: "web",  # forum
    5: "social",  # twitter
    6: "social",  # facebook
    7: "chat",
    8: "mobile",  # mobihelp
    9: "web",  # feedback widget
    10: "email",  # outbound email
    11: "api",  # e-commerce
    12: "messaging",  # bot
    13: "messaging",  # whatsapp
    15: "chat",
}
OUTBOUND_EMAIL = 10

# Conversation `source` codes: 0 reply, 2 note, 5 tweet, 6 survey feedback, 7 facebook,
# 8 forwarded email, 9 phone, 10 mobihelp, 11 e-commerce.
SURVEY_FEEDBACK = 6
CONVERSATION_CHANNELS: Mapping[int, str] = {5: "social", 7: "social", 9: "phone", 10: "mobile"}

# Freshchat `actor_type` → role; `message_type` "private" is an internal note.
CHAT_ACTORS: Mapping[str, Role] = {
    "user": "end_user",
    "agent": "agent",
    "bot": "bot",
    "system": "system",
}
CHAT_PREFIX = "fc-"  # chat ids share the source's id space with ticket ids: keep them apart


def parse_time(value: Any) -> datetime:
    """Freshworks sends ISO-8601 with `Z` (sometimes milliseconds). Always aware UTC."""
    if not value:
        return datetime.fromtimestamp(0, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    """The `updated_since` / `created_since` form Freshdesk expects: UTC, seconds, `Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@mapper("Freshdesk", "ticket")
def ticket_to_record(raw: Mapping[str, Any]) -> ConversationRecord:
    """A list/show ticket. Spam and deleted tickets become tombstones (their text is purged)."""
    channel = TICKET_SOURCES.get(_int(raw.get("source")), "other")
    spam, deleted = bool(raw.get("spam")), bool(raw.get("deleted"))
    status = "deleted" if deleted else "spam" if spam else _status(raw.get("status"))
    return ConversationRecord(
        external_id=str(raw["id"]),
        kind="chat" if channel == "chat" else "ticket",
        channel=channel,
        subject=raw.get("subject"),
        status=status,
        requester_id=_str_or_none(raw.get("requester_id")),
        organization_id=_str_or_none(raw.get("company_id")),
        created_at=parse_time(raw.get("created_at")),
        updated_at=parse_time(raw.get("updated_at")),
        tags=tuple(str(t) for t in raw.get("tags") or ()),
        custom_fields=dict(raw.get("custom_fields") or {}),
        deleted=deleted or spam,
        from_messaging=channel == "messaging",
        content_updated_at=content_updated_at(raw),
    )


def content_updated_at(raw: Mapping[str, Any]) -> datetime | None:
    """The latest reply on either side, from `stats` (list with `include=stats`).

    A tag or custom-field write moves `updated_at` but none of these, which is how the pipeline
    tells cjm's own write-back from a new message. Without `stats` the answer is unknown (None).
    """
    stats = raw.get("stats")
    if not isinstance(stats, Mapping):
        return None
    moments = [
        parse_time(value)
        for value in (
            raw.get("created_at"),
            stats.get("requester_responded_at"),
            stats.get("agent_responded_at"),
        )
        if value
    ]
    return max(moments) if moments else None


@mapper("Freshdesk", "ticket description")
def description_message(raw: Mapping[str, Any]) -> MessageRecord | None:
    """The ticket's first message lives in `description`, not in its conversations."""
    text = raw.get("description_text")
    html = False
    if text is None:
        text, html = raw.get("description"), True
    if text is None:
        return None
    outbound = _int(raw.get("source")) == OUTBOUND_EMAIL
    ticket_id = str(raw["id"])
    return MessageRecord(
        external_id=f"{ticket_id}-description",
        conversation_id=ticket_id,
        author_id=_str_or_none(raw.get("requester_id")),
        public=True,
        body=str(text),
        created_at=parse_time(raw.get("created_at")),
        is_html=html,
        author_role="agent" if outbound else "end_user",
        channel=TICKET_SOURCES.get(_int(raw.get("source"))),
    )


@mapper("Freshdesk", "conversation")
def conversation_to_message(
    raw: Mapping[str, Any], ticket_id: str, agent_ids: Collection[str]
) -> MessageRecord:
    """A reply or note. Authored by an agent when the author is an agent or it did not come in
    from outside (`incoming` false: replies and notes typed in the helpdesk)."""
    author = _str_or_none(raw.get("user_id"))
    source = _int(raw.get("source"))
    incoming = bool(raw.get("incoming"))
    is_agent = (author is not None and author in agent_ids) or not incoming
    if source == SURVEY_FEEDBACK:
        is_agent = False
    text = raw.get("body_text")
    html = text is None
    return MessageRecord(
        external_id=str(raw["id"]),
        conversation_id=ticket_id,
        author_id=author,
        public=not bool(raw.get("private")),
        body=str((raw.get("body") if html else text) or ""),
        created_at=parse_time(raw.get("created_at")),
        is_html=html,
        author_role="agent" if is_agent else "end_user",
        solicited=source == SURVEY_FEEDBACK,
        channel=CONVERSATION_CHANNELS.get(source),
    )


@mapper("Freshdesk", "requester")
def requester_to_person(raw: Mapping[str, Any]) -> PersonRecord:
    """A ticket's `requester` (include=requester): its id and e-mail, for the e-mail hash only."""
    return PersonRecord(
        external_id=str(raw["id"]), role="end_user", email=_str_or_none(raw.get("email"))
    )


@mapper("Freshdesk", "agent")
def agent_to_person(raw: Mapping[str, Any]) -> PersonRecord:
    return PersonRecord(external_id=str(raw["id"]), role="agent")


@mapper("Freshdesk", "satisfaction rating")
def rating_to_message(raw: Mapping[str, Any]) -> MessageRecord | None:
    """A CSAT survey answer with a comment: solicited feedback, kept apart from the rest."""
    feedback = raw.get("feedback")
    if not feedback or raw.get("ticket_id") is None:
        return None
    return MessageRecord(
        external_id=f"csat-{raw['id']}",
        conversation_id=str(raw["ticket_id"]),
        author_id=_str_or_none(raw.get("user_id")),
        public=True,
        body=str(feedback),
        created_at=parse_time(raw.get("created_at")),
        author_role="end_user",
        solicited=True,
    )


# ---- write-back ---------------------------------------------------------------------------


def merge_tags(current: Sequence[str], update: TicketUpdate) -> list[str] | None:
    """The full tag list to PUT (Freshdesk replaces tags), or None when nothing changes.

    Only the delta's own tags move; every other tag (the agents') stays, in its order.
    """
    kept = [t for t in current if t not in update.remove_tags]
    added = sorted(t for t in update.add_tags if t not in kept)
    merged = kept + added
    return None if merged == list(current) else merged


def update_body(update: TicketUpdate, current_tags: Sequence[str]) -> dict[str, Any]:
    """`PUT /api/v2/tickets/{id}` body: the merged tag list and `cf_` fields by name."""
    body: dict[str, Any] = {}
    tags = merge_tags(current_tags, update)
    if tags is not None:
        body["tags"] = tags
    if update.set_fields:
        body["custom_fields"] = dict(update.set_fields)
    return body


def dropdown_field_body(label: str, options: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A new `custom_dropdown` admin ticket field whose choice values are cjm's option values
    (`stage__<name>`), so one write-back planner serves Zendesk and Freshdesk alike. Freshdesk
    choices carry a single `value` (no separate label), so the value doubles as the label."""
    return {
        "label": label,
        "label_for_customers": label,
        "type": "custom_dropdown",
        "customers_can_edit": False,
        "displayed_to_customers": False,
        "required_for_closure": False,
        "required_for_agents": False,
        "choices": [{"value": value, "position": i + 1} for i, (value, _) in enumerate(options)],
    }


def completed_choices(
    existing: Sequence[Mapping[str, Any]], options: Sequence[tuple[str, str]]
) -> list[dict[str, Any]] | None:
    """The whole choice list (existing ones kept with their ids) plus the missing options, or
    None when nothing is missing. Never a partial list: choices left out may be deleted."""
    have = {str(c.get("value")) for c in existing}
    missing = [value for value, _ in options if value not in have]
    if not missing:
        return None
    kept = [{k: c[k] for k in ("id", "value", "position") if k in c} for c in existing]
    start = max((_int(c.get("position")) for c in existing), default=0)
    return kept + [{"value": v, "position": start + i + 1} for i, v in enumerate(missing)]


def field_choices(raw: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(c.get("value")) for c in raw.get("choices") or () if c.get("value"))


# ---- Freshchat ----------------------------------------------------------------------------


@mapper("Freshdesk", "Freshchat conversation")
def chat_to_record(raw: Mapping[str, Any], last_message_at: datetime | None) -> ConversationRecord:
    """A Freshchat conversation as a chat transcript (read-only: nothing is written back)."""
    created = parse_time(raw.get("created_time"))
    updated = max(created, last_message_at or created)
    users = raw.get("users") or ()
    requester = next((u.get("id") for u in users if isinstance(u, Mapping)), None)
    return ConversationRecord(
        external_id=f"{CHAT_PREFIX}{raw['conversation_id']}",
        kind="chat",
        channel="chat",
        subject=None,
        status=str(raw.get("status") or "unknown"),
        requester_id=_str_or_none(requester),
        created_at=created,
        updated_at=updated,
        content_updated_at=updated,
    )


@mapper("Freshdesk", "Freshchat message")
def chat_messages(
    raw_messages: Iterable[Mapping[str, Any]], conversation_id: str
) -> list[MessageRecord]:
    """Messages (any order in) → records oldest first, text parts joined."""
    out = []
    for raw in raw_messages:
        parts = [
            str((p.get("text") or {}).get("content") or "")
            for p in raw.get("message_parts") or ()
            if isinstance(p, Mapping) and p.get("text")
        ]
        text = "\n".join(p for p in parts if p)
        if not text:
            continue
        actor = str(raw.get("actor_type") or "user")
        out.append(
            MessageRecord(
                external_id=f"{CHAT_PREFIX}{raw['id']}",
                conversation_id=f"{CHAT_PREFIX}{conversation_id}",
                author_id=_str_or_none(raw.get("actor_id")),
                public=raw.get("message_type") != "private",
                body=text,
                created_at=parse_time(raw.get("created_time")),
                author_role=CHAT_ACTORS.get(actor, "system"),
                channel="chat",
            )
        )
    out.sort(key=lambda m: (m.created_at, m.external_id))
    return out


def _status(value: Any) -> str:
    code = _int(value)
    return STATUSES.get(code, "open" if code > 5 else "unknown")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
