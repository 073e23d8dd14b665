"""One HTTP client per helpdesk account: rate limiting, bounded retries, error mapping, counting.

Why not httpx's own `retries=`: it only retries connect errors. 429 and 5xx need a policy that
honours `Retry-After` (seconds or HTTP date; 60 s when missing), backs off exponentially with a
cap, and gives up after a bounded number of attempts with a one-line error naming the fix.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from connectors.errors import (
    ApiError,
    AuthError,
    ConnectorError,
    NotFoundError,
    NotTheApiError,
    RateLimitedError,
    UnreachableError,
)
from connectors.settings import RateLimitSettings

log = logging.getLogger("cjm.http")

USER_AGENT = "cjm/0.1"

# ---- waits are explained: one line per retry and per rate-limit pause --------------------------

WaitReporter = Callable[[str], None]
REPORT_WAITS_FROM = 2.0  # seconds; shorter pauses are the limiter's normal pacing, not news

_wait_reporter: ContextVar[WaitReporter | None] = ContextVar("cjm_wait_reporter", default=None)


@contextmanager
def reporting_waits(report: WaitReporter) -> Iterator[None]:
    """Send every retry and rate-limit pause of the requests made inside this block to `report`
    (the sync's progress line), instead of the debug log.

    A context variable rather than a connector attribute: a Freshdesk source talks through two
    clients (Freshdesk and Freshchat) and the concurrent tasks a pull starts inherit the caller's
    context, so one `with` covers them all, and two syncs in one process never cross-report.
    """
    token = _wait_reporter.set(report)
    try:
        yield
    finally:
        _wait_reporter.reset(token)


def report_wait(message: str) -> None:
    """A wait the user should hear about: to the active reporter, else to the log."""
    reporter = _wait_reporter.get()
    if reporter is None:
        log.info("%s", message)
    else:
        reporter(message)


def make_http_client(
    base_url: str,
    *,
    auth: httpx.Auth | None,
    timeout_seconds: float,
    transport: httpx.AsyncBaseTransport | None = None,
    verify: bool = True,
) -> httpx.AsyncClient:
    """The one way connectors open an HTTP client: JSON, TLS verified unless configured off, a
    generous read timeout (big export pages are slow) and a short connect timeout."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        auth=auth,
        timeout=httpx.Timeout(timeout_seconds, connect=10.0),
        transport=transport,
        verify=verify,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
    )


class Clock(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class CallStats:
    """What a sync reports about its API use (deterministic counts, not timings)."""

    api_calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    token_refreshes: int = 0
    waited_seconds: float = 0.0  # time spent waiting on limits and Retry-After (clock seconds)

    def count(self, endpoint: str) -> None:
        self.api_calls += 1
        self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1


class RateLimiter:
    """A sliding one-minute window shared by every request of one account (or one endpoint family).

    `pause(seconds)` blocks all callers, so one 429 with `Retry-After` stops the whole account's
    traffic, not just the request that got it.
    """

    def __init__(
        self,
        per_minute: float,
        clock: Clock,
        window: float = 60.0,
        on_wait: Callable[[float, bool], None] | None = None,
    ) -> None:
        self.per_minute = max(1, int(per_minute))
        self.window = window
        self.clock = clock
        self.waited = 0.0
        # Told of every wait of REPORT_WAITS_FROM seconds or more: (seconds, paused by the
        # server rather than by our own per-minute budget).
        self.on_wait = on_wait
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)

    def set_rate(self, per_minute: float) -> None:
        """Adopt a new rate (e.g. the plan limit the server announced), never below 1/min."""
        self.per_minute = max(1, int(per_minute))

    async def acquire(self, credits: int = 1) -> None:
        """Take `credits` slots of the window at once (a Freshdesk list call with `include`s
        costs several): one wait, so one progress line, per call rather than per credit."""
        credits = max(1, min(credits, self.per_minute))
        async with self._lock:
            while True:
                now = self.clock.monotonic()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now, paused=True)
                    continue
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                overflow = len(self._sent) + credits - self.per_minute
                if overflow <= 0:
                    self._sent.extend([now] * credits)
                    return
                # Wait until enough of the oldest slots have left the window.
                await self._sleep(self._sent[overflow - 1] + self.window - now, paused=False)

    async def _sleep(self, seconds: float, *, paused: bool) -> None:
        self.waited += seconds
        if self.on_wait is not None and seconds >= REPORT_WAITS_FROM:
            self.on_wait(seconds, paused)
        await self.clock.sleep(seconds)


