"""The real connector and pipeline against the simulator over real HTTP (in-process ASGI):
what a support lead and an agent would see in Zendesk after `cjm sync`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.zendesk import ZendeskConnector
from journey.config import Settings, SourceConfig, load_settings
from journey.db import session_scope
from journey.models import Conversation, Label, SyncState
from journey.runner import run_setup_fields, run_sync
from simulator import ZendeskSimulator, create_zendesk_app

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
UPDATE_MANY = "PUT /api/v2/tickets/update_many.json"


@dataclass
class World:
    sim: ZendeskSimulator
    settings: Settings
    engine: Engine

    def factory(self, settings: Settings, source: SourceConfig) -> ZendeskConnector:
        transport = httpx.ASGITransport(app=create_zendesk_app(self.sim))
        return ZendeskConnector(
            settings.zendesk_settings(source), transport=transport, job_poll_seconds=0
        )

    def sync(self, **kwargs):
        reports = asyncio.run(
            run_sync(self.settings, connector_factory=self.factory, engine=self.engine, **kwargs)
        )
        assert all(r.error is None for r in reports), [r.error for r in reports]
        return reports[0]

    def stage(self, ticket_id: int) -> str | None:
        return self.sim.ticket(ticket_id).fields.get("Journey stage")

    def writes(self) -> int:
        return self.sim.requests[UPDATE_MANY]


@pytest.fixture
def world(tmp_path: Path, engine: Engine) -> Iterator[World]:
    sim = ZendeskSimulator.generate(tickets=250, seed=11, now=NOW)
    sim.now = NOW
    config = tmp_path / "cjm.toml"
    config.write_text(
        '[[sources]]\nname = "acme"\nkind = "zendesk"\nbase_url = "http://zendesk.test"\n'
        'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n'
        "[miner]\nabstain_below = 0.2\n",
        encoding="utf-8",
    )
    settings = load_settings(config, {"CJM_ZENDESK_TOKEN": "sim-token"})
    w = World(sim, settings, engine)
    asyncio.run(run_setup_fields(settings, connector_factory=w.factory, engine=engine))
    yield w


def test_first_sync_tags_open_tickets_and_second_sync_writes_nothing(world: World) -> None:
    first = world.sync()
    candidates = world.sim.open_tickets_with_customer_text()
    english = [t for t in candidates if world.sim.truth(t)[2] == "en"]
    staged = [t for t in english if world.stage(t)]
    assert len(staged) / len(english) >= 0.95
    # Non-English conversations are flagged, not forced into English labels.
    assert not [t for t in candidates if world.sim.truth(t)[2] != "en" and world.stage(t)]
    assert first.written > 0 and first.write_failures == 0
    # Every pain tag on a ticket comes with cjm's stage, never replaces an agent's tags.
    some = world.sim.ticket(staged[0])
    assert any(t.startswith("stage__") for t in some.tags)

    writes_before = world.writes()
    world.sim.advance(600)
    second = world.sync()
    assert second.planned == 0 and second.written == 0
    assert world.writes() == writes_before


def test_dry_run_calls_no_write_endpoint(world: World) -> None:
    report = world.sync(dry_run=True)
    assert report.planned > 0 and report.written == 0
    assert world.writes() == 0
    assert any(note.startswith("ticket ") for note in report.notes)


def test_no_writeback_mines_but_never_writes(world: World) -> None:
    report = world.sync(writeback=False)
    assert report.mined > 0 and world.writes() == 0


def test_agent_stage_change_survives_and_becomes_a_label(world: World) -> None:
    world.sync()
    ticket_id = next(t for t in world.sim.open_tickets_with_customer_text() if world.stage(t))
    ours = world.stage(ticket_id)
    theirs = "stage__purchase" if ours != "stage__purchase" else "stage__support"
    world.sim.advance(60)
    world.sim.agent_set_field(ticket_id, "Journey stage", theirs)
    world.sim.add_comment(
        ticket_id, world.sim.ticket(ticket_id).requester_id, "Still no refund for my broken kettle"
    )
    world.sim.advance(600)
    report = world.sync()
    assert world.stage(ticket_id) == theirs
    assert report.stage_locked == 1
    with session_scope(world.engine) as session:
        labels = session.execute(select(Label)).scalars().all()
    assert [(label.origin, label.stage) for label in labels] == [
        ("agent", theirs.removeprefix("stage__"))
    ]


def test_incremental_run_pulls_only_what_changed(world: World) -> None:
    world.sync()
    world.sim.advance(600)
    world.sync()  # our own writes come back once; nothing to write
    with session_scope(world.engine) as session:
        checkpoints = dict(session.execute(select(SyncState.stream, SyncState.checkpoint)).all())
    assert checkpoints["tickets"] and checkpoints["ticket_events"]
    ticket_id = world.sim.open_tickets_with_customer_text()[0]
    world.sim.advance(60)
    world.sim.add_comment(
        ticket_id, world.sim.ticket(ticket_id).requester_id, "Any news on my order please?"
    )
    world.sim.advance(600)
    report = world.sync()
    assert report.conversations == 1
    assert report.mined == 1


def test_deleted_ticket_becomes_a_tombstone_without_text(world: World) -> None:
    world.sync()
    ticket_id = world.sim.open_tickets_with_customer_text()[0]
    world.sim.advance(60)
    world.sim.delete_ticket(ticket_id)
    world.sim.advance(600)
    world.sync()
    with session_scope(world.engine) as session:
        row = session.execute(
            select(Conversation).where(Conversation.external_id == str(ticket_id))
        ).scalar_one()
        assert row.deleted and row.subject is None
        from journey.models import Message

        assert (
            session.execute(select(Message).where(Message.conversation_id == row.id)).first()
            is None
        )


def test_segments_use_field_titles_not_ids(world: World, tmp_path: Path) -> None:
    import json

    from journey.runner import run_map

    world.sync()
    with session_scope(world.engine) as session:
        fields = session.execute(select(Conversation.custom_fields)).scalars().all()
    plans = {f.get("plan") for f in fields if f.get("plan")}
    assert plans, "the simulator's Plan field should be stored under its title"
    plan = sorted(plans)[0]
    everything = run_map(
        world.settings, fmt="json", out_path=tmp_path / "all.json", engine=world.engine
    )
    one_plan = run_map(
        world.settings,
        fmt="json",
        out_path=tmp_path / "plan.json",
        segment=[f"plan={plan}"],
        engine=world.engine,
    )
    total = json.loads(everything.read_text())["totals"]["conversations"]
    filtered = json.loads(one_plan.read_text())["totals"]["conversations"]
    assert 0 < filtered < total


def test_an_analyst_reading_in_a_long_transaction_does_not_block_the_sync(world: World) -> None:
    from sqlalchemy import text

    with world.engine.connect() as analyst:
        transaction = analyst.begin()
        before = analyst.execute(text("SELECT count(*) FROM v_theme_week")).scalar_one()
        report = world.sync()  # must finish while the analyst's transaction stays open
        still = analyst.execute(text("SELECT count(*) FROM v_theme_week")).scalar_one()
        transaction.rollback()
    assert report.mined > 0 and report.error is None
    assert before == 0
    # PostgreSQL (READ COMMITTED) shows each statement what was committed before it; SQLite's
    # WAL keeps the reader on its snapshot. Either way the read never blocked the writer.
    assert still >= before
    with world.engine.connect() as fresh:
        assert fresh.execute(text("SELECT count(*) FROM v_theme_week")).scalar_one() > 0


def test_huge_comments_odd_unicode_and_html_bombs_are_stored_safely(world: World) -> None:
    from journey.models import Message

    world.sync()
    ticket_id = world.sim.open_tickets_with_customer_text()[0]
    requester = world.sim.ticket(ticket_id).requester_id
    huge = ("My parcel never arrived \u200f\u202e 🙃 عربى 漢字 \x00 " * 80_000)[:3_000_000]
    bomb = "<div>" * 20_000 + "call me on +44 20 7946 0958" + "</div>" * 20_000
    world.sim.advance(60)
    world.sim.add_comment(ticket_id, requester, huge)
    world.sim.add_comment(ticket_id, requester, bomb)
    world.sim.advance(600)
    report = world.sync()
    assert report.error is None and report.mined >= 1
    with session_scope(world.engine) as session:
        texts = (
            session.execute(
                select(Message.text)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.external_id == str(ticket_id))
            )
            .scalars()
            .all()
        )
    assert max(len(t) for t in texts) <= 20_000  # cleaning caps what is stored and mined
    leaked = [t[:300] for t in texts if "7946 0958" in t]
    assert not leaked, leaked
    assert not any("\x00" in t for t in texts)


def test_verbatims_quote_the_customers_sentence_that_shows_the_theme(world: World) -> None:
    """Evidence is whole sentences of what the customer wrote: stored per theme and per stage,
    and what `cjm themes verbatims` quotes."""
    from journey.journey_map.queries import Query, theme_verbatims
    from journey.models import Classification, ConversationTheme
    from journey.store import conversation_texts
    from miner import default_taxonomy

    world.sync()
    with session_scope(world.engine) as session:
        ids = list(session.execute(select(Conversation.id)).scalars())
        said = {  # what the miner read: the customer's own words (journey.store's one rule)
            cid: " ".join(text.split()) for cid, text in conversation_texts(session, ids).items()
        }
        rows = session.execute(
            select(
                ConversationTheme.conversation_id,
                ConversationTheme.theme,
                ConversationTheme.evidence,
            )
        ).all()
        staged = session.execute(
            select(Classification.conversation_id, Classification.stage_evidence).where(
                Classification.stage.is_not(None)  # type: ignore[union-attr]
            )
        ).all()
    assert rows and staged
    for cid, _theme, sentence in [*rows, *((c, None, s) for c, s in staged)]:
        assert sentence and " ".join(sentence.split()) in said[cid]
    theme = rows[0][1]
    quoted = theme_verbatims(world.engine, default_taxonomy(), Query(theme=theme, limit=5))
    assert quoted and all(q["evidence"] for q in quoted)


def test_a_new_model_relabels_history_and_writes_only_changed_tickets(world: World) -> None:
    """History follows the model: after a model change (here the abstention threshold, part of
    the version) the next sync re-mines every stored conversation, writes back only the tickets
    whose stage or tags changed, and leaves an agent's stage alone."""
    from journey.models import Classification, Writeback

    first = world.sync()
    assert first.mined > 0
    ticket_id = next(t for t in world.sim.open_tickets_with_customer_text() if world.stage(t))
    theirs = "stage__consideration"
    world.sim.advance(60)
    world.sim.agent_set_field(ticket_id, "Journey stage", theirs)
    world.sim.advance(600)
    world.sync()  # picks up the agent's edit: the stage is locked from now on
    with session_scope(world.engine) as session:
        before = {
            w.conversation_id: w.desired for w in session.execute(select(Writeback)).scalars()
        }
        versions = set(session.execute(select(Classification.model_version)).scalars())
    assert len(versions) == 1

    world.settings = world.settings.model_copy(
        update={"miner": world.settings.miner.model_copy(update={"abstain_below": 0.9})}
    )
    writes_before = world.writes()
    world.sim.advance(600)
    report = world.sync()
    with session_scope(world.engine) as session:
        after = {w.conversation_id: w.desired for w in session.execute(select(Writeback)).scalars()}
        versions_after = set(session.execute(select(Classification.model_version)).scalars())
    changed = [cid for cid, desired in after.items() if before.get(cid) != desired]
    assert report.mined >= first.mined  # every stored conversation, not only new text
    assert len(versions_after) == 1 and versions_after != versions
    assert changed and report.written <= len(changed) < len(after)
    assert world.writes() > writes_before
    assert world.stage(ticket_id) == theirs


