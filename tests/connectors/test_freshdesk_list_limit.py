"""The nightly Freshdesk run uses the tickets-list limit the account really has: learnt from the
plan it announces (`X-RateLimit-Total`) unless cjm.toml sets `ticket_list_per_minute`."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
import respx

from connectors.freshdesk import FreshdeskConnector, plan_list_limit
from connectors.settings import FreshdeskSettings, RateLimitSettings
from tests.fakes import FakeClock

BASE = "https://acme.freshdesk.com"


def _connector(*, learn: bool) -> FreshdeskConnector:
    settings = FreshdeskSettings(
        name="acme",
        base_url=BASE,
        api_key="key123",
        limits=RateLimitSettings(requests_per_minute=200, export_requests_per_minute=20),
        learn_list_limit=learn,
    )
    return FreshdeskConnector(replace(settings), clock=FakeClock())


@pytest.mark.parametrize(
    ("total", "list_limit"), [(200, 20), (400, 100), (700, 200), (1400, 400), (50, 20), (300, 20)]
)
def test_the_plan_names_its_list_limit(total: int, list_limit: int) -> None:
    assert plan_list_limit(total) == list_limit


@pytest.mark.parametrize(("learn", "per_minute"), [(True, 50), (False, 10)])
def test_a_pro_account_lists_at_its_own_limit_unless_configured(
    learn: bool, per_minute: int
) -> None:
    connector = _connector(learn=learn)
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/admin/ticket_fields").mock(
            return_value=httpx.Response(
                200, json=[], headers={"X-RateLimit-Total": "400", "X-RateLimit-Remaining": "399"}
            )
        )
        asyncio.run(connector.discover_fields())
    assert connector.list_limiter.per_minute == per_minute  # Pro: 100/min × budget_share 0.5
