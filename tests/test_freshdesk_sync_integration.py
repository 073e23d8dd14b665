"""The Freshdesk connector and pipeline against the simulator over real HTTP (in-process ASGI):
what a support lead and an agent would see in Freshdesk after `cjm sync` — nothing lost, nothing
duplicated, no agent tag lost, and a second run that writes nothing and fetches nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.freshdesk import FreshdeskConnector
from journey.config import Settings, SourceConfig, load_settings
from journey.db import session_scope
from journey.models import Conversation, Label, Message
from journey.runner import run_setup_fields, run_sync
from simulator import (
    FreshdeskFaults,
    FreshdeskSimulator,
    VirtualClock,
    create_freshchat_app,
    create_freshdesk_app,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PUT = "PUT /api/v2/tickets/{id}"
CONVERSATIONS = "GET /api/v2/tickets/{id}/conversations"
LIST = "GET /api/v2/tickets"
STAGE = "cf_journey_stage"

CONFIG = """\
[[sources]]
name = "acme"
kind = "freshdesk"
base_url = "http://acme.freshdesk.test"
api_key_env = "CJM_FRESHDESK_KEY"
freshchat_base_url = "http://acme.freshchat.test"
freshchat_token_env = "CJM_FRESHCHAT_TOKEN"
"""


@dataclass
class World:
    sim: FreshdeskSimulator
    settings: Settings
    engine: Engine
    overrides: dict[str, object]
    clock: VirtualClock

    def factory(self, settings: Settings, source: SourceConfig) -> FreshdeskConnector:
        base = settings.freshdesk_settings(source)
        return FreshdeskConnector(
            replace(base, **self.overrides),
            transport=httpx.ASGITransport(app=create_freshdesk_app(self.sim)),
            freshchat_transport=httpx.ASGITransport(app=create_freshchat_app(self.sim)),
            clock=self.clock,
            now=self.clock,
        )

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def sync(self, **kwargs):
        reports = asyncio.run(
            run_sync(self.settings, connector_factory=self.factory, engine=self.engine, **kwargs)
        )
        assert all(r.error is None for r in reports), [r.error for r in reports]
        return reports[0]

    def calls(self, key: str) -> int:
        return self.sim.requests[key]

    def freshchat_calls(self) -> int:
        return sum(n for key, n in self.sim.requests.items() if " /v2/" in key)

    def stored(self) -> dict[str, Conversation]:
        with session_scope(self.engine) as session:
            rows = session.execute(select(Conversation)).scalars().all()
        return {row.external_id: row for row in rows}

    def messages_of(self, ticket_id: int | str) -> list[str]:
        with session_scope(self.engine) as session:
            return list(
                session.execute(
                    select(Message.external_id)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Conversation.external_id == str(ticket_id))
                ).scalars()
            )


def make_world(tmp_path: Path, engine: Engine, tickets: int = 150, **sim_kwargs) -> World:
    clock = VirtualClock(NOW)
    sim = FreshdeskSimulator.generate(tickets=tickets, seed=5, now=NOW, clock=clock, **sim_kwargs)
    config = tmp_path / "cjm.toml"
    config.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(
        config,
        {"CJM_FRESHDESK_KEY": "sim-key", "CJM_FRESHCHAT_TOKEN": "sim-freshchat-token"},
    )
    w = World(sim, settings, engine, {}, clock)
    asyncio.run(run_setup_fields(settings, connector_factory=w.factory, engine=engine))
    return w


@pytest.fixture
def world(tmp_path: Path, engine: Engine) -> Iterator[World]:
    yield make_world(tmp_path, engine)


def test_first_sync_pulls_everything_writes_back_and_second_sync_does_nothing(
    world: World,
) -> None:
    first = world.sync()
    sim = world.sim
    stored = world.stored()
    # Whole history, not Freshdesk's 30-day default window; spam/deleted as text-free tombstones.
    listed = {str(t) for t in sim.listed_ticket_ids()}
    assert listed <= stored.keys()
    for tid in sim.ticket_ids():
        view = sim.ticket(tid)
        if view.spam or view.deleted:
            row = stored[str(tid)]
            assert row.deleted and row.subject is None and not world.messages_of(tid)
    # Every conversation of every listed ticket, plus its description; exactly once.
    some = next(t for t in sim.listed_ticket_ids() if sim.ticket(t).conversations)
    expected = {f"{some}-description"} | {str(c["id"]) for c in sim.ticket(some).conversations}
    assert set(world.messages_of(some)) == expected
    assert world.calls(CONVERSATIONS) == len(listed)
    # Freshchat transcripts come in as chats.
    assert any(k.startswith("fc-") and v.kind == "chat" for k, v in stored.items())
    # Write-back: the stage dropdown is set, agent tags kept.
    assert first.written > 0 and first.write_failures == 0
    staged = [
        t for t in sim.open_tickets_with_customer_text() if sim.ticket(t).custom_fields.get(STAGE)
    ]
    assert staged
    vip = [t for t in sim.ticket_ids() if "vip" in sim.ticket(t).tags]
    assert vip and all("vip" in sim.ticket(t).tags for t in vip)
    puts, convs = world.calls(PUT), world.calls(CONVERSATIONS)
    assert first.api_calls - world.freshchat_calls() <= convs + puts + 30

    world.advance(600)
    second = world.sync()
    assert second.planned == 0 and second.written == 0
    assert world.calls(PUT) == puts  # a second sync writes nothing
    assert world.calls(CONVERSATIONS) == convs  # …and fetches no conversations (loop guard)
    assert second.api_calls - world.freshchat_calls() < 40


def test_new_reply_fetches_that_ticket_only_and_agent_tags_survive(world: World) -> None:
    world.sync()
    sim = world.sim
    ticket_id = next(
        t for t in sim.open_tickets_with_customer_text() if sim.ticket(t).custom_fields.get(STAGE)
    )
    world.advance(60)
    sim.agent_set_tags(ticket_id, add=["escalated", "pain__my_own_tag"])
    sim.add_reply(ticket_id, "Still no refund for my broken kettle, and I was charged twice")
    world.advance(600)
    before = world.calls(CONVERSATIONS)
    report = world.sync()
    assert world.calls(CONVERSATIONS) == before + 1
    assert report.mined == 1
    tags = sim.ticket(ticket_id).tags
    assert "escalated" in tags and "pain__my_own_tag" in tags


def test_agent_stage_change_survives_and_becomes_a_label(world: World) -> None:
    world.sync()
    sim = world.sim
    ticket_id = next(
        t for t in sim.open_tickets_with_customer_text() if sim.ticket(t).custom_fields.get(STAGE)
    )
    ours = sim.ticket(ticket_id).custom_fields[STAGE]
    theirs = "stage__purchase" if ours != "stage__purchase" else "stage__support"
    world.advance(60)
    sim.agent_set_field(ticket_id, STAGE, theirs)
    sim.add_reply(ticket_id, "I want a refund for the broken kettle")
    world.advance(600)
    report = world.sync()
    assert sim.ticket(ticket_id).custom_fields[STAGE] == theirs
    assert report.stage_locked == 1
    with session_scope(world.engine) as session:
        labels = session.execute(select(Label)).scalars().all()
    assert [(label.origin, label.stage) for label in labels] == [
        ("agent", theirs.removeprefix("stage__"))
    ]


def test_deleted_spam_restored_and_archived(world: World) -> None:
    world.sync()
    sim = world.sim
    deleted, spam, restored, archived = sim.open_tickets_with_customer_text()[:4]
    world.advance(60)
    sim.delete_ticket(deleted)
    sim.mark_spam(spam)
    sim.delete_ticket(restored)
    world.advance(600)
    world.sync()
    stored = world.stored()
    for tid in (deleted, spam, restored):
        assert stored[str(tid)].deleted and not world.messages_of(tid)
    world.advance(60)
    sim.restore_ticket(restored)
    sim.archive_ticket(archived)
    world.advance(600)
    world.sync()
    stored = world.stored()
    assert not stored[str(restored)].deleted and world.messages_of(restored)
    assert not stored[str(archived)].deleted  # archived: out of the lists, kept as is


def test_dry_run_and_no_writeback_never_write(world: World) -> None:
    report = world.sync(dry_run=True)
    assert report.planned > 0 and report.written == 0 and world.calls(PUT) == 0
    report = world.sync(writeback=False)
    assert world.calls(PUT) == 0


@pytest.mark.parametrize("restart_every_pages", [1, 300])
def test_page_cap_faults_and_rate_limits_lose_and_duplicate_nothing(
    tmp_path: Path, engine: Engine, restart_every_pages: int
) -> None:
    """A 3-page cap at 10 per page (so restarts happen), 503s, a crowded second, a low list
    limit: every ticket and every message arrives exactly once, no tag is lost."""
    w = make_world(
        tmp_path,
        engine,
        tickets=120,
        max_page=3,
        faults=FreshdeskFaults(fail_every_n=13, ticket_list_per_minute=600),
    )
    w.overrides = {
        "tickets_per_page": 10,
        "restart_every_pages": restart_every_pages,
    }
    crowded = int(NOW.timestamp()) - 5000
    extra = [
        w.sim.create_ticket(f"Same second {i}", "My parcel is late", at=crowded) for i in range(25)
    ]
    report = w.sync()
    stored = w.stored()
    listed = {str(t) for t in w.sim.listed_ticket_ids()}
    assert listed <= stored.keys()
    assert {str(t) for t in extra} <= stored.keys()
    with session_scope(w.engine) as session:
        total = session.execute(select(func.count()).select_from(Message)).scalar_one()
        distinct = session.execute(
            select(func.count(func.distinct(Message.external_id)))
        ).scalar_one()
    assert total == distinct
    assert w.sim.requests[LIST] > 12  # the cap forced restarts
    assert report.write_failures == 0
    vip = [t for t in w.sim.ticket_ids() if "vip" in w.sim.ticket(t).tags]
    assert all("vip" in w.sim.ticket(t).tags for t in vip)


def test_rate_limited_account_with_other_apps_never_violates_retry_after(
    tmp_path: Path, engine: Engine
) -> None:
    """The plan's limits enforced (200/min, tickets list 20/min) while other apps spend 120
    credits a minute: the sync slows down instead of storming, and obeys every Retry-After."""
    w = make_world(
        tmp_path,
        engine,
        tickets=200,
        faults=FreshdeskFaults(
            rate_limit_per_minute=200, ticket_list_per_minute=20, background_credits_per_minute=120
        ),
    )
    report = w.sync()
    assert w.sim.retry_after_violations == 0
    assert w.sim.rate_limited <= 2
    assert {str(t) for t in w.sim.listed_ticket_ids()} <= w.stored().keys()
    assert report.write_failures == 0


def test_archived_tickets_referenced_by_csat_are_read_by_id(world: World) -> None:
    world.sync()
    archived = [t.id for t in world.sim._tickets.values() if t.archived]  # noqa: SLF001
    with session_scope(world.engine) as session:
        stubs = session.execute(
            select(func.count()).select_from(Conversation).where(Conversation.status == "unknown")
        ).scalar_one()
        stored = dict(
            session.execute(
                select(Conversation.external_id, Conversation.status).where(
                    Conversation.external_id.in_([str(t) for t in archived])
                )
            ).all()
        )
        texts = session.execute(
            select(func.count())
            .select_from(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.external_id.in_(list(stored)))
        ).scalar_one()
    assert stubs == 0  # every referenced ticket was resolved
    assert stored and all(status != "unknown" for status in stored.values())
    assert texts > len(stored)  # description and conversations, not just the CSAT comment
    assert world.calls("GET /api/v2/tickets/archived/{id}") == len(stored)