def test_model_apply_relabels_stored_conversations_without_pulling(world: World) -> None:
    """`cjm model apply` (run_sync with pull=False): no export call, every stored conversation
    re-labelled with the configured model, only changed tickets written; --dry-run writes none."""
    world.sync()
    world.settings = world.settings.model_copy(
        update={"miner": world.settings.miner.model_copy(update={"abstain_below": 0.9})}
    )
    exports_before = sum(n for path, n in world.sim.requests.items() if "incremental" in path)
    assert exports_before > 0  # the first sync pulled through the export endpoints
    writes_before = world.writes()

    preview = world.sync(pull=False, dry_run=True)
    assert preview.conversations == 0 and preview.mined > 0 and preview.stage_changed > 0
    assert preview.planned > 0 and world.writes() == writes_before

    applied = world.sync(pull=False)
    assert applied.mined == 0  # already re-labelled by the preview; the outbox still sends
    assert applied.written == preview.planned and world.writes() > writes_before
    assert sum(n for p, n in world.sim.requests.items() if "incremental" in p) == exports_before


def test_the_map_names_the_emotions_of_each_stage_with_a_quote(world: World) -> None:
    """Emotions are stored per conversation and the map names the dominant ones per stage,
    with the share of the stage's conversations and the customer's sentence."""
    from journey.journey_map.aggregate import build_map
    from miner import default_taxonomy

    world.sync()
    jm = build_map(world.engine, default_taxonomy(), until=NOW)
    shown = [(s.name, e) for s in jm.stages for e in s.emotions]
    assert shown, "no stage names an emotion"
    for _stage, e in shown:
        assert 0 < e.share <= 1 and e.conversations >= 1
        assert e.label and e.quote
    names = {e.emotion for _s, e in shown}
    assert names & {"frustration_anger", "disappointment", "worry", "confusion"}


