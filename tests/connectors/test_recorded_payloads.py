"""The recorded payloads (tests/fixtures/payloads/) are what the bundled simulators send today,
and every recorded ticket, conversation and event maps to records: a simulator change that would
leave the connectors' unit tests reading stale shapes fails here, with the command to re-record."""

from __future__ import annotations

import json

from connectors.freshdesk_mapping import agent_to_person, conversation_to_message, ticket_to_record
from connectors.zendesk_mapping import events_to_messages, user_to_person
from connectors.zendesk_mapping import ticket_to_record as zendesk_ticket
from tests.fixtures.payloads.record import record
from tests.payloads import FIXTURES, payload


def test_the_recorded_files_are_what_the_simulators_send() -> None:
    for vendor, bodies in record().items():
        for name, body in bodies.items():
            stored = json.loads((FIXTURES / vendor / f"{name}.json").read_text(encoding="utf-8"))
            assert stored == body, (
                f"{vendor}/{name}.json is stale: run tests/fixtures/payloads/record.py"
            )


def test_every_recorded_payload_maps_to_records() -> None:
    tickets = [ticket_to_record(raw) for raw in payload("freshdesk/tickets")]
    assert [t.external_id for t in tickets] == [
        str(raw["id"]) for raw in payload("freshdesk/tickets")
    ]
    messages = [
        conversation_to_message(raw, str(raw["ticket_id"]), set())
        for raw in payload("freshdesk/ticket_conversations")
    ]
    assert all(m is not None and m.body for m in messages)
    assert {agent_to_person(raw).role for raw in payload("freshdesk/agents")} == {"agent"}
    events = payload("zendesk/incremental_ticket_events")["ticket_events"]
    assert [m.body for m in events_to_messages(events)]
    export = payload("zendesk/incremental_tickets_cursor")
    assert [zendesk_ticket(raw).external_id for raw in export["tickets"]]
    assert {user_to_person(raw).role for raw in export["users"]} <= {"agent", "end_user"}
