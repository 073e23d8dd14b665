"""Real time end to end over real HTTP: the helpdesk simulator on a localhost port, `cjm serve`
(uvicorn, its lifespan starting the in-process workers) on another, signed webhooks posted to
it, on SQLite and PostgreSQL. What an agent sees: the ticket tagged seconds after the customer
wrote; cjm's own write echoing back through the trigger writes nothing more; repeats coalesce;
a running nightly sync is never fought; helpdesk failures back off and lose nothing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from connectors.freshdesk import FreshdeskConnector
from connectors.zendesk import ZendeskConnector
from journey import events
from journey.config import Settings, SourceConfig, load_settings
from journey.db import make_engine, session_scope
from journey.demo_live import ServeThread
from journey.lock import sync_lock
from journey.models import Classification, Conversation, WebhookEvent
from journey.runner import LazyMiner, build_serve_app, run_setup_fields, run_sync
from journey.worker import Worker, WorkerOptions
from simulator import (
    FreshdeskSimulator,
    SimulatorFaults,
    ZendeskSimulator,
    create_freshdesk_app,
    create_zendesk_app,
    serve_in_thread,
)
from tests.web.test_hooks import signed

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SECRET = "zd-signing-secret-0123456789"
FD_SECRET = "fd-shared-secret-abcdef"
UPDATE_MANY = "PUT /api/v2/tickets/update_many.json"
UPDATE_ONE = "PUT /api/v2/tickets/{id}.json"  # the worker's lone-ticket update (no job)
SHOW_MANY = "GET /api/v2/tickets/show_many.json"
FD_PUT = "PUT /api/v2/tickets/{id}"
FD_SHOW = "GET /api/v2/tickets/{id}"
COMPLAINT = (
    "My parcel still has not arrived after three weeks and tracking shows nothing. "
    "Where is my order? I want a refund if it does not come this week."
)


@dataclass
class World:
    kind: str
    sim: Any
    settings: Settings
    engine: Engine
    sim_url: str
    max_retries: int | None = None

    def factory(self, settings: Settings, source: SourceConfig) -> Any:
        if source.kind == "zendesk":
            zendesk = settings.zendesk_settings(source)
            if self.max_retries is not None:  # a helpdesk outage: fail fast, the queue retries
                fast = replace(
                    zendesk.limits, max_retries=self.max_retries, default_retry_after=0.1,
                    max_backoff_seconds=0.2,
                )  # fmt: skip
                zendesk = replace(zendesk, limits=fast)
            return ZendeskConnector(zendesk, job_poll_seconds=0.05)
        return FreshdeskConnector(settings.freshdesk_settings(source))

    def hook(self, url: str, ticket: int, invocation: str) -> httpx.Response:
        body = json.dumps({"ticket_id": str(ticket)}).encode()
        if self.kind == "zendesk":
            headers = signed(body, secret=SECRET, invocation=invocation)
            return httpx.post(f"{url}/hooks/zendesk/acme", content=body, headers=headers)
        headers = {"authorization": f"Bearer {FD_SECRET}", "content-type": "application/json"}
        return httpx.post(f"{url}/hooks/freshdesk/acme", content=body, headers=headers)

    def worker(self, **options: Any) -> Worker:
        return Worker(
            self.engine, self.settings, self.factory, MINER[0] or _miner(self.settings),
            WorkerOptions(**options),
        )  # fmt: skip

    def statuses(self) -> list[str]:
        with session_scope(self.engine) as session:
            return list(
                session.execute(select(WebhookEvent.status).order_by(WebhookEvent.id)).scalars()
            )

    def wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = events.stats(self.engine)
            if stats.queued + stats.claimed == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"queue not drained: {events.stats(self.engine)}")

    def stage(self, ticket: int) -> str | None:
        if self.kind == "zendesk":
            return self.sim.ticket(ticket).fields.get("Journey stage")
        return self.sim.ticket(ticket).custom_fields.get("cf_journey_stage")

    def tags(self, ticket: int) -> tuple[str, ...]:
        return self.sim.ticket(ticket).tags

    def reads(self) -> int:
        return self.sim.requests[SHOW_MANY if self.kind == "zendesk" else FD_SHOW]

    def writes(self) -> int:
        if self.kind == "zendesk":
            return self.sim.requests[UPDATE_MANY] + self.sim.requests[UPDATE_ONE]
        return self.sim.requests[FD_PUT]


MINER: list[Any] = [None]


def run(worker: Worker, *, once: bool = False) -> int:
    """Drain (or one pass) on a fresh event loop, closing the worker's connectors after."""

    async def go() -> int:
        try:
            return await (worker.drain_once() if once else worker.drain())
        finally:
            await worker.aclose()

    return asyncio.run(go())


