"""Real-time workers: drain the webhook queue through the nightly sync's own steps.

A worker loops over the sources that have due events: it claims a batch (journey/events.py —
every due event of up to `batch_tickets` tickets, so repeats coalesce), reads those tickets by
id, and runs the same store → mine → outbox → write-back steps as `cjm sync`
(`sync_source(…, SyncOptions(tickets=…))`). When idle a batch is one ticket and one write; under
load a batch holds up to 100 tickets and the write-back groups identical deltas into
`update_many` calls. Rate limits and `Retry-After` are the connector's: one connector (one
limiter) per source per worker, kept between batches.

**A running nightly sync wins.** A batch holds the source's sync lock (journey/lock.py) for the
few seconds it takes, taken *before* claiming. If the lock is taken (a nightly `cjm sync`,
`cjm model apply`, or another worker on the same source), the worker does not wait and does not
fight: it leaves that source's events queued, untouched (no attempt counted), looks again after
`busy_retry`, and moves on to other sources. (A nightly sync that starts inside a worker's
batch exits with EX_TEMPFAIL like any busy sync; cron retries it.) So one source is worked by
one worker at a time — the write-back plans from the source's whole outbox, and two of them at
once could send one delta twice; several workers (threads, processes, machines) spread over
sources, and `FOR UPDATE SKIP LOCKED` keeps their claims disjoint regardless.

**No loops.** cjm's own write re-fires the helpdesk trigger at most once per write (the trigger
itself excludes API updates when set up by `cjm setup-webhook`); the worker then reads the
ticket, the text hash is unchanged so nothing is re-mined, the desired state equals the applied
one, and nothing is written.

**Crash safety.** Claims carry the worker's name; the worker's heartbeat row is touched every
`heartbeat` seconds; claims of a worker silent for `events.STALE_AFTER` go back to the queue
(`reclaim_stale`, run by every worker). The steps themselves are the sync's, crash-safe by
ordering; a repeated event costs reads, never a second write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine

from connectors.base import HelpdeskConnector, PollsJobs
from connectors.errors import ConnectorError
from connectors.records import FieldIds
from journey import events
from journey.config import Settings, SourceConfig
from journey.errors import SyncLockedError
from journey.lock import sync_lock
from journey.sync import Miner, SourceReport, SyncOptions, sync_source

log = logging.getLogger("cjm.worker")

ConnectorFactory = Callable[[Settings, SourceConfig], HelpdeskConnector]
POOL_KEY = "journey.worker"  # WebContext.state key of `cjm serve`'s in-process WorkerPool
FIELDS_TTL = 600.0  # seconds a worker trusts its field listing (titles; ids are saved)
PRUNE_EVERY = 3600.0  # seconds between deletions of old done events (events.KEEP_DONE)


@dataclass
class WorkerOptions:
    source: str | None = None  # drain only this source (`cjm worker --source`)
    batch_tickets: int = 100  # tickets per claim: the write-back groups them (≤100 per call)
    idle_seconds: float = 0.2  # how often an idle worker looks for due events (unless woken)
    busy_retry: timedelta = timedelta(seconds=5)  # while the source's sync lock is taken
    heartbeat: float = 2.0
    stale: timedelta = events.STALE_AFTER
    # Zendesk job polling (then doubling): a small job takes about a second, so the first poll
    # at 0.5 s and the second at 1.5 s beat 0.25/0.75/1.75 s in both latency and calls.
    job_poll_seconds: float = 0.5
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )


@dataclass
class BatchResult:
    events: int = 0
    tickets: int = 0
    written: int = 0
    api_calls: int = 0
    busy: bool = False
    error: str | None = None


class Worker:
    """One worker: a loop, a heartbeat, a connector per source. `run` until `stop` is set."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        connector_factory: ConnectorFactory,
        miner: Miner,
        options: WorkerOptions | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.connector_factory = connector_factory
        self.miner = miner
        self.options = options or WorkerOptions()
        self.name = self.options.name
        self.processed = 0
        self._connectors: dict[str, HelpdeskConnector] = {}
        self._fields: dict[str, tuple[float, FieldIds]] = {}
        self._last_beat = 0.0
        self._last_prune = 0.0
        self._busy_until: dict[str, float] = {}  # source → when to try its lock again
        # Set by the webhook handler of the same process: an idle worker starts at once.
        self.wake = wake or threading.Event()

    # ---- the loop --------------------------------------------------------------------------

    async def run(self, stop: threading.Event | asyncio.Event) -> None:
        log.info("worker %s started (source: %s)", self.name, self.options.source or "all")
        try:
            with self._heartbeat():
                while not stop.is_set():
                    self.wake.clear()
                    done = await self.drain_once()
                    if not done:
                        await self._idle()
        finally:
            await self.aclose()
            events.forget(self.engine, self.name)
            log.info("worker %s stopped after %d events", self.name, self.processed)

    @contextmanager
    def _heartbeat(self) -> Iterator[None]:
        """Beat from a thread of its own while the worker runs: a batch that waits minutes for
        the API budget (or mines a big batch) must not look dead and lose its claims."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.options.heartbeat):
                try:
                    self._beat(force=True)
                except Exception:  # a database hiccup: the next beat tries again
                    log.warning("worker %s: heartbeat failed", self.name, exc_info=True)

        self._beat(force=True)
        thread = threading.Thread(target=beat, name=f"cjm-heartbeat-{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(10)

    async def _idle(self) -> None:
        """Sleep `idle_seconds`, or less when a webhook arrives (checked every 10 ms)."""
        deadline = time.monotonic() + self.options.idle_seconds
        while time.monotonic() < deadline and not self.wake.is_set():
            await asyncio.sleep(0.01)

    async def drain_once(self) -> int:
        """One pass: a batch from every source with due events; returns events finished."""
        finished = 0
        for source in events.due_sources(self.engine, self.options.source):
            result = await self.process_batch(source)
            finished += 0 if result.busy or result.error else result.events
        return finished

    async def drain(self, timeout: float = 60.0) -> int:
        """Process until nothing is due (tests, `cjm worker --once`); returns events finished."""
        deadline = time.monotonic() + timeout
        total = 0
        with self._heartbeat():
            while time.monotonic() < deadline:
                done = await self.drain_once()
                total += done
                if not events.due_sources(self.engine, self.options.source):
                    break
                if not done:
                    await asyncio.sleep(self.options.idle_seconds)
        return total

    def _beat(self, force: bool = False) -> None:
        """Touch our heartbeat row; put back the claims of dead workers; prune old events."""
        now = time.monotonic()
        if not force and now - self._last_beat < self.options.heartbeat:
            return
        self._last_beat = now
        events.beat(
            self.engine,
            self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            source=self.options.source,
            processed=self.processed,
        )
        if now - self._last_prune > PRUNE_EVERY:
            self._last_prune = now
            events.prune(self.engine)
        back = events.reclaim_stale(self.engine, self.options.stale)
        back += events.reclaim_dead_local(self.engine, socket.gethostname())
        if back:
            log.warning("worker %s: took back %d events of a worker that stopped", self.name, back)

    # ---- one batch -------------------------------------------------------------------------

    async def process_batch(self, source: str) -> BatchResult:
        """Take the source's sync lock (never waiting), claim a batch, process it, record the
        outcome. A busy source is left alone, its events untouched, for `busy_retry`."""
        result = BatchResult()
        if time.monotonic() < self._busy_until.get(source, 0.0):
            result.busy = True
            return result
        try:
            with sync_lock(self.engine, source):
                return await self._locked_batch(source, result)
        except SyncLockedError:
            self._busy_until[source] = time.monotonic() + self.options.busy_retry.total_seconds()
            result.busy = True
            log.info("worker %s: %s is busy (a sync holds it); its events wait", self.name, source)
            return result

    async def _locked_batch(self, source: str, result: BatchResult) -> BatchResult:
        config = self._config(source)
        claimed = events.claim(self.engine, self.name, source, self.options.batch_tickets)
        result.events = len(claimed)
        if not claimed:
            return result
        if config is None:  # the source left the config after its events were queued
            result.error = f"no source named {source!r} in the config"
            events.fail(self.engine, claimed, result.error)
            return result
        tickets = list(dict.fromkeys(e.ticket for e in claimed))
        result.tickets = len(tickets)
        report = await self._sync(config, tickets)
        result.written, result.api_calls = report.written, report.api_calls
        problem = report.error or (
            f"{report.write_failures} ticket updates failed" if report.write_failures else None
        )
        if problem:
            result.error = problem
            events.fail(self.engine, claimed, problem)
            log.warning(
                "worker %s: %s: %d tickets failed, retried later: %s",
                self.name, source, len(tickets), problem,
            )  # fmt: skip
            return result
        events.complete(self.engine, [e.id for e in claimed])
        self.processed += len(claimed)
        log.info(
            "worker %s: %s: %d events → %d tickets read, %d written, %d API calls",
            self.name, source, len(claimed), len(tickets), report.written, report.api_calls,
        )  # fmt: skip
        return result

    async def _sync(self, config: SourceConfig, tickets: list[str]) -> SourceReport:
        connector = self._connector(config)
        try:
            fields = await self._field_ids(config.name, connector)
        except ConnectorError as exc:
            return SourceReport(source=config.name, error=str(exc))
        report = await sync_source(
            self.engine,
            connector,
            self.miner,
            base_url=config.resolved_base_url(),
            options=SyncOptions(
                tickets=tickets,
                fields=fields,
                writeback=config.writeback,
                redact_pii=self.settings.miner.redact_pii,
            ),
        )
        if report.error:  # e.g. a field the helpdesk says is gone: list afresh next batch
            self._fields.pop(config.name, None)
        return report

    async def _field_ids(self, source: str, connector: HelpdeskConnector) -> FieldIds:
        """The helpdesk's field listing, kept `FIELDS_TTL` seconds between batches: the sync
        reads cjm's field ids back from the `source` row (`cjm setup-fields` saved them), but
        the titles that name segments are not stored, and one listing per batch of events would
        cost a call per event on a quiet day."""
        cached = self._fields.get(source)
        if cached and time.monotonic() - cached[0] < FIELDS_TTL:
            return cached[1]
        fields = await connector.discover_fields()
        self._fields[source] = (time.monotonic(), fields)
        return fields

    def _config(self, source: str) -> SourceConfig | None:
        return next((s for s in self.settings.sources if s.name == source), None)

    def _connector(self, config: SourceConfig) -> HelpdeskConnector:
        connector = self._connectors.get(config.name)
        if connector is None:
            connector = self.connector_factory(self.settings, config)
            if isinstance(connector, PollsJobs):  # Zendesk: jobs and lone updates
                connector.job_poll_seconds = self.options.job_poll_seconds
                connector.single_updates = True  # idle: one ticket, one synchronous PUT
            self._connectors[config.name] = connector
        return connector

    async def aclose(self) -> None:
        for connector in self._connectors.values():
            await connector.aclose()
        self._connectors.clear()


def run_in_thread(worker: Worker, stop: threading.Event) -> threading.Thread:
    """Run a worker on its own thread and event loop (`cjm serve`): mining and database work
    never stall the web server's loop, so webhooks keep getting their 202 at once."""

    def target() -> None:
        try:
            asyncio.run(worker.run(stop))
        except Exception:  # a worker that dies must say so; the others keep draining
            log.exception("worker %s stopped on an error", worker.name)

    thread = threading.Thread(target=target, name=f"cjm-worker-{worker.name}", daemon=True)
    thread.start()
    return thread


class WorkerPool:
    """The in-process workers of `cjm serve` (`--workers N`), each on its own thread; started
    and stopped by the web app's lifespan. N workers help with several sources: one source is
    worked by one worker at a time (its sync lock)."""

    def __init__(self, make_worker: Callable[[threading.Event], Worker], count: int) -> None:
        self.make_worker = make_worker
        self.count = count
        self._wake = threading.Event()
        self.workers: list[Worker] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self) -> None:
        self._stop.clear()
        for _ in range(self.count):
            worker = self.make_worker(self._wake)
            self.workers.append(worker)
            self._threads.append(run_in_thread(worker, self._stop))

    def wake(self) -> None:
        """A webhook was stored: idle workers look at the queue now, not at their next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Let each worker finish its batch (a write in flight completes), then return."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self.workers.clear()