def parse_retry_after(value: str | None, default: float) -> float:
    """`Retry-After` as seconds; it may be a number or an HTTP date. Missing → `default`."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ApiClient:
    """Sends requests for one helpdesk account; the only place that looks at status codes."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        vendor: str,
        credential_env: str,
        base_url_hint: str,
        limits: RateLimitSettings,
        clock: Clock | None = None,
        stats: CallStats | None = None,
        on_unauthorized: Callable[[httpx.Response], Awaitable[bool]] | None = None,
    ) -> None:
        self.client = client
        self.vendor = vendor
        self.credential_env = credential_env
        self.base_url_hint = base_url_hint
        self.limits = limits
        self.clock = clock or SystemClock()
        self.stats = stats or CallStats()
        # Called once per request on a 401; True means "credentials were renewed, send again"
        # (OAuth refresh-token rotation). Without it a 401 is an AuthError at once.
        self.on_unauthorized = on_unauthorized
        budget = max(1.0, limits.requests_per_minute * limits.budget_share)
        self.limiter = RateLimiter(budget, self.clock, on_wait=self._account_wait)
        self.export_limiter = RateLimiter(
            limits.export_requests_per_minute, self.clock, on_wait=self._export_wait
        )
        self._plan_limit: int | None = None
        self._remaining: int | None = None  # the account's calls left this minute, last seen
        # A connector with calls in flight keeps this many in reserve: with no more left than
        # that it pauses `reserve_pause_seconds` (Freshdesk: concurrency + 1, 5 s), so the
        # calls already on their way do not hit a 429.
        self.reserve_calls = 0
        self.reserve_pause_seconds = 10.0

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        export: bool = False,
        not_found_ok: bool = False,
        raise_on: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send with limits and retries; return the 2xx response (or a 404 if `not_found_ok`).

        Statuses in `raise_on` are raised as ApiError at once instead of retried, for callers
        that have a better answer than waiting (a 504 on a big export page → a smaller page).
        """
        attempt = 0
        refreshed = False
        # A server that fails or never answers is given up on after `give_up_after_seconds`
        # from its first failure (timeouts included), not after max_retries × timeout_seconds
        # (~15 minutes of silence by default). Rate-limit waits are answers: they do not count.
        failing = _Failing(self.clock, self.limits.give_up_after_seconds)
        while True:
            started = self.clock.monotonic()
            if export:
                await self.export_limiter.acquire()
            await self.limiter.acquire()
            self.stats.waited_seconds += self.clock.monotonic() - started
            self.stats.count(endpoint)
            failing.attempt_started = self.clock.monotonic()
            try:
                response = await self.client.request(
                    method, url, params=params, json=json, **failing.timeout(self.limits)
                )
            except httpx.TimeoutException as exc:
                if 504 in raise_on:  # a read timeout on a big page is the same symptom
                    raise ApiError(f"timeout on {endpoint}", 504) from None
                attempt = await self._backoff(attempt, f"timeout on {endpoint}", exc, failing)
                continue
            except httpx.TransportError as exc:
                if attempt >= 2:
                    raise UnreachableError(
                        f"cannot reach {self.vendor} at {self.base_url_hint} "
                        f"({type(exc).__name__}): check {self._url_setting()} and the network"
                    ) from None
                attempt = await self._backoff(
                    attempt, f"connection error on {endpoint}", exc, failing
                )
                continue
            status = response.status_code
            if status < 400 or (status == 404 and not_found_ok):
                self._observe_headers(response, export)
                return response
            if status in raise_on:
                self.stats.server_errors += status >= 500
                raise ApiError(
                    f"{status} from {self.vendor} on {endpoint}: {_error_detail(response)}",
                    status,
                )
            if status == 401 and self.on_unauthorized is not None and not refreshed:
                refreshed = True
                if await self.on_unauthorized(response):
                    continue
            if status in (429, 503):
                self.stats.rate_limited += status == 429
                self.stats.server_errors += status == 503
                wait = parse_retry_after(
                    response.headers.get("Retry-After"), self.limits.default_retry_after
                )
                if attempt >= self.limits.max_retries:
                    raise RateLimitedError(
                        f"{status} from {self.vendor} on {endpoint} after {attempt} retries: "
                        "the account's API budget is exhausted; run again later or lower "
                        "budget_share in cjm.toml"
                    )
                # A plan-limit 429 (or a 503) stops the whole account; an export 429 only the
                # export family. Either way nothing is sent before Retry-After has passed.
                if status == 503 or not export or _is_plan_limit(response):
                    self.limiter.pause(wait)
                if export:
                    self.export_limiter.pause(wait)
                report_wait(
                    f"{self.vendor} limit: {status} on {endpoint}, waiting {wait:.0f} s as the "
                    f"server asked (retry {attempt + 1} of {self.limits.max_retries})"
                )
                attempt += 1
                self.stats.retries += 1
                failing.reset()
                continue
            if status >= 500 or status == 409:
                # 409: someone (an agent, a trigger) updated the same record concurrently.
                self.stats.server_errors += status >= 500
                attempt = await self._backoff(
                    attempt, f"{status} on {endpoint}", None, failing, status
                )
                continue
            raise self._client_error(response, endpoint)

    async def get_json(self, url: str, *, endpoint: str, **kwargs: Any) -> Any:
        response = await self.request("GET", url, endpoint=endpoint, **kwargs)
        return self.decode(response, endpoint)

    def decode(self, response: httpx.Response, endpoint: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"{self.vendor} sent a body that is not JSON on {endpoint} "
                f"(HTTP {response.status_code}); check base_url points at the {self.vendor} API",
                response.status_code,
            ) from None

    def shaped(self, body: Any, endpoint: str, *keys: str) -> Any:
        """`body` if it has the vendor's shape: a JSON object holding `keys`, or (no keys) a
        JSON array. Another JSON server on base_url (a proxy's status page, a different API)
        would otherwise read as an empty account: "0 tickets", exit 0, every night."""
        if keys:
            ok = isinstance(body, dict) and all(key in body for key in keys)
            want = "an object with " + ", ".join(f'"{key}"' for key in keys)
        else:
            ok, want = isinstance(body, list), "a list"
        if not ok:
            raise NotTheApiError(
                f"this is not a {self.vendor} API: {endpoint} answered JSON that is not {want}; "
                f"check base_url points at the {self.vendor} API ({self.base_url_hint})"
            )
        return body

    async def _backoff(
        self,
        attempt: int,
        what: str,
        exc: Exception | None,
        failing: _Failing,
        status: int | None = None,
    ) -> int:
        failing.start()
        if failing.exhausted():
            raise UnreachableError(
                f"{self.vendor} gave no usable answer for {failing.minutes()} ({what}): the "
                "server is down or hanging; nothing stored was lost, run again later (the limit "
                "is [sources.limits] give_up_after_seconds in cjm.toml)"
            ) from None
        if attempt >= self.limits.max_retries:
            if status is not None:
                raise ApiError(
                    f"{status} from {self.vendor} ({what}) after {attempt} retries: the service is "
                    "failing; nothing stored was lost, run again later",
                    status,
                )
            raise UnreachableError(
                f"{what} from {self.vendor} after {attempt} retries: check the network or raise "
                "timeout_seconds in cjm.toml; nothing stored was lost"
            ) from exc
        delay = min(self.limits.max_backoff_seconds, 2.0**attempt) * (0.5 + random.random() / 2)
        report_wait(
            f"{self.vendor}: {what}, retrying in {delay:.0f} s "
            f"(retry {attempt + 1} of {self.limits.max_retries})"
        )
        self.stats.retries += 1
        await self.clock.sleep(delay)
        return attempt + 1

    def _observe_headers(self, response: httpx.Response, export: bool = False) -> None:
        """Follow the account's own numbers: adopt the plan limit it announces (times our
        share), and slow down before the server has to say 429 when the account is nearly
        spent, by us or by the agents' apps that share it."""
        headers = response.headers
        budget = RateLimitHeaders.of(headers)
        total, left = budget.total, budget.remaining
        if total and total != self._plan_limit:
            self._plan_limit = total
            self.limiter.set_rate(total * self.limits.budget_share)
        if left is not None:
            self._remaining = left
        if left is not None and left <= max(1, int((total or 0) * RESERVE_SHARE)):
            self.limiter.pause(parse_retry_after(budget.reset, 10.0))
        elif left is not None and left <= self.reserve_calls:
            self.limiter.pause(self.reserve_pause_seconds)
        exports = headers.get("zendesk-ratelimit-incremental-exports")
        if export and exports:
            fields = dict(part.strip().split("=", 1) for part in exports.split(";") if "=" in part)
            if fields.get("remaining") == "0":
                self.export_limiter.pause(parse_retry_after(fields.get("resets"), 60.0))

    @property
    def plan_limit(self) -> int | None:
        """The account's calls per minute as its last response announced (None: not said)."""
        return self._plan_limit

    def _account_wait(self, seconds: float, paused: bool) -> None:
        self.report_limit_wait(seconds, paused, self.limiter.per_minute, "")

    def _export_wait(self, seconds: float, paused: bool) -> None:
        self.report_limit_wait(seconds, paused, self.export_limiter.per_minute, " (exports)")

    def report_limit_wait(self, seconds: float, paused: bool, per_minute: int, what: str) -> None:
        """A line like "Freshdesk limit: waiting 42 s, 2,310 calls left on the account" — why
        the run is quiet, and what would make it faster."""
        if paused:
            reason = "the account's budget is nearly spent"
            if self._remaining is not None:
                reason = f"{self._remaining:,} calls left on the account this minute"
            report_wait(f"{self.vendor} limit{what}: waiting {seconds:.0f} s, {reason}")
            return
        left = f"; {self._remaining:,} left on the account" if self._remaining is not None else ""
        report_wait(
            f"{self.vendor} limit{what}: waiting {seconds:.0f} s, cjm's share is {per_minute:,} "
            f"calls/min{left} (raise [sources.limits] in cjm.toml if your plan allows more)"
        )

    def _url_setting(self) -> str:
        return f"base_url/subdomain ({self.base_url_hint}) in cjm.toml"

    def _client_error(self, response: httpx.Response, endpoint: str) -> ConnectorError:
        status = response.status_code
        if status == 401:
            return AuthError(f"401 from {self.vendor}: check {self.credential_env}")
        if status == 403:
            return AuthError(
                f"403 from {self.vendor} on {endpoint}: the user behind {self.credential_env} "
                "lacks permission (write-back and setup-fields need an admin)"
            )
        if status == 404:
            return NotFoundError(
                f"404 from {self.vendor} on {endpoint}: check {self._url_setting()}"
            )
        detail = _error_detail(response)
        return ApiError(
            f"{status} from {self.vendor} on {endpoint}: {detail}",
            status,
            invalid_fields=_invalid_fields(response),
        )


