"""Zendesk request shapes and error paths, with respx in strict mode (every route must be hit,
nothing unmocked may be called)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
import respx

from connectors.errors import ApiError, AuthError, NotFoundError, RateLimitedError, UnreachableError
from connectors.records import TicketUpdate
from connectors.settings import RateLimitSettings, ZendeskSettings
from connectors.zendesk import ZendeskConnector
from tests.fakes import FakeClock
from tests.payloads import item, payload

BASE = "https://acme.zendesk.com"
EVENTS = "/api/v2/incremental/ticket_events.json"
START = datetime(2026, 1, 1, tzinfo=UTC)


def make_connector(clock: FakeClock | None = None, **limits: float) -> ZendeskConnector:
    settings = ZendeskSettings(
        name="acme",
        base_url=BASE,
        email="lead@acme.example",
        api_token="tok",
        limits=RateLimitSettings(requests_per_minute=700, export_requests_per_minute=10, **limits),
    )
    return ZendeskConnector(settings, clock=clock or FakeClock(), job_poll_seconds=0.5)


async def collect(connector: ZendeskConnector, stream: str, checkpoint: str | None = None):
    return [page async for page in connector.pull(stream, checkpoint, START)]


TICKETS = "zendesk/incremental_tickets_cursor"  # recorded from the simulator (tests/payloads.py)
FIELDS = "zendesk/ticket_fields"


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_ticket_export_sends_start_time_once_then_follows_the_cursor(respx_mock) -> None:
    recorded = payload(TICKETS)
    requester = next(u for u in recorded["users"] if u["role"] == "end-user")
    listed = item(TICKETS, 0, of="tickets", requester_id=requester["id"])
    route = respx_mock.get("/api/v2/incremental/tickets/cursor.json").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    **recorded,
                    "tickets": [listed],
                    "after_cursor": "c1",
                    "end_of_stream": False,
                },
            ),
            httpx.Response(
                200,
                json={
                    **recorded,
                    "tickets": [item(TICKETS, 1, of="tickets", status="deleted")],
                    "users": [],
                    "after_cursor": "c2",
                    "end_of_stream": True,
                },
            ),
        ]
    )
    connector = make_connector()
    pages = asyncio.run(collect(connector, "tickets"))
    first, second = (call.request.url.params for call in route.calls)
    assert first["start_time"] == str(int(START.timestamp())) and "cursor" not in first
    assert first["per_page"] == "1000" and first["include"] == "users"
    assert second["cursor"] == "c1" and "start_time" not in second
    assert [p.checkpoint for p in pages] == ["c1", "c2"]
    # custom fields keyed by field id, as text
    assert pages[0].conversations[0].custom_fields == {
        str(f["id"]): f["value"] for f in listed["custom_fields"]
    }
    roles = {p.external_id: p.role for p in pages[0].people}
    assert roles[str(requester["id"])] == "end_user"  # Zendesk's "end-user", sideloaded
    assert pages[1].conversations[0].deleted


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_ticket_export_resumes_from_a_stored_cursor_and_stops_on_a_repeat(respx_mock) -> None:
    route = respx_mock.get("/api/v2/incremental/tickets/cursor.json").mock(
        return_value=httpx.Response(
            200, json={"tickets": [], "after_cursor": "c9", "end_of_stream": False}
        )
    )
    pages = asyncio.run(collect(make_connector(), "tickets", checkpoint="c9"))
    assert route.call_count == 1
    assert route.calls.last.request.url.params["cursor"] == "c9"
    assert pages[0].checkpoint == "c9"


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_events_carry_comment_bodies_and_resume_from_next_page_time(respx_mock) -> None:
    event = {
        "id": 1,
        "ticket_id": 7,
        "timestamp": 1767261600,
        "created_at": "2026-01-01T10:00:00Z",
        "updater_id": 5,
        "event_type": "Audit",
        "child_events": [
            {
                "id": 70,
                "event_type": "Comment",
                "author_id": 5,
                "body": "Where is my parcel?",
                "public": True,
                "created_at": "2026-01-01T10:00:00Z",
            },
            {"id": 71, "event_type": "Change", "field_name": "status", "value": "open"},
            {
                "id": 72,
                "event_type": "Comment",
                "author_id": 9,
                "body": "internal",
                "public": False,
            },
        ],
    }
    route = respx_mock.get("/api/v2/incremental/ticket_events.json").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "ticket_events": [event],
                    "next_page": f"{BASE}{EVENTS}?start_time=1767261601",
                    "end_of_stream": False,
                    "end_time": 1767261600,
                },
            ),
            httpx.Response(
                200,
                json={
                    "ticket_events": [],
                    "next_page": None,
                    "end_of_stream": True,
                    "end_time": 1767261601,
                },
            ),
        ]
    )
    pages = asyncio.run(collect(make_connector(), "ticket_events", checkpoint="1767261000"))
    first, second = (call.request.url.params for call in route.calls)
    assert first["include"] == "comment_events" and first["start_time"] == "1767261000"
    assert second["start_time"] == "1767261601"
    messages = pages[0].messages
    assert [(m.external_id, m.conversation_id, m.public) for m in messages] == [
        ("70", "7", True),
        ("72", "7", False),
    ]
    assert pages[-1].checkpoint == "1767261601"


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_users_are_looked_up_one_hundred_at_a_time(respx_mock) -> None:
    def users(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        assert len(ids) <= 100
        return httpx.Response(
            200,
            json={
                "users": [
                    {"id": int(i), "role": "agent" if int(i) % 2 else "end-user"} for i in ids
                ]
            },
        )

    route = respx_mock.get("/api/v2/users/show_many.json").mock(side_effect=users)
    people = asyncio.run(make_connector().lookup_people(str(i) for i in range(1, 251)))
    assert route.call_count == 3
    assert len(people) == 250 and {p.role for p in people} == {"agent", "end_user"}


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_setup_fields_creates_missing_field_and_adds_options_without_a_put(respx_mock) -> None:
    recorded = payload(FIELDS)  # the account's system fields and its brand/plan/region dropdowns
    dropdown = next(f for f in recorded["ticket_fields"] if f["type"] == "tagger")
    stage = {
        **dropdown,
        "id": 100,
        "title": "Journey stage",
        "custom_field_options": [{"id": 1, "name": "Awareness", "value": "stage__awareness"}],
    }
    respx_mock.get("/api/v2/ticket_fields.json").mock(
        return_value=httpx.Response(
            200, json={**recorded, "ticket_fields": [*recorded["ticket_fields"], stage]}
        )
    )
    add_option = respx_mock.post("/api/v2/ticket_fields/100/options.json").mock(
        return_value=httpx.Response(201, json={"custom_field_option": {}})
    )
    create = respx_mock.post("/api/v2/ticket_fields.json").mock(
        return_value=httpx.Response(
            201,
            json={
                "ticket_field": {"id": 200, "type": "tagger", "title": "Journey stage confidence"}
            },
        )
    )
    fields = asyncio.run(
        make_connector().setup_fields(
            [("stage__awareness", "Awareness"), ("stage__purchase", "Purchase")],
            [("stage_confidence__high", "High")],
        )
    )
    assert (fields.stage, fields.confidence) == ("100", "200")
    assert json.loads(add_option.calls.last.request.content) == {
        "custom_field_option": {"name": "Purchase", "value": "stage__purchase"}
    }
    created = json.loads(create.calls.last.request.content)["ticket_field"]
    assert created["type"] == "tagger" and created["custom_field_options"] == [
        {"name": "High", "value": "stage_confidence__high"}
    ]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_updates_group_shared_deltas_in_bulk_and_batch_the_rest(respx_mock) -> None:
    jobs: dict[str, list[str]] = {}

    def update_many(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        ids = (
            request.url.params["ids"].split(",")
            if "ids" in request.url.params
            else [str(t["id"]) for t in body["tickets"]]
        )
        assert len(ids) <= 100
        job_id = f"j{len(jobs)}"
        jobs[job_id] = ids
        return httpx.Response(200, json={"job_status": {"id": job_id, "status": "queued"}})

    def statuses(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "job_statuses": [
                    {
                        "id": j,
                        "status": "completed",
                        "results": [{"id": int(i), "success": i != "5"} for i in jobs[j]],
                    }
                    for j in request.url.params["ids"].split(",")
                ]
            },
        )

    put = respx_mock.put("/api/v2/tickets/update_many.json").mock(side_effect=update_many)
    respx_mock.get("/api/v2/job_statuses/show_many.json").mock(side_effect=statuses)
    shared = [
        TicketUpdate(
            str(i),
            set_fields=(("100", "stage__delivery"),),
            add_tags=frozenset({"pain__delivery_problems"}),
        )
        for i in range(100, 250)
    ]
    singles = [
        TicketUpdate(
            str(i), add_tags=frozenset({f"pain__t{i}"}), remove_tags=frozenset({"pain__old"})
        )
        for i in range(1, 6)
    ]
    results = asyncio.run(make_connector().apply_updates([*shared, *singles, TicketUpdate("999")]))
    calls = [c.request for c in put.calls]
    bulk = [r for r in calls if "ids" in r.url.params]
    batch = [r for r in calls if "ids" not in r.url.params]
    # A full hundred of the shared delta goes in bulk; its remaining 50 and the singles share
    # one batch call (grouping never costs an extra call); the one ticket that failed inside
    # its job is tried once more.
    assert len(bulk) == 1 and len(batch) == 2
    assert len(bulk[0].url.params["ids"].split(",")) == 100
    assert len(json.loads(batch[0].content)["tickets"]) == 55
    assert [t["id"] for t in json.loads(batch[1].content)["tickets"]] == [5]
    assert json.loads(bulk[0].content) == {
        "ticket": {
            "additional_tags": ["pain__delivery_problems"],
            "custom_fields": [{"id": 100, "value": "stage__delivery"}],
        }
    }
    batch_body = {t["id"]: t for t in json.loads(batch[0].content)["tickets"]}
    assert batch_body[1] == {"id": 1, "additional_tags": ["pain__t1"], "remove_tags": ["pain__old"]}
    assert batch_body[200] == {
        "id": 200,
        "additional_tags": ["pain__delivery_problems"],
        "custom_fields": [{"id": 100, "value": "stage__delivery"}],
    }
    assert not any("tags" in t for t in batch_body.values())  # never a tag replacement
    assert len(results) == 155
    assert [r.external_id for r in results if not r.ok] == ["5"]


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (401, AuthError, "401 from Zendesk: check CJM_ZENDESK_TOKEN"),
        (
            403,
            AuthError,
            "403 from Zendesk on incremental/tickets/cursor: the user behind CJM_ZENDESK_TOKEN "
            "lacks permission",
        ),
        (
            404,
            NotFoundError,
            "404 from Zendesk on incremental/tickets/cursor: check base_url/subdomain "
            "(https://acme.zendesk.com) in cjm.toml",
        ),
        (422, ApiError, "422 from Zendesk on incremental/tickets/cursor: InvalidValue"),
    ],
)
def test_client_errors_become_one_line_messages(status: int, error: type, message: str) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/incremental/tickets/cursor.json").mock(
            return_value=httpx.Response(status, json={"error": "InvalidValue"})
        )
        with pytest.raises(error) as excinfo:
            asyncio.run(collect(make_connector(), "tickets"))
    assert str(excinfo.value).startswith(message)
    assert "tok" not in str(excinfo.value)


def test_429_waits_for_retry_after_then_succeeds() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/incremental/tickets/cursor.json").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "7"}),
                httpx.Response(429),
                httpx.Response(
                    200, json={"tickets": [], "after_cursor": None, "end_of_stream": True}
                ),
            ]
        )
        connector = make_connector(clock)
        asyncio.run(collect(connector, "tickets"))
    assert clock.sleeps == [7.0, 60.0]  # Retry-After, then the 60 s default when it is missing
    assert connector.stats.rate_limited == 2 and connector.stats.api_calls == 3


def test_persistent_429_gives_up_with_a_clear_message() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/incremental/tickets/cursor.json").mock(
            return_value=httpx.Response(429, headers={"Retry-After": "1"})
        )
        with pytest.raises(RateLimitedError, match="budget is exhausted"):
            asyncio.run(collect(make_connector(max_retries=2), "tickets"))


def test_server_errors_back_off_then_succeed() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/incremental/tickets/cursor.json").mock(
            side_effect=[
                httpx.Response(500),
                httpx.Response(502),
                httpx.Response(
                    200, json={**payload(TICKETS), "after_cursor": "c", "end_of_stream": True}
                ),
            ]
        )
        pages = asyncio.run(collect(make_connector(clock), "tickets"))
    assert len(pages[0].conversations) == len(payload(TICKETS)["tickets"])
    assert len(clock.sleeps) == 2 and all(0 < s <= 60 for s in clock.sleeps)


def test_unreachable_server_names_the_setting() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/incremental/tickets/cursor.json").mock(
            side_effect=httpx.ConnectError("refused")
        )
        with pytest.raises(
            UnreachableError,
            match=r"cannot reach Zendesk at https://acme.zendesk.com \(ConnectError\): check",
        ):
            asyncio.run(collect(make_connector(), "tickets"))


def test_a_body_that_is_not_json_is_an_api_error() -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/incremental/tickets/cursor.json").mock(
            return_value=httpx.Response(200, text="<html>login</html>")
        )
        with pytest.raises(ApiError, match="not JSON"):
            asyncio.run(collect(make_connector(), "tickets"))


def test_export_calls_are_held_to_the_export_budget() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/incremental/tickets/cursor.json").mock(
            side_effect=[
                httpx.Response(
                    200, json={"tickets": [], "after_cursor": f"c{i}", "end_of_stream": i == 11}
                )
                for i in range(12)
            ]
        )
        asyncio.run(collect(make_connector(clock), "tickets"))
    # 10 export calls per minute: the 11th waits for the window to slide.
    assert clock.now - 1000.0 >= 60.0