def _miner(settings: Settings) -> Any:
    """One miner for the whole module: loading the model is the slow part of a worker start."""
    if MINER[0] is None:
        MINER[0] = LazyMiner(settings)
    return MINER[0]


def make_world(kind: str, tmp_path: Path, engine: Engine) -> tuple[World, Any]:
    if kind == "zendesk":
        sim: Any = ZendeskSimulator.generate(tickets=120, seed=11, now=NOW)
        sim.now = NOW
        server = serve_in_thread(create_zendesk_app(sim))
        source = (
            f'kind = "zendesk"\nbase_url = "{server.url}"\nemail = "lead@acme.example"\n'
            'token_env = "CJM_ZENDESK_TOKEN"\n'
        )
    else:
        sim = FreshdeskSimulator.generate(tickets=60, seed=5, now=NOW)
        server = serve_in_thread(create_freshdesk_app(sim))
        source = f'kind = "freshdesk"\nbase_url = "{server.url}"\napi_key_env = "CJM_FD_KEY"\n'
    config = tmp_path / "cjm.toml"
    config.write_text(
        f'[[sources]]\nname = "acme"\n{source}webhook_secret_env = "CJM_HOOK"\n',
        encoding="utf-8",
    )
    env = {
        "CJM_ZENDESK_TOKEN": "sim-token",
        "CJM_FD_KEY": "sim-key",
        "CJM_HOOK": SECRET if kind == "zendesk" else FD_SECRET,
    }
    settings = load_settings(config, env)
    world = World(kind, sim, settings, engine, server.url)
    asyncio.run(run_setup_fields(settings, connector_factory=world.factory, engine=engine))
    return world, server


@pytest.fixture(params=["zendesk", "freshdesk"])
def world(request: pytest.FixtureRequest, tmp_path: Path, engine: Engine) -> Iterator[World]:
    w, server = make_world(request.param, tmp_path, engine)
    try:
        yield w
    finally:
        server.stop()


def customer_writes(world: World) -> int:
    """A customer writes on a ticket cjm has never tagged; returns the ticket id."""
    sim = world.sim
    if world.kind == "freshdesk":
        return sim.create_ticket("Where is my order?", COMPLAINT)
    ticket = next(
        t for t in sim.open_tickets_with_customer_text()
        if sim.truth(t)[2] == "en" and not world.stage(t)
    )  # fmt: skip
    sim.add_comment(ticket, sim.ticket(ticket).requester_id, COMPLAINT)
    return ticket


