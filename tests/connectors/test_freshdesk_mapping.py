"""Pure Freshdesk mappers on recorded payloads (tests/payloads.py), and on hand-written
minimal ones where a test is about keys the helpdesk left out."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.freshdesk_mapping import (
    completed_choices,
    conversation_to_message,
    description_message,
    merge_tags,
    ticket_to_record,
    update_body,
)
from connectors.records import TicketUpdate
from tests.payloads import item


def test_status_source_and_reply_times() -> None:
    listed = item("freshdesk/tickets", 0)  # recorded from the simulator (tests/payloads.py)
    record = ticket_to_record(
        {
            **listed,
            "status": 4,
            "source": 7,
            "created_at": "2026-01-01T10:00:00Z",
            "updated_at": "2026-01-05T10:00:00Z",
            "stats": {**listed["stats"], "requester_responded_at": "2026-01-03T10:00:00Z"},
        }
    )
    assert (record.status, record.channel, record.kind) == ("solved", "chat", "chat")
    assert record.content_updated_at == datetime(2026, 1, 3, 10, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert ticket_to_record({"id": 6, "status": 2}).content_updated_at is None
    assert ticket_to_record({"id": 7, "status": 9}).status == "open"  # custom status


def test_description_is_the_first_customer_message_unless_outbound() -> None:
    raw = {"id": 1, "requester_id": 3, "created_at": "2026-01-01T10:00:00Z"}
    first = description_message({**raw, "description_text": "Where is it?", "source": 1})
    assert first and first.author_role == "end_user" and first.external_id == "1-description"
    outbound = description_message({**raw, "description_text": "News", "source": 10})
    assert outbound and outbound.author_role == "agent"
    html = description_message({**raw, "description": "<p>Hi</p>"})
    assert html and html.is_html
    assert description_message(raw) is None


def test_conversation_roles_notes_and_survey_feedback() -> None:
    base = item("freshdesk/ticket_conversations", 0, incoming=False, private=False, source=0)
    agents = {"9"}
    assert (
        conversation_to_message({**base, "user_id": 9, "incoming": True}, "1", agents).author_role
        == "agent"
    )
    assert (
        conversation_to_message({**base, "user_id": 3, "incoming": True}, "1", agents).author_role
        == "end_user"
    )
    note = conversation_to_message({**base, "user_id": 3, "private": True}, "1", agents)
    assert note.author_role == "agent" and not note.public  # typed in the helpdesk
    survey = conversation_to_message({**base, "user_id": 3, "source": 6}, "1", agents)
    assert survey.solicited and survey.author_role == "end_user"


def test_merge_touches_only_the_delta_and_keeps_agent_tags() -> None:
    update = TicketUpdate("1", add_tags=frozenset({"pain__b"}), remove_tags=frozenset({"pain__a"}))
    assert merge_tags(["vip", "pain__a", "zz"], update) == ["vip", "zz", "pain__b"]
    assert merge_tags(["vip", "pain__b"], update) is None
    assert update_body(TicketUpdate("1"), ["vip"]) == {}
    assert update_body(TicketUpdate("1", set_fields=(("cf_journey_stage", None),)), ["vip"]) == {
        "custom_fields": {"cf_journey_stage": None}
    }


def test_completed_choices_never_drops_an_existing_choice() -> None:
    existing = [
        {"id": 4, "value": "stage__a", "position": 1},
        {"id": 5, "value": "x", "position": 2},
    ]
    assert completed_choices(existing, [("stage__a", "A")]) is None
    assert completed_choices(existing, [("stage__a", "A"), ("stage__b", "B")]) == [
        {"id": 4, "value": "stage__a", "position": 1},
        {"id": 5, "value": "x", "position": 2},
        {"value": "stage__b", "position": 3},
    ]
