"""`start_date` in a source's config: where the first pull starts while no cursor is stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from connectors.zendesk import ZendeskConnector
from journey.config import Settings, SourceConfig, load_settings
from journey.errors import ConfigError
from journey.models import Conversation
from journey.runner import run_sync
from simulator import ZendeskSimulator, create_zendesk_app

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = (
    '[[sources]]\nname = "acme"\nkind = "zendesk"\nbase_url = "http://zendesk.test"\n'
    'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n{extra}'
)


def settings_with(tmp_path: Path, extra: str) -> Settings:
    path = tmp_path / "cjm.toml"
    path.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return load_settings(path, {"CJM_ZENDESK_TOKEN": "sim-token"})


def test_start_date_is_a_date(tmp_path: Path) -> None:
    assert settings_with(tmp_path, "start_date = 2026-10-01\n").sources[0].start_date == date(
        2026, 10, 1
    )
    assert settings_with(tmp_path, 'start_date = "2026-10-01"\n').sources[0].start_date == date(
        2026, 10, 1
    )
    with pytest.raises(ConfigError, match="start_date"):
        settings_with(tmp_path, 'start_date = "last year"\n')


def test_first_pull_starts_at_start_date_then_follows_the_cursor(
    tmp_path: Path, engine: Engine
) -> None:
    sim = ZendeskSimulator.generate(tickets=200, seed=4, now=NOW)
    sim.now = NOW
    settings = settings_with(tmp_path, "writeback = false\nstart_date = 2026-10-01\n")

    def factory(settings: Settings, source: SourceConfig) -> ZendeskConnector:
        transport = httpx.ASGITransport(app=create_zendesk_app(sim))
        return ZendeskConnector(settings.zendesk_settings(source), transport=transport)

    def stored() -> tuple[int, datetime]:
        with engine.connect() as connection:
            count, oldest = connection.execute(
                select(func.count(), func.min(Conversation.updated_at))
            ).one()
        return count, oldest

    asyncio.run(run_sync(settings, connector_factory=factory, engine=engine))
    count, oldest = stored()
    assert 0 < count < len(sim)  # the generated tickets span 26 weeks before NOW
    assert oldest.replace(tzinfo=UTC) >= datetime(2026, 10, 1, tzinfo=UTC)

    # The next run continues from its cursor: an edit to an old ticket is picked up, while the
    # old tickets nobody touched stay out (start_date no longer applies).
    old = min(sim.ticket_ids(), key=lambda t: sim.ticket(t).updated_at)
    sim.add_comment(old, sim.ticket(old).requester_id, "Any news on this?")
    asyncio.run(run_sync(settings, connector_factory=factory, engine=engine))
    assert stored()[0] == count + 1
