"""Rate limits and injected faults of the simulated Zendesk account: the plan's per-minute
limit and the incremental-export limit (fixed one-minute windows on the simulator's clock, 429 +
Retry-After, X-Rate-Limit headers), Retry-After violations, and the failures tests switch on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.responses import Response

from .http import ApiError, api_error

if TYPE_CHECKING:
    from .state import ZendeskSimulator


@dataclass
class SimulatorFaults:
    """Failure modes for reliability tests; all off by default.

    ``rate_limit_per_minute`` is the account (plan) limit, ``export_limit_per_minute`` the shared
    incremental-export limit (Zendesk: 10/min); both answer 429 with ``Retry-After`` (seconds to
    the end of the current clock minute) unless ``retry_after_header`` is False. ``fail_every_n``
    answers ``fail_status`` to every nth request; ``gateway_timeout_above_per_page`` answers 504
    to ticket_events pages larger than N; ``malformed_json_every_n`` truncates every nth body.
    """

    rate_limit_per_minute: int | None = None
    export_limit_per_minute: int | None = None
    retry_after_header: bool = True
    fail_every_n: int | None = None
    fail_status: int = 503
    gateway_timeout_above_per_page: int | None = None
    malformed_json_every_n: int | None = None
    # --- added for the production-grade connector (see tests/simulator/test_zendesk_parity.py)
    conflict_every_n: int | None = None
    """Answer 409 Conflict to every nth update_many (concurrent agent edit)."""
    ticket_update_fail_every_n: int | None = None
    """Fail every nth ticket inside a bulk job with a transient TicketUpdateFailed result."""
    service_unavailable_retry_after: int | None = None
    """Send this Retry-After (seconds) with injected 503s (Zendesk does during incidents)."""
    rate_limit_headers: bool = True
    """False: strip the X-Rate-Limit/ratelimit-* headers (as some proxies do), so a client
    that trusts its configured limits over-sends and meets 429 + Retry-After."""


@dataclass
class LimitState:
    """One account's limit bookkeeping (held by the simulator as ``sim.limits``)."""

    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Window name ("account", "export") -> (minute, requests used in it)."""
    retry_deadlines: dict[str, float] = field(default_factory=dict)
    """Window name -> the time before which a 429's Retry-After asked clients not to send."""
    requests: int = 0
    """Requests seen, for ``fail_every_n``."""
    conflicts: int = 0
    job_failures: int = 0
    malformed: int = 0


def conflict_due(sim: ZendeskSimulator) -> bool:
    """Whether this update_many is the nth one that answers 409 (``conflict_every_n``)."""
    n = sim.faults.conflict_every_n
    if not n:
        return False
    sim.limits.conflicts += 1
    return sim.limits.conflicts % n == 0


def job_failure_due(sim: ZendeskSimulator) -> bool:
    """Whether this ticket is the nth one in bulk jobs that fails transiently."""
    n = sim.faults.ticket_update_fail_every_n
    if not n:
        return False
    sim.limits.job_failures += 1
    return sim.limits.job_failures % n == 0


def _window(sim: ZendeskSimulator, name: str, limit: int | None) -> tuple[int, int, int]:
    """(used, limit, seconds to reset) of a fixed one-minute window on the injected clock."""
    now = sim.now_ts()
    minute = now // 60
    start, used = sim.limits.windows.get(name, (minute, 0))
    if start != minute:
        used = 0
    sim.limits.windows[name] = (minute, used)
    return used, limit or 0, 60 - now % 60


def _consume(sim: ZendeskSimulator, name: str) -> None:
    minute, used = sim.limits.windows[name]
    sim.limits.windows[name] = (minute, used + 1)


def _limited(sim: ZendeskSimulator, reset: int, what: str, key: str = "account") -> ApiError:
    wait = max(1, reset)
    # The deadline holds whether or not the header is sent: without it, a client must assume
    # the 60 s Zendesk documents; sending earlier than the deadline counts as a violation.
    deadline = sim.now_ts() + (wait if sim.faults.retry_after_header else 60)
    sim.limits.retry_deadlines[key] = max(sim.limits.retry_deadlines.get(key, 0.0), deadline)
    headers = {"Retry-After": str(wait)} if sim.faults.retry_after_header else {}
    return ApiError(
        429,
        {
            "error": "APIRateLimitExceeded",
            "description": f"Number of allowed {what} requests per minute exceeded",
        },
        headers,
    )


def rate_headers(sim: ZendeskSimulator, export: bool, listing: bool) -> dict[str, str]:
    used, limit, reset = _window(sim, "account", sim.faults.rate_limit_per_minute)
    shown = limit or 2500
    remaining = max(0, shown - used)
    headers = {"X-Rate-Limit": str(shown), "X-Rate-Limit-Remaining": str(remaining)}
    if listing:
        headers.update(
            {
                "ratelimit-limit": str(shown),
                "ratelimit-remaining": str(remaining),
                "ratelimit-reset": str(reset),
            }
        )
    if export and sim.faults.export_limit_per_minute:
        e_used, e_limit, e_reset = _window(sim, "export", sim.faults.export_limit_per_minute)
        headers["zendesk-ratelimit-incremental-exports"] = (
            f"total={e_limit}; remaining={max(0, e_limit - e_used)}; resets={e_reset}"
        )
    return headers


def gate(sim: ZendeskSimulator, export: bool) -> None:
    """Plan and export limits (429) and injected 5xx, in Zendesk's order."""
    faults = sim.faults
    now = sim.clock().timestamp()
    for key in ("account", "export") if export else ("account",):
        if now < sim.limits.retry_deadlines.get(key, 0.0):
            sim.retry_after_violations += 1
            break
    used, limit, reset = _window(sim, "account", faults.rate_limit_per_minute)
    if limit and used >= limit:
        raise _limited(sim, reset, "API")
    if export and faults.export_limit_per_minute:
        e_used, e_limit, e_reset = _window(sim, "export", faults.export_limit_per_minute)
        if e_used >= e_limit:
            raise _limited(sim, e_reset, "incremental export API", "export")
        _consume(sim, "export")
    _consume(sim, "account")
    sim.limits.requests += 1
    if faults.fail_every_n and sim.limits.requests % faults.fail_every_n == 0:
        status = faults.fail_status
        name = "ServiceUnavailable" if status == 503 else "InternalServerError"
        error = api_error(status, name, "Injected failure from the simulator")
        if status == 503 and faults.service_unavailable_retry_after is not None:
            wait = faults.service_unavailable_retry_after
            error.headers["Retry-After"] = str(wait)
            deadlines = sim.limits.retry_deadlines
            deadlines["account"] = max(deadlines.get("account", 0.0), sim.now_ts() + wait)
        raise error


def maybe_malformed(sim: ZendeskSimulator, response: Response) -> Response:
    n = sim.faults.malformed_json_every_n
    if not n or response.status_code >= 400:
        return response
    with sim.lock:
        sim.limits.malformed += 1
        if sim.limits.malformed % n:
            return response
    body = bytes(response.body)
    return Response(
        body[: max(1, len(body) // 2)],
        status_code=response.status_code,
        media_type="application/json",
    )