def test_customer_comment_is_tagged_in_seconds_and_our_write_causes_no_further_write(
    world: World,
) -> None:
    app = build_serve_app(
        world.settings, connector_factory=world.factory, workers=1, engine=world.engine
    )
    server = ServeThread(app)
    try:
        ticket = customer_writes(world)
        started = time.monotonic()
        assert world.hook(server.url, ticket, "inv-1").status_code == 202
        world.wait_idle()
        elapsed = time.monotonic() - started
        assert world.statuses() == ["done"]
        assert world.stage(ticket), "no stage written"
        assert any(t.startswith("pain__") for t in world.tags(ticket))
        assert world.writes() == 1
        if world.kind == "zendesk":  # idle: one ticket, one synchronous PUT, no job to poll
            assert world.sim.requests[UPDATE_ONE] == 1 and world.sim.requests[UPDATE_MANY] == 0
        # cjm's write re-fires the helpdesk trigger (when its conditions let it): the worker reads
        # the ticket again, finds the desired state applied, and writes nothing.
        reads = world.reads()
        assert world.hook(server.url, ticket, "inv-2-after-our-write").status_code == 202
        world.wait_idle()
        # (Freshdesk sends no delivery id: the same body re-queues the handled row.)
        assert world.statuses() == ["done", "done"] if world.kind == "zendesk" else ["done"]
        assert world.reads() == reads + 1  # read again …
        assert world.writes() == 1  # … and nothing written
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["queue"]["depth"] == 0
        assert [w["alive"] for w in health["workers"]] == [True]
    finally:
        server.stop()
    assert elapsed < 30  # generous: the latency numbers live in bench/realtime.py
    assert events.heartbeats(world.engine) == []  # a clean stop removes the worker's beat


def test_repeats_and_duplicates_for_one_ticket_coalesce_into_one_read_and_one_write(
    world: World,
) -> None:
    ticket = customer_writes(world)
    for n in range(4):  # four comments' worth of doorbells, two delivered twice
        events.enqueue(world.engine, "acme", f"inv-{n}", [str(ticket)])
        if n % 2:
            events.enqueue(world.engine, "acme", f"inv-{n}", [str(ticket)])
    assert world.statuses() == ["queued"] * 4
    reads_before = world.sim.requests[SHOW_MANY] if world.kind == "zendesk" else 0
    worker = world.worker()
    processed = run(worker)
    assert processed == 4 and world.statuses() == ["done"] * 4
    assert world.writes() == 1
    if world.kind == "zendesk":
        assert world.sim.requests[SHOW_MANY] - reads_before == 1
    assert world.stage(ticket)


def test_a_running_sync_keeps_events_queued_until_it_ends(world: World) -> None:
    ticket = customer_writes(world)
    events.enqueue(world.engine, "acme", "inv-1", [str(ticket)])
    worker = world.worker(busy_retry=timedelta(seconds=0))
    with sync_lock(world.engine, "acme"):  # the nightly `cjm sync` holds the source
        assert run(worker, once=True) == 0
        with session_scope(world.engine) as session:
            row = session.execute(select(WebhookEvent)).scalar_one()
        assert (row.status, row.attempts, row.claimed_by) == ("queued", 0, None)
        assert world.writes() == 0 and not world.stage(ticket)
    assert run(worker) == 1
    assert world.statuses() == ["done"] and world.stage(ticket)


def test_after_a_model_change_a_batch_relabels_its_tickets_not_the_whole_history(
    world: World,
) -> None:
    """A new model (here a new `abstain_below`) re-labels history in the nightly sync or
    `cjm model apply`; a webhook batch mines only its own tickets, so it answers in seconds
    and never holds the source for minutes."""
    asyncio.run(run_sync(world.settings, connector_factory=world.factory, engine=world.engine))
    with session_scope(world.engine) as session:
        old = set(session.execute(select(Classification.model_version)).scalars())
    assert len(old) == 1
    ticket = customer_writes(world)
    events.enqueue(world.engine, "acme", "inv-new-model", [str(ticket)])
    stricter = world.settings.model_copy(
        update={"miner": world.settings.miner.model_copy(update={"abstain_below": 0.37})}
    )
    miner = LazyMiner(stricter)
    assert miner.version not in old
    worker = Worker(world.engine, world.settings, world.factory, miner, WorkerOptions())
    assert run(worker) == 1
    with session_scope(world.engine) as session:
        versions = dict(
            session.execute(
                select(Conversation.external_id, Classification.model_version).join(
                    Classification, Classification.conversation_id == Conversation.id
                )
            ).all()
        )
    assert versions.pop(str(ticket)) == miner.version
    assert set(versions.values()) == old  # the rest waits for the nightly sync


