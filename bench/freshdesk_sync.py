"""Freshdesk sync benchmark: API calls per 1,000 changed tickets, 429s, Retry-After violations,
share of the allowed rate used, wall time at a realistic rate limit, peak memory.

Runs the real pipeline (`journey.runner.run_sync`: pull → conversations → mine → write back)
against the Freshdesk simulator in-process, with the plan's limits enforced by the simulator
(account credits/min and the lower tickets-list limit, 429 + Retry-After) and *simulated time*
shared by both sides (`VirtualClock`): a sync that needs 20 minutes of API budget runs in seconds,
and its "wall time at the rate limit" is the simulated time it took.

    .venv/bin/python bench/freshdesk_sync.py                       # 1,000 tickets, Growth plan
    .venv/bin/python bench/freshdesk_sync.py --tickets 5000 --plan 400 --list-limit 100
    .venv/bin/python bench/freshdesk_sync.py --background 80       # other apps use 80 credits/min

"Allowed rate" = plan calls/min × `budget_share` (the share cjm may use; agents' apps need the
rest). The second sync must write nothing and fetch no conversations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from connectors.freshdesk import FreshdeskConnector  # noqa: E402
from journey.config import Settings, SourceConfig, load_settings  # noqa: E402
from journey.db import open_database  # noqa: E402
from journey.runner import run_setup_fields, run_sync  # noqa: E402
from simulator import (  # noqa: E402
    FreshdeskFaults,
    FreshdeskSimulator,
    VirtualClock,
    create_freshdesk_app,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = """\
[database]
url = "sqlite:///{db}"

[[sources]]
name = "bench"
kind = "freshdesk"
base_url = "http://bench.freshdesk.test"
api_key_env = "CJM_FRESHDESK_KEY"

[sources.limits]
requests_per_minute = {plan}
{list_line}budget_share = {share}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--plan", type=int, default=200, help="account calls/min (Growth: 200)")
    parser.add_argument("--list-limit", type=int, default=20, help="tickets-list calls/min")
    parser.add_argument("--share", type=float, default=0.5, help="budget_share")
    parser.add_argument(
        "--learn-list-limit",
        action="store_true",
        help="leave ticket_list_per_minute out of cjm.toml: cjm learns it from the plan the "
        "account announces (X-RateLimit-Total); the simulator still enforces --list-limit",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--background", type=int, default=0, help="other apps' credits/min")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)

    clock = VirtualClock(NOW)
    faults = FreshdeskFaults(
        rate_limit_per_minute=args.plan,
        ticket_list_per_minute=args.list_limit,
        background_credits_per_minute=args.background,
    )
    sim = FreshdeskSimulator.generate(
        tickets=args.tickets, seed=args.seed, now=NOW, clock=clock, faults=faults, chats=0
    )
    workdir = Path(tempfile.mkdtemp(prefix="cjm-bench-fd-"))
    config = workdir / "cjm.toml"
    config.write_text(
        CONFIG.format(
            db=workdir / "cjm.db",
            plan=args.plan,
            list_line=""
            if args.learn_list_limit
            else f"ticket_list_per_minute = {args.list_limit}\n",
            share=args.share,
        ),
        encoding="utf-8",
    )
    settings = load_settings(config, {"CJM_FRESHDESK_KEY": "sim-key"})
    engine = open_database(settings.database_url)

    def factory(settings: Settings, source: SourceConfig) -> FreshdeskConnector:
        return FreshdeskConnector(
            replace(settings.freshdesk_settings(source), concurrency=args.concurrency),
            transport=httpx.ASGITransport(app=create_freshdesk_app(sim)),
            clock=clock,
        )

    asyncio.run(run_setup_fields(settings, connector_factory=factory, engine=engine))
    clock.advance(120)  # a fresh rate window, as a nightly run would start with

    def measured_sync() -> dict[str, float | None]:
        calls0, credits0, limited0 = sum(sim.requests.values()), sim.credits_used, sim.rate_limited
        violations0, virtual0, wall0 = sim.retry_after_violations, clock.elapsed, time.monotonic()
        convs0 = sim.requests["GET /api/v2/tickets/{id}/conversations"]
        puts0 = sim.requests["PUT /api/v2/tickets/{id}"]
        (report,) = asyncio.run(run_sync(settings, connector_factory=factory, engine=engine))
        if report.error:
            raise SystemExit(f"sync failed: {report.error}")
        minutes = max(1e-9, (clock.elapsed - virtual0) / 60)
        credits = sim.credits_used - credits0
        allowed = args.plan * args.share
        first_minute = int(NOW.timestamp() + virtual0) // 60
        last_minute = int(NOW.timestamp() + clock.elapsed) // 60
        inner = [sim.credits_by_minute[m] for m in range(first_minute + 1, last_minute)]
        return {
            "api_calls": sum(sim.requests.values()) - calls0,
            "credits": credits,
            "conversations_calls": sim.requests["GET /api/v2/tickets/{id}/conversations"] - convs0,
            "update_calls": sim.requests["PUT /api/v2/tickets/{id}"] - puts0,
            "tickets_pulled": report.conversations,
            "written": report.written,
            "status_429": sim.rate_limited - limited0,
            "retry_after_violations": sim.retry_after_violations - violations0,
            "simulated_minutes": round(minutes, 2),
            # Steady state: whole clock minutes strictly inside the run.
            "share_of_allowed_rate": round(sum(inner) / len(inner) / allowed, 3) if inner else None,
            "busiest_minute_share": round(
                max(sim.credits_by_minute[m] for m in range(first_minute, last_minute + 1))
                / allowed,
                3,
            ),
            "real_seconds": round(time.monotonic() - wall0, 1),
        }

    first = measured_sync()
    clock.advance(600)
    second = measured_sync()
    changed = len(sim.listed_ticket_ids())
    result = {
        "tickets": args.tickets,
        "changed_tickets": changed,
        "plan_per_minute": args.plan,
        "list_limit_per_minute": args.list_limit,
        "list_limit_configured": not args.learn_list_limit,
        "budget_share": args.share,
        "background_credits_per_minute": args.background,
        "first_sync": first,
        "api_calls_per_1000_changed": round(first["api_calls"] * 1000 / changed, 1),
        "second_sync": second,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
