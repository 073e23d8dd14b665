"""Zendesk sync benchmark: API calls per 1,000 tickets, 429s, share of the allowed rate used,
wall time and peak memory, for a full first sync and an incremental second one.

    .venv/bin/python bench/zendesk_sync.py --tickets 10000
    .venv/bin/python bench/zendesk_sync.py --tickets 100000 --mode process

What runs: the real `ZendeskConnector` and the real `journey.sync.sync_source` (pull → store →
mine → write back) on a fresh SQLite file, against the bundled simulator over HTTP — in-process
through `httpx.ASGITransport` (`--mode asgi`) or over a localhost port served by a child process
(`--mode process`, so that cjm's peak memory is measured without the simulator's ~2.2 KB/ticket).

Rate limits are real, time is scaled: the simulator enforces the plan limit (`--plan`, per minute)
and the incremental-export limit (`--export`, per minute) with 429 + `Retry-After`; both the
simulator and the connector read one clock that runs `--time-scale` times faster than the wall
clock (default 60: one API minute per real second). Every wait the connector makes (its limiter,
Retry-After, back-off, job polling) is therefore a real wait of scaled length, and the
simulator counts any request sent before a `Retry-After` it announced had passed.

Sources of the numbers: the simulator's own request counter (`sim.requests`, what the server
saw) and the connector's `stats` (what the client sent); the script checks they agree.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.settings import RateLimitSettings, ZendeskSettings  # noqa: E402
from connectors.zendesk import ZendeskConnector  # noqa: E402
from simulator import (  # noqa: E402
    SimulatorFaults,
    ZendeskSimulator,
    create_zendesk_app,
    serve_in_thread,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WRITE = ("PUT /api/v2/tickets/update_many.json", "GET /api/v2/job_statuses/show_many.json")
SETUP = (
    "GET /api/v2/ticket_fields.json",
    "POST /api/v2/ticket_fields.json",
    "POST /api/v2/ticket_fields/{id}/options.json",
)
EXPORT_PATHS = ("/api/v2/incremental/tickets/cursor.json", "/api/v2/incremental/ticket_events.json")


# ------------------------------------------------------------------------------ scaled time


class ScaledClock:
    """The connector's clock: `scale` API seconds per real second, on the shared epoch."""

    def __init__(self, epoch: float, scale: float) -> None:
        self.epoch, self.scale = epoch, scale

    def monotonic(self) -> float:
        return (time.time() - self.epoch) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


def sim_clock(epoch: float, scale: float):
    """The simulator's clock: NOW + scaled elapsed time since the shared epoch."""

    def now() -> datetime:
        return NOW + timedelta(seconds=(time.time() - epoch) * scale)

    return now


# ------------------------------------------------------------------------------ simulator


def build_sim(
    tickets: int, seed: int, plan: int, export: int, epoch: float, scale: float
) -> ZendeskSimulator:
    sim = ZendeskSimulator.generate(tickets=tickets, seed=seed, now=NOW)
    sim.clock = sim_clock(epoch, scale)
    sim.faults = SimulatorFaults(rate_limit_per_minute=plan, export_limit_per_minute=export)
    return sim


def sim_stats(sim: ZendeskSimulator) -> dict[str, Any]:
    return {
        "requests": dict(sim.requests),
        "status": dict(sim.status_counts),
        "violations": sim.retry_after_violations,
    }


def agent_override(sim: ZendeskSimulator) -> tuple[int, str]:
    """An agent sets a stage by hand on a ticket cjm staged: (ticket id, the agent's value)."""
    for ticket_id in sim.open_tickets_with_customer_text():
        ours = sim.ticket(ticket_id).fields.get("Journey stage")
        if ours:
            theirs = "stage__purchase" if ours != "stage__purchase" else "stage__support"
            sim.agent_set_field(ticket_id, "Journey stage", theirs)
            return ticket_id, theirs
    raise RuntimeError("no staged ticket to override")


