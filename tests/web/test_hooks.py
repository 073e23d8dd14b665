"""`cjm serve`'s webhook endpoints and /healthz over HTTP (httpx + ASGI transport), on SQLite and
PostgreSQL: a correctly signed doorbell is stored once and answered 202; everything else gets a
clear HTTP error, a log line without secrets or customer text, and nothing stored."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from journey import events
from journey.config import Settings, load_settings
from journey.db import make_engine, session_scope
from journey.models import WebhookEvent
from journey.web import WebContext, create_app
from journey.web.hooks import zendesk_signature

SECRET = "zd-signing-secret-0123456789"
FD_SECRET = "fd-shared-secret-abcdef"
CONFIG = """
[[sources]]
name = "acme"
kind = "zendesk"
base_url = "http://zendesk.test"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
webhook_secret_env = "CJM_HOOK_ACME"

[[sources]]
name = "fresh"
kind = "freshdesk"
base_url = "http://freshdesk.test"
api_key_env = "CJM_FD_KEY"
webhook_secret_env = "CJM_HOOK_FRESH"

[[sources]]
name = "open"
kind = "zendesk"
base_url = "http://zendesk2.test"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
"""
ENV = {
    "CJM_ZENDESK_TOKEN": "t",
    "CJM_FD_KEY": "k",
    "CJM_HOOK_ACME": SECRET,
    "CJM_HOOK_FRESH": FD_SECRET,
}


def settings_for(tmp_path: Path) -> Settings:
    path = tmp_path / "cjm.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_settings(path, ENV)


def signed(
    body: bytes,
    *,
    secret: str = SECRET,
    invocation: str | None = "inv-1",
    when: datetime | None = None,
) -> dict[str, str]:
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "content-type": "application/json",
        "x-zendesk-webhook-signature-timestamp": stamp,
        "x-zendesk-webhook-signature": zendesk_signature(secret, stamp, body),
        "x-zendesk-webhook-id": "01HOOK",
        "x-zendesk-account-id": "123",
    }
    if invocation:
        headers["x-zendesk-webhook-invocation-id"] = invocation
    return headers


class Client:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.app = create_app(WebContext(settings=settings, engine=engine))

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return asyncio.run(self._send("POST", path, body, headers))

    def get(self, path: str) -> httpx.Response:
        return asyncio.run(self._send("GET", path, b"", {}))

    async def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]):
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cjm.test") as client:
            return await client.request(method, path, content=body, headers=headers)

    def stored(self) -> list[tuple[str, str, str]]:
        with session_scope(self.engine) as session:
            rows = session.execute(select(WebhookEvent).order_by(WebhookEvent.id)).scalars()
            return [(r.source, r.ticket, r.status) for r in rows]


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Client:
    return Client(engine, settings_for(tmp_path))


def test_signed_zendesk_webhook_is_stored_once_and_answered_202(client: Client) -> None:
    body = json.dumps({"ticket_id": "42"}).encode()
    first = client.post("/hooks/zendesk/acme", body, signed(body))
    assert first.status_code == 202 and first.json() == {"status": "queued", "tickets": ["42"]}
    # Zendesk may deliver the same invocation twice: one event.
    again = client.post("/hooks/zendesk/acme", body, signed(body))
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    assert client.stored() == [("acme", "42", "queued")]
    # Another invocation for the same ticket is a new event (the worker coalesces them).
    other = client.post("/hooks/zendesk/acme", body, signed(body, invocation="inv-2"))
    assert other.status_code == 202
    assert len(client.stored()) == 2


def test_numeric_ticket_id_and_freshdesk_wrapper_are_accepted(client: Client) -> None:
    body = json.dumps({"ticket_id": 7}).encode()
    assert client.post("/hooks/zendesk/acme", body, signed(body)).status_code == 202
    wrapped = json.dumps({"freshdesk_webhook": {"ticket_id": "9"}}).encode()
    response = client.post(
        "/hooks/freshdesk/fresh", wrapped, {"authorization": f"Bearer {FD_SECRET}"}
    )
    assert response.status_code == 202
    assert sorted(client.stored()) == [("acme", "7", "queued"), ("fresh", "9", "queued")]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("wrong secret", 401),
        ("body changed after signing", 401),
        ("unsigned", 401),
        ("timestamp 6 minutes old", 401),
        ("timestamp not a time", 401),
        ("malformed json", 400),
        ("no ticket_id", 400),
        ("ticket_id not a number", 400),
        ("body over 1 MiB", 413),
    ],
)
def test_bad_zendesk_webhooks_get_a_clear_error_and_store_nothing(
    client: Client, case: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps({"ticket_id": "42", "comment": "my card was charged twice"}).encode()
    headers = signed(body)
    if case == "wrong secret":
        headers = signed(body, secret="not-the-secret")
    elif case == "body changed after signing":
        body = body.replace(b"42", b"43")
    elif case == "unsigned":
        headers = {"content-type": "application/json"}
    elif case == "timestamp 6 minutes old":
        headers = signed(body, when=datetime.now(UTC) - timedelta(minutes=6))
    elif case == "timestamp not a time":
        headers["x-zendesk-webhook-signature-timestamp"] = "yesterday"
        headers["x-zendesk-webhook-signature"] = zendesk_signature(SECRET, "yesterday", body)
    elif case == "malformed json":
        body = b'{"ticket_id": "42", my card was charged twice'
        headers = signed(body)
    elif case == "no ticket_id":
        body = json.dumps({"comment": "my card was charged twice"}).encode()
        headers = signed(body)
    elif case == "ticket_id not a number":
        body = json.dumps({"ticket_id": "{{ticket.id}}; drop table"}).encode()
        headers = signed(body)
    elif case == "body over 1 MiB":
        body = json.dumps({"ticket_id": "42", "pad": "x" * (1 << 20)}).encode()
        headers = signed(body)
    with caplog.at_level(logging.INFO, logger="cjm.serve"):
        response = client.post("/hooks/zendesk/acme", body, headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert client.stored() == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "rejected" in logged and f"({status})" in logged
    assert SECRET not in logged and "charged twice" not in logged


def test_unknown_source_wrong_kind_and_missing_secret(client: Client) -> None:
    body = json.dumps({"ticket_id": "1"}).encode()
    unknown = client.post("/hooks/zendesk/nobody", body, signed(body))
    assert unknown.status_code == 404 and "no source named 'nobody'" in unknown.json()["error"]
    wrong_kind = client.post("/hooks/freshdesk/acme", body, {"authorization": SECRET})
    assert wrong_kind.status_code == 404 and "/hooks/zendesk/acme" in wrong_kind.json()["error"]
    # A source without a configured secret refuses every webhook: nobody can make cjm spend calls.
    no_secret = client.post("/hooks/zendesk/open", body, signed(body))
    assert no_secret.status_code == 401 and "setup-webhook" in no_secret.json()["error"]
    assert client.get("/hooks/zendesk/acme").status_code == 405
    assert client.stored() == []


def test_freshdesk_shared_secret(client: Client) -> None:
    body = json.dumps({"ticket_id": "5"}).encode()
    assert client.post("/hooks/freshdesk/fresh", body, {}).status_code == 401
    bad = client.post("/hooks/freshdesk/fresh", body, {"authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert client.stored() == []
    bare = client.post("/hooks/freshdesk/fresh", body, {"authorization": FD_SECRET})
    assert bare.status_code == 202 and bare.json()["status"] == "queued"
    # Freshdesk sends no delivery id: the same body while the first is still queued coalesces …
    again = client.post("/hooks/freshdesk/fresh", body, {"authorization": f"Bearer {FD_SECRET}"})
    assert again.json()["status"] == "duplicate"
    assert client.stored() == [("fresh", "5", "queued")]
    # … and once it was handled, the same body (a new comment on the ticket) is queued again.
    with session_scope(client.engine) as session:
        ids = list(session.execute(select(WebhookEvent.id)).scalars())
    events.complete(client.engine, ids)
    client.post("/hooks/freshdesk/fresh", body, {"authorization": FD_SECRET})
    assert client.stored() == [("fresh", "5", "queued")]


def test_healthz_reports_queue_depth_age_and_workers(client: Client) -> None:
    empty = client.get("/healthz")
    assert empty.status_code == 200
    assert empty.json()["queue"] == {
        "depth": 0, "queued": 0, "in_progress": 0, "failed": 0, "oldest_age_seconds": None,
    }  # fmt: skip
    for n in range(3):
        body = json.dumps({"ticket_id": str(n + 1)}).encode()
        client.post("/hooks/zendesk/acme", body, signed(body, invocation=f"i{n}"))
    events.beat(client.engine, "w1", host="h", pid=1, source=None, processed=4)
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["queue"]["depth"] == 3 and body["queue"]["oldest_age_seconds"] >= 0
    assert [(w["worker"], w["alive"], w["processed"]) for w in body["workers"]] == [("w1", True, 4)]


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    unreachable = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    client = Client(unreachable, settings_for(tmp_path))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