class _Failing:
    """Since when one request has been failing (timeouts, refused connections, 5xx), and how
    long each further attempt may take so the whole stays within the give-up time."""

    def __init__(self, clock: Clock, give_up_after: float) -> None:
        self.clock = clock
        self.give_up_after = give_up_after
        self.since: float | None = None
        self.attempt_started: float | None = None

    def start(self) -> None:
        """The request failed: it has been failing since its failed attempt began (a hung
        server's first timeout counts)."""
        if self.since is None:
            self.since = (
                self.attempt_started if self.attempt_started is not None else self.clock.monotonic()
            )

    def reset(self) -> None:
        self.since = None

    def elapsed(self) -> float:
        return 0.0 if self.since is None else self.clock.monotonic() - self.since

    def exhausted(self) -> bool:
        return self.since is not None and self.elapsed() >= self.give_up_after

    def minutes(self) -> str:
        seconds = self.elapsed()
        return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"

    def timeout(self, limits: RateLimitSettings) -> dict[str, Any]:
        """No override while all is well; once failing, no attempt outlives the give-up time."""
        if self.since is None:
            return {}
        left = max(1.0, self.give_up_after - self.elapsed())
        if left >= limits.timeout_seconds:
            return {}
        return {"timeout": httpx.Timeout(left, connect=min(10.0, left))}


