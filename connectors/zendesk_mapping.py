"""Pure functions: Zendesk JSON → cjm records, and cjm deltas → Zendesk request bodies.

Kept free of I/O so they can be tested on hand-written payloads of the documented shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.records import ConversationRecord, MessageRecord, PersonRecord, Role, TicketUpdate

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
        created_at=parse_time(raw.get("created_at")),
        updated_at=parse_time(raw.get("updated_at")),
        tags=tuple(str(t) for t in raw.get("tags") or ()),
        custom_fields={
            str(f["id"]): f.get("value") for f in raw.get("custom_fields") or () if "id" in f
        },
        deleted=status == "deleted",
        from_messaging=from_messaging,
    )


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


def user_to_person(raw: Mapping[str, Any]) -> PersonRecord:
    return PersonRecord(
        external_id=str(raw["id"]), role=USER_ROLES.get(str(raw.get("role")), "end_user")
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