def test_message_redacted_flag_tells_whether_the_text_was_redacted(
    world: World, tmp_path: Path
) -> None:
    """`message.redacted` is what an analyst (and a DPO) relies on: true after the default
    redaction, false when the config turned redaction off and the number is stored as written."""
    from journey.models import Message

    def stored(ticket_id: int) -> list[tuple[str, bool]]:
        with session_scope(world.engine) as session:
            return [
                (m.text, m.redacted)
                for m in session.execute(
                    select(Message)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Conversation.external_id == str(ticket_id))
                ).scalars()
            ]

    world.sync()
    ticket_id = world.sim.open_tickets_with_customer_text()[0]
    requester = world.sim.ticket(ticket_id).requester_id
    world.sim.advance(60)
    world.sim.add_comment(ticket_id, requester, "Please call me back on +44 20 7946 0958 today.")
    world.sim.advance(600)
    world.sync()
    rows = stored(ticket_id)
    assert rows and all(redacted for _, redacted in rows)
    assert not any("7946 0958" in text for text, _ in rows)

    config = tmp_path / "plain.toml"
    config.write_text(
        world.settings.config_path.read_text(encoding="utf-8").replace(
            "[miner]\n", "[miner]\nredact_pii = false\n"
        ),
        encoding="utf-8",
    )
    world.settings = load_settings(config, {"CJM_ZENDESK_TOKEN": "sim-token"})
    world.sim.advance(60)
    world.sim.add_comment(ticket_id, requester, "Or on +44 20 7946 0959 after six.")
    world.sim.advance(600)
    world.sync()
    plain = [(text, redacted) for text, redacted in stored(ticket_id) if "after six" in text]
    assert plain and all(not redacted for _, redacted in plain)
    assert any("7946 0959" in text for text, _ in plain)