RESERVE_SHARE = 0.02  # below 2 % of the plan left in this minute: wait for the reset


@dataclass(frozen=True)
class RateLimitHeaders:
    """What one response says about the account's API budget. The one reader of these headers
    for every vendor: Zendesk `X-Rate-Limit` / `X-Rate-Limit-Remaining`, Freshdesk
    `X-RateLimit-Total` / `X-RateLimit-Remaining`, and the IETF draft's `ratelimit-limit` /
    `-remaining` / `-reset` (`Retry-After` on a 429 is read by `parse_retry_after`, in
    `ApiClient.request`). Freshdesk's `X-RateLimit-Used-CurrentRequest` is not read: cjm charges
    a call's credits before sending it, from the `include`s it asks for."""

    total: int | None = None  # the plan's calls per minute
    remaining: int | None = None  # calls left on the account this minute
    reset: str | None = None  # seconds until the window resets

    @classmethod
    def of(cls, headers: httpx.Headers) -> RateLimitHeaders:
        return cls(
            total=_int_header(headers, "X-Rate-Limit", "X-RateLimit-Total", "ratelimit-limit"),
            remaining=_int_header(
                headers, "X-Rate-Limit-Remaining", "X-RateLimit-Remaining", "ratelimit-remaining"
            ),
            reset=headers.get("ratelimit-reset"),
        )


def _int_header(headers: httpx.Headers, *names: str) -> int | None:
    for name in names:
        value = headers.get(name)
        if value is None:
            continue
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _is_plan_limit(response: httpx.Response) -> bool:
    """An export call can also hit the account (plan) limit: then everything must wait."""
    try:
        body = response.json()
    except ValueError:
        return True
    text = str(body.get("description", "")) if isinstance(body, dict) else ""
    return "incremental export" not in text.lower()


def _invalid_fields(response: httpx.Response) -> frozenset[str]:
    """The fields a validation error calls unknown (Freshdesk: `{"errors": [{"field": …, "code":
    "invalid_field"}]}`), so a write can tell "cjm's field is gone" from a bad value."""
    try:
        body = response.json()
    except ValueError:
        return frozenset()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return frozenset()
    return frozenset(
        str(e["field"])
        for e in errors
        if isinstance(e, dict) and e.get("field") and e.get("code") == "invalid_field"
    )


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].replace("\n", " ")
    if isinstance(body, dict):
        parts = [str(body.get(k)) for k in ("error", "description", "message") if body.get(k)]
        if parts:
            return ": ".join(parts)[:300]
    return str(body)[:200]
