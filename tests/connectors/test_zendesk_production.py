"""Request shapes and error paths of the production-grade Zendesk connector (respx, strict):
504 → smaller pages, OAuth rotation, CSAT, messaging transcripts, redaction re-pulls, legacy
chats, write-back failures (409, 422, per-ticket, closed), and the account's rate headers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.errors import AuthError
from connectors.records import TicketUpdate
from connectors.settings import OAuthTokens, RateLimitSettings, ZendeskSettings
from connectors.zendesk import ZendeskConnector
from tests.fakes import FakeClock
from tests.payloads import item, payload

BASE = "https://acme.zendesk.com"
CHAT = "https://www.zopim.com"
START = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = "/api/v2/incremental/ticket_events.json"


def connector(clock: FakeClock | None = None, **overrides: Any) -> ZendeskConnector:
    values: dict[str, Any] = {
        "name": "acme",
        "base_url": BASE,
        "email": "lead@acme.example",
        "api_token": "tok",
        "limits": RateLimitSettings(requests_per_minute=700, export_requests_per_minute=10),
    }
    values.update(overrides)
    return ZendeskConnector(
        ZendeskSettings(**values), clock=clock or FakeClock(), job_poll_seconds=0.5
    )


def pull(c: ZendeskConnector, stream: str, checkpoint: str | None = None) -> list[Any]:
    async def go() -> list[Any]:
        return [page async for page in c.pull(stream, checkpoint, START)]

    return asyncio.run(go())


EVENTS_PAGE = "zendesk/incremental_ticket_events"  # recorded from the simulator


def events_body(events: list[dict[str, Any]], end: bool = True, nxt: int = 1767261601):
    """The recorded ticket_events page, carrying `events` and the cursor a test walks by."""
    return {
        **payload(EVENTS_PAGE),
        "ticket_events": events,
        "count": len(events),
        "next_page": f"{BASE}{EVENTS}?start_time={nxt}",
        "end_of_stream": end,
        "end_time": nxt,
    }


def comment_event(
    ticket_id: int,
    comment_id: int,
    author: int,
    channel: str = "email",
    updater: int | None = None,
    body: str = "Where is my parcel?",
):
    """The recorded audit of a public comment, for `ticket_id`, written by `author` through
    `channel`, saying `body` (its other child events left out)."""
    audit = item(EVENTS_PAGE, 0, of="ticket_events")
    comment = next(c for c in audit["child_events"] if c["event_type"] == "Comment")
    via = {**audit["via"], "channel": channel}
    return {
        **audit,
        "id": comment_id // 100,
        "ticket_id": ticket_id,
        "timestamp": 1767261600,
        "created_at": "2026-01-01T10:00:00Z",
        "updater_id": updater or author,
        "via": via,
        "child_events": [
            {
                **comment,
                "id": comment_id,
                "audit_id": comment_id // 100,
                "author_id": author,
                "body": body,
                "plain_body": body,
                "html_body": f"<p>{body}</p>",
                "public": True,
                "via": via,
                "created_at": "2026-01-01T10:00:00Z",
            }
        ],
    }


# ---------------------------------------------------------------------------- pull


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_gateway_timeout_halves_the_events_page_and_keeps_it_small(respx_mock) -> None:
    def events(request: httpx.Request) -> httpx.Response:
        per_page = int(request.url.params["per_page"])
        if per_page > 250:
            return httpx.Response(504, json={"error": "GatewayTimeout"})
        end = request.url.params["start_time"] == "1767261601"
        return httpx.Response(200, json=events_body([comment_event(7, 700, 5)], end=end))

    route = respx_mock.get(EVENTS).mock(side_effect=events)
    clock = FakeClock()
    pages = pull(connector(clock), "ticket_events", "1767261000")
    sizes = [call.request.url.params["per_page"] for call in route.calls]
    assert sizes == ["1000", "500", "250", "250"]
    assert [p.checkpoint for p in pages] == ["1767261601", "1767261601"]
    assert clock.sleeps == []  # no back-off: a smaller page is the answer, not a wait


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_read_timeout_on_a_big_events_page_also_halves_it(respx_mock) -> None:
    route = respx_mock.get(EVENTS).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=events_body([]))]
    )
    pull(connector(), "ticket_events", "1767261000")
    assert [c.request.url.params["per_page"] for c in route.calls] == ["1000", "500"]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_messaging_comments_fetch_the_conversation_log_once_but_not_for_our_own(respx_mock) -> None:
    respx_mock.get("/api/v2/users/me.json").mock(
        return_value=httpx.Response(200, json={"user": {"id": 99, "role": "admin"}})
    )
    respx_mock.get(EVENTS).mock(
        return_value=httpx.Response(
            200,
            json=events_body(
                [
                    comment_event(7, 700, 5, channel="native_messaging"),
                    comment_event(7, 701, 5, channel="native_messaging"),  # same ticket: once
                    comment_event(8, 800, 99, channel="native_messaging"),  # ours: never
                    comment_event(9, 900, 6, channel="email"),  # not messaging
                ]
            ),
        )
    )
    log = respx_mock.get("/api/v2/tickets/7/conversation_log").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "events": [
                        {
                            "id": "01BOT",
                            "type": "Messaging::ConversationMessage",
                            "reference": None,
                            "created_at": "2026-01-01T09:58:00Z",
                            "author": {"type": "bot"},
                            "content": {"type": "text", "body": "How can I help?"},
                        },
                        {
                            "id": "01USER",
                            "type": "Messaging::ConversationMessage",
                            "created_at": "2026-01-01T09:58:30Z",
                            "author": {"type": "user", "zen:support:user_id": 5},
                            "content": {"type": "text", "body": "my payment failed"},
                        },
                    ],
                    "meta": {"has_more": True, "after_cursor": "a1"},
                },
            ),
            httpx.Response(
                200,
                json={
                    "events": [
                        {
                            "id": "01MIRROR",
                            "type": "Messaging::ConversationMessage",
                            "reference": "zen:ticket_event:700",
                            "created_at": "2026-01-01T10:00:00Z",
                            "author": {"type": "user", "zen:support:user_id": 5},
                            "content": {"type": "text", "body": "Where is my parcel?"},
                        }
                    ],
                    "meta": {"has_more": False, "after_cursor": "a2"},
                },
            ),
        ]
    )
    (page,) = pull(connector(), "ticket_events", "1767261000")
    assert log.calls[0].request.url.params["page[size]"] == "100"
    assert log.calls[1].request.url.params["page[after]"] == "a1"
    by_id = {m.external_id: m for m in page.messages}
    assert set(by_id) == {"700", "701", "800", "900", "log:01BOT", "log:01USER"}
    assert (by_id["log:01BOT"].author_role, by_id["log:01USER"].author_role) == ("bot", "end_user")
    assert by_id["700"].author_role == "end_user"  # the log's copy of a comment keeps its id


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_a_redaction_event_re_reads_that_tickets_comments(respx_mock) -> None:
    redaction = {
        "id": 2,
        "ticket_id": 7,
        "timestamp": 1767261700,
        "updater_id": 3,
        "child_events": [{"id": 201, "event_type": "CommentRedactionEvent", "comment_id": 700}],
    }
    respx_mock.get(EVENTS).mock(
        return_value=httpx.Response(
            200, json=events_body([comment_event(7, 700, 5, body="card 4111"), redaction])
        )
    )
    respx_mock.get("/api/v2/tickets/7/comments.json").mock(
        return_value=httpx.Response(
            200,
            json={
                "comments": [
                    {
                        "id": 700,
                        "author_id": 5,
                        "body": "card ▇▇▇▇",
                        "public": True,
                        "created_at": "2026-01-01T10:00:00Z",
                    }
                ],
                "meta": {"has_more": False},
            },
        )
    )
    (page,) = pull(connector(), "ticket_events", "1767261000")
    assert [(m.external_id, m.body) for m in page.messages] == [("700", "card ▇▇▇▇")]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_csat_comments_are_solicited_and_checkpointed_per_page(respx_mock) -> None:
    def rating(i: int, comment: str | None) -> dict[str, Any]:
        return {
            "id": i,
            "ticket_id": 7 + i,
            "requester_id": 5,
            "score": "bad",
            "comment": comment,
            "created_at": "2026-01-02T10:00:00Z",
            "updated_at": f"2026-01-0{2 + i}T10:00:00Z",
        }

    route = respx_mock.get("/api/v2/satisfaction_ratings.json").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "satisfaction_ratings": [rating(1, "Took way too long"), rating(2, None)],
                    "meta": {"has_more": True, "after_cursor": "r2"},
                },
            ),
            httpx.Response(
                200,
                json={
                    "satisfaction_ratings": [rating(3, "Agent didn't listen")],
                    "meta": {"has_more": False, "after_cursor": "r3"},
                },
            ),
        ]
    )
    pages = pull(connector(), "satisfaction_ratings", None)
    first, second = (c.request.url.params for c in route.calls)
    since = str(int(START.timestamp()))
    assert (first["start_time"], first["score"], first["page[size]"]) == (
        since,
        "received_with_comment",
        "100",
    )
    assert second["page[after]"] == "r2" and second["start_time"] == since
    assert pages[0].checkpoint == f"{since}|r2"
    newest = int(datetime(2026, 1, 5, 10, tzinfo=UTC).timestamp())
    assert pages[1].checkpoint == f"{newest}|"
    (message,) = pages[0].messages
    assert message.solicited and message.author_role == "end_user"
    assert (message.external_id, message.conversation_id) == ("csat:1", "8")


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_csat_resumes_inside_a_run_and_a_plan_without_csat_is_skipped(respx_mock) -> None:
    route = respx_mock.get("/api/v2/satisfaction_ratings.json").mock(
        return_value=httpx.Response(403, json={"error": "Forbidden"})
    )
    assert pull(connector(), "satisfaction_ratings", "1767000000|r7") == []
    params = route.calls.last.request.url.params
    assert (params["start_time"], params["page[after]"]) == ("1767000000", "r7")


@respx.mock(assert_all_called=True, assert_all_mocked=True)
def test_legacy_chats_come_from_the_chat_api_and_attach_to_their_ticket(respx_mock) -> None:
    chats = [
        {
            "id": "2601.7.ABC",
            "timestamp": "2026-01-01T10:00:00Z",
            "update_timestamp": "2026-01-01T10:10:00Z",
            "zendesk_ticket_id": 7,
            "history": [
                {"type": "chat.memberjoin", "nick": "visitor"},
                {
                    "type": "chat.msg",
                    "nick": "visitor",
                    "msg": "my order is late",
                    "timestamp": "2026-01-01T10:00:05Z",
                },
                {
                    "type": "chat.msg",
                    "nick": "agent:12",
                    "msg": "checking",
                    "timestamp": "2026-01-01T10:01:00Z",
                },
            ],
        },
        {
            "id": "2601.0.MISSED",
            "timestamp": "2026-01-01T11:00:00Z",
            "history": [{"type": "chat.msg", "nick": "visitor", "msg": "hello?"}],
        },
    ]
    route = respx_mock.get(f"{CHAT}/api/v2/incremental/chats").mock(
        return_value=httpx.Response(
            200,
            json={
                "chats": chats,
                "count": 2,
                "end_time": 1767265200,
                "end_id": "2601.0.MISSED",
                "next_page": None,
            },
        )
    )
    c = connector(oauth_token="chat-bearer", api_token=None, chat_export=True)
    assert c.streams == ("tickets", "ticket_events", "satisfaction_ratings", "chats")
    (page,) = pull(c, "chats", "1767200000|2601.1.OLD")
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer chat-bearer"
    assert (request.url.params["start_time"], request.url.params["start_id"]) == (
        "1767200000",
        "2601.1.OLD",
    )
    assert request.url.params["limit"] == "1000"
    assert page.checkpoint == "1767265200|2601.0.MISSED"
    assert [(m.conversation_id, m.author_role, m.body) for m in page.messages] == [
        ("7", "end_user", "my order is late"),
        ("7", "agent", "checking"),
        ("chat:2601.0.MISSED", "end_user", "hello?"),
    ]
    (standalone,) = page.conversations
    assert (standalone.external_id, standalone.kind, standalone.status) == (
        "chat:2601.0.MISSED",
        "chat",
        "closed",  # never written back
    )


# ---------------------------------------------------------------------------- OAuth


def oauth_connector(store: list[Any], clock: FakeClock | None = None, **extra: Any):
    return connector(
        clock,
        api_token=None,
        oauth_token="old-access",
        oauth_refresh_token="old-refresh",
        oauth_client_id="cjm",
        oauth_client_secret="client-secret",
        token_store=store.append,
        **extra,
    )


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_expired_access_token_rotates_and_persists_the_pair_before_using_it(respx_mock) -> None:
    store: list[OAuthTokens] = []
    seen: list[tuple[str, int]] = []

    def tickets(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["Authorization"], len(store)))
        if request.headers["Authorization"] == "Bearer old-access":
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(
            200, json={"tickets": [], "after_cursor": None, "end_of_stream": True}
        )

    respx_mock.get("/api/v2/incremental/tickets/cursor.json").mock(side_effect=tickets)
    token = respx_mock.post("/oauth/tokens").mock(
        return_value=httpx.Response(
            200,
            json={
                "access_token": "new-access",
                "refresh_token": "new-refresh",
                "expires_in": 7200,
                "token_type": "bearer",
            },
        )
    )
    c = oauth_connector(store)
    pull(c, "tickets")
    sent = json.loads(token.calls.last.request.content)
    assert sent == {
        "grant_type": "refresh_token",
        "refresh_token": "old-refresh",
        "client_id": "cjm",
        "client_secret": "client-secret",
    }
    assert "Authorization" not in token.calls.last.request.headers
    # The new token was first used only after the store held the new pair.
    assert seen == [("Bearer old-access", 0), ("Bearer new-access", 1)]
    assert (store[0].access_token, store[0].refresh_token) == ("new-access", "new-refresh")
    assert "new-access" not in repr(store[0]) and "client-secret" not in repr(c.settings)
    assert c.stats.token_refreshes == 1


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_concurrent_401s_share_one_rotation(respx_mock) -> None:
    store: list[OAuthTokens] = []

    def users(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer old-access":
            return httpx.Response(401)
        return httpx.Response(200, json={"users": []})

    respx_mock.get("/api/v2/users/show_many.json").mock(side_effect=users)
    token = respx_mock.post("/oauth/tokens").mock(
        return_value=httpx.Response(200, json={"access_token": "a2", "refresh_token": "r2"})
    )
    c = oauth_connector(store)

    async def go() -> None:
        await asyncio.gather(*(c.lookup_people([str(i)]) for i in range(5)))

    asyncio.run(go())
    assert token.call_count == 1 and len(store) == 1


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_a_token_close_to_expiry_is_rotated_before_the_first_call(respx_mock) -> None:
    store: list[OAuthTokens] = []
    token = respx_mock.post("/oauth/tokens").mock(
        return_value=httpx.Response(
            200, json={"access_token": "a2", "refresh_token": "r2", "expires_in": 3600}
        )
    )
    export = respx_mock.get("/api/v2/incremental/tickets/cursor.json").mock(
        return_value=httpx.Response(200, json={"tickets": [], "end_of_stream": True})
    )
    c = ZendeskConnector(
        ZendeskSettings(
            name="acme",
            base_url=BASE,
            oauth_token="a1",
            oauth_refresh_token="r1",
            oauth_client_id="cjm",
            oauth_client_secret="s",
            oauth_expires_at=1_000_100.0,
            token_store=store.append,
        ),
        clock=FakeClock(),
        wall_clock=lambda: 1_000_000.0,
    )
    pull(c, "tickets")
    assert token.call_count == 1
    assert export.calls.last.request.headers["Authorization"] == "Bearer a2"
    assert store[0].expires_at == 1_003_600.0


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_a_rejected_refresh_token_is_an_auth_error_without_secrets(respx_mock) -> None:
    respx_mock.get("/api/v2/incremental/tickets/cursor.json").mock(return_value=httpx.Response(401))
    respx_mock.post("/oauth/tokens").mock(
        return_value=httpx.Response(400, json={"error": "invalid_grant"})
    )
    store: list[OAuthTokens] = []
    with pytest.raises(AuthError, match="refresh token was rejected") as excinfo:
        pull(oauth_connector(store), "tickets")
    assert store == []
    for secret in ("old-refresh", "old-access", "client-secret"):
        assert secret not in str(excinfo.value)


def test_api_token_auth_warns_about_the_retirement_date() -> None:
    # The connector says it; the pipeline shows it once a day
    # (tests/test_first_week_loose_ends.py).
    notices = " ".join(connector(name="retiring-source", api_token="s3cr3t-api-token").notices)
    assert "2027-04-30" in notices and "retiring-source" in notices and "s3cr3t" not in notices


# ---------------------------------------------------------------------------- rate limits


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_the_plan_limit_the_account_announces_sets_our_share(respx_mock) -> None:
    respx_mock.get("/api/v2/users/show_many.json").mock(
        return_value=httpx.Response(
            200,
            json={"users": []},
            headers={"X-Rate-Limit": "400", "X-Rate-Limit-Remaining": "390"},
        )
    )
    c = connector()
    asyncio.run(c.lookup_people(["1"]))
    assert c.api.limiter.per_minute == 200  # 400/min plan × budget_share 0.5


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_an_account_spent_by_other_apps_makes_us_wait_for_the_reset(respx_mock) -> None:
    respx_mock.get("/api/v2/users/show_many.json").mock(
        return_value=httpx.Response(
            200,
            json={"users": []},
            headers={"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "5", "ratelimit-reset": "17"},
        )
    )
    clock = FakeClock()
    c = connector(clock)
    asyncio.run(c.lookup_people(["1"]))
    asyncio.run(c.lookup_people(["2"]))
    assert clock.sleeps == [17.0]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_export_budget_header_and_503_retry_after_are_obeyed(respx_mock) -> None:
    respx_mock.get("/api/v2/incremental/tickets/cursor.json").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "30"}),
            httpx.Response(
                200,
                json={"tickets": [], "after_cursor": "c1", "end_of_stream": False},
                headers={
                    "zendesk-ratelimit-incremental-exports": "total=10; remaining=0; resets=42"
                },
            ),
            httpx.Response(200, json={"tickets": [], "after_cursor": "c2", "end_of_stream": True}),
        ]
    )
    clock = FakeClock()
    c = connector(clock)
    pull(c, "tickets")
    assert clock.sleeps == [30.0, 42.0]
    assert c.stats.server_errors == 1 and c.stats.rate_limited == 0


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_an_export_429_pauses_exports_but_not_the_rest_of_the_account(respx_mock) -> None:
    limited = httpx.Response(
        429,
        headers={"Retry-After": "50"},
        json={
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed incremental export API requests per minute exceeded",
        },
    )
    respx_mock.get("/api/v2/incremental/tickets/cursor.json").mock(
        side_effect=[limited, httpx.Response(200, json={"tickets": [], "end_of_stream": True})]
    )
    clock = FakeClock()
    c = connector(clock)
    pull(c, "tickets")
    assert clock.sleeps == [50.0] and c.stats.rate_limited == 1
    assert c.api.export_limiter._paused_until == 1050.0
    assert c.api.limiter._paused_until == 0.0  # tickets/users/write-back calls may go on


# ---------------------------------------------------------------------------- write-back


def updates(ids: range, tag: str = "pain__late") -> list[TicketUpdate]:
    return [TicketUpdate(str(i), add_tags=frozenset({f"{tag}{i % 3}"})) for i in ids]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_write_back_survives_409_splits_422_and_does_not_retry_closed(respx_mock) -> None:
    jobs: dict[str, list[dict[str, Any]]] = {}
    state = {"conflicts": 1}

    def update_many(request: httpx.Request) -> httpx.Response:
        if state["conflicts"]:
            state["conflicts"] -= 1
            return httpx.Response(409, json={"error": "Conflict"})
        tickets = json.loads(request.content)["tickets"]
        if any(t["id"] == 13 for t in tickets):  # one invalid ticket rejects the whole call
            return httpx.Response(422, json={"error": "RecordInvalid", "description": "bad"})
        job = f"j{len(jobs)}"
        results = []
        for t in tickets:
            if t["id"] == 11:
                results.append(
                    {
                        "id": 11,
                        "success": False,
                        "error": "TicketUpdateFailed",
                        "errors": "Status: closed prevents ticket update",
                    }
                )
            elif t["id"] == 12 and not any(j == "retry" for j in jobs):
                jobs["retry"] = []
                results.append(
                    {
                        "id": 12,
                        "success": False,
                        "error": "TicketUpdateFailed",
                        "errors": "Temporary failure",
                    }
                )
            else:
                results.append({"id": t["id"], "success": True})
        jobs[job] = results
        return httpx.Response(200, json={"job_status": {"id": job, "status": "queued"}})

    def statuses(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        return httpx.Response(
            200,
            json={
                "job_statuses": [{"id": j, "status": "completed", "results": jobs[j]} for j in ids]
            },
        )

    put = respx_mock.put("/api/v2/tickets/update_many.json").mock(side_effect=update_many)
    respx_mock.get("/api/v2/job_statuses/show_many.json").mock(side_effect=statuses)
    clock = FakeClock()
    results = asyncio.run(connector(clock).apply_updates(updates(range(10, 18))))
    outcome = {r.external_id: (r.ok, r.error) for r in results}
    assert outcome["11"][0] is False and "closed" in (outcome["11"][1] or "")
    assert outcome["12"] == (True, None)  # transient failure, retried once, then written
    assert outcome["13"][0] is False and "RecordInvalid" in (outcome["13"][1] or "")
    assert all(outcome[str(i)] == (True, None) for i in (10, 14, 15, 16, 17))
    sent = [sorted(t["id"] for t in json.loads(c.request.content)["tickets"]) for c in put.calls]
    assert sent[0] == sent[1] == list(range(10, 18))  # 409, then the same call again
    assert [13] in sent and [11] not in sent[3:]  # 422 split down to the bad ticket
    assert sent[-1] == [12]  # the one retry
    assert clock.sleeps and clock.sleeps[0] <= 60


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_jobs_in_flight_are_capped_and_too_many_jobs_is_waited_out(respx_mock) -> None:
    open_jobs: set[str] = set()
    peak = {"n": 0, "429": 0}

    def update_many(request: httpx.Request) -> httpx.Response:
        if len(open_jobs) >= 3 and not peak["429"]:
            peak["429"] = 1
            return httpx.Response(429, headers={"Retry-After": "10"}, json={"error": "TooManyJobs"})
        job = f"j{len(open_jobs)}-{request.url.params.get('ids', '')[:5]}-{peak['n']}"
        peak["n"] += 1
        open_jobs.add(job)
        ids = [int(t["id"]) for t in json.loads(request.content)["tickets"]]
        jobs[job] = ids
        return httpx.Response(200, json={"job_status": {"id": job}})

    jobs: dict[str, list[int]] = {}

    def statuses(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        assert len(ids) <= 4  # max_jobs_in_flight
        done = []
        for j in ids:
            open_jobs.discard(j)
            done.append(
                {
                    "id": j,
                    "status": "completed",
                    "results": [{"id": i, "success": True} for i in jobs[j]],
                }
            )
        return httpx.Response(200, json={"job_statuses": done})

    respx_mock.put("/api/v2/tickets/update_many.json").mock(side_effect=update_many)
    respx_mock.get("/api/v2/job_statuses/show_many.json").mock(side_effect=statuses)
    clock = FakeClock()
    many = [TicketUpdate(str(i), add_tags=frozenset({f"pain__x{i}"})) for i in range(1, 501)]
    results = asyncio.run(connector(clock, max_jobs_in_flight=4).apply_updates(many))
    assert len(results) == 500 and all(r.ok for r in results)
    assert 10.0 in clock.sleeps  # TooManyJobs: Retry-After obeyed before the next job


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_field_changes_name_whether_cjm_or_someone_else_set_them(respx_mock) -> None:  # type: ignore[no-untyped-def]
    def audit(aid: int, updater: int, value: str) -> dict[str, Any]:
        """The recorded audit, by `updater`, now setting field 100 to `value` and the status."""
        recorded = item(EVENTS_PAGE, 0, of="ticket_events")
        change = next(c for c in recorded["child_events"] if c["event_type"] == "Change")
        return {
            **recorded, "id": aid, "ticket_id": 7, "updater_id": updater,
            "created_at": "2026-01-01T10:00:00Z",
            "child_events": [
                {**change, "id": aid * 100, "field_name": "100", "value": value},
                {**change, "id": aid * 100 + 1, "field_name": "status", "value": "open"},
            ],
        }  # fmt: skip

    respx_mock.get(EVENTS).mock(
        return_value=httpx.Response(
            200, json=events_body([audit(1, 555, "stage__delivery"), audit(2, 9, "stage__support")])
        )
    )
    me = respx_mock.get("/api/v2/users/me.json").mock(
        return_value=httpx.Response(200, json={"user": {"id": 555, "role": "admin"}})
    )
    (page,) = pull(connector(), "ticket_events")
    assert me.call_count == 1
    assert [(c.conversation_id, c.field, c.value, c.by_self) for c in page.field_changes] == [
        ("7", "100", "stage__delivery", True),
        ("7", "100", "stage__support", False),
    ]


@respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True)
def test_jobs_of_an_interrupted_run_are_polled_not_sent_again(respx_mock) -> None:  # type: ignore[no-untyped-def]
    statuses = respx_mock.get("/api/v2/job_statuses/show_many.json").mock(
        side_effect=[
            httpx.Response(200, json={"job_statuses": [{"id": "a", "status": "working"}]}),
            httpx.Response(
                200,
                json={
                    "job_statuses": [
                        {"id": "a", "status": "completed",
                         "results": [{"id": 1, "success": True}, {"id": 2, "success": False,
                                                                   "error": "TicketNotFound"}]},
                    ]
                },
            ),
        ]
    )  # fmt: skip
    results = asyncio.run(connector().resume_jobs({"a": ["1", "2"], "gone": ["3"]}))
    assert statuses.call_count == 2
    assert sorted((r.external_id, r.ok) for r in results) == [("1", True), ("2", False)]
