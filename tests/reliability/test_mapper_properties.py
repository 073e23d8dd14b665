"""Whatever JSON a helpdesk sends, the mappers either return records or raise one
MalformedRecordError — never a crash, and never a planted secret or customer text in the message."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import freshdesk_mapping, zendesk_mapping
from connectors.errors import MalformedRecordError

SECRET = "PLANTED-SECRET-3141"

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False),
    st.text(max_size=30), st.just(SECRET), st.just("2026-11-20T12:00:00Z"),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

TICKET_KEYS = ["id", "status", "subject", "via", "tags", "custom_fields", "created_at",
               "updated_at", "requester_id", "from_messaging_channel", "description_text",
               "stats", "source", "deleted", "spam"]  # fmt: skip
EVENT_KEYS = ["id", "ticket_id", "child_events", "created_at", "via", "updater_id"]
CHILD_KEYS = ["id", "event_type", "type", "author_id", "body", "plain_body", "public",
              "created_at", "via"]  # fmt: skip


def objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


def check(call: Any) -> None:
    try:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    except MalformedRecordError as exc:
        assert SECRET not in str(exc)
        assert "\n" not in str(exc)


@settings(max_examples=400, deadline=None)
@given(objects(TICKET_KEYS))
def test_ticket_mappers_never_crash(raw: dict[str, Any]) -> None:
    check(lambda: zendesk_mapping.ticket_to_record(raw))
    check(lambda: freshdesk_mapping.ticket_to_record(raw))
    check(lambda: freshdesk_mapping.description_message(raw))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={
    **dict.fromkeys(EVENT_KEYS, values), "child_events": st.lists(objects(CHILD_KEYS), max_size=3)
}), max_size=3))  # fmt: skip
def test_event_mapper_never_crashes(events: list[dict[str, Any]]) -> None:
    check(lambda: zendesk_mapping.events_to_messages(events))


@settings(max_examples=300, deadline=None)
@given(objects(["id", "role", "name", "email"]), objects(["id", "score", "comment", "ticket_id",
       "created_at", "updated_at", "feedback", "ratings"]))  # fmt: skip
def test_people_and_rating_mappers_never_crash(
    user: dict[str, Any], rating: dict[str, Any]
) -> None:
    check(lambda: zendesk_mapping.user_to_person(user))
    check(lambda: zendesk_mapping.rating_to_message(rating))
    check(lambda: freshdesk_mapping.rating_to_message(rating))
