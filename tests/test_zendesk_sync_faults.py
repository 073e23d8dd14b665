"""The real Zendesk connector and sync pipeline against the simulator with its faults switched on
(rate limits with Retry-After, 5xx, 504 on big pages, 409s, failing job items, expiring OAuth
tokens, a crash mid-pull): nothing is lost, nothing is duplicated, nothing is written twice.

Time is shared and fake: the connector's clock and the simulator's clock are one counter that
moves only when the connector sleeps, so a 60 s Retry-After costs no real time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.zendesk import ZendeskConnector
from journey.config import Settings, SourceConfig, load_settings
from journey.db import make_engine, migrate, session_scope
from journey.models import Conversation, Credential, Message
from journey.runner import run_setup_fields, run_sync
from simulator import SimulatorFaults, ZendeskSimulator, create_zendesk_app

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
UPDATE_MANY = "PUT /api/v2/tickets/update_many.json"
FERNET_KEY = "q0hX8hN0Jm1yVfPj3sU5o6r2e9W1cK4bT7aZ0dLxY3M="


class SharedClock:
    """One fake time for both sides; sleeping advances it instantly."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class Crashing(httpx.AsyncBaseTransport):
    """Fails every request after the first `after` (a process killed mid-sync, seen from the
    network side: nothing more reaches Zendesk)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, after: int) -> None:
        self.inner, self.left = inner, after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.left -= 1
        if self.left < 0:
            raise httpx.ConnectError("killed")
        return await self.inner.handle_async_request(request)


@dataclass
class World:
    sim: ZendeskSimulator
    settings: Settings
    engine: Engine
    clock: SharedClock
    crash_after: int | None = None
    environ: dict[str, str] = field(default_factory=dict)

    def factory(self, settings: Settings, source: SourceConfig) -> ZendeskConnector:
        app = create_zendesk_app(self.sim)
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
        if self.crash_after is not None:
            transport = Crashing(transport, self.crash_after)
        zendesk = settings.zendesk_settings(source)
        if zendesk.oauth_refresh_token:
            from journey.credentials import with_token_vault

            zendesk = with_token_vault(
                self.engine,
                zendesk,
                key=settings.credential_key(source),
                key_env=source.credential_key_env or "",
            )
        return ZendeskConnector(
            zendesk,
            transport=transport,
            chat_transport=transport,
            clock=self.clock,
            job_poll_seconds=1.0,
            wall_clock=lambda: self.sim.now.timestamp(),
        )

    def sync(self, expect_error: bool = False, **kwargs: Any):
        (report,) = asyncio.run(
            run_sync(self.settings, connector_factory=self.factory, engine=self.engine, **kwargs)
        )
        assert (report.error is not None) == expect_error, report.error
        return report

    def later(self, seconds: float) -> None:
        self.clock.t += seconds

    def stored_messages(self) -> dict[str, tuple[str, str, str, bool]]:
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(
                    Message.external_id,
                    Conversation.external_id,
                    Message.text,
                    Message.author_role,
                    Message.solicited,
                ).join(Conversation, Conversation.id == Message.conversation_id)
            ).all()
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def stored_conversations(self) -> dict[str, tuple[str, bool]]:
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(Conversation.external_id, Conversation.status, Conversation.deleted)
            ).all()
        return {r[0]: (r[1], r[2]) for r in rows}


def make_world(
    tmp_path: Path,
    engine: Engine,
    *,
    faults: SimulatorFaults | None = None,
    extra: str = "",
    environ: dict[str, str] | None = None,
    tickets: int = 200,
    oauth_token: str | None = None,
) -> World:
    sim = ZendeskSimulator.generate(
        tickets=tickets, seed=5, now=NOW, faults=faults, oauth_token=oauth_token
    )
    clock = SharedClock()
    sim.clock = lambda: NOW + timedelta(seconds=clock.t)
    config = tmp_path / "cjm.toml"
    config.write_text(
        '[[sources]]\nname = "acme"\nkind = "zendesk"\nbase_url = "http://zendesk.test"\n'
        'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n'
        'chat_base_url = "http://zendesk.test"\n'
        + extra
        + "[sources.limits]\nrequests_per_minute = 200\nexport_requests_per_minute = 10\n",
        encoding="utf-8",
    )
    env = {"CJM_ZENDESK_TOKEN": "sim-token", **(environ or {})}
    settings = load_settings(config, env)
    world = World(sim, settings, engine, clock, environ=env)
    asyncio.run(run_setup_fields(settings, connector_factory=world.factory, engine=engine))
    return world


def expected_comment_ids(sim: ZendeskSimulator) -> dict[str, str]:
    """Every comment of every live ticket, as the store should hold it (id → ticket id)."""
    return {
        str(c["id"]): str(tid)
        for tid in sim.ticket_ids()
        if sim.ticket(tid).status != "deleted"
        for c in sim.ticket(tid).comments
    }


@pytest.fixture
def faulty(tmp_path: Path, sqlite_engine: Engine) -> Iterator[World]:
    # The account allows half the export rate cjm is configured for, and a proxy strips the
    # rate headers: cjm meets 429s and must wait out every Retry-After.
    faults = SimulatorFaults(
        rate_limit_per_minute=200,
        export_limit_per_minute=5,
        rate_limit_headers=False,
        fail_every_n=17,
        fail_status=500,
        gateway_timeout_above_per_page=300,
        conflict_every_n=2,
        ticket_update_fail_every_n=29,
    )
    yield make_world(tmp_path, sqlite_engine, faults=faults)


def test_a_faulty_rate_limited_account_loses_and_duplicates_nothing(faulty: World) -> None:
    first = faulty.sync()
    sim = faulty.sim
    stored = faulty.stored_messages()
    comments = expected_comment_ids(sim)
    assert {k: v[0] for k, v in stored.items() if k in comments} == comments  # nothing lost
    extras = {k for k in stored if k not in comments}
    assert all(k.startswith(("log:", "csat:")) for k in extras), sorted(extras)[:5]
    assert set(faulty.stored_conversations()) == {str(t) for t in sim.ticket_ids()}
    assert sim.status_counts[429] > 0 and sim.status_counts[504] > 0 and sim.status_counts[409]
    assert sim.retry_after_violations == 0
    assert first.write_failures == 0 and first.written > 0
    ours = [
        t
        for t in sim.ticket_ids()
        if any(tag.startswith(("stage__", "pain__")) for tag in sim.ticket(t).tags)
    ]
    assert len(ours) == first.written  # every confirmed write is on its ticket, once
    writes = sim.requests[UPDATE_MANY]
    faulty.later(900)
    second = faulty.sync()
    assert second.planned == 0 and sim.requests[UPDATE_MANY] == writes
    assert faulty.stored_messages() == stored  # re-pulled boundary pages changed nothing
    assert sim.retry_after_violations == 0


def test_a_crash_mid_sync_then_a_rerun_gives_the_same_database(
    tmp_path: Path, sqlite_engine: Engine, engine: Engine
) -> None:
    (tmp_path / "clean").mkdir()
    (tmp_path / "crash").mkdir()
    reference = make_engine(f"sqlite:///{tmp_path / 'clean' / 'reference.db'}")
    migrate(reference)
    clean = make_world(tmp_path / "clean", reference)
    crashed = make_world(tmp_path / "crash", engine)
    del sqlite_engine
    clean.sync(writeback=False)
    for after in (3, 5, 7):  # each run resumes from the last committed page, then dies
        crashed.crash_after = after
        crashed.sync(expect_error=True, writeback=False)
    crashed.crash_after = None
    crashed.sync(writeback=False)
    assert crashed.stored_messages() == clean.stored_messages()
    assert crashed.stored_conversations() == clean.stored_conversations()


def test_csat_messaging_logs_chats_and_redactions_reach_the_store(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    world = make_world(
        tmp_path,
        sqlite_engine,
        extra='chat_export = true\nchat_oauth_token_env = "CJM_CHAT"\n',
        environ={"CJM_CHAT": "chat-oauth"},
        oauth_token="chat-oauth",
    )
    world.sync(writeback=False)
    stored = world.stored_messages()
    csat = {k: v for k, v in stored.items() if k.startswith("csat:")}
    assert csat and all(solicited and role == "end_user" for _, _, role, solicited in csat.values())
    bot = [v for k, v in stored.items() if k.startswith("log:") and v[2] == "bot"]
    user = [v for k, v in stored.items() if k.startswith("log:") and v[2] == "end_user"]
    assert bot and user
    chat_tickets = {
        str(t) for t in world.sim.ticket_ids() if world.sim._tickets[t].channel == "chat"
    }
    chat_lines = {v[0] for k, v in stored.items() if k.startswith("chat:")}
    assert chat_lines == chat_tickets
    # An agent redacts a card number the customer typed: the stored text follows.
    tid = world.sim.open_tickets_with_customer_text()[0]
    comment = world.sim.ticket(tid).comments[0]
    kept = stored[str(comment["id"])][1]  # the cleaned text (signatures and quotes gone)
    secret = next(w for w in kept.split() if len(w) > 5 and w in comment["body"])
    world.later(120)
    world.sim.redact_comment(tid, comment["id"], secret)
    world.later(600)
    world.sync(writeback=False)
    assert "▇" in world.stored_messages()[str(comment["id"])][1]


def test_oauth_rotation_is_persisted_encrypted_and_survives_the_next_run(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    sim_env = {
        "ZD_ACCESS": "",
        "ZD_REFRESH": "",
        "ZD_CLIENT": "cjm",
        "ZD_SECRET": "client-secret",
        "CJM_KEY": FERNET_KEY,
    }
    extra = (
        'oauth_token_env = "ZD_ACCESS"\noauth_refresh_token_env = "ZD_REFRESH"\n'
        'oauth_client_id_env = "ZD_CLIENT"\noauth_client_secret_env = "ZD_SECRET"\n'
        'credential_key_env = "CJM_KEY"\n'
    )
    sim = ZendeskSimulator.generate(tickets=60, seed=5, now=NOW)
    clock = SharedClock()
    sim.clock = lambda: NOW + timedelta(seconds=clock.t)
    sim.register_oauth_client("cjm", "client-secret")
    access, refresh = sim.issue_oauth_tokens("cjm", ttl=0)  # already expired
    sim_env.update(ZD_ACCESS=access, ZD_REFRESH=refresh)
    config = tmp_path / "cjm.toml"
    config.write_text(
        '[[sources]]\nname = "acme"\nkind = "zendesk"\nbase_url = "http://zendesk.test"\n' + extra,
        encoding="utf-8",
    )
    settings = load_settings(config, sim_env)
    world = World(sim, settings, sqlite_engine, clock)
    asyncio.run(run_setup_fields(settings, connector_factory=world.factory, engine=sqlite_engine))
    world.sync(writeback=False)
    assert sim.requests["POST /oauth/tokens"] == 1
    with session_scope(sqlite_engine) as session:
        (row,) = session.execute(select(Credential)).scalars().all()
    for secret in (access, refresh, *sim._access_tokens, *sim._refresh_tokens):
        assert secret not in row.ciphertext and secret not in json.dumps(
            row.model_dump(), default=str
        )
    # Next night: the environment still holds the spent refresh token; the stored pair wins.
    sim.oauth_access_ttl = 3600
    clock.t += 86400
    world.sync(writeback=False)
    assert sim.requests["POST /oauth/tokens"] == 2  # the stored pair's access token expired
    assert sim.status_counts[400] == 0  # never sent the dead refresh token