def _child(
    conn: Any, tickets: int, seed: int, plan: int, export: int, epoch: float, scale: float
) -> None:
    """`--mode process`: own the simulator, serve it, answer the parent's questions."""
    sim = build_sim(tickets, seed, plan, export, epoch, scale)
    server = serve_in_thread(create_zendesk_app(sim))
    conn.send(("ready", server.url, rss_mib()))
    while True:
        command, arg = conn.recv()
        if command == "stats":
            conn.send(sim_stats(sim))
        elif command == "override":
            conn.send(agent_override(sim))
        elif command == "stage":
            conn.send(sim.ticket(arg).fields.get("Journey stage"))
        elif command == "rss":
            conn.send(rss_mib())
        else:
            server.stop()
            conn.send("bye")
            return


class SimHandle:
    """The same questions, asked of an in-process simulator or of the child process."""

    def __init__(self, args: argparse.Namespace, epoch: float) -> None:
        self.mode = args.mode
        self.sim: ZendeskSimulator | None = None
        if self.mode == "asgi":
            self.sim = build_sim(
                args.tickets, args.seed, args.plan, args.export, epoch, args.time_scale
            )
            self.url = "http://zendesk.sim"
            self.sim_rss = 0.0
        else:
            ctx = mp.get_context("spawn")
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(
                target=_child,
                args=(
                    child,
                    args.tickets,
                    args.seed,
                    args.plan,
                    args.export,
                    epoch,
                    args.time_scale,
                ),
                daemon=True,
            )
            self.proc.start()
            _, self.url, self.sim_rss = self.conn.recv()

    def transport(self) -> httpx.AsyncBaseTransport | None:
        if self.sim is not None:
            return httpx.ASGITransport(app=create_zendesk_app(self.sim))
        return httpx.AsyncHTTPTransport(retries=0)

    def ask(self, command: str, arg: Any = None) -> Any:
        if self.sim is not None:
            return {
                "stats": lambda: sim_stats(self.sim),
                "override": lambda: agent_override(self.sim),
                "stage": lambda: self.sim.ticket(arg).fields.get("Journey stage"),
                "rss": lambda: 0.0,
            }[command]()
        self.conn.send((command, arg))
        return self.conn.recv()

    def close(self) -> None:
        if self.sim is None:
            self.ask("stop")
            self.proc.join(10)


