"""A theme database filled by a real sync against the Zendesk simulator, and `cjm serve`'s app
over it: what the agent apps talk to. One synced world per backend and module (a sync mines
with the real default model, which takes seconds); tests that change it say so in their name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from connectors.zendesk import ZendeskConnector
from journey.config import Settings, SourceConfig, load_settings
from journey.db import make_engine, migrate
from journey.runner import run_setup_fields, run_sync
from journey.web import WebContext, create_app
from journey.web.api import CONNECTOR_FACTORY
from simulator import ZendeskSimulator, create_zendesk_app
from tests.conftest import _postgres_engine

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
APP_SECRET = "app-shared-secret-for-tests-0123456789"
SOURCE = "acme"


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

    def app(self, *, write_now: bool = True) -> Any:
        state: dict[str, object] = {CONNECTOR_FACTORY: self.factory} if write_now else {}
        return create_app(WebContext(self.settings, self.engine, state))

    def sync(self) -> None:
        reports = asyncio.run(
            run_sync(self.settings, connector_factory=self.factory, engine=self.engine)
        )
        assert all(r.error is None for r in reports), [r.error for r in reports]

    def stage(self, ticket_id: int) -> str | None:
        return self.sim.ticket(ticket_id).fields.get("Journey stage")


def make_world(folder: Path, engine: Engine, tickets: int = 60) -> World:
    sim = ZendeskSimulator.generate(tickets=tickets, seed=11, now=NOW)
    sim.now = NOW
    config = folder / "cjm.toml"
    config.write_text(
        f'[[sources]]\nname = "{SOURCE}"\nkind = "zendesk"\nbase_url = "http://zendesk.test"\n'
        'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n'
        'app_secret_env = "CJM_APP_SECRET"\n'
        "[miner]\nabstain_below = 0.2\n"
        '[serve]\nallowed_origins = ["https://acme.zendesk.com"]\n',
        encoding="utf-8",
    )
    settings = load_settings(
        config, {"CJM_ZENDESK_TOKEN": "sim-token", "CJM_APP_SECRET": APP_SECRET}
    )
    world = World(sim, settings, engine)
    asyncio.run(run_setup_fields(settings, connector_factory=world.factory, engine=engine))
    world.sync()
    return world


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A fresh synced world per test, on each backend."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'cjm.db'}")
        migrate(engine)
        yield make_world(tmp_path, engine)
        engine.dispose()
    else:
        for engine in _postgres_engine():
            migrate(engine)
            yield make_world(tmp_path, engine)


@dataclass
class FreshdeskWorld:
    """The same for a Freshdesk source (the Freshdesk app authenticates with a bearer token)."""

    sim: Any
    settings: Settings
    engine: Engine
    clock: Any

    def factory(self, settings: Settings, source: SourceConfig) -> Any:
        from connectors.freshdesk import FreshdeskConnector
        from simulator import create_freshdesk_app

        return FreshdeskConnector(
            settings.freshdesk_settings(source),
            transport=httpx.ASGITransport(app=create_freshdesk_app(self.sim)),
            clock=self.clock,
            now=self.clock,
        )

    def app(self) -> Any:
        return create_app(WebContext(self.settings, self.engine, {CONNECTOR_FACTORY: self.factory}))


FRESHDESK_TOKEN = "freshdesk-app-token-for-tests-0123456789"
FRESHDESK_SOURCE = "acmefd"


def make_freshdesk_world(folder: Path, engine: Engine, tickets: int = 60) -> FreshdeskWorld:
    from simulator import FreshdeskSimulator, VirtualClock

    clock = VirtualClock(NOW)
    sim = FreshdeskSimulator.generate(tickets=tickets, seed=5, now=NOW, clock=clock)
    config = folder / "cjm-fd.toml"
    config.write_text(
        f'[[sources]]\nname = "{FRESHDESK_SOURCE}"\nkind = "freshdesk"\n'
        'base_url = "http://acme.freshdesk.test"\napi_key_env = "CJM_FRESHDESK_KEY"\n'
        'app_secret_env = "CJM_FD_APP"\n[miner]\nabstain_below = 0.2\n',
        encoding="utf-8",
    )
    settings = load_settings(
        config, {"CJM_FRESHDESK_KEY": "sim-key", "CJM_FD_APP": FRESHDESK_TOKEN}
    )
    world = FreshdeskWorld(sim, settings, engine, clock)
    asyncio.run(run_setup_fields(settings, connector_factory=world.factory, engine=engine))
    reports = asyncio.run(run_sync(settings, connector_factory=world.factory, engine=engine))
    assert all(r.error is None for r in reports), [r.error for r in reports]
    return world
