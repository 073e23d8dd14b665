"""The live part of `cjm demo`: `cjm serve` in-process, a real webhook, a customer writes, the
ticket is tagged seconds later — and cjm's own write starts no loop.

Why in the demo: the nightly sync alone hides that cjm is also real time. After the demo's two
syncs this starts `cjm serve` (uvicorn on a free 127.0.0.1 port, one worker, in a thread), runs
`setup-webhook` against the simulator with that URL (so the simulator's trigger fires *signed*
webhooks at it, as Zendesk does), has a customer write through the simulator (never through
cjm), and measures: seconds until the ticket carries a stage, how many webhooks cjm's own write
fired, and how many further writes followed (the loop guard: must be 0).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from journey import events
from journey.config import Settings
from journey.runner import ConnectorFactory, build_serve_app, run_setup_webhook
from journey.sync import Progress
from journey.writeback import STAGE_PREFIX
from miner import default_taxonomy

# What the customer writes: a plain delivery complaint, so the miner is sure of the stage.
CUSTOMER_TEXT = (
    "My parcel still has not arrived after three weeks and the tracking page shows nothing. "
    "Where is my order? Please send it or refund me this week."
)
WAIT_SECONDS = 30.0  # a live update slower than this is reported as missing
SETTLE_SECONDS = 1.5  # after the queue drains: time for an echo of cjm's write to arrive


class LiveHelpdesk(Protocol):
    """What the live demo needs of the helpdesk (the simulator, through cli.py): a customer
    writing on a ticket, what the ticket carries, and counters to prove the loop guard."""

    def customer_writes(self, text: str) -> int:
        """An end user's public comment on an open ticket cjm has not staged; its id."""
        ...

    def stage(self, ticket_id: int) -> str | None: ...

    def webhooks_fired(self) -> int:
        """Trigger actions that sent a webhook so far."""
        ...

    def ticket_writes(self) -> int:
        """Ticket update requests the helpdesk has answered so far."""
        ...


class ServeThread:
    """`cjm serve`'s app under uvicorn on 127.0.0.1 in a daemon thread, lifespan on (so the
    in-process worker runs); `stop()` shuts it down cleanly (the worker's heartbeat goes)."""

    def __init__(self, app: Any, startup_timeout: float = 60.0) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        # Ctrl-C stays with the main thread: uvicorn installs signal handlers only there.
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="cjm-serve"
        )
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise RuntimeError("cjm serve did not start on 127.0.0.1 (see the log above)")
            time.sleep(0.02)

    def stop(self, timeout: float = 30.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


@dataclass
class LiveResult:
    url: str  # where `cjm serve` listens
    setup: tuple[str, ...]  # setup-webhook's report lines (no secret in them)
    ticket_id: int
    stage: str | None  # the field's value (stage__…); None: no stage within WAIT_SECONDS
    seconds: float | None
    echo_webhooks: int  # webhooks cjm's own write fired (0: the trigger excludes it)
    further_writes: int  # writes after cjm's one write (the loop guard: 0)
    server: ServeThread | None = None  # still running (`cjm demo --serve`), else None

    @property
    def stage_label(self) -> str | None:
        """The stage as people read it ("Delivery"), from the field's value."""
        if self.stage is None:
            return None
        name = self.stage.removeprefix(STAGE_PREFIX)
        labels = {s.name: s.label for s in default_taxonomy().stages}
        return labels.get(name, name)


def run_live(
    settings: Settings,
    engine: Engine,
    helpdesk: LiveHelpdesk,
    *,
    connector_factory: ConnectorFactory,
    keep_serving: bool = False,
    progress: Progress = lambda _m: None,
) -> LiveResult:
    (source,) = settings.sources
    progress("live: starting cjm serve (one worker) on 127.0.0.1")
    app = build_serve_app(settings, connector_factory=connector_factory, workers=1, engine=engine)
    server = ServeThread(app)
    try:
        progress(f"live: setup-webhook → {server.url}")
        report = asyncio.run(
            run_setup_webhook(
                settings,
                connector_factory=connector_factory,
                source=source.name,
                url=server.url,
                engine=engine,
            )
        )
        fired_before = helpdesk.webhooks_fired()
        progress("live: a customer writes on a ticket (through the helpdesk, not cjm)")
        ticket = helpdesk.customer_writes(CUSTOMER_TEXT)
        started = time.monotonic()
        stage, seconds = None, None
        while time.monotonic() - started < WAIT_SECONDS:
            stage = helpdesk.stage(ticket)
            if stage:
                seconds = time.monotonic() - started
                break
            time.sleep(0.05)
        writes_then = helpdesk.ticket_writes()
        _drain(engine)
        time.sleep(SETTLE_SECONDS)
        _drain(engine)
        result = LiveResult(
            url=server.url,
            setup=report.lines,
            ticket_id=ticket,
            stage=stage,
            seconds=seconds,
            # The customer's comment fired one webhook; any other is an echo of cjm's own write.
            echo_webhooks=helpdesk.webhooks_fired() - fired_before - 1,
            further_writes=helpdesk.ticket_writes() - writes_then,
        )
    except BaseException:
        server.stop()
        raise
    if keep_serving:
        result.server = server
    else:
        server.stop()
    return result


def _drain(engine: Engine, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the webhook queue holds nothing queued or claimed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = events.stats(engine)
        if stats.queued + stats.claimed == 0:
            return
        time.sleep(0.05)
