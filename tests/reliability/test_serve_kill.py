"""kill -9 of a real `cjm serve` with webhook events queued (some claimed, some in flight),
then a restart: every event is processed, nothing is lost, nothing is written twice. And two
real `cjm worker` processes draining one PostgreSQL queue never process one event twice.

`cjm serve` / `cjm worker` run as subprocesses (so they can really be killed); the Zendesk
simulator runs in this process on a localhost port (its state survives the kill). Update jobs
take a second, as Zendesk's do, so a kill lands while some are still running.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from journey import events
from journey.db import make_engine, migrate, session_scope
from journey.journey_map import journey_days, rollups, steps
from journey.models import Classification, Conversation, WebhookEvent
from simulator import ZendeskSimulator, create_zendesk_app, serve_in_thread
from tests.conftest import _postgres_engine
from tests.web.test_hooks import signed

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SECRET = "zd-signing-secret-0123456789"
WRITES = ("PUT /api/v2/tickets/update_many.json", "PUT /api/v2/tickets/{id}.json")
EVENTS = 60
CONFIG = """
[database]
url = "{db}"

[[sources]]
name = "acme"
kind = "zendesk"
base_url = "{url}"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
webhook_secret_env = "CJM_HOOK"
"""
SECOND_SOURCE = """
[[sources]]
name = "beta"
kind = "zendesk"
base_url = "{url}"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
webhook_secret_env = "CJM_HOOK"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Setup:
    def __init__(self, tmp_path: Path, db: str, *, two_sources: bool = False) -> None:
        self.sim = ZendeskSimulator.generate(tickets=300, seed=21, now=NOW, job_seconds=1.0)
        self.sim.now = NOW
        self.server = serve_in_thread(create_zendesk_app(self.sim))
        self.workdir = tmp_path
        self.db = db
        config = CONFIG + (SECOND_SOURCE if two_sources else "")
        (tmp_path / "cjm.toml").write_text(
            config.format(db=db, url=self.server.url), encoding="utf-8"
        )
        result = subprocess.run(
            self.command("setup-fields"), env=self.env(), capture_output=True, text=True,
            timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        self.tickets = [
            t for t in self.sim.open_tickets_with_customer_text() if self.sim.truth(t)[2] == "en"
        ][:EVENTS]
        assert len(self.tickets) == EVENTS

    def command(self, *args: str) -> list[str]:
        config = str(self.workdir / "cjm.toml")
        return [sys.executable, "-c", "from cli import main; main()", "--config", config, *args]

    def env(self) -> dict[str, str]:
        return {**os.environ, "CJM_ZENDESK_TOKEN": "sim-token", "CJM_HOOK": SECRET}

    def popen(self, *args: str, log: str = "cjm.log") -> subprocess.Popen[str]:
        """The command with stderr to a file in the work dir (a pipe nobody reads would fill
        up and stall the server's log lines)."""
        with (self.workdir / log).open("a", encoding="utf-8") as handle:
            return subprocess.Popen(
                self.command(*args), env=self.env(), cwd=self.workdir, text=True,
                stdout=subprocess.DEVNULL, stderr=handle,
            )  # fmt: skip

    def staged(self) -> dict[str, str]:
        """Ticket → the stage cjm's classification chose (abstentions left out)."""
        engine = make_engine(self.db)
        try:
            with session_scope(engine) as session:
                rows = session.execute(
                    select(Conversation.external_id, Classification.stage).join(
                        Classification, Classification.conversation_id == Conversation.id
                    )
                ).all()
        finally:
            engine.dispose()
        return {ticket: stage for ticket, stage in rows if stage}

    def hook(self, url: str, ticket: int, invocation: str) -> int:
        body = json.dumps({"ticket_id": str(ticket)}).encode()
        headers = signed(body, secret=SECRET, invocation=invocation)
        return httpx.post(f"{url}/hooks/zendesk/acme", content=body, headers=headers).status_code

    def rows(self) -> list[WebhookEvent]:
        engine = make_engine(self.db)
        try:
            with session_scope(engine) as session:
                return list(session.execute(select(WebhookEvent)).scalars())
        finally:
            engine.dispose()


def wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "cjm serve exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("cjm serve did not become healthy")


def wait_drained(url: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/healthz", timeout=5).json()
        if body["queue"]["depth"] == 0:
            return body
        time.sleep(0.2)
    raise AssertionError(f"queue not drained: {body}")


def test_kill_9_with_events_queued_then_restart_processes_every_event(tmp_path: Path) -> None:
    setup = Setup(tmp_path, f"sqlite:///{tmp_path / 'cjm.db'}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = setup.popen("serve", "--port", str(port), "--workers", "1")
    try:
        wait_healthy(url, serve)
        for n, ticket in enumerate(setup.tickets):
            assert setup.hook(url, ticket, f"inv-{n}") == 202
        # Killed while the first batches are being read, mined and written (jobs take 1 s).
        time.sleep(0.5)
    finally:
        serve.send_signal(signal.SIGKILL)
        serve.wait(30)
    rows = setup.rows()
    assert len(rows) == EVENTS  # every 202 was a stored event
    assert any(r.status != "done" for r in rows), "the kill came too late to prove anything"
    serve = setup.popen("serve", "--port", str(port), "--workers", "1")
    try:
        wait_healthy(url, serve)
        health = wait_drained(url)
        assert health["queue"]["failed"] == 0
        writes = sum(setup.sim.requests[w] for w in WRITES)
        # The same doorbells again (a helpdesk retry, or the trigger seeing our own write):
        # nothing left to write.
        for n, ticket in enumerate(setup.tickets):
            assert setup.hook(url, ticket, f"again-{n}") == 202
        wait_drained(url)
        assert sum(setup.sim.requests[w] for w in WRITES) == writes
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
    rows = setup.rows()
    assert len(rows) == 2 * EVENTS and {r.status for r in rows} == {"done"}
    # Every ticket was mined, and every stage cjm chose is on the ticket.
    staged = setup.staged()
    assert len(staged) >= EVENTS // 2
    for ticket, stage in staged.items():
        assert setup.sim.ticket(int(ticket)).fields.get("Journey stage") == f"stage__{stage}"
    # Nothing written twice: each ticket carries cjm's stage once, and no pain tag appears twice.
    for ticket in setup.tickets:
        tags = setup.sim.ticket(ticket).tags
        assert len(tags) == len(set(tags))


@pytest.mark.postgres
def test_two_worker_processes_on_postgres_never_process_one_event_twice(tmp_path: Path) -> None:
    """Two sources (a worker holds a source's lock for each batch, so two workers spread over
    sources); 120 events. Every event is claimed once and finished once, by one of them."""
    for engine in _postgres_engine():
        migrate(engine)
        setup = Setup(tmp_path, engine.url.render_as_string(hide_password=False), two_sources=True)
        for n, ticket in enumerate(setup.tickets):
            source = "acme" if n % 2 else "beta"
            events.enqueue(engine, source, f"inv-{n}", [str(ticket)])
            events.enqueue(engine, source, f"inv-b-{n}", [str(ticket)])
        workers = [setup.popen("worker", "--once", log=f"worker{n}.log") for n in range(2)]
        logs = []
        for n, process in enumerate(workers):
            process.wait(300)
            logs.append((tmp_path / f"worker{n}.log").read_text(encoding="utf-8"))
            assert process.returncode == 0, logs[-1]
        rows = setup.rows()
        assert len(rows) == 2 * EVENTS and {r.status for r in rows} == {"done"}
        assert {r.attempts for r in rows} == {1}  # claimed once each, never re-run
        # Each worker logs the events it finished; together exactly the queue, no overlap.
        finished = [
            sum(int(n) for n in re.findall(r": (?:acme|beta): (\d+) events", log)) for log in logs
        ]
        assert sum(finished) == 2 * EVENTS, (finished, logs)
        assert all(finished), f"both workers should have taken work: {finished}"
        # The map's derived rows, kept by both workers at once, still add up to every stored
        # conversation (the two used to race: a duplicate day fact, a day's counts added twice).
        with engine.connect() as conn:
            assert steps.in_step(conn) and rollups.in_step(conn) and journey_days.in_step(conn)