def test_helpdesk_failures_back_off_and_nothing_is_lost(world: World) -> None:
    if world.kind != "zendesk":
        pytest.skip("fault injection is exercised on the Zendesk simulator")
    ticket = customer_writes(world)
    events.enqueue(world.engine, "acme", "inv-1", [str(ticket)])
    world.sim.faults = SimulatorFaults(fail_every_n=1, fail_status=503)
    world.max_retries = 1
    worker = world.worker()
    assert run(worker, once=True) == 0
    with session_scope(world.engine) as session:
        row = session.execute(select(WebhookEvent)).scalar_one()
    assert row.status == "queued" and row.attempts == 1
    assert row.last_error and row.next_attempt_at > datetime.now(UTC)
    # The helpdesk recovers; once the back-off has passed the event is processed, once.
    world.sim.faults = SimulatorFaults()
    with session_scope(world.engine) as session:
        session.execute(update(WebhookEvent).values(next_attempt_at=datetime.now(UTC)))
    assert run(worker) == 1
    assert world.statuses() == ["done"] and world.stage(ticket) and world.writes() == 1


def test_claims_of_a_dead_worker_go_back_to_the_queue(engine: Engine) -> None:
    events.enqueue(engine, "acme", "inv-1", ["7"])
    claimed = events.claim(engine, "host:999999:dead", "acme")
    assert [c.ticket for c in claimed] == ["7"]
    assert events.claim(engine, "other", "acme") == []  # claimed: nobody else takes it
    events.beat(engine, "host:999999:dead", host="host", pid=999_999, source=None, processed=0)
    assert events.reclaim_dead_local(engine, "host") == 1  # pid 999999 does not run here
    again = events.claim(engine, "other", "acme")
    assert [(c.ticket, c.attempts) for c in again] == [("7", 2)]


@pytest.mark.postgres
def test_concurrent_workers_on_postgres_never_claim_one_event_twice(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer")
    total = 400
    for n in range(total):
        events.enqueue(engine, "acme", f"inv-{n}", [str(n % 150)])
    claims: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def drain(slot: int) -> None:
        own = make_engine(engine.url.render_as_string(hide_password=False))  # its own pool
        with own.connect():
            pass  # connected before the start, so no worker gets a head start
        start.wait()
        while batch := events.claim(own, f"w{slot}", "acme", max_tickets=1):
            claims[slot].extend(c.id for c in batch)
            events.complete(own, [c.id for c in batch])
        own.dispose()

    threads = [threading.Thread(target=drain, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    every = [i for c in claims for i in c]
    assert len(every) == len(set(every)) == total
    assert sum(1 for c in claims if c) >= 2  # they really ran side by side


def test_done_events_are_pruned_after_the_dedupe_window(engine: Engine) -> None:
    events.enqueue(engine, "acme", "old", ["1"])
    events.enqueue(engine, "acme", "recent", ["2"])
    events.complete(engine, [c.id for c in events.claim(engine, "w", "acme")])
    with session_scope(engine) as session:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.delivery == "old")
            .values(finished_at=datetime.now(UTC) - events.KEEP_DONE - timedelta(minutes=1))
        )
    assert events.prune(engine) == 1
    # The recent delivery still dedupes a repeat; the pruned one is past Zendesk's retries.
    assert events.enqueue(engine, "acme", "recent", ["2"]) == 0


def test_cjm_worker_with_an_unknown_source_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli_run import run as cjm

    config = tmp_path / "cjm.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "cjm.db"}"\n[[sources]]\nname = "acme"\n'
        'kind = "zendesk"\nbase_url = "http://zendesk.test"\nemail = "a@b.example"\n'
        'token_env = "CJM_ZENDESK_TOKEN"\n',
        encoding="utf-8",
    )
    code, _, err = cjm(["--config", str(config), "worker", "--source", "nope", "--once"], capsys)
    assert code == 2 and "no source named 'nope'" in err and "Traceback" not in err
