"""Pure functions: Zendesk JSON → cjm records, and cjm deltas → Zendesk request bodies.

Kept free of I/O so they can be tested on hand-written payloads of the documented shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.errors import mapper
from connectors.records import (
    ConversationRecord,
    FieldChange,
    MessageRecord,
    PersonRecord,
    Role,
    TicketUpdate,
)

# Zendesk `via.channel` → cjm's neutral touchpoint names.
CHANNELS: Mapping[str, str] = {
    "email": "email",
    "web": "web",
    "web_form": "web",
    "web_widget": "web",
    "mobile": "mobile",
    "mobile_sdk": "mobile",
    "api": "api",
    "chat": "chat",
    "chat_transcript": "chat",
    "native_messaging": "messaging",
    "messaging": "messaging",
    "whatsapp": "messaging",
    "sms": "messaging",
    "voice": "phone",
    "phone": "phone",
    "twitter": "social",
    "facebook": "social",
    "instagram_dm": "social",
}

USER_ROLES: Mapping[str, Role] = {"end-user": "end_user", "agent": "agent", "admin": "agent"}


def parse_time(value: Any) -> datetime:
    """Zendesk sends ISO-8601 with a `Z`; exports also send Unix seconds. Always aware UTC."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not value:
        return datetime.fromtimestamp(0, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@mapper("Zendesk", "ticket")
def ticket_to_record(raw: Mapping[str, Any]) -> ConversationRecord:
    via = raw.get("via") or {}
    channel = CHANNELS.get(str(via.get("channel") or ""), str(via.get("channel") or "other"))
    from_messaging = bool(raw.get("from_messaging_channel"))
    status = str(raw.get("status") or "unknown")
    return ConversationRecord(
        external_id=str(raw["id"]),
        kind="chat" if from_messaging or channel == "chat" else "ticket",
        channel=channel,
        subject=raw.get("subject") or raw.get("raw_subject"),
        status=status,
        requester_id=_str_or_none(raw.get("requester_id")),
        organization_id=_str_or_none(raw.get("organization_id")),
        created_at=parse_time(raw.get("created_at")),
        updated_at=parse_time(raw.get("updated_at")),
        tags=tuple(str(t) for t in raw.get("tags") or ()),
        custom_fields={
            str(f["id"]): f.get("value") for f in raw.get("custom_fields") or () if "id" in f
        },
        deleted=status == "deleted",
        from_messaging=from_messaging,
    )


@mapper("Zendesk", "ticket event")
def events_to_messages(events: Iterable[Mapping[str, Any]]) -> Iterator[MessageRecord]:
    """Comment child events (from `include=comment_events`) become messages of their ticket."""
    for event in events:
        ticket_id = str(event["ticket_id"])
        for child in event.get("child_events") or ():
            kind = child.get("event_type") or child.get("type")
            if kind != "Comment" or "body" not in child:
                continue
            via = child.get("via") or event.get("via") or {}
            yield MessageRecord(
                external_id=str(child["id"]),
                conversation_id=ticket_id,
                author_id=_str_or_none(child.get("author_id")),
                public=bool(child.get("public", False)),
                body=str(child.get("plain_body") or child.get("body") or ""),
                created_at=parse_time(child.get("created_at") or event.get("created_at")),
                channel=CHANNELS.get(str(via.get("channel") or ""), None),
            )


@mapper("Zendesk", "ticket event")
def events_to_field_changes(
    events: Iterable[Mapping[str, Any]], self_id: str | None
) -> Iterator[FieldChange]:
    """Custom-field values set by an audit (`Create`/`Change` children whose `field_name` is a
    field id), with whether the audit's updater is the integration user (None: unknown)."""
    for event in events:
        updater = _str_or_none(event.get("updater_id"))
        by_self = None if self_id is None or updater is None else updater == self_id
        for child in event.get("child_events") or ():
            kind = child.get("event_type") or child.get("type")
            name = str(child.get("field_name") or "")
            if kind not in ("Create", "Change") or not name.isdigit():
                continue
            value = child.get("value")
            yield FieldChange(
                conversation_id=str(event["ticket_id"]),
                field=name,
                value=str(value) if value not in (None, "") else None,
                by_self=by_self,
                at=parse_time(child.get("created_at") or event.get("created_at")),
            )


def has_field_changes(events: Iterable[Mapping[str, Any]]) -> bool:
    return any(
        (child.get("event_type") or child.get("type")) in ("Create", "Change")
        and str(child.get("field_name") or "").isdigit()
        for event in events
        for child in event.get("child_events") or ()
    )


MESSAGING_VIA = frozenset(
    {"native_messaging", "messaging", "whatsapp", "sms", "instagram_dm", "line", "wechat"}
)
LOG_AUTHOR_ROLES: Mapping[str, Role] = {"user": "end_user", "agent": "agent", "bot": "bot"}


def messaging_ticket_ids(events: Iterable[Mapping[str, Any]], self_id: str | None) -> set[str]:
    """Tickets with a new comment arriving over a messaging channel from someone other than
    the integration user: the ones whose conversation log can hold text no comment carries."""
    found: set[str] = set()
    for event in events:
        if self_id is not None and str(event.get("updater_id")) == self_id:
            continue
        for child in event.get("child_events") or ():
            if (child.get("event_type") or child.get("type")) != "Comment":
                continue
            via = child.get("via") or event.get("via") or {}
            if str(via.get("channel") or "") in MESSAGING_VIA:
                found.add(str(event["ticket_id"]))
    return found


def redacted_ticket_ids(events: Iterable[Mapping[str, Any]]) -> set[str]:
    """Tickets where an agent redacted a comment: their stored text must be read again."""
    return {
        str(event["ticket_id"])
        for event in events
        for child in event.get("child_events") or ()
        if (child.get("event_type") or child.get("type")) == "CommentRedactionEvent"
    }


@mapper("Zendesk", "comment")
def comment_to_message(ticket_id: str, raw: Mapping[str, Any]) -> MessageRecord:
    """A comment from `tickets/{id}/comments` (same id space as comment events)."""
    via = raw.get("via") or {}
    return MessageRecord(
        external_id=str(raw["id"]),
        conversation_id=ticket_id,
        author_id=_str_or_none(raw.get("author_id")),
        public=bool(raw.get("public", False)),
        body=str(raw.get("plain_body") or raw.get("body") or ""),
        created_at=parse_time(raw.get("created_at")),
        channel=CHANNELS.get(str(via.get("channel") or ""), None),
    )


@mapper("Zendesk", "conversation log")
def log_events_to_messages(
    ticket_id: str, events: Iterable[Mapping[str, Any]]
) -> Iterator[MessageRecord]:
    """Conversation-log events → messages. An event that mirrors a ticket comment
    (`reference: zen:ticket_event:<id>`) keeps the comment's id, so the two never duplicate;
    messaging-only events (the bot phase) get a `log:` id of their own."""
    for event in events:
        content = event.get("content") or {}
        body = content.get("body") or content.get("text")
        if not body:
            continue
        reference = str(event.get("reference") or "")
        mirrored = reference.rsplit(":", 1)[-1] if reference.startswith("zen:ticket_event:") else ""
        author = event.get("author") or {}
        metadata = event.get("metadata") or {}
        yield MessageRecord(
            external_id=mirrored if mirrored.isdigit() else f"log:{event['id']}",
            conversation_id=ticket_id,
            author_id=_str_or_none(author.get("zen:support:user_id")),
            author_role=LOG_AUTHOR_ROLES.get(str(author.get("type")), "system"),
            public=bool(metadata.get("public", event.get("public", True))),
            body=str(body),
            created_at=parse_time(event.get("created_at")),
            channel="messaging",
        )


@mapper("Zendesk", "satisfaction rating")
def rating_to_message(raw: Mapping[str, Any]) -> MessageRecord | None:
    """A CSAT survey comment: the requester's words, but *solicited* (kept out of the
    unsolicited stream the miner reads). Ratings without a comment carry no text."""
    comment = raw.get("comment")
    if not comment or raw.get("ticket_id") is None:
        return None
    return MessageRecord(
        external_id=f"csat:{raw['id']}",
        conversation_id=str(raw["ticket_id"]),
        author_id=_str_or_none(raw.get("requester_id")),
        author_role="end_user",
        public=True,
        body=str(comment),
        created_at=parse_time(raw.get("updated_at") or raw.get("created_at")),
        solicited=True,
        channel="survey",
    )


CHAT_ROLES: Mapping[str, Role] = {"visitor": "end_user", "agent": "agent"}


@mapper("Zendesk", "chat")
def chat_to_records(
    raw: Mapping[str, Any],
) -> tuple[ConversationRecord | None, list[MessageRecord]]:
    """A legacy Chat API chat. Its transcript belongs to the Support ticket it created (the
    ticket's comments never carry it); a chat without a ticket becomes a conversation of its
    own, never written back (status `closed`)."""
    chat_id = str(raw["id"])
    ticket_id = raw.get("zendesk_ticket_id")
    conversation_id = str(ticket_id) if ticket_id else f"chat:{chat_id}"
    messages = []
    for index, line in enumerate(raw.get("history") or ()):
        if line.get("type") != "chat.msg" or not line.get("msg"):
            continue
        nick = str(line.get("nick") or "")
        messages.append(
            MessageRecord(
                external_id=f"chat:{chat_id}:{index}",
                conversation_id=conversation_id,
                author_id=None,
                author_role=CHAT_ROLES.get(nick.split(":", 1)[0], "system"),
                public=True,
                body=str(line["msg"]),
                created_at=parse_time(line.get("timestamp") or raw.get("timestamp")),
                channel="chat",
            )
        )
    if ticket_id:
        return None, messages
    started = parse_time(raw.get("timestamp"))
    conversation = ConversationRecord(
        external_id=conversation_id,
        kind="chat",
        channel="chat",
        subject=None,
        status="closed",
        requester_id=None,
        created_at=started,
        updated_at=parse_time(raw.get("update_timestamp") or raw.get("timestamp")),
        tags=tuple(str(t) for t in raw.get("tags") or ()),
    )
    return conversation, messages


@mapper("Zendesk", "user")
def user_to_person(raw: Mapping[str, Any]) -> PersonRecord:
    return PersonRecord(
        external_id=str(raw["id"]),
        role=USER_ROLES.get(str(raw.get("role")), "end_user"),
        email=_str_or_none(raw.get("email")),
    )


def update_body(update: TicketUpdate) -> dict[str, Any]:
    """The `ticket` object for update_many: additive tag changes, never a tag replacement."""
    body: dict[str, Any] = {}
    if update.add_tags:
        body["additional_tags"] = sorted(update.add_tags)
    if update.remove_tags:
        body["remove_tags"] = sorted(update.remove_tags)
    if update.set_fields:
        body["custom_fields"] = [
            {"id": _field_id(field_id), "value": value} for field_id, value in update.set_fields
        ]
    return body


def _field_id(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
