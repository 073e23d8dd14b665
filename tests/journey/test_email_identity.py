"""Requesters merged across helpdesks by hashed e-mail: a real sync of two sources over HTTP
(the Zendesk simulator) stores an HMAC of each address, never the address, and the journey view
joins one customer's conversations from both sources."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from connectors.zendesk import ZendeskConnector
from journey.config import Settings, SourceConfig, load_settings
from journey.identity import KEY_ENV, email_hash
from journey.runner import run_sync
from simulator import ZendeskSimulator, create_zendesk_app
from simulator.zendesk.shapes import user_json

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SOURCE = (
    '[[sources]]\nname = "{name}"\nkind = "zendesk"\nbase_url = "http://{name}.test"\n'
    'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\nwriteback = false\n'
)


def _sync_two_sources(tmp_path: Path, engine: Engine, sim: ZendeskSimulator) -> None:
    path = tmp_path / "cjm.toml"
    path.write_text(SOURCE.format(name="acme") + SOURCE.format(name="acme-eu"), encoding="utf-8")
    settings = load_settings(path, {"CJM_ZENDESK_TOKEN": "sim-token"})

    def factory(settings: Settings, source: SourceConfig) -> ZendeskConnector:
        transport = httpx.ASGITransport(app=create_zendesk_app(sim))
        return ZendeskConnector(settings.zendesk_settings(source), transport=transport)

    asyncio.run(run_sync(settings, connector_factory=factory, engine=engine))


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_emails_are_stored_only_as_hmac_and_merge_journeys(
    tmp_path: Path, engine: Engine, monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "a-test-key-from-the-environment")
    sim = ZendeskSimulator.generate(tickets=40, seed=5, now=NOW)
    sim.now = NOW
    _sync_two_sources(tmp_path, engine, sim)

    people = _rows(
        engine,
        "SELECT source.name, person.external_id, person.role, person.email_hash FROM person "
        "JOIN source ON source.id = person.source_id WHERE person.role = 'end_user'",
    )
    assert people
    hashed = [p for p in people if p[3] is not None]
    assert hashed, "the sideloaded requesters carry an e-mail"
    for _source, ext, _role, digest in hashed:
        address = user_json(sim, int(str(ext)), "http://x")["email"]  # type: ignore[index]
        assert digest == email_hash(address, b"a-test-key-from-the-environment")
    # the clear address is nowhere in the person table
    assert not _rows(engine, "SELECT 1 FROM person WHERE email_hash LIKE '%@%'")

    # both sources hold the same tickets (one simulator): each requester is one customer whose
    # journey has its conversations from both helpdesks
    journeys = _rows(
        engine,
        "SELECT customer, count(DISTINCT source), count(*) FROM v_customer_journey "
        "GROUP BY customer",
    )
    merged = [j for j in journeys if str(j[0]).startswith("e:")]
    assert merged and all(sources == 2 for _c, sources, _n in merged)

    # the requester's organisation travels with the ticket (journeys by organisation)
    stored = dict(
        _rows(
            engine,
            "SELECT external_id, organization_id FROM conversation "
            "WHERE source_id = (SELECT id FROM source WHERE name = 'acme')",
        )
    )
    expected = {
        str(t): str(o) if (o := sim.ticket_state(t).organization_id) is not None else None
        for t in sim.ticket_ids()
    }
    assert {k: v for k, v in stored.items() if k in expected} == {
        k: v for k, v in expected.items() if k in stored
    }
    assert any(v is not None for v in stored.values())


def test_without_a_configured_key_each_database_has_its_own(
    tmp_path: Path, engine: Engine, monkeypatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    sim = ZendeskSimulator.generate(tickets=10, seed=6, now=NOW)
    sim.now = NOW
    _sync_two_sources(tmp_path, engine, sim)
    (salt,) = _rows(engine, "SELECT salt FROM identity_salt")
    ext, digest = _rows(
        engine, "SELECT external_id, email_hash FROM person WHERE email_hash IS NOT NULL"
    )[0]
    address = user_json(sim, int(str(ext)), "http://x")["email"]  # type: ignore[index]
    assert digest == email_hash(address, str(salt[0]).encode())
    assert len(_rows(engine, "SELECT salt FROM identity_salt")) == 1  # made once


def test_freshdesk_requesters_get_an_email_hash_without_changing_roles(
    tmp_path: Path, engine: Engine, monkeypatch
) -> None:
    """Freshdesk returns each ticket's requester with the list (include=requester): the
    requester's e-mail is hashed; the requester's role is not asserted (an agent may raise a
    ticket), so no agent turns into a customer."""
    from simulator.freshdesk.state import contact
    from tests.test_freshdesk_sync_integration import make_world

    monkeypatch.setenv(KEY_ENV, "another-key")
    world = make_world(tmp_path, engine, tickets=30)
    world.sync()
    rows = _rows(
        engine, "SELECT external_id, role, email_hash FROM person WHERE email_hash IS NOT NULL"
    )
    assert rows
    for ext, _role, digest in rows:
        address = contact(world.sim.seed, int(str(ext)))[2]
        assert digest == email_hash(address, b"another-key")
    customers = _rows(
        engine,
        "SELECT count(DISTINCT customer) FROM v_customer_journey WHERE customer LIKE 'e:%'",
    )[0][0]
    assert customers == len({r[2] for r in rows})
