"""Real webhooks end to end: the Zendesk simulator on one localhost port fires *its own* signed
webhooks (trigger → webhook → signed POST, from its delivery thread) at a real `cjm serve`
(uvicorn, lifespan on, one in-process worker) on another, after `setup-webhook` pointed it there.
Nothing here forges a webhook: the customer writes through the simulator's admin route, as a
person would in Zendesk. On SQLite and PostgreSQL.

What is checked is what an agent and an operator see: the ticket carries a stage and pain tags
seconds after the customer wrote; cjm's own write causes no further write (whether the trigger
excludes it, as cjm's trigger does, or a looser trigger echoes it back); a duplicate delivery
has one effect. Latency numbers live in bench/realtime.py, not here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.zendesk import ZendeskConnector
from journey import events
from journey.config import Settings, SourceConfig, load_settings
from journey.db import session_scope
from journey.demo_live import ServeThread
from journey.models import WebhookEvent
from journey.runner import build_serve_app, run_setup_fields, run_setup_webhook
from simulator import ZendeskSimulator, create_zendesk_app, serve_in_thread
from tests.web.test_worker import COMPLAINT

WRITES = ("PUT /api/v2/tickets/update_many.json", "PUT /api/v2/tickets/{id}.json")
SETTLE = 1.5  # after the queue drains: time for an echo of cjm's write to arrive


@dataclass
class Live:
    sim: ZendeskSimulator
    sim_url: str
    settings: Settings
    engine: Engine
    cjm_url: str

    def factory(self, settings: Settings, source: SourceConfig) -> ZendeskConnector:
        return ZendeskConnector(settings.zendesk_settings(source), job_poll_seconds=0.05)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.sim_url, trust_env=False, timeout=10)

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.sim_url,
            trust_env=False,
            timeout=10,
            auth=("lead@acme.example/token", "sim-token"),
        )

    def customer_writes(self) -> int:
        """An end user's public comment, through the simulator, on a ticket cjm never staged."""
        ticket = next(
            t
            for t in self.sim.open_tickets_with_customer_text()
            if self.sim.truth(t)[2] == "en" and not self.stage(t)
        )
        with self.admin() as client:
            answer = client.post(
                f"/_sim/tickets/{ticket}/comments",
                json={"body": COMPLAINT, "author": "end_user", "public": True},
            )
        assert answer.status_code == 201, answer.text
        return ticket

    def stage(self, ticket: int) -> str | None:
        return self.sim.ticket(ticket).fields.get("Journey stage")

    def wait_for_stage(self, ticket: int, timeout: float = 30.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.stage(ticket):
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"ticket {ticket} got no stage within {timeout} s: {self.attempts()}")

    def writes(self) -> int:
        return sum(self.sim.requests[key] for key in WRITES)

    def attempts(self) -> list[dict[str, Any]]:
        with self.admin() as client:
            return list(client.get("/_sim/webhook_deliveries").json()["attempts"])

    def settle(self) -> None:
        """Until the simulator has nothing left to send and cjm's queue is empty, then a pause
        for anything late, then once more."""
        for _ in range(2):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with self.admin() as client:
                    pending = client.get("/_sim/webhook_deliveries").json()["pending"]
                stats = events.stats(self.engine)
                if not pending and stats.queued + stats.claimed == 0:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"not quiet: {events.stats(self.engine)}")
            time.sleep(SETTLE)

    def statuses(self) -> list[str]:
        with session_scope(self.engine) as session:
            return list(session.execute(select(WebhookEvent.status)).scalars())


