"""cjm's field ids are read back from the `source` row that `cjm setup-fields` filled: a sync
lists the helpdesk's fields only for what is not stored (the titles that name segments, once,
when a page carries custom fields), or when no id is saved; a field the helpdesk says is gone
stops write-back with a one-line error naming `cjm setup-fields`. Counted on the simulators'
request logs, over real HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.records import FieldIds
from connectors.zendesk import ZendeskConnector
from journey import worker as worker_module
from journey.config import Settings, SourceConfig, load_settings
from journey.db import session_scope
from journey.models import Source
from journey.runner import run_setup_fields, run_sync
from journey.store import save_field_ids
from journey.sync import SourceReport
from journey.worker import Worker
from simulator import ZendeskSimulator, create_zendesk_app
from tests.test_freshdesk_sync_integration import NOW, STAGE, make_world

ZENDESK_FIELDS = "GET /api/v2/ticket_fields.json"
FRESHDESK_FIELDS = "GET /api/v2/admin/ticket_fields"


class Zendesk:
    def __init__(self, tmp_path: Path, engine: Engine) -> None:
        self.sim = ZendeskSimulator.generate(tickets=120, seed=11, now=NOW)
        self.sim.now = NOW
        config = tmp_path / "cjm.toml"
        config.write_text(
            '[[sources]]\nname = "acme"\nkind = "zendesk"\nbase_url = "http://zendesk.test"\n'
            'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n',
            encoding="utf-8",
        )
        self.settings = load_settings(config, {"CJM_ZENDESK_TOKEN": "sim-token"})
        self.engine = engine

    def factory(self, settings: Settings, source: SourceConfig) -> ZendeskConnector:
        transport = httpx.ASGITransport(app=create_zendesk_app(self.sim))
        return ZendeskConnector(
            settings.zendesk_settings(source), transport=transport, job_poll_seconds=0
        )

    def setup_fields(self) -> None:
        asyncio.run(
            run_setup_fields(self.settings, connector_factory=self.factory, engine=self.engine)
        )

    def sync(self, **kwargs):  # type: ignore[no-untyped-def]
        reports = asyncio.run(
            run_sync(self.settings, connector_factory=self.factory, engine=self.engine, **kwargs)
        )
        return reports[0]

    def listings_during(self, **kwargs) -> tuple[int, object]:  # type: ignore[no-untyped-def]
        before = self.sim.requests[ZENDESK_FIELDS]
        report = self.sync(**kwargs)
        assert report.error is None, report.error
        return self.sim.requests[ZENDESK_FIELDS] - before, report


def saved_ids(engine: Engine) -> tuple[str | None, str | None]:
    with session_scope(engine) as session:
        source = session.execute(select(Source)).scalar_one()
        return source.stage_field_id, source.confidence_field_id


@pytest.fixture
def zendesk(tmp_path: Path, engine: Engine) -> Zendesk:
    world = Zendesk(tmp_path, engine)
    world.setup_fields()
    return world


def test_syncs_read_the_saved_ids_and_list_fields_only_for_titles(zendesk: Zendesk) -> None:
    stage, confidence = saved_ids(zendesk.engine)
    assert stage and confidence  # setup-fields saved them
    listed, first = zendesk.listings_during()
    assert first.written > 0
    assert listed == 1  # the titles of the custom fields the pulled tickets carry: one call
    zendesk.sim.advance(600)
    listed, _ = zendesk.listings_during()  # cjm's own writes come back in the export…
    assert listed <= 1
    zendesk.sim.advance(600)
    listed, third = zendesk.listings_during()  # …then nothing changed: no field call at all
    assert listed == 0 and third.conversations == 0
    listed, applied = zendesk.listings_during(pull=False)  # `cjm model apply`: ids suffice
    assert listed == 0 and applied.error is None
    assert saved_ids(zendesk.engine) == (stage, confidence)


def test_a_database_without_saved_ids_lists_them_once_and_keeps_them(zendesk: Zendesk) -> None:
    stage, confidence = saved_ids(zendesk.engine)
    with session_scope(zendesk.engine) as session:
        save_field_ids(session, "acme", FieldIds())  # e.g. fields set up from another database
    listed, first = zendesk.listings_during()
    assert listed == 1 and first.written > 0  # one listing: ids and titles together
    assert saved_ids(zendesk.engine) == (stage, confidence)
    zendesk.sim.advance(600)
    zendesk.sync()
    zendesk.sim.advance(600)
    listed, _ = zendesk.listings_during()
    assert listed == 0


def _recreate_stage_field(world) -> None:  # type: ignore[no-untyped-def]
    """An admin deleted the Journey stage field and made it again: same label, a new name."""
    stage_field = world.sim.field(STAGE)
    assert stage_field is not None
    stage_field["name"] = "cf_journey_stage_new"


def test_a_saved_field_no_pulled_ticket_carries_is_looked_up_again(
    tmp_path: Path, engine: Engine
) -> None:
    world = make_world(tmp_path, engine, tickets=60)
    _recreate_stage_field(world)
    listed_before = world.calls(FRESHDESK_FIELDS)
    report = world.sync()  # the pulled tickets carry cf_journey_stage_new, not the saved name
    assert world.calls(FRESHDESK_FIELDS) - listed_before == 1  # titles and the id, one call
    assert report.written > 0 and saved_ids(engine)[0] == "cf_journey_stage_new"
    staged = [
        t
        for t in world.sim.ticket_ids()
        if world.sim.ticket(t).custom_fields.get("cf_journey_stage_new")
    ]
    assert staged


def test_a_write_to_a_field_that_is_gone_stops_naming_setup_fields(
    tmp_path: Path, engine: Engine
) -> None:
    world = make_world(tmp_path, engine, tickets=60)
    world.sync(writeback=False)  # stored and mined, nothing written yet
    _recreate_stage_field(world)
    reports = asyncio.run(  # `cjm model apply`: no pull, so only the write can tell
        run_sync(world.settings, connector_factory=world.factory, engine=world.engine, pull=False)
    )
    error = reports[0].error or ""
    assert "cf_journey_stage does not exist" in error
    assert "`cjm setup-fields --source acme`" in error and "\n" not in error
    assert saved_ids(engine)[0] is None  # forgotten: the next sync looks the field up again
    world.advance(600)
    listed_before = world.calls(FRESHDESK_FIELDS)
    report = world.sync()
    assert world.calls(FRESHDESK_FIELDS) - listed_before == 1
    assert report.written > 0 and saved_ids(engine)[0] == "cf_journey_stage_new"


class _Listing:
    """A connector that only counts its field listings (the sync itself is replaced)."""

    name = "acme"

    def __init__(self) -> None:
        self.listings = 0

    async def discover_fields(self) -> FieldIds:
        self.listings += 1
        return FieldIds(stage="cf_journey_stage", names=(("cf_plan", "Plan"),))


def test_a_worker_keeps_its_listing_until_a_batch_fails(
    tmp_path: Path, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "cjm.toml"
    config_file.write_text(
        '[[sources]]\nname = "acme"\nkind = "freshdesk"\nbase_url = "http://acme.test"\n'
        'api_key_env = "CJM_FRESHDESK_KEY"\n',
        encoding="utf-8",
    )
    settings = load_settings(config_file, {"CJM_FRESHDESK_KEY": "key"})
    connector = _Listing()
    errors = iter([None, None, "field cf_journey_stage does not exist", None])
    given: list[FieldIds | None] = []

    async def fake_sync(engine, connector, miner, *, base_url, options):  # type: ignore[no-untyped-def]
        given.append(options.fields)
        return SourceReport(source="acme", error=next(errors))

    monkeypatch.setattr(worker_module, "sync_source", fake_sync)
    worker = Worker(sqlite_engine, settings, lambda _s, _c: connector, miner=None)  # type: ignore[arg-type]
    config = settings.sources[0]
    for _ in range(4):
        asyncio.run(worker._sync(config, ["1"]))
    # listed once for the first two batches (titles kept between batches); the failed third
    # batch drops the listing, so the fourth lists again
    assert connector.listings == 2
    assert all(f is not None and f.names == (("cf_plan", "Plan"),) for f in given)
