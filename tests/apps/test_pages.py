"""`cjm serve`'s pages over HTTP (httpx through ASGI) on SQLite and PostgreSQL: the live map with
the CLI's filters, the labelling page's JSON endpoints (same selection, same label table), and
who may open them (this machine only, or the pages token)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from journey.config import ServeConfig
from journey.db import session_scope
from journey.label_web import ORIGIN
from journey.models import Label
from journey.web import WebContext, create_app
from miner import default_taxonomy
from tests.apps.conftest import SOURCE, World
from tests.apps.test_api import auth

STAGES = list(default_taxonomy().stage_names)
LABELS = [s.label for s in default_taxonomy().stages]


def call(app: Any, method: str, path: str, *, client: tuple[str, int] = ("127.0.0.1", 5000), **kw):
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://cjm.test") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def test_live_map_renders_with_the_cli_filters_and_refuses_bad_ones(world: World) -> None:
    app = world.app()
    html = call(app, "GET", f"/map?source={SOURCE}")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert sum(label in html.text for label in LABELS) >= 3
    data = call(app, "GET", "/map?format=json")
    assert data.status_code == 200 and json.loads(data.text)["stages"]
    for query, says in (
        ("channel=pigeon", "pigeon"),
        ("since=last-tuesday", "YYYY-MM-DD"),
        ("format=pdf", "pdf"),
        ("colour=red", "colour"),
        ("segment=plan", "FIELD=VALUE"),
    ):
        response = call(app, "GET", f"/map?{query}")
        assert response.status_code == 400, (query, response.text)
        assert says in response.text and len(response.text.strip().splitlines()) == 1


def test_the_apps_map_needs_the_app_token(world: World) -> None:
    app = world.app()
    assert call(app, "GET", f"/api/v1/map/{SOURCE}").status_code == 401
    response = call(app, "GET", f"/api/v1/map/{SOURCE}", headers=auth())
    assert response.status_code == 200 and sum(label in response.text for label in LABELS) >= 3


def test_pages_answer_only_this_machine_without_a_token(world: World) -> None:
    app = world.app()
    for path in ("/map", "/label"):
        assert call(app, "GET", path).status_code == 200
        refused = call(app, "GET", path, client=("10.1.2.3", 5000))
        assert refused.status_code == 403 and "pages_token_env" in refused.text


def test_pages_token_as_bearer_or_as_the_cookie_a_token_link_sets(world: World) -> None:
    settings = world.settings.model_copy(
        update={
            "serve": ServeConfig(pages_token_env="CJM_PAGES_TOKEN"),
            "environ": {**world.settings.environ, "CJM_PAGES_TOKEN": "pages-token-123"},
        }
    )
    app = create_app(WebContext(settings, world.engine))
    remote = ("10.1.2.3", 5000)
    assert call(app, "GET", "/label", client=remote).status_code == 401
    assert (
        call(
            app, "GET", "/label", client=remote, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    ok = call(
        app, "GET", "/label", client=remote, headers={"Authorization": "Bearer pages-token-123"}
    )
    assert ok.status_code == 200 and "label conversations" in ok.text
    link = call(app, "GET", "/map?token=pages-token-123&format=json", client=remote)
    assert link.status_code == 303 and link.headers["location"] == "/map?format=json"
    cookie = link.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    again = call(
        app,
        "GET",
        "/map?format=json",
        client=remote,
        headers={"Cookie": "cjm_pages=pages-token-123"},
    )
    assert again.status_code == 200
    unset = create_app(
        WebContext(
            world.settings.model_copy(update={"serve": ServeConfig(pages_token_env="X")}),
            world.engine,
        )
    )
    assert call(unset, "GET", "/label").status_code == 503


def test_labelling_endpoints_store_and_undo_decisions_in_the_label_table(world: World) -> None:
    app = world.app()
    batch = call(app, "GET", "/label/next?n=5")
    assert batch.status_code == 200, batch.text
    items = batch.json()["items"]
    assert len(items) == 5 and len({i["conversation_id"] for i in items}) == 5
    first = items[0]
    stored = call(
        app,
        "POST",
        "/label/decisions",
        json={
            "conversation_id": first["conversation_id"],
            "stage": STAGES[2],
            "themes": [],
            "labeller": "ana",
        },
    )
    assert stored.status_code == 200, stored.text
    label_id = stored.json()["label_id"]
    with session_scope(world.engine) as session:
        row = session.get(Label, label_id)
        assert (row.origin, row.stage, row.labeller) == (ORIGIN, STAGES[2], "ana")
    # the next batch never offers a labelled conversation again (same selection as cjm label)
    later = call(app, "GET", "/label/next?n=10").json()["items"]
    assert first["conversation_id"] not in {i["conversation_id"] for i in later}
    assert call(app, "POST", "/label/undo", json={"label_id": label_id}).status_code == 200
    with session_scope(world.engine) as session:
        assert session.get(Label, label_id) is None


def test_labelling_endpoints_refuse_bad_input_and_other_peoples_labels(world: World) -> None:
    app = world.app()
    cid = call(app, "GET", "/label/next?n=1").json()["items"][0]["conversation_id"]
    for body, status, says in (
        ({"conversation_id": cid, "stage": "shopping"}, 400, "unknown stage"),
        ({"conversation_id": "x", "stage": STAGES[0]}, 400, "integer"),
        ({"conversation_id": cid, "stage": STAGES[0], "themes": ["nope"]}, 400, "unknown theme"),
        ({"conversation_id": 987654, "stage": STAGES[0]}, 404, "does not exist"),
    ):
        response = call(app, "POST", "/label/decisions", json=body)
        assert response.status_code == status and says in response.json()["error"], body
    text_plain = call(
        app,
        "POST",
        "/label/decisions",
        content=json.dumps({"conversation_id": cid, "stage": STAGES[0]}),
        headers={"Content-Type": "text/plain"},
    )
    assert text_plain.status_code == 400 and "application/json" in text_plain.json()["error"]
    assert call(app, "GET", "/label/next?n=500").status_code == 400
    with session_scope(world.engine) as session:
        agent = Label(conversation_id=cid, origin="zendesk app", stage=STAGES[0])
        session.add(agent)
        session.flush()
        agent_id = agent.id
    refused = call(app, "POST", "/label/undo", json={"label_id": agent_id})
    assert refused.status_code == 404
    with session_scope(world.engine) as session:
        assert session.execute(select(Label.id).where(Label.id == agent_id)).first() is not None
        assert session.execute(select(Label).where(Label.origin == ORIGIN)).first() is None


@pytest.mark.parametrize("path", ["/label/decisions", "/label/undo"])
def test_label_posts_need_json_bodies(world: World, path: str) -> None:
    response = call(
        world.app(), "POST", path, content=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
