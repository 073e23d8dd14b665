"""The Zendesk simulator speaks Zendesk's shapes and semantics, deterministically."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import (
    SimulatorFaults,
    ZendeskSimulator,
    create_zendesk_app,
    serve_in_thread,
)
from simulator.corpus import STAGES, THEMES

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
AUTH = ("lead@acme.example/token", "sim-token")
BASE = "http://zendesk.test"


def make(n: int = 80, seed: int = 3, **kwargs: Any) -> ZendeskSimulator:
    sim = ZendeskSimulator.generate(tickets=n, seed=seed, now=NOW, **kwargs)
    sim.now = NOW
    return sim


def run(
    sim: ZendeskSimulator, fn: Callable[[httpx.AsyncClient], Awaitable[Any]], auth: Any = AUTH
) -> Any:
    """Drive the ASGI app in-process (pytest-asyncio is not a dependency)."""

    async def go() -> Any:
        transport = httpx.ASGITransport(app=create_zendesk_app(sim))
        async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
            return await fn(client)

    return asyncio.run(go())


def get(sim: ZendeskSimulator, url: str, **kwargs: Any) -> httpx.Response:
    return run(sim, lambda c: c.get(url, **kwargs))


def put(sim: ZendeskSimulator, url: str, body: dict[str, Any]) -> httpx.Response:
    return run(sim, lambda c: c.put(url, json=body))


def post(sim: ZendeskSimulator, url: str, body: dict[str, Any]) -> httpx.Response:
    return run(sim, lambda c: c.post(url, json=body))


def export_all(sim: ZendeskSimulator, per_page: int = 25, **params: Any) -> list[dict[str, Any]]:
    async def go(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        r = await c.get(
            "/api/v2/incremental/tickets/cursor.json",
            params={"start_time": 0, "per_page": per_page, **params},
        )
        while True:
            body = r.json()
            out.extend(body["tickets"])
            if body["end_of_stream"]:
                return out
            r = await c.get(body["after_url"])

    return run(sim, go)


def events_all(sim: ZendeskSimulator, per_page: int = 40, start: int = 0) -> list[dict[str, Any]]:
    async def go(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url = (
            f"/api/v2/incremental/ticket_events.json?start_time={start}"
            f"&include=comment_events&per_page={per_page}"
        )
        for _ in range(10_000):
            body = (await c.get(url)).json()
            out.extend(body["ticket_events"])
            if body["end_of_stream"]:
                return out
            url = body["next_page"]
        raise AssertionError("ticket_events never reached end_of_stream")

    return run(sim, go)


def job_result(sim: ZendeskSimulator, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    job = response.json()["job_status"]
    assert job["status"] == "queued" and job["results"] is None
    polled = get(sim, f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]
    assert polled["status"] == "completed"
    return polled


# ------------------------------------------------------------------ generation and corpus


def test_generation_is_deterministic_for_tickets_seed_and_now() -> None:
    a, b, c = make(60), make(60), make(60, seed=4)
    assert export_all(a) == export_all(b)
    assert events_all(a) == events_all(b)
    assert [a.truth(i) for i in range(1, 61)] == [b.truth(i) for i in range(1, 61)]
    assert export_all(a) != export_all(c)


def test_truth_uses_the_fixed_taxonomy_and_is_never_served() -> None:
    sim = make(400)
    for tid in sim.ticket_ids():
        stage, themes, language = sim.truth(tid)
        assert stage is None or stage in STAGES
        assert len(themes) <= 2 and set(themes) <= set(THEMES)
        assert language in ("en", "es", "de", "fr")
    served = json.dumps(export_all(sim, per_page=1000)) + json.dumps(events_all(sim, 1000))
    assert "truth" not in served and "consideration" not in served


def test_corpus_carries_realistic_mess_at_plausible_rates() -> None:
    sim = make(3000)
    bodies = [c["body"] for tid in sim.ticket_ids() for c in sim.ticket(tid).comments]
    text = "\n".join(bodies)
    assert re.search(r"On \w{3}, \d+ \w{3} \d{4} at \d\d:\d\d, Acme Support <", text)
    assert "-----Original Message-----" in text and "\n> " in text
    assert "Sent from my iPhone" in text and "\n--\n" in text
    assert re.search(r"\b\d{4} \d{4} \d{4} \d{4}\b", text)  # card numbers
    assert re.search(r"\b[A-Z]{2}\d{2} ?[A-Z0-9]{4}", text)  # IBANs
    assert re.search(r"[\w.]+@[\w.]+\.\w+", text)
    assert "<p>" in text  # some HTML bodies
    languages = [sim.truth(t)[2] for t in sim.ticket_ids()]
    assert 0.01 < sum(lang != "en" for lang in languages) / len(languages) < 0.06
    statuses = [sim.ticket(t).status for t in sim.ticket_ids()]
    assert 0.08 < statuses.count("closed") / len(statuses) < 0.25
    no_text = [t for t in sim.ticket_ids() if sim.truth(t)[0] is None]
    assert no_text and len(no_text) < 0.15 * len(statuses)
    assert len(sim.spikes) == 3 and all(s.tickets > 0 for s in sim.spikes)
    spike = sim.spikes[0]
    assert spike.start > NOW - timedelta(weeks=6) and spike.end < NOW


def test_simulator_imports_no_project_layers_above_it() -> None:
    package = Path(__file__).parents[2] / "connectors" / "simulator"
    for path in package.glob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(miner|journey|cli)\b", source, re.M), path


# ------------------------------------------------------------------ auth, routing, headers


def test_auth_basic_token_and_bearer() -> None:
    sim = make(5, oauth_token="oauth-abc")
    assert get(sim, "/api/v2/tickets/1.json").status_code == 200
    bad = run(sim, lambda c: c.get("/api/v2/tickets/1.json"), auth=("x/token", "nope"))
    assert bad.status_code == 401 and bad.json() == {"error": "Couldn't authenticate you"}
    none = run(sim, lambda c: c.get("/api/v2/tickets/1.json"), auth=None)
    assert none.status_code == 401
    bearer = run(
        sim,
        lambda c: c.get("/api/v2/tickets/1.json", headers={"Authorization": "Bearer oauth-abc"}),
        auth=None,
    )
    assert bearer.status_code == 200


def test_unknown_path_is_invalid_endpoint_and_headers_carry_rate_limits() -> None:
    sim = make(5)
    r = get(sim, "/api/v2/nope.json")
    assert r.status_code == 404
    assert r.json() == {"error": "InvalidEndpoint", "description": "Not found"}
    ok = get(sim, "/api/v2/incremental/tickets/cursor.json?start_time=0")
    assert {
        "x-rate-limit",
        "x-rate-limit-remaining",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    } <= set(ok.headers)
    assert "x-rate-limit" in get(sim, "/api/v2/tickets/1.json").headers
    assert sim.requests["GET /api/v2/incremental/tickets/cursor.json"] == 1
    assert sim.requests["GET /api/v2/tickets/{id}.json"] == 1


# ------------------------------------------------------------------ incremental exports


def test_ticket_cursor_export_covers_every_ticket_in_generated_timestamp_order() -> None:
    sim = make(120)
    tickets = export_all(sim, per_page=25)
    assert sorted(t["id"] for t in tickets) == list(range(1, 121))
    keys = [(t["generated_timestamp"], t["id"]) for t in tickets]
    assert keys == sorted(keys)
    first = tickets[0]
    for key in (
        "url",
        "external_id",
        "created_at",
        "updated_at",
        "type",
        "subject",
        "raw_subject",
        "description",
        "priority",
        "status",
        "requester_id",
        "submitter_id",
        "assignee_id",
        "organization_id",
        "group_id",
        "tags",
        "via",
        "custom_fields",
        "fields",
        "satisfaction_rating",
        "from_messaging_channel",
        "brand_id",
        "is_public",
    ):
        assert key in first
    assert first["created_at"].endswith("Z") and first["via"]["channel"]
    assert {c["id"] for c in first["custom_fields"]} == {
        sim.field_id(t) for t in ("Brand", "Plan", "Region")
    }
    assert any(t["updated_at"] < _iso(t["generated_timestamp"]) for t in tickets)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_cursor_export_end_of_stream_and_empty_pages() -> None:
    sim = make(10)
    body = get(
        sim, "/api/v2/incremental/tickets/cursor.json", params={"start_time": int(NOW.timestamp())}
    ).json()
    assert body["tickets"] == [] and body["after_cursor"] is None and body["end_of_stream"]
    full = get(sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").json()
    assert full["end_of_stream"] and len(full["tickets"]) == 10
    again = get(
        sim, "/api/v2/incremental/tickets/cursor.json", params={"cursor": full["after_cursor"]}
    ).json()
    assert again["tickets"] == [] and again["end_of_stream"]
    assert again["after_cursor"] == full["after_cursor"]
    assert get(sim, "/api/v2/incremental/tickets/cursor.json").status_code == 400


def test_cursor_export_sideloads_users_with_roles() -> None:
    sim = make(30)
    body = get(
        sim, "/api/v2/incremental/tickets/cursor.json", params={"start_time": 0, "include": "users"}
    ).json()
    users = {u["id"]: u for u in body["users"]}
    for t in body["tickets"]:
        assert t["requester_id"] in users
    assert {u["role"] for u in users.values()} <= {"end-user", "agent", "admin"}
    assert "agent" in {u["role"] for u in users.values()}


def test_written_ticket_resurfaces_after_the_cursor() -> None:
    sim = make(20)
    first = get(sim, "/api/v2/incremental/tickets/cursor.json?start_time=0").json()
    target = next(t["id"] for t in first["tickets"] if t["status"] not in ("closed",))
    sim.advance(120)
    job_result(
        sim,
        put(
            sim,
            f"/api/v2/tickets/update_many.json?ids={target}",
            {"ticket": {"additional_tags": ["pain__cancellation"]}},
        ),
    )
    nxt = get(
        sim, "/api/v2/incremental/tickets/cursor.json", params={"cursor": first["after_cursor"]}
    ).json()
    assert [t["id"] for t in nxt["tickets"]] == [target]
    assert "pain__cancellation" in nxt["tickets"][0]["tags"]


def test_ticket_events_with_comment_bodies_authors_and_visibility() -> None:
    sim = make(60)
    events = events_all(sim, per_page=1000)
    assert {e["ticket_id"] for e in events} == set(range(1, 61))
    comments = [c for e in events for c in e["child_events"] if c["event_type"] == "Comment"]
    assert comments and all(c["body"] and "author_id" in c and "public" in c for c in comments)
    assert any(not c["public"] for c in comments)
    sample = comments[0]
    for key in (
        "id",
        "type",
        "author_id",
        "body",
        "html_body",
        "public",
        "attachments",
        "audit_id",
        "created_at",
        "via",
    ):
        assert key in sample
    changes = [c for e in events for c in e["child_events"] if c["event_type"] == "Change"]
    assert any(c["field_name"] == "status" for c in changes)
    bare = get(sim, "/api/v2/incremental/ticket_events.json?start_time=0").json()
    bare_comments = [
        c for e in bare["ticket_events"] for c in e["child_events"] if c["event_type"] == "Comment"
    ]
    assert bare_comments and all("body" not in c and c["comment_present"] for c in bare_comments)


def test_ticket_events_pages_repeat_the_boundary_second_and_lose_nothing() -> None:
    sim = make(40)
    expected = {e["id"] for e in events_all(sim, per_page=1000)}
    paged = events_all(sim, per_page=7)
    assert {e["id"] for e in paged} == expected
    assert len(paged) >= len(expected)
    # a burst of write-backs inside one frozen second: pages must still terminate and cover it
    sim.advance(3600)
    ids = ",".join(str(t) for t in sim.open_tickets_with_customer_text()[:30])
    job_result(
        sim,
        put(
            sim,
            f"/api/v2/tickets/update_many.json?ids={ids}",
            {"ticket": {"additional_tags": ["burst"]}},
        ),
    )
    burst = events_all(sim, per_page=5, start=int(sim.now.timestamp()))
    assert len({e["id"] for e in burst}) == 30
    assert all(e["updater_id"] == sim.integration_user_id for e in burst)
    assert all(e["via"]["channel"] == "api" for e in burst)


# ------------------------------------------------------------------ users, tickets, fields


def test_users_show_many_and_limits() -> None:
    sim = make(20)
    t = sim.ticket(1)
    ids = [t.requester_id, sim.agent_ids()[0], sim.integration_user_id, 123]
    users = get(
        sim, "/api/v2/users/show_many.json", params={"ids": ",".join(map(str, ids))}
    ).json()["users"]
    assert [u["role"] for u in users] == ["end-user", "agent", "admin"]
    assert users[2]["email"] == "lead@acme.example"
    too_many = get(
        sim, "/api/v2/users/show_many.json", params={"ids": ",".join(str(i) for i in range(101))}
    )
    assert too_many.status_code == 400 and too_many.json()["error"] == "TooManyValues"
    assert get(sim, f"/api/v2/users/{ids[0]}.json").json()["user"]["id"] == ids[0]
    assert get(sim, "/api/v2/users/123.json").status_code == 404


def test_ticket_show_show_many_and_deleted_tombstones() -> None:
    sim = make(20)
    assert get(sim, "/api/v2/tickets/3.json").json()["ticket"]["id"] == 3
    many = get(sim, "/api/v2/tickets/show_many.json?ids=1,2,999").json()["tickets"]
    assert [t["id"] for t in many] == [1, 2]
    sim.delete_ticket(2)
    assert get(sim, "/api/v2/tickets/2.json").status_code == 404
    exported = {t["id"]: t for t in export_all(sim)}
    assert exported[2]["status"] == "deleted"
    assert 2 not in {t["id"] for t in export_all(sim, exclude_deleted="true")}


def test_ticket_fields_list_create_and_unique_option_values() -> None:
    sim = make(5)
    fields = get(sim, "/api/v2/ticket_fields.json").json()
    types = {f["type"] for f in fields["ticket_fields"]}
    assert {"subject", "status", "tagger"} <= types and fields["next_page"] is None
    created = post(
        sim,
        "/api/v2/ticket_fields.json",
        {
            "ticket_field": {
                "type": "tagger",
                "title": "Journey stage",
                "custom_field_options": [
                    {"name": "Delivery", "value": "stage__delivery"},
                    {"name": "Support", "value": "stage__support"},
                ],
            }
        },
    )
    assert created.status_code == 201
    field = created.json()["ticket_field"]
    assert all(isinstance(o["id"], int) for o in field["custom_field_options"])
    clash = post(
        sim,
        "/api/v2/ticket_fields.json",
        {
            "ticket_field": {
                "type": "tagger",
                "title": "Other",
                "custom_field_options": [{"name": "x", "value": "stage__delivery"}],
            }
        },
    )
    assert clash.status_code == 422
    added = post(
        sim,
        f"/api/v2/ticket_fields/{field['id']}/options.json",
        {"custom_field_option": {"name": "Purchase", "value": "stage__purchase"}},
    )
    assert added.status_code == 201
    updated = post(
        sim,
        f"/api/v2/ticket_fields/{field['id']}/options.json",
        {"custom_field_option": {"name": "Buying", "value": "stage__purchase"}},
    )
    assert updated.status_code == 200 and updated.json()["custom_field_option"]["name"] == "Buying"
    taken = post(
        sim,
        f"/api/v2/ticket_fields/{field['id']}/options.json",
        {"custom_field_option": {"name": "Free", "value": "plan_free"}},
    )
    assert taken.status_code == 422


def _stage_field(sim: ZendeskSimulator) -> int:
    r = post(
        sim,
        "/api/v2/ticket_fields.json",
        {
            "ticket_field": {
                "type": "tagger",
                "title": "Journey stage",
                "custom_field_options": [
                    {"name": n.title(), "value": f"stage__{n}"} for n in STAGES
                ],
            }
        },
    )
    return int(r.json()["ticket_field"]["id"])


def test_dropdown_values_are_tags_both_ways() -> None:
    sim = make(30)
    fid = _stage_field(sim)
    tid = sim.open_tickets_with_customer_text()[0]
    url = f"/api/v2/tickets/update_many.json?ids={tid}"
    job_result(
        sim, put(sim, url, {"ticket": {"custom_fields": [{"id": fid, "value": "stage__delivery"}]}})
    )
    view = sim.ticket(tid)
    assert view.fields["Journey stage"] == "stage__delivery" and "stage__delivery" in view.tags
    job_result(
        sim, put(sim, url, {"ticket": {"custom_fields": [{"id": fid, "value": "stage__support"}]}})
    )
    view = sim.ticket(tid)
    assert "stage__delivery" not in view.tags and view.custom_fields[fid] == "stage__support"
    job_result(sim, put(sim, url, {"ticket": {"additional_tags": ["stage__purchase"]}}))
    view = sim.ticket(tid)
    assert view.custom_fields[fid] == "stage__purchase" and "stage__support" not in view.tags
    job_result(sim, put(sim, url, {"ticket": {"remove_tags": ["stage__purchase"]}}))
    assert fid not in sim.ticket(tid).custom_fields
    before = set(sim.ticket(tid).tags)
    job_result(sim, put(sim, url, {"ticket": {"tags": ["only_this"]}}))
    after = sim.ticket(tid)
    assert after.tags == ("only_this",) and "Plan" not in after.fields and before != {"only_this"}


def test_partial_option_list_deletes_the_missing_option_from_every_ticket() -> None:
    sim = make(50)
    plan = sim.field_id("Plan")
    victims = [t for t in sim.ticket_ids() if sim.ticket(t).fields.get("Plan") == "plan_free"]
    assert victims
    body = {
        "ticket_field": {
            "custom_field_options": [
                {"name": "Plus", "value": "plan_plus"},
                {"name": "Business", "value": "plan_business"},
                {"name": "Enterprise", "value": "plan_enterprise"},
            ]
        }
    }
    r = put(sim, f"/api/v2/ticket_fields/{plan}.json", body)
    assert r.status_code == 200
    assert [o["value"] for o in r.json()["ticket_field"]["custom_field_options"]] == [
        "plan_plus",
        "plan_business",
        "plan_enterprise",
    ]
    for tid in victims:
        view = sim.ticket(tid)
        assert "plan_free" not in view.tags and "Plan" not in view.fields


def test_update_many_results_closed_deleted_and_audit() -> None:
    sim = make(200)
    closed = next(t for t in sim.ticket_ids() if sim.ticket(t).status == "closed")
    open_ = sim.open_tickets_with_customer_text()[0]
    sim.delete_ticket(sim.open_tickets_with_customer_text()[1])
    deleted = next(t for t in sim.ticket_ids() if sim.ticket(t).status == "deleted")
    sim.advance(60)
    r = put(
        sim,
        "/api/v2/tickets/update_many.json",
        {
            "tickets": [
                {"id": open_, "additional_tags": ["pain__refunds_and_returns"]},
                {"id": closed, "additional_tags": ["x"]},
                {"id": deleted, "additional_tags": ["x"]},
            ]
        },
    )
    results = {x["id"]: x for x in job_result(sim, r)["results"]}
    assert results[open_]["success"] and results[open_]["status"] == "Updated"
    assert not results[closed]["success"] and "closed" in results[closed]["errors"]
    assert not results[deleted]["success"]
    view = sim.ticket(open_)
    assert "pain__refunds_and_returns" in view.tags
    assert view.updated_at == sim.now and view.generated_timestamp == int(sim.now.timestamp())
    too_many = put(
        sim,
        "/api/v2/tickets/update_many.json?ids=" + ",".join(map(str, range(101))),
        {"ticket": {"status": "open"}},
    )
    assert too_many.status_code == 400
    assert too_many.json() == {
        "error": "TooManyValues",
        "max_count": 100,
        "description": "Parameter ids cannot specify more than 100 values",
    }


def test_job_polls_and_the_thirty_job_limit() -> None:
    sim = make(40, job_polls_to_complete=2)
    tid = sim.open_tickets_with_customer_text()[0]
    url = f"/api/v2/tickets/update_many.json?ids={tid}"
    jobs = [put(sim, url, {"ticket": {"additional_tags": [f"t{i}"]}}) for i in range(30)]
    assert all(j.status_code == 200 for j in jobs)
    blocked = put(sim, url, {"ticket": {"additional_tags": ["late"]}})
    assert blocked.status_code == 429 and "retry-after" in blocked.headers
    first = jobs[0].json()["job_status"]["id"]
    assert get(sim, f"/api/v2/job_statuses/{first}.json").json()["job_status"]["status"] == "queued"
    many = get(sim, "/api/v2/job_statuses/show_many.json", params={"ids": first}).json()
    assert many["job_statuses"][0]["status"] == "completed"
    assert put(sim, url, {"ticket": {"additional_tags": ["late"]}}).status_code == 200


# ------------------------------------------------------------------ python-side helpers


def test_helpers_agent_edits_comments_and_truth() -> None:
    sim = make(40)
    tid = sim.open_tickets_with_customer_text()[0]
    agent = sim.agent_ids()[1]
    sim.advance(30)
    sim.agent_set_field(tid, "Region", "Europe", agent_id=agent)
    assert sim.ticket(tid)["Region"] == "region_eu"
    sim.advance(30)
    cid = sim.add_comment(tid, sim.ticket(tid).requester_id, "Still broken, please help")
    assert sim.ticket(tid).status == "open"
    events = events_all(sim, start=int(sim.now.timestamp()) - 40)
    assert [e["updater_id"] for e in events][-2:] == [agent, sim.ticket(tid).requester_id]
    bodies = {
        c["id"]: c["body"]
        for e in events
        for c in e["child_events"]
        if c["event_type"] == "Comment"
    }
    assert bodies[cid] == "Still broken, please help"
    stage, themes, lang = sim.truth(tid)
    assert isinstance(themes, tuple) and lang == "en" or lang in ("es", "de", "fr")
    del stage


# ------------------------------------------------------------------ faults


def test_plan_rate_limit_with_and_without_retry_after() -> None:
    sim = make(5, faults=SimulatorFaults(rate_limit_per_minute=3))
    sim.now = NOW.replace(second=15)
    codes = [get(sim, "/api/v2/tickets/1.json") for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[3].headers["retry-after"] == "45"
    assert codes[2].headers["x-rate-limit-remaining"] == "0"
    sim.faults.retry_after_header = False
    assert "retry-after" not in get(sim, "/api/v2/tickets/1.json").headers
    sim.advance(60)
    assert get(sim, "/api/v2/tickets/1.json").status_code == 200
    assert sim.status_counts[429] == 2


def test_export_limit_applies_only_to_incremental_exports() -> None:
    sim = make(5, faults=SimulatorFaults(export_limit_per_minute=2))
    urls = [
        "/api/v2/incremental/tickets/cursor.json?start_time=0",
        "/api/v2/incremental/ticket_events.json?start_time=0",
        "/api/v2/incremental/tickets/cursor.json?start_time=0",
    ]
    assert [get(sim, u).status_code for u in urls] == [200, 200, 429]
    assert get(sim, "/api/v2/tickets/1.json").status_code == 200


def test_fail_every_n_gateway_timeout_and_malformed_json() -> None:
    sim = make(5, faults=SimulatorFaults(fail_every_n=3, fail_status=500))
    codes = [get(sim, "/api/v2/tickets/1.json").status_code for _ in range(6)]
    assert codes == [200, 200, 500, 200, 200, 500]
    sim = make(5, faults=SimulatorFaults(gateway_timeout_above_per_page=100))
    assert get(sim, "/api/v2/incremental/ticket_events.json?start_time=0").status_code == 504
    assert (
        get(sim, "/api/v2/incremental/ticket_events.json?start_time=0&per_page=100").status_code
        == 200
    )
    sim = make(5, faults=SimulatorFaults(malformed_json_every_n=2))
    first, second = (get(sim, "/api/v2/tickets/1.json") for _ in range(2))
    first.json()
    with pytest.raises(json.JSONDecodeError):
        second.json()


# ------------------------------------------------------------------ real HTTP


def test_serves_over_a_real_localhost_port() -> None:
    sim = make(15)
    server = serve_in_thread(create_zendesk_app(sim))
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url, auth=AUTH, timeout=10) as client:
            body = client.get(
                "/api/v2/incremental/tickets/cursor.json", params={"start_time": 0}
            ).json()
            assert len(body["tickets"]) == 15
            assert body["after_url"].startswith(server.url)
    finally:
        server.stop()
    with pytest.raises(ValueError):
        serve_in_thread(create_zendesk_app(sim), host="0.0.0.0")