@pytest.fixture
def live(tmp_path: Path, engine: Engine) -> Iterator[Live]:
    sim = ZendeskSimulator.generate(tickets=80, seed=11)
    sim_server = serve_in_thread(create_zendesk_app(sim))
    config = tmp_path / "cjm.toml"
    config.write_text(
        f'[[sources]]\nname = "acme"\nkind = "zendesk"\nbase_url = "{sim_server.url}"\n'
        'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n'
        'credential_key_env = "CJM_KEY"\n',
        encoding="utf-8",
    )
    env = {"CJM_ZENDESK_TOKEN": "sim-token", "CJM_KEY": Fernet.generate_key().decode()}
    settings = load_settings(config, env)
    world = Live(sim, sim_server.url, settings, engine, "")
    asyncio.run(run_setup_fields(settings, connector_factory=world.factory, engine=engine))
    app = build_serve_app(settings, connector_factory=world.factory, workers=1, engine=engine)
    cjm = ServeThread(app)
    world.cjm_url = cjm.url
    try:
        # The real setup: webhook + trigger created in the simulator, signing secret stored
        # encrypted (no webhook_secret_env: cjm serve must verify with the stored one).
        report = asyncio.run(
            run_setup_webhook(
                settings,
                connector_factory=world.factory,
                source="acme",
                url=cjm.url,
                engine=engine,
            )
        )
        assert report.endpoint == f"{cjm.url}/hooks/zendesk/acme"
        yield world
    finally:
        cjm.stop()
        sim_server.stop()


def test_a_customer_comment_gets_tags_in_seconds_and_our_write_causes_no_further_write(
    live: Live,
) -> None:
    writes_before = live.writes()
    fired_before = live.sim.webhooks.fired
    ticket = live.customer_writes()
    seconds = live.wait_for_stage(ticket)
    assert any(t.startswith("pain__") for t in live.sim.ticket(ticket).tags)
    live.settle()
    # One signed delivery, accepted by cjm serve (202: its signature verified with the secret
    # setup-webhook stored), one event, one write; cjm's write fired nothing (the trigger's
    # role condition excludes it) and nothing more was written.
    attempts = live.attempts()
    assert [(a["ticket_id"], a["status"]) for a in attempts] == [(ticket, 202)]
    assert live.sim.webhooks.fired == fired_before + 1
    assert live.statuses() == ["done"]
    assert live.writes() == writes_before + 1
    assert seconds < 30  # generous: bench/realtime.py measures latency


def test_when_a_looser_trigger_echoes_our_write_the_echo_writes_nothing(live: Live) -> None:
    """An admin's trigger that also fires on cjm's update (any change): the echo arrives,
    the worker reads the ticket, finds the desired state applied, writes nothing."""
    with live.api() as api:
        (trigger,) = api.get("/api/v2/triggers.json").json()["triggers"]
        loose = {"all": [{"field": "update_type", "operator": "is", "value": "Change"}], "any": []}
        answer = api.put(
            f"/api/v2/triggers/{trigger['id']}.json", json={"trigger": {"conditions": loose}}
        )
        assert answer.status_code == 200, answer.text
    writes_before = live.writes()
    ticket = live.customer_writes()
    live.wait_for_stage(ticket)
    live.settle()
    assert live.sim.webhooks.fired == 2  # the customer's comment, then the echo of our write
    assert [a["status"] for a in live.attempts()] == [202, 202]
    assert live.statuses() == ["done", "done"]
    assert live.writes() == writes_before + 1  # the echo wrote nothing


def test_a_duplicate_delivery_has_one_effect(live: Live) -> None:
    with live.admin() as client:
        assert client.put("/_sim/webhook_faults", json={"duplicate_every": 1}).status_code == 204
    writes_before = live.writes()
    ticket = live.customer_writes()
    live.wait_for_stage(ticket)
    live.settle()
    attempts = live.attempts()
    # Zendesk may deliver one invocation twice: same invocation id, both answered ...
    assert len(attempts) == 2 and len({a["invocation_id"] for a in attempts}) == 1
    assert all(a["status"] in (200, 202) for a in attempts), attempts
    # ... one event, one write.
    assert live.statuses() == ["done"]
    assert live.writes() == writes_before + 1
