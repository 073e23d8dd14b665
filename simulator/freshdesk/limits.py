"""Credits, rate limits and injected faults of the simulated Freshdesk account: the plan's
credits per minute and the lower tickets-list limit (fixed one-minute windows on the
simulator's clock, 429 + Retry-After, `X-RateLimit-*` headers), other apps' background credits,
Retry-After violations, and the failures tests switch on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from simulator.freshdesk.http import ApiError

if TYPE_CHECKING:
    from simulator.freshdesk.state import FreshdeskSimulator

INCLUDE_CREDITS = 2


@dataclass
class FreshdeskFaults:
    """Limits and failures; all off by default.

    `rate_limit_per_minute` is the plan's credits per minute for the account and
    `ticket_list_per_minute` the lower tickets-list limit (Growth: 200 and 20). Both answer 429
    with `Retry-After` (seconds to the end of the clock minute) unless `retry_after_header` is
    False. `background_credits_per_minute` are spent by "other apps" at the start of each minute.
    `fail_every_n` answers `fail_status` to every nth call; `conflict_every_n_updates` answers 409
    to every nth ticket update; `malformed_json_every_n` truncates every nth 2xx body.
    """

    rate_limit_per_minute: int | None = None
    ticket_list_per_minute: int | None = None
    retry_after_header: bool = True
    background_credits_per_minute: int = 0
    fail_every_n: int | None = None
    fail_status: int = 503
    conflict_every_n_updates: int | None = None
    malformed_json_every_n: int | None = None


@dataclass
class LimitState:
    """One account's limit bookkeeping (held by the simulator as ``sim.limits``)."""

    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Window name ("account", "list") -> (minute, credits used in it)."""
    retry_issued: float = 0.0
    retry_until: float = 0.0
    """A 429 issued at `retry_issued` asked clients to wait until `retry_until`."""
    requests: int = 0
    """Requests seen, for ``fail_every_n``."""
    updates: int = 0
    malformed: int = 0


def conflict_due(sim: FreshdeskSimulator) -> bool:
    """Whether this ticket update is the nth one that answers 409 (`conflict_every_n_updates`)."""
    sim.limits.updates += 1
    n = sim.faults.conflict_every_n_updates
    return n is not None and n > 0 and sim.limits.updates % n == 0


def _window(sim: FreshdeskSimulator, name: str) -> tuple[int, int]:
    """(credits used, seconds to reset) of the fixed one-minute window `name`."""
    now = sim.now_ts()
    minute = now // 60
    start, used = sim.limits.windows.get(name, (minute, 0))
    if start != minute:
        used = sim.faults.background_credits_per_minute if name == "account" else 0
    sim.limits.windows[name] = (minute, used)
    return used, 60 - now % 60


def _credits(request: Request, listing: bool) -> int:
    if not listing:
        return 1
    include = [x for x in request.query_params.get("include", "").split(",") if x]
    return 1 + INCLUDE_CREDITS * len(include)


def gate(sim: FreshdeskSimulator, request: Request, listing: bool) -> dict[str, str]:
    """Account and tickets-list limits (429 + Retry-After), Retry-After violations, faults."""
    faults = sim.faults
    now = sim.clock().timestamp()
    if sim.limits.retry_issued < now < sim.limits.retry_until:
        sim.retry_after_violations += 1
    cost = _credits(request, listing)
    used, reset = _window(sim, "account")
    total = faults.rate_limit_per_minute
    limits = [(total, used, "account")]
    if listing and faults.ticket_list_per_minute:
        list_used, _ = _window(sim, "list")
        limits.append((faults.ticket_list_per_minute, list_used, "list"))
    for limit, spent, _name in limits:
        if limit and spent + cost > limit:
            sim.rate_limited += 1
            state = sim.limits
            state.retry_issued, state.retry_until = now, max(state.retry_until, now + reset)
            headers = {"Retry-After": str(reset)} if faults.retry_after_header else {}
            headers.update(_rate_headers(sim, 0))
            raise ApiError(
                429, {"message": "You have exceeded the limit of requests per minute"}, headers
            )
    minute = int(now) // 60
    sim.limits.windows["account"] = (minute, used + cost)
    if listing and faults.ticket_list_per_minute:
        sim.limits.windows["list"] = (minute, sim.limits.windows["list"][1] + cost)
    sim.credits_used += cost
    sim.credits_by_minute[minute] += cost
    sim.limits.requests += 1
    if faults.fail_every_n and sim.limits.requests % faults.fail_every_n == 0:
        raise ApiError(faults.fail_status, {"description": "Injected failure from the simulator"})
    return _rate_headers(sim, cost)


def _rate_headers(sim: FreshdeskSimulator, cost: int) -> dict[str, str]:
    total = sim.faults.rate_limit_per_minute or 50_000
    used, _ = _window(sim, "account")
    return {
        "X-RateLimit-Total": str(total),
        "X-RateLimit-Remaining": str(max(0, total - used)),
        "X-RateLimit-Used-CurrentRequest": str(cost),
    }


def maybe_malformed(sim: FreshdeskSimulator, response: Response) -> Response:
    n = sim.faults.malformed_json_every_n
    if not n or response.status_code >= 400 or response.media_type != "application/json":
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
