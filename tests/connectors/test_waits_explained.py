"""Every wait is explained: a retry and a rate-limit pause each print one progress line, and a
server that keeps failing is given up on after the configured time, not after ~15 minutes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from connectors.errors import UnreachableError
from connectors.http import ApiClient, make_http_client, reporting_waits
from connectors.settings import RateLimitSettings
from tests.fakes import FakeClock

BASE = "https://acme.freshdesk.test"


def _client(clock: FakeClock, **limits: float) -> ApiClient:
    return ApiClient(
        make_http_client(BASE, auth=None, timeout_seconds=5.0),
        vendor="Freshdesk",
        credential_env="CJM_FRESHDESK_KEY",
        base_url_hint=BASE,
        limits=RateLimitSettings(**limits),  # type: ignore[arg-type]
        clock=clock,
    )


async def _get_all(api: ApiClient, n: int, lines: list[str]) -> None:
    with reporting_waits(lines.append):
        for _ in range(n):
            await api.get_json("/api/v2/tickets", endpoint="tickets")


def test_our_own_budget_pause_names_the_share_and_the_calls_left() -> None:
    clock = FakeClock()
    api = _client(clock, requests_per_minute=4, budget_share=0.5)
    lines: list[str] = []
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/tickets").mock(
            return_value=httpx.Response(
                200, json=[], headers={"X-RateLimit-Total": "4", "X-RateLimit-Remaining": "2310"}
            )
        )
        asyncio.run(_get_all(api, 3, lines))
    assert len(lines) == 1, lines  # the third call waits for the minute to roll over
    assert lines[0].startswith("Freshdesk limit: waiting 60 s, cjm's share is 2 calls/min")
    assert "2,310 left on the account" in lines[0]


def test_a_429_prints_one_line_with_the_wait_the_server_asked_for() -> None:
    clock = FakeClock()
    api = _client(clock)
    lines: list[str] = []
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/tickets").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "42"}, json={}),
                httpx.Response(200, json=[]),
            ]
        )
        asyncio.run(_get_all(api, 1, lines))
    assert lines[0] == (
        "Freshdesk limit: 429 on tickets, waiting 42 s as the server asked (retry 1 of 6)"
    )
    assert any(line.startswith("Freshdesk limit: waiting 42 s") for line in lines[1:])
    assert 42 in clock.sleeps


def test_each_retry_of_a_failing_server_prints_one_line() -> None:
    clock = FakeClock()
    api = _client(clock)
    lines: list[str] = []
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/tickets").mock(
            side_effect=[httpx.Response(500), httpx.Response(502), httpx.Response(200, json=[])]
        )
        asyncio.run(_get_all(api, 1, lines))
    assert [line.split(", retrying")[0] for line in lines] == [
        "Freshdesk: 500 on tickets",
        "Freshdesk: 502 on tickets",
    ]
    assert "(retry 1 of 6)" in lines[0] and "(retry 2 of 6)" in lines[1]


def test_a_server_that_keeps_timing_out_is_given_up_on_after_the_configured_time() -> None:
    clock = FakeClock()
    api = _client(clock, give_up_after_seconds=300, max_retries=20, timeout_seconds=120)

    def hang(request: httpx.Request) -> httpx.Response:
        clock.now += 120  # the read timeout ran out
        raise httpx.ReadTimeout("no answer", request=request)

    lines: list[str] = []
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/tickets").mock(side_effect=hang)
        with pytest.raises(UnreachableError) as excinfo:
            asyncio.run(_get_all(api, 1, lines))
    message = str(excinfo.value)
    assert message.startswith("Freshdesk gave no usable answer for ")
    assert "give_up_after_seconds" in message and "\n" not in message
    assert 300 <= clock.now - 1000.0 < 400  # minutes, not 20 × 120 s
    assert 1 <= len(lines) < 5


def test_rate_limit_waits_do_not_count_towards_giving_up() -> None:
    clock = FakeClock()
    api = _client(clock, give_up_after_seconds=100, max_retries=20)
    responses = (
        [httpx.Response(503)]
        + [httpx.Response(429, headers={"Retry-After": "60"}, json={})] * 4
        + [httpx.Response(200, json=[])]
    )
    with respx.mock(base_url=BASE) as mock:
        mock.get("/api/v2/tickets").mock(side_effect=responses)
        asyncio.run(_get_all(api, 1, []))
    assert clock.now - 1000.0 > 100  # waited longer than the give-up time, and still succeeded


def test_a_call_costing_several_credits_waits_once_not_once_per_credit() -> None:
    """A Freshdesk list page with `include`s costs 5 credits of a 10/min list limit: one pause
    (one progress line) until five slots are free, not five pauses of a few seconds."""
    from connectors.http import RateLimiter

    clock = FakeClock()
    waits: list[float] = []
    limiter = RateLimiter(10, clock, on_wait=lambda seconds, _paused: waits.append(seconds))

    async def steady_then_page() -> None:
        for _ in range(10):  # the window fills with calls 6 s apart
            await limiter.acquire()
            clock.now += 6
        await limiter.acquire(5)

    asyncio.run(steady_then_page())
    assert waits == [24.0]  # until the 4th-oldest slot leaves the window: one wait
