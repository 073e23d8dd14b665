"""The Freshdesk simulator keeps Freshdesk's contracts: the 30-day default window, the page cap,
spam/deleted filters, tags replaced on PUT, dropdown validation, credits and 429 + Retry-After."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import httpx
import pytest

from simulator import (
    FreshdeskFaults,
    FreshdeskSimulator,
    VirtualClock,
    create_freshdesk_app,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": "Basic " + base64.b64encode(b"sim-key:X").decode()}


@pytest.fixture
def sim() -> FreshdeskSimulator:
    s = FreshdeskSimulator.generate(tickets=400, seed=2, now=NOW, chats=0)
    s.now = NOW
    return s


async def get(sim: FreshdeskSimulator, path: str, method: str = "GET", **kwargs):
    transport = httpx.ASGITransport(app=create_freshdesk_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://fd.test") as c:
        headers = kwargs.pop("headers", AUTH)
        return await c.request(method, path, headers=headers, **kwargs)


def call(sim: FreshdeskSimulator, path: str, method: str = "GET", **kwargs):
    return asyncio.run(get(sim, path, method, **kwargs))


def test_without_updated_since_only_the_last_30_days_come_back(sim: FreshdeskSimulator) -> None:
    recent = call(sim, "/api/v2/tickets", params={"per_page": 100})
    everything = call(
        sim, "/api/v2/tickets", params={"per_page": 100, "updated_since": "2000-01-01T00:00:00Z"}
    )
    assert len(recent.json()) < len(everything.json()) == 100
    assert 'rel="next"' in everything.headers["Link"]


def test_page_cap_filters_and_credits() -> None:
    sim = FreshdeskSimulator.generate(tickets=50, seed=1, now=NOW, max_page=2, chats=0)
    sim.now = NOW
    params = {"per_page": 10, "updated_since": "2000-01-01T00:00:00Z", "page": 3}
    beyond = call(sim, "/api/v2/tickets", params=params)
    assert beyond.status_code == 400 and "beyond the 2th page" in beyond.text
    listed = call(sim, "/api/v2/tickets", params={**params, "page": 1, "include": "description"})
    assert listed.headers["X-RateLimit-Used-CurrentRequest"] == "3"
    assert "description_text" in listed.json()[0]
    tid = sim.listed_ticket_ids()[0]
    sim.delete_ticket(tid)
    deleted = call(sim, "/api/v2/tickets", params={**params, "page": 1, "filter": "deleted"})
    assert tid in [t["id"] for t in deleted.json()] and all(
        t.get("deleted") for t in deleted.json()
    )


def test_put_replaces_tags_and_validates_dropdowns(sim: FreshdeskSimulator) -> None:
    tid = sim.listed_ticket_ids()[0]
    sim.agent_set_tags(tid, add=["vip", "agent"])
    ok = call(sim, f"/api/v2/tickets/{tid}", "PUT", json={"tags": ["only"]})
    assert ok.status_code == 200 and sim.ticket(tid).tags == ("only",)
    bad = call(sim, f"/api/v2/tickets/{tid}", "PUT", json={"custom_fields": {"cf_plan": "Nope"}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "cf_plan"
    unknown = call(sim, f"/api/v2/tickets/{tid}", "PUT", json={"custom_fields": {"cf_x": "1"}})
    assert unknown.status_code == 400


def test_archived_tickets_only_by_id(sim: FreshdeskSimulator) -> None:
    tid = sim.listed_ticket_ids()[0]
    sim.archive_ticket(tid)
    assert call(sim, f"/api/v2/tickets/{tid}").status_code == 404
    assert call(sim, f"/api/v2/tickets/{tid}/conversations").status_code == 404
    assert call(sim, f"/api/v2/tickets/archived/{tid}").status_code == 200
    assert call(sim, f"/api/v2/tickets/archived/{tid}/conversations").status_code == 200


def test_429_retry_after_and_violations_are_counted() -> None:
    clock = VirtualClock(NOW)
    sim = FreshdeskSimulator.generate(
        tickets=5,
        seed=1,
        now=NOW,
        clock=clock,
        chats=0,
        faults=FreshdeskFaults(rate_limit_per_minute=3),
    )
    statuses = [call(sim, "/api/v2/agents").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    clock.advance(1)
    assert call(sim, "/api/v2/agents").status_code == 429
    assert sim.retry_after_violations == 1
    clock.advance(60)
    response = call(sim, "/api/v2/agents")
    assert response.status_code == 200 and response.headers["X-RateLimit-Total"] == "3"


def test_401_without_the_key(sim: FreshdeskSimulator) -> None:
    assert call(sim, "/api/v2/agents", headers={}).status_code == 401