# ------------------------------------------------------------------------------ measuring


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Recorder(httpx.AsyncBaseTransport):
    """Wraps the transport and notes (API-clock time, path, status) of every request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: ScaledClock) -> None:
        self.inner, self.clock = inner, clock
        self.log: list[tuple[float, str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.log.append((self.clock.monotonic(), request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Phase:
    name: str
    calls: Counter[str] = field(default_factory=Counter)
    status: Counter[int] = field(default_factory=Counter)
    violations: int = 0
    wall: float = 0.0
    api_minutes: float = 0.0
    rss_mib: float = 0.0
    cpu: float = 0.0  # CPU seconds of this process (the simulator's too in asgi mode)
    map_upkeep: float = 0.0  # seconds in the store's upkeep of the map's stored rows
    report: Any = None
    log: list[tuple[float, str, int]] = field(default_factory=list)

    def count(self, keys: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()) -> int:
        return sum(
            v for k, v in self.calls.items() if (keys is None or k in keys) and k not in exclude
        )


def diff(after: dict[str, Any], before: dict[str, Any]) -> tuple[Counter[str], Counter[int], int]:
    calls = Counter(after["requests"]) - Counter(before["requests"])
    status = Counter({int(k): v for k, v in after["status"].items()}) - Counter(
        {int(k): v for k, v in before["status"].items()}
    )
    return calls, status, after["violations"] - before["violations"]


def rate_share(
    log: list[tuple[float, str, int]], paths: tuple[str, ...] | None, per_minute: float
) -> tuple[float, int]:
    """Calls ÷ (API-clock minutes they spanned × the allowed rate per minute).

    Minutes are the fixed one-minute windows the server counts in (the simulator's and the
    connector's clocks share minute boundaries), first to last call inclusive."""
    times = [t for t, p, _ in log if paths is None or p in paths]
    if not times:
        return 0.0, 0
    windows = int(times[-1] // 60) - int(times[0] // 60) + 1
    return len(times) / (windows * per_minute), len(times)


# ------------------------------------------------------------------------------ the run


MAP_UPKEEP = [0.0]  # seconds spent keeping the map's stored journeys and daily rollups


def time_map_upkeep() -> None:
    """Wrap the store's calls that keep the map's stored rows (journey steps per customer, daily
    rollups per day, and the before/after snapshot that decides which need it, when the code
    has one), so each sync reports what they cost."""
    from journey.journey_map import rollups, steps

    targets = [(steps, "refresh_customers"), (rollups, "refresh_days")]
    try:
        from journey.journey_map import upkeep

        targets.append((upkeep, "snapshot"))
    except ImportError:  # the code before the snapshot existed (a "before" run)
        pass
    for module, name in targets:
        inner = getattr(module, name)

        def timed(*a: Any, _inner: Any = inner, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return _inner(*a, **k)
            finally:
                MAP_UPKEEP[0] += time.perf_counter() - started

        setattr(module, name, timed)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from journey.db import open_database
    from journey.sync import SyncOptions, sync_source
    from miner import ConversationMiner, default_taxonomy

    time_map_upkeep()
    epoch = time.time()
    clock = ScaledClock(epoch, args.time_scale)
    started = time.perf_counter()
    handle = SimHandle(args, epoch)
    generated = time.perf_counter() - started
    rss_after_sim = rss_mib()
    tmp = tempfile.mkdtemp(prefix="cjm-bench-")
    engine = open_database(f"sqlite:///{os.path.join(tmp, 'cjm.db')}")
    miner = ConversationMiner(default_taxonomy())
    limits = RateLimitSettings(
        requests_per_minute=args.plan,
        export_requests_per_minute=args.export,
        budget_share=args.share,
    )
    settings = ZendeskSettings(
        name="bench",
        base_url=handle.url,
        email="lead@acme.example",
        api_token="sim-token",
        limits=limits,
        messaging_transcripts=not args.no_messaging_log,
    )

    def connector(recorder: Recorder) -> ZendeskConnector:
        return ZendeskConnector(settings, transport=recorder, clock=clock, job_poll_seconds=2.0)

    phases: list[Phase] = []
    base = handle.ask("stats")
    rec = Recorder(handle.transport(), clock)
    c = connector(rec)
    fields = await c.setup_fields(
        [
            (f"stage__{s}", s.title())
            for s in (
                "awareness",
                "exploration",
                "consideration",
                "purchase",
                "delivery",
                "support",
            )
        ],
        [(f"stage_confidence__{v}", v.title()) for v in ("high", "medium", "low")],
    )
    await c.aclose()
    del fields
    after_setup = handle.ask("stats")
    setup_calls, _, _ = diff(after_setup, base)

    async def one_sync(name: str, before: dict[str, Any]) -> tuple[Phase, dict[str, Any]]:
        recorder = Recorder(handle.transport(), clock)
        conn = connector(recorder)
        t0, m0, c0, u0 = time.perf_counter(), clock.monotonic(), time.process_time(), MAP_UPKEEP[0]
        report = await sync_source(engine, conn, miner, base_url=handle.url, options=SyncOptions())
        await conn.aclose()
        phase = Phase(
            name,
            wall=time.perf_counter() - t0,
            cpu=time.process_time() - c0,
            map_upkeep=MAP_UPKEEP[0] - u0,
            api_minutes=(clock.monotonic() - m0) / 60,
            report=report,
            log=recorder.log,
        )
        after = handle.ask("stats")
        phase.calls, phase.status, phase.violations = diff(after, before)
        phase.rss_mib = rss_mib()
        assert report.error is None, report.error
        assert report.api_calls == phase.count(), (report.api_calls, phase.count())
        return phase, after

    first, after_first = await one_sync("first sync", after_setup)
    phases.append(first)
    # Between the nights: agents work; one of them sets a stage by hand.
    await asyncio.sleep(120 / args.time_scale)
    override_id, theirs = handle.ask("override")
    await asyncio.sleep(600 / args.time_scale)
    second, _ = await one_sync("second sync", after_first)
    phases.append(second)
    kept = handle.ask("stage", override_id) == theirs
    sim_rss = handle.ask("rss") if args.mode == "process" else None
    handle.close()
    return {
        "args": vars(args),
        "generated_s": generated,
        "rss_after_sim": rss_after_sim,
        "sim_rss": sim_rss,
        "setup_calls": sum(setup_calls.values()),
        "phases": phases,
        "override_kept": kept,
    }


def render(result: dict[str, Any]) -> str:
    args = result["args"]
    n = args["tickets"]
    per_k = 1000 / n
    lines = [
        f"## {n:,} tickets — mode {args['mode']}, plan {args['plan']}/min × share "
        f"{args['share']}, export {args['export']}/min, time ×{args['time_scale']:g}"
        + (", conversation_log off" if args["no_messaging_log"] else ""),
        "",
        f"simulator generation {result['generated_s']:.1f} s; setup-fields "
        f"{result['setup_calls']} calls (once per account, not per sync)",
        "",
        "| | first sync | second sync |",
        "|---|---:|---:|",
    ]
    first, second = result["phases"]

    def row(label: str, f: Any) -> None:
        lines.append(f"| {label} | {f(first)} | {f(second)} |")

    row(
        "tickets pulled / mined / written",
        lambda p: f"{p.report.conversations:,} / {p.report.mined:,} / {p.report.written:,}",
    )
    row("API calls: pull", lambda p: f"{p.count(exclude=WRITE):,}")
    row("API calls: write-back", lambda p: f"{p.count(WRITE):,}")
    row("API calls: total", lambda p: f"{p.count():,}")
    row("**calls per 1,000 tickets: pull**", lambda p: f"{p.count(exclude=WRITE) * per_k:.2f}")
    row("**calls per 1,000 tickets: write-back**", lambda p: f"{p.count(WRITE) * per_k:.2f}")
    row("**calls per 1,000 tickets: total**", lambda p: f"**{p.count() * per_k:.2f}**")
    row("429 received", lambda p: str(p.status.get(429, 0)))
    row("Retry-After violations (server-counted)", lambda p: str(p.violations))
    row(
        "export rate used (share of the export limit)",
        lambda p: "{:.0%} over {} calls".format(*rate_share(p.log, EXPORT_PATHS, args["export"])),
    )
    row(
        "write-back rate used (share of plan × budget share)",
        lambda p: "{:.0%} over {} calls".format(
            *rate_share(
                [
                    x
                    for x in p.log
                    if x[1].startswith(("/api/v2/tickets/update_many", "/api/v2/job_statuses"))
                ],
                None,
                args["plan"] * args["share"],
            )
        ),
    )
    row("API time (minutes, scaled clock)", lambda p: f"{p.api_minutes:.1f}")
    row("wall time (s)", lambda p: f"{p.wall:.1f}")
    row("cpu time of the process (s)", lambda p: f"{p.cpu:.1f}")
    row("of which map upkeep (s): journey steps, rollups", lambda p: f"{p.map_upkeep:.1f}")
    row("peak RSS of the cjm process (MiB)", lambda p: f"{p.rss_mib:.0f}")
    lines.append("")
    lines.append(
        "calls by endpoint (first sync): "
        + ", ".join(
            f"{k.split(' ', 1)[1]} {v}" for k, v in sorted(first.calls.items(), key=lambda x: -x[1])
        )
    )
    lines.append("")
    lines.append(
        f"RSS after generating the simulator in this process: "
        f"{result['rss_after_sim']:.0f} MiB"
        + (
            f"; simulator child process peak RSS {result['sim_rss']:.0f} MiB"
            if result["sim_rss"]
            else ""
        )
    )
    lines.append(
        f"second sync wrote nothing: {second.count(WRITE[:1]) == 0}; agent's manual "
        f"stage kept: {result['override_kept']}; second sync locked "
        f"{second.report.stage_locked} stage(s)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mode", choices=("asgi", "process"), default="asgi")
    parser.add_argument("--plan", type=int, default=700, help="plan limit, requests/min")
    parser.add_argument("--export", type=int, default=10, help="export limit, requests/min")
    parser.add_argument("--share", type=float, default=0.5, help="cjm's share of the plan")
    parser.add_argument(
        "--time-scale", type=float, default=10.0, help="API seconds per real second (both clocks)"
    )
    parser.add_argument(
        "--no-messaging-log",
        action="store_true",
        help="skip conversation_log for messaging tickets (to isolate its cost)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    result = asyncio.run(run(args))
    print(render(result))


if __name__ == "__main__":
    main()
