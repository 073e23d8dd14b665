"""`/api/v1` over a database filled by a real sync against the Zendesk simulator, called the way
the sidebar apps call it (httpx through ASGI, the Zendesk proxy's HS256 JWT), on SQLite and
PostgreSQL: what an agent sees and what their correction does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import delete, select

from journey.config import SourceConfig, load_settings
from journey.db import session_scope
from journey.models import (
    Classification,
    Conversation,
    Label,
    Message,
    Person,
    Source,
    Writeback,
)
from journey.store import themes_of
from journey.web.app_auth import ZENDESK_ISSUER, AuthError, authenticate
from tests.apps.conftest import APP_SECRET, SOURCE, World

AGENT = "agent.smith@acme.example"


def token(ticket: str | None = None, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ZENDESK_ISSUER,
        "aud": f"cjm:{SOURCE}",
        "iat": now,
        "exp": now + 60,
        "email": AGENT,
    }
    if ticket is not None:
        claims["ticket_id"] = ticket
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    secret = claims.pop("_secret", APP_SECRET)
    return jwt.encode(claims, secret, algorithm="HS256")


def call(world: World, method: str, path: str, *, write_now: bool = True, **kwargs: Any):
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=world.app(write_now=write_now))
        async with httpx.AsyncClient(transport=transport, base_url="http://cjm.test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def auth(ticket: str | None = None, **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(ticket, **overrides)}"}


def classified(world: World) -> tuple[str, Classification]:
    """A ticket with a stage, whose requester has other conversations too when possible."""
    with session_scope(world.engine) as session:
        rows = session.execute(
            select(Conversation, Classification)
            .join(Classification, Classification.conversation_id == Conversation.id)
            .where(Classification.stage.is_not(None), Conversation.status != "closed")
        ).all()
        counts: dict[str | None, int] = {}
        for conversation in session.execute(select(Conversation)).scalars():
            counts[conversation.requester_id] = counts.get(conversation.requester_id, 0) + 1
        rows.sort(key=lambda r: -counts.get(r[0].requester_id, 0))
        conversation, classification = rows[0]
        session.expunge_all()
    return conversation.external_id, classification


def test_sidebar_view_shows_the_stored_stage_themes_evidence_and_journey(world: World) -> None:
    ticket, classification = classified(world)
    response = call(world, "GET", f"/api/v1/tickets/{SOURCE}/{ticket}", headers=auth(ticket))
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "classified"
    assert view["stage"] == classification.stage
    # … the same stage cjm wrote on the ticket in the helpdesk
    assert world.stage(int(ticket)) == f"stage__{classification.stage}"
    assert view["confidence_band"] in ("high", "medium", "low")
    with session_scope(world.engine) as session:
        themes = themes_of(session, [classification.conversation_id])
    assert [t["name"] for t in view["themes"]] == themes[classification.conversation_id]
    assert view["model_version"] == classification.model_version
    assert view["evidence"], "a classified ticket shows why"
    with session_scope(world.engine) as session:
        texts = {
            m.external_id: " ".join(m.text.split()).lower()
            for m in session.execute(select(Message)).scalars()
        }
    subject = " ".join((view["subject"] or "").split()).lower()
    for item in view["evidence"]:
        assert item["message"] is not None, item
        sentence = " ".join(item["sentence"].split()).lower()
        if sentence not in texts[item["message"]["id"]]:  # the miner reads subject + messages
            assert sentence.startswith(subject)
            assert sentence.removeprefix(subject).strip() in texts[item["message"]["id"]]
    journey = view["journey"]
    assert [step["created_at"] for step in journey] == sorted(s["created_at"] for s in journey)
    assert [s["ticket_id"] for s in journey if s["current"]] == [ticket]
    requester = world.sim.ticket(int(ticket)).requester_id
    theirs = [t for t in world.sim.ticket_ids() if world.sim.ticket(t).requester_id == requester]
    assert len(journey) == len([t for t in theirs if world.sim.ticket(t).status != "deleted"])
    assert view["override"] is None


def test_sidebar_journey_follows_the_customer_into_another_helpdesk(world: World) -> None:
    """The same person (same hashed e-mail) writing to a second helpdesk is one customer, as in
    the journey map: the sidebar lists that helpdesk's conversation too, named by its source
    and not linked (its ticket id means nothing in this helpdesk); a requester without a hash
    keeps a journey of their own."""
    ticket, _ = classified(world)
    with session_scope(world.engine) as session:
        here = session.execute(
            select(Conversation).where(Conversation.external_id == ticket)
        ).scalar_one()
        person = session.execute(
            select(Person).where(
                Person.source_id == here.source_id, Person.external_id == here.requester_id
            )
        ).scalar_one()
        person.email_hash = "h-same-customer"
        other = Source(name="shop-freshdesk", kind="freshdesk", base_url="http://fd.test")
        session.add(other)
        session.flush()
        session.add(
            Person(
                source_id=other.id, external_id="77", role="end-user", email_hash="h-same-customer"
            )
        )
        session.add(Person(source_id=other.id, external_id="78", role="end-user"))
        for external_id, requester in (("9001", "77"), ("9002", "78")):
            session.add(
                Conversation(
                    source_id=other.id,
                    external_id=external_id,
                    requester_id=requester,
                    created_at=here.created_at,
                    updated_at=here.updated_at,
                    subject="from the shop",
                )
            )
    view = call(world, "GET", f"/api/v1/tickets/{SOURCE}/{ticket}", headers=auth(ticket)).json()
    elsewhere = [s for s in view["journey"] if s["elsewhere"]]
    assert [(s["source"], s["ticket_id"]) for s in elsewhere] == [("shop-freshdesk", "9001")]
    assert {s["source"] for s in view["journey"] if not s["elsewhere"]} == {SOURCE}


def test_abstained_and_not_mined_tickets_say_so(world: World) -> None:
    with session_scope(world.engine) as session:
        abstained = session.execute(
            select(Conversation.external_id)
            .join(Classification, Classification.conversation_id == Conversation.id)
            .where(Classification.stage.is_(None))
        ).first()
        fresh, fresh_id = session.execute(
            select(Conversation.external_id, Conversation.id)
            .join(Classification, Classification.conversation_id == Conversation.id)
            .where(Classification.stage.is_not(None))
        ).first()
        session.execute(delete(Classification).where(Classification.conversation_id == fresh_id))
    assert abstained is not None, "the simulator plants non-English tickets: the miner abstains"
    view = call(world, "GET", f"/api/v1/tickets/{SOURCE}/{abstained[0]}", headers=auth()).json()
    assert view["status"] == "abstained" and view["stage"] is None
    view = call(world, "GET", f"/api/v1/tickets/{SOURCE}/{fresh}", headers=auth()).json()
    assert view["status"] == "not_mined" and view["stage"] is None and view["evidence"] == []


def test_unknown_source_or_ticket_is_404(world: World) -> None:
    response = call(world, "GET", "/api/v1/tickets/nope/1", headers=auth())
    assert response.status_code == 404 and "nope" in response.json()["error"]
    response = call(world, "GET", f"/api/v1/tickets/{SOURCE}/999999", headers=auth())
    assert response.status_code == 404 and "999999" in response.json()["error"]


def _bearer(**overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**overrides)}"}


def _unsigned() -> dict[str, str]:
    claims = {"iss": ZENDESK_ISSUER, "aud": f"cjm:{SOURCE}", "iat": 1, "exp": 2**31}
    return {"Authorization": "Bearer " + jwt.encode(claims, None, algorithm="none")}


# Built when the test runs (tokens expire): a name, the headers, what the error says.
REFUSED = {
    "no header": (dict, "Authorization"),
    "basic auth": (lambda: {"Authorization": "Basic abc"}, "Authorization"),
    "wrong secret": (lambda: _bearer(_secret="wrong-secret-0123456789abcdefghijk"), "invalid"),
    "expired": (lambda: _bearer(exp=int(time.time()) - 120), "expired"),
    "other source": (lambda: _bearer(aud="cjm:other"), "not for source"),
    "other issuer": (lambda: _bearer(iss="someone"), "iss"),
    "no iat": (lambda: _bearer(iat=None), "iat"),
    "long-lived": (lambda: _bearer(exp=int(time.time()) + 86400), "longer"),
    "other ticket": (lambda: _bearer(ticket="424242"), "another ticket"),
    "alg none": (_unsigned, "invalid"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_requests_without_a_valid_app_token_are_refused(world: World, case: str) -> None:
    make_headers, says = REFUSED[case]
    headers = make_headers()
    ticket, _ = classified(world)
    for method, path, body in (
        ("GET", f"/api/v1/tickets/{SOURCE}/{ticket}", None),
        ("POST", f"/api/v1/tickets/{SOURCE}/{ticket}/label", {"stage": "purchase"}),
    ):
        response = call(world, method, path, headers=headers, json=body)
        assert response.status_code == 401, response.text
        assert says in response.json()["error"]
    with session_scope(world.engine) as session:
        assert session.execute(select(Label)).first() is None


def test_agent_correction_becomes_a_label_and_reaches_the_ticket_at_once(world: World) -> None:
    ticket, classification = classified(world)
    theirs = "purchase" if classification.stage != "purchase" else "support"
    response = call(
        world,
        "POST",
        f"/api/v1/tickets/{SOURCE}/{ticket}/label",
        headers=auth(ticket),
        json={"stage": theirs, "themes": ["refunds_and_returns"]},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["writeback"] == "sending"
    assert answer["ticket"]["override"]["stage"] == theirs
    [current] = [s for s in answer["ticket"]["journey"] if s["current"]]
    assert (current["stage"], current["model_stage"], current["corrected"]) == (
        theirs,
        classification.stage,
        True,
    )
    with session_scope(world.engine) as session:
        labels = session.execute(select(Label)).scalars().all()
        assert [(lb.origin, lb.stage, lb.themes, lb.labeller) for lb in labels] == [
            ("zendesk app", theirs, ["refunds_and_returns"], AGENT)
        ]
    on_ticket = world.sim.ticket(int(ticket))
    assert on_ticket.fields.get("Journey stage") == f"stage__{theirs}"
    assert "pain__refunds_and_returns" in on_ticket.tags
    assert not [t for t in on_ticket.tags if t.startswith("pain__") and "refunds" not in t]
    # The customer writes again; the miner re-mines; the agent's stage stays, no new label.
    world.sim.advance(60)
    world.sim.add_comment(int(ticket), on_ticket.requester_id, "Any news on this please?")
    world.sim.advance(600)
    world.sync()
    assert world.stage(int(ticket)) == f"stage__{theirs}"
    with session_scope(world.engine) as session:
        assert len(session.execute(select(Label)).scalars().all()) == 1


def test_correction_without_a_connector_waits_in_the_outbox_for_the_next_sync(
    world: World,
) -> None:
    ticket, classification = classified(world)
    theirs = "awareness" if classification.stage != "awareness" else "support"
    response = call(
        world,
        "POST",
        f"/api/v1/tickets/{SOURCE}/{ticket}/label",
        headers=auth(ticket),
        json={"stage": theirs},
        write_now=False,
    )
    assert response.status_code == 200 and response.json()["writeback"] == "deferred"
    assert world.stage(int(ticket)) == f"stage__{classification.stage}"
    with session_scope(world.engine) as session:
        outbox = session.execute(
            select(Writeback).where(Writeback.conversation_id == classification.conversation_id)
        ).scalar_one()
        assert outbox.status == "pending" and outbox.desired["stage"] == f"stage__{theirs}"
    world.sim.advance(600)
    world.sync()
    assert world.stage(int(ticket)) == f"stage__{theirs}"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b"{}", "stage"),
        (b'{"stage": "shopping"}', "unknown stage 'shopping'"),
        (b'{"themes": ["nope"]}', "unknown theme"),
        (b'{"themes": "refunds_and_returns"}', "list"),
        (b'{"stage": "purchase", "colour": 1}', "colour"),
    ],
)
def test_bad_correction_bodies_are_400_and_store_nothing(
    world: World, body: bytes, says: str
) -> None:
    ticket, _ = classified(world)
    response = call(
        world,
        "POST",
        f"/api/v1/tickets/{SOURCE}/{ticket}/label",
        headers={**auth(ticket), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]
    with session_scope(world.engine) as session:
        assert session.execute(select(Label)).first() is None


def test_cors_answers_only_the_configured_helpdesk_origin(world: World) -> None:
    ticket, _ = classified(world)
    path = f"/api/v1/tickets/{SOURCE}/{ticket}"
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    ok = call(world, "OPTIONS", path, headers={"Origin": "https://acme.zendesk.com", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://acme.zendesk.com"
    other = call(world, "OPTIONS", path, headers={"Origin": "https://evil.example", **preflight})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_freshdesk_app_authenticates_with_its_bearer_token(tmp_path) -> None:
    config = tmp_path / "cjm.toml"
    config.write_text(
        '[[sources]]\nname = "fd"\nkind = "freshdesk"\nbase_url = "http://fd.test"\n'
        'api_key_env = "FD_KEY"\napp_secret_env = "FD_APP"\n',
        encoding="utf-8",
    )
    settings = load_settings(config, {"FD_KEY": "k", "FD_APP": "fd-app-token-123"})
    source: SourceConfig = settings.sources[0]
    caller = authenticate(settings, source, "Bearer fd-app-token-123", "7")
    assert caller.app == "freshdesk app"
    with pytest.raises(AuthError, match="wrong bearer"):
        authenticate(settings, source, "Bearer fd-app-token-124", "7")
    unset = load_settings(config, {"FD_KEY": "k"})
    with pytest.raises(AuthError, match="FD_APP"):
        authenticate(unset, unset.sources[0], "Bearer x", "7")


def test_agent_who_also_saves_the_field_by_hand_gets_one_label_not_two(world: World) -> None:
    """The sidebar sets the field in the agent's open ticket; when they save it before cjm
    wrote the correction, the sync sees an agent's hand edit of the same stage: no second label."""
    ticket, classification = classified(world)
    theirs = "consideration" if classification.stage != "consideration" else "exploration"
    response = call(
        world,
        "POST",
        f"/api/v1/tickets/{SOURCE}/{ticket}/label",
        headers=auth(ticket),
        json={"stage": theirs},
        write_now=False,
    )
    assert response.status_code == 200
    world.sim.advance(60)
    world.sim.agent_set_field(int(ticket), "Journey stage", f"stage__{theirs}")
    world.sim.advance(600)
    world.sync()
    assert world.stage(int(ticket)) == f"stage__{theirs}"
    with session_scope(world.engine) as session:
        labels = session.execute(select(Label)).scalars().all()
    assert [(lb.origin, lb.stage) for lb in labels] == [("zendesk app", theirs)]


def test_a_themes_only_correction_keeps_the_agents_earlier_stage(world: World) -> None:
    ticket, classification = classified(world)
    theirs = "support" if classification.stage != "support" else "delivery"
    path = f"/api/v1/tickets/{SOURCE}/{ticket}/label"
    assert (
        call(world, "POST", path, headers=auth(ticket), json={"stage": theirs}).status_code == 200
    )
    answer = call(world, "POST", path, headers=auth(ticket), json={"themes": []}).json()
    assert answer["ticket"]["override"]["stage"] == theirs
    assert answer["ticket"]["override"]["themes"] == []
    assert answer["ticket"]["agent_themes"] == []
    on_ticket = world.sim.ticket(int(ticket))
    assert on_ticket.fields.get("Journey stage") == f"stage__{theirs}"
    assert not [t for t in on_ticket.tags if t.startswith("pain__")]
