"""Freshdesk / Freshchat request shapes and error paths, with respx in strict mode (every route
must be hit, nothing unmocked may be called)."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.errors import AuthError, RateLimitedError
from connectors.freshdesk import FreshdeskConnector
from connectors.records import TicketUpdate
from connectors.settings import FreshchatSettings, FreshdeskSettings, RateLimitSettings
from tests.fakes import FakeClock
from tests.payloads import item, payload

BASE = "https://acme.freshdesk.com"
CHAT = "https://api.freshchat.com"
START = datetime(2026, 1, 1, tzinfo=UTC)


def settings(**overrides: Any) -> FreshdeskSettings:
    base = FreshdeskSettings(
        name="acme",
        base_url=BASE,
        api_key="key123",
        limits=RateLimitSettings(
            requests_per_minute=700, export_requests_per_minute=200, budget_share=1.0
        ),
    )
    return replace(base, **overrides)


def make(clock: FakeClock | None = None, **overrides: Any) -> FreshdeskConnector:
    return FreshdeskConnector(settings(**overrides), clock=clock or FakeClock())


TICKETS = "freshdesk/tickets"  # recorded from the simulator (tests/payloads.py)
FIELDS = "freshdesk/admin_ticket_fields"
OPEN = 1  # the recorded open ticket
# A conversation as Freshdesk lists it; tests change who wrote it and how.
CONVERSATION = item("freshdesk/ticket_conversations", 0)


def ticket(ticket_id: int, updated: str = "2026-01-03T10:00:00Z", **extra: Any) -> dict[str, Any]:
    """The recorded open ticket with the id and update time a test walks by, an agent's "vip"
    tag, and no reply yet (so its content changed when it was created)."""
    recorded = item(TICKETS, OPEN)
    return {
        **recorded,
        "id": ticket_id,
        "created_at": "2026-01-02T10:00:00Z",
        "updated_at": updated,
        "tags": ["vip"],
        "stats": dict.fromkeys(recorded["stats"]),
        **extra,
    }


def page(
    items: list[dict[str, Any]], next_url: str | None = None, **headers: str
) -> httpx.Response:
    if next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    return httpx.Response(200, json=items, headers=headers)


async def collect(connector: FreshdeskConnector, stream: str, checkpoint: str | None = None):
    return [p async for p in connector.pull(stream, checkpoint, START)]


def run(coro):
    return asyncio.run(coro)


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_ticket_list_request_shape_auth_and_mapping(respx_mock) -> None:
    route = respx_mock.get("/api/v2/tickets").mock(
        return_value=page([ticket(1), ticket(2, "2026-01-04T10:00:00Z", spam=True)])
    )
    pages = run(collect(make(), "tickets"))
    request = route.calls.last.request
    params = request.url.params
    assert params["updated_since"] == "2026-01-01T00:00:00Z"  # whole history, not 30 days
    assert params["order_by"] == "updated_at" and params["order_type"] == "asc"
    assert params["include"] == "description,stats,requester"
    assert params["per_page"] == "100" and params["page"] == "1"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"key123:X").decode()
    (only,) = pages
    assert only.messages_on_demand and only.checkpoint == "2026-01-04T10:00:00Z"
    first, spam = only.conversations
    assert first.tags == ("vip",) and first.custom_fields == item(TICKETS, OPEN)["custom_fields"]
    assert first.content_updated_at == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert spam.deleted and spam.status == "spam"


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_every_page_restarts_from_the_last_updated_at_and_drops_repeats(respx_mock) -> None:
    route = respx_mock.get("/api/v2/tickets").mock(
        side_effect=[
            page(
                [ticket(1, "2026-01-03T10:00:00Z"), ticket(2, "2026-01-03T11:00:00Z")],
                f"{BASE}/api/v2/tickets?page=2",
            ),
            page([ticket(2, "2026-01-03T11:00:00Z"), ticket(3, "2026-01-03T12:00:00Z")]),
        ]
    )
    pages = run(collect(make(), "tickets", checkpoint="2026-01-03T09:00:00Z"))
    first, second = (call.request.url.params for call in route.calls)
    assert first["updated_since"] == "2026-01-03T09:00:00Z"
    assert second["updated_since"] == "2026-01-03T11:00:00Z" and second["page"] == "1"
    ids = [c.external_id for p in pages for c in p.conversations]
    assert ids == ["1", "2", "3"]
    assert [p.checkpoint for p in pages] == ["2026-01-03T11:00:00Z", "2026-01-03T12:00:00Z"]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_page_cap_restarts_from_the_last_record(respx_mock) -> None:
    route = respx_mock.get("/api/v2/tickets").mock(
        side_effect=[
            page([ticket(1, "2026-01-03T10:00:00Z")], f"{BASE}/api/v2/tickets?page=2"),
            page([ticket(2, "2026-01-03T11:00:00Z")], f"{BASE}/api/v2/tickets?page=3"),
            page([ticket(2, "2026-01-03T11:00:00Z"), ticket(3, "2026-01-03T12:00:00Z")]),
        ]
    )
    connector = make(restart_every_pages=300, max_page=2)
    pages = run(collect(connector, "tickets"))
    params = [call.request.url.params for call in route.calls]
    assert [p["page"] for p in params] == ["1", "2", "1"]  # Link pages up to the cap, then restart
    assert params[2]["updated_since"] == "2026-01-03T11:00:00Z"
    assert [c.external_id for p in pages for c in p.conversations] == ["1", "2", "3"]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_a_400_beyond_the_last_page_restarts_instead_of_failing(respx_mock) -> None:
    cap = {
        "description": "Validation failed",
        "errors": [{"field": "page", "message": "You cannot access tickets beyond the 300th page"}],
    }
    route = respx_mock.get("/api/v2/tickets").mock(
        side_effect=[
            page([ticket(1, "2026-01-03T10:00:00Z")], f"{BASE}/api/v2/tickets?page=2"),
            httpx.Response(400, json=cap),
            page([ticket(1, "2026-01-03T10:00:00Z"), ticket(4, "2026-01-03T13:00:00Z")]),
        ]
    )
    pages = run(collect(make(restart_every_pages=300), "tickets"))
    assert route.calls[2].request.url.params["updated_since"] == "2026-01-03T10:00:00Z"
    assert [c.external_id for p in pages for c in p.conversations] == ["1", "4"]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_a_boundary_that_cannot_advance_moves_on_instead_of_looping(respx_mock, caplog) -> None:
    same = "2026-01-03T10:00:00Z"
    route = respx_mock.get("/api/v2/tickets").mock(
        side_effect=[
            page([ticket(1, same)], f"{BASE}/api/v2/tickets?page=2"),
            page([ticket(2, same)], f"{BASE}/api/v2/tickets?page=3"),
            page([ticket(9, "2026-01-03T10:00:05Z")]),
        ]
    )
    pages = run(collect(make(max_page=2), "tickets", checkpoint=same))
    assert route.calls[2].request.url.params["updated_since"] == "2026-01-03T10:00:01Z"
    assert [c.external_id for p in pages for c in p.conversations] == ["1", "2", "9"]
    assert "moving on one second" in caplog.text


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_deleted_and_spam_passes_and_csat_ratings(respx_mock) -> None:
    tickets = respx_mock.get("/api/v2/tickets").mock(return_value=page([ticket(7, deleted=True)]))
    ratings = respx_mock.get("/api/v2/surveys/satisfaction_ratings").mock(
        return_value=page(
            [
                {
                    "id": 1,
                    "ticket_id": 7,
                    "user_id": 5,
                    "feedback": "Took too long",
                    "created_at": "2026-01-05T10:00:00Z",
                },
                {
                    "id": 2,
                    "ticket_id": 8,
                    "user_id": 6,
                    "feedback": None,
                    "created_at": "2026-01-06T10:00:00Z",
                },
            ]
        )
    )
    connector = make()
    deleted = run(collect(connector, "deleted"))
    spam = run(collect(connector, "spam"))
    csat = run(collect(connector, "satisfaction_ratings"))
    d, s = (call.request.url.params for call in tickets.calls)
    assert d["filter"] == "deleted" and "include" not in d and s["filter"] == "spam"
    assert deleted[0].conversations[0].deleted and not deleted[0].messages_on_demand
    assert spam[0].conversations[0].deleted
    assert ratings.calls.last.request.url.params["created_since"] == "2026-01-01T00:00:00Z"
    (message,) = csat[0].messages
    assert (
        message.solicited and message.conversation_id == "7" and message.author_role == "end_user"
    )
    assert csat[0].checkpoint == "2026-01-06T10:00:00Z"


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_fetch_messages_roles_pagination_and_archived_fallback(respx_mock) -> None:
    respx_mock.get("/api/v2/tickets").mock(return_value=page([ticket(1), ticket(2)]))
    agents = respx_mock.get("/api/v2/agents").mock(return_value=page([{"id": 9}]))
    conv = {
        **CONVERSATION,
        "incoming": False,
        "private": False,
        "source": 0,
        "created_at": "2026-01-02T11:00:00Z",
    }
    first = respx_mock.get("/api/v2/tickets/1/conversations").mock(
        side_effect=[
            page(
                [{**conv, "id": 11, "user_id": 9, "body_text": "Agent reply"}],
                f"{BASE}/api/v2/tickets/1/conversations?page=2&per_page=100",
            ),
            page(
                [
                    {**conv, "id": 12, "user_id": 5, "incoming": True, "body_text": "Thanks"},
                    {**conv, "id": 13, "user_id": 9, "private": True, "body_text": "note"},
                ]
            ),
        ]
    )
    respx_mock.get("/api/v2/tickets/2/conversations").mock(return_value=httpx.Response(404))
    archived = respx_mock.get("/api/v2/tickets/archived/2/conversations").mock(
        return_value=page([{**conv, "id": 21, "user_id": 5, "incoming": True, "body_text": "Hi"}])
    )
    connector = make()
    (listed,) = run(collect(connector, "tickets"))
    # The descriptions came with the list page: no call per ticket to read them again.
    messages = run(connector.fetch_messages(["1", "2", "1"], dict(listed.descriptions)))
    assert agents.call_count == 1 and archived.call_count == 1
    assert first.calls[0].request.url.params["per_page"] == "100"
    by_id = {m.external_id: m for m in messages}
    assert list(by_id) == ["1-description", "11", "12", "13", "2-description", "21"]
    assert by_id["1-description"].author_role == "end_user" and by_id["1-description"].public
    assert by_id["11"].author_role == "agent" and by_id["12"].author_role == "end_user"
    assert by_id["13"].author_role == "agent" and not by_id["13"].public


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_401_names_the_variable_and_429_waits_for_retry_after(respx_mock) -> None:
    respx_mock.get("/api/v2/agents").mock(return_value=httpx.Response(401, json={}))
    with pytest.raises(AuthError, match="401 from Freshdesk: check CJM_FRESHDESK_KEY"):
        run(make().lookup_people(["1"]))
    route = respx_mock.get("/api/v2/admin/ticket_fields").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json=[]),
        ]
    )
    clock = FakeClock()
    connector = make(clock)
    fields = run(connector.discover_fields())
    assert fields.stage is None and route.call_count == 2
    assert 7 in clock.sleeps and connector.stats.rate_limited == 1


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_429_without_end_gives_up_with_a_one_line_error(respx_mock) -> None:
    respx_mock.get("/api/v2/admin/ticket_fields").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "1"})
    )
    connector = make(limits=RateLimitSettings(requests_per_minute=700, max_retries=2))
    with pytest.raises(RateLimitedError, match="budget_share"):
        run(connector.discover_fields())


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_list_calls_spend_include_credits_and_the_plan_is_learnt(respx_mock) -> None:
    respx_mock.get("/api/v2/tickets").mock(
        return_value=page(
            [ticket(1)], **{"X-RateLimit-Total": "200", "X-RateLimit-Remaining": "150"}
        )
    )
    connector = make()
    run(collect(connector, "tickets"))
    # 1 + 2 per include (description, stats, requester)
    assert len(connector.list_limiter._sent) == 7
    assert len(connector.api.limiter._sent) == 7
    assert connector.api.limiter.per_minute == 200  # 700 configured, the account says 200


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_low_remaining_pauses_the_account(respx_mock) -> None:
    respx_mock.get("/api/v2/admin/ticket_fields").mock(
        return_value=httpx.Response(200, json=[], headers={"X-RateLimit-Remaining": "3"})
    )
    clock = FakeClock()
    connector = make(clock)
    run(connector.discover_fields())
    run(connector.discover_fields())
    assert 5.0 in clock.sleeps


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_updates_merge_tags_keep_agents_tags_and_report_per_ticket(respx_mock) -> None:
    respx_mock.get("/api/v2/tickets").mock(
        return_value=page([ticket(1, tags=["vip", "pain__old"]), ticket(2, tags=["x"])])
    )
    stale = respx_mock.get("/api/v2/tickets/3").mock(
        return_value=httpx.Response(200, json=ticket(3, tags=["agent_tag"]))
    )
    put1 = respx_mock.put("/api/v2/tickets/1").mock(
        return_value=httpx.Response(200, json=ticket(1, tags=["vip", "pain__new"]))
    )
    respx_mock.put("/api/v2/tickets/2").mock(
        return_value=httpx.Response(
            400,
            json={"description": "Validation failed", "errors": [{"field": "cf_journey_stage"}]},
        )
    )
    put3 = respx_mock.put("/api/v2/tickets/3").mock(
        return_value=httpx.Response(200, json=ticket(3))
    )
    connector = make()
    run(collect(connector, "tickets"))
    results = run(
        connector.apply_updates(
            [
                TicketUpdate(
                    "1",
                    set_fields=(("cf_journey_stage", "stage__delivery"),),
                    add_tags=frozenset({"pain__new"}),
                    remove_tags=frozenset({"pain__old"}),
                ),
                TicketUpdate("2", set_fields=(("cf_journey_stage", "stage__nope"),)),
                TicketUpdate("3", add_tags=frozenset({"pain__delays"})),
                TicketUpdate("4"),  # empty: nothing sent
            ]
        )
    )
    assert json.loads(put1.calls.last.request.content) == {
        "tags": ["vip", "pain__new"],
        "custom_fields": {"cf_journey_stage": "stage__delivery"},
    }
    assert stale.call_count == 1  # never pulled: read before write
    assert json.loads(put3.calls.last.request.content) == {"tags": ["agent_tag", "pain__delays"]}
    assert [(r.external_id, r.ok) for r in results] == [("1", True), ("2", False), ("3", True)]
    assert "400 from Freshdesk" in (results[1].error or "")


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_old_pulled_tags_are_read_again_before_writing(respx_mock) -> None:
    respx_mock.get("/api/v2/tickets").mock(return_value=page([ticket(1, tags=["vip"])]))
    show = respx_mock.get("/api/v2/tickets/1").mock(
        return_value=httpx.Response(200, json=ticket(1, tags=["vip", "agent_added_later"]))
    )
    put = respx_mock.put("/api/v2/tickets/1").mock(return_value=httpx.Response(200, json=ticket(1)))
    clock = FakeClock()
    connector = make(clock, tags_max_age_seconds=60)
    run(collect(connector, "tickets"))
    clock.now += 120
    run(connector.apply_updates([TicketUpdate("1", add_tags=frozenset({"pain__x"}))]))
    assert show.call_count == 1
    assert json.loads(put.calls.last.request.content)["tags"] == [
        "vip",
        "agent_added_later",
        "pain__x",
    ]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_discover_fields_names_the_custom_fields_and_finds_none_of_cjms(respx_mock) -> None:
    recorded = payload(FIELDS)
    respx_mock.get("/api/v2/admin/ticket_fields").mock(
        return_value=httpx.Response(200, json=recorded)
    )
    fields = run(make().discover_fields())
    assert fields.stage is None and fields.confidence is None  # setup-fields not run yet
    custom = [(f["name"], f["label"]) for f in recorded if not f["default"]]
    assert custom and list(fields.names) == custom  # the segments' titles; no default field


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_setup_fields_creates_then_completes_with_the_whole_choice_list(respx_mock) -> None:
    stages = [("stage__awareness", "Awareness"), ("stage__purchase", "Purchase")]
    levels = [("stage_confidence__high", "High")]
    recorded = payload(FIELDS)  # the account's default fields and two custom dropdowns
    dropdown = next(f for f in recorded if f["type"] == "custom_dropdown")
    existing = {
        **dropdown,
        "id": 77,
        "name": "cf_journey_stage",
        "label": "Journey stage",
        "choices": [{"id": 1, "value": "stage__awareness", "position": 1}],
    }
    respx_mock.get("/api/v2/admin/ticket_fields").mock(
        return_value=httpx.Response(200, json=[*recorded, existing])
    )
    create = respx_mock.post("/api/v2/admin/ticket_fields").mock(
        return_value=httpx.Response(201, json={"id": 78, "name": "cf_journey_stage_confidence"})
    )
    update = respx_mock.put("/api/v2/admin/ticket_fields/77").mock(
        return_value=httpx.Response(200, json={**existing, "choices": []})
    )
    fields = run(make().setup_fields(stages, levels))
    assert fields.stage == "cf_journey_stage" and fields.confidence == "cf_journey_stage_confidence"
    body = json.loads(create.calls.last.request.content)
    assert body["type"] == "custom_dropdown" and body["label"] == "Journey stage confidence"
    assert body["choices"] == [{"value": "stage_confidence__high", "position": 1}]
    assert json.loads(update.calls.last.request.content) == {
        "choices": [
            {"id": 1, "value": "stage__awareness", "position": 1},
            {"value": "stage__purchase", "position": 2},
        ]
    }


@respx.mock(assert_all_called=True, assert_all_mocked=True)
def test_freshchat_report_transcripts_bearer_only_to_its_host(respx_mock) -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    chat_settings = FreshchatSettings(base_url=CHAT, token="chat-token", lookback_days=1)
    connector = FreshdeskConnector(
        settings(freshchat=chat_settings), clock=FakeClock(), now=lambda: now
    )
    create = respx_mock.post(f"{CHAT}/v2/reports/raw").mock(
        return_value=httpx.Response(202, json={"id": "r1", "status": "IN_PROGRESS"})
    )
    respx_mock.get(f"{CHAT}/v2/reports/raw/r1").mock(
        side_effect=[
            httpx.Response(200, json={"id": "r1", "status": "IN_PROGRESS"}),
            httpx.Response(
                200,
                json={
                    "status": "COMPLETED",
                    "links": [{"link": {"href": "https://s3.test/r1.csv"}}],
                },
            ),
        ]
    )
    download = respx_mock.get("https://s3.test/r1.csv").mock(
        return_value=httpx.Response(200, text="conversation_id,channel\nc1,web\n")
    )
    respx_mock.get(f"{CHAT}/v2/conversations/c1").mock(
        return_value=httpx.Response(
            200,
            json={
                "conversation_id": "c1",
                "status": "resolved",
                "created_time": "2026-01-01T10:00:00Z",
                "users": [{"id": "u1"}],
            },
        )
    )
    msg = {"message_type": "normal", "created_time": "2026-01-01T10:01:00Z"}
    messages = respx_mock.get(f"{CHAT}/v2/conversations/c1/messages").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "messages": [
                        {
                            **msg,
                            "id": "m3",
                            "actor_type": "agent",
                            "actor_id": "a",
                            "created_time": "2026-01-01T10:03:00Z",
                            "message_parts": [{"text": {"content": "Sorry!"}}],
                        }
                    ],
                    "link": {"rel": "next", "href": "/v2/conversations/c1/messages?page=2"},
                },
            ),
            httpx.Response(
                200,
                json={
                    "messages": [
                        {
                            **msg,
                            "id": "m2",
                            "actor_type": "bot",
                            "actor_id": "b",
                            "message_parts": [{"text": {"content": "Hi, I'm a bot"}}],
                        },
                        {
                            **msg,
                            "id": "m1",
                            "actor_type": "user",
                            "actor_id": "u1",
                            "created_time": "2026-01-01T10:00:00Z",
                            "message_parts": [{"text": {"content": "My order is late"}}],
                        },
                    ]
                },
            ),
        ]
    )
    pages = run(collect(connector, "freshchat"))
    assert json.loads(create.calls.last.request.content)["event"] == "Chat-Transcript"
    assert create.calls.last.request.headers["Authorization"] == "Bearer chat-token"
    assert "Authorization" not in download.calls.last.request.headers
    assert messages.calls[0].request.url.params["items_per_page"] == "50"
    (only,) = pages
    assert only.conversations[0].external_id == "fc-c1" and only.conversations[0].kind == "chat"
    assert [(m.external_id, m.author_role) for m in only.messages] == [
        ("fc-m1", "end_user"),
        ("fc-m2", "bot"),
        ("fc-m3", "agent"),
    ]
    assert only.checkpoint == "2026-01-02T00:00:00Z"
