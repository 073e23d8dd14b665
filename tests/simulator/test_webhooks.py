"""The simulated Zendesk fires signed webhooks the way Zendesk does: from triggers, over real
HTTP, with retries, and (as a fault) duplicated or out of order. A real local HTTP server plays
`cjm serve` and records what arrives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.zendesk_webhooks import TRIGGER_BODY, TRIGGER_CONDITIONS
from simulator import (
    FreshdeskSimulator,
    RunningServer,
    ZendeskSimulator,
    create_freshdesk_app,
    create_zendesk_app,
    serve_in_thread,
)
from simulator.zendesk.state import CUSTOMER_BASE, INTEGRATION_USER_ID
from simulator.zendesk.webhooks import UpdateContext, matches
from tests.webhook_receiver import Received, Receiver, running_receiver

AUTH = ("lead@acme.example/token", "sim-token")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as rec:
        yield rec


@dataclass
class Account:
    sim: ZendeskSimulator
    server: RunningServer
    client: httpx.Client

    def create_hook(self, endpoint: str, **extra: Any) -> dict[str, Any]:
        body = {
            "name": "cjm",
            "endpoint": endpoint,
            "http_method": "POST",
            "request_format": "json",
        }
        response = self.client.post("/api/v2/webhooks", json={"webhook": {**body, **extra}})
        assert response.status_code == 201, response.text
        return response.json()["webhook"]

    def create_trigger(
        self, hook_id: str, conditions: dict[str, Any] = TRIGGER_CONDITIONS, title: str = "cjm"
    ) -> httpx.Response:
        return self.client.post(
            "/api/v2/triggers.json",
            json={
                "trigger": {
                    "title": title,
                    "conditions": conditions,
                    "actions": [
                        {"field": "notification_webhook", "value": [hook_id, TRIGGER_BODY]}
                    ],
                }
            },
        )

    def secret(self, hook_id: str) -> str:
        response = self.client.get(f"/api/v2/webhooks/{hook_id}/signing_secret")
        assert response.status_code == 200
        return response.json()["signing_secret"]["secret"]

    def customer_comment(self, ticket_id: int, public: bool = True, author: str = "end_user"):
        response = self.client.post(
            f"/_sim/tickets/{ticket_id}/comments",
            json={"body": "Still no parcel, where is it?", "public": public, "author": author},
        )
        assert response.status_code == 201, response.text

    def open_ticket(self) -> int:
        response = self.client.post(
            "/_sim/tickets", json={"subject": "Parcel", "body": "My parcel never came."}
        )
        assert response.status_code == 201, response.text
        return int(response.json()["ticket"]["id"])

    def writable_ticket(self) -> int:
        return self.sim.open_tickets_with_customer_text()[0]

    def settle(self) -> None:
        assert self.sim.webhooks.deliverer.wait_idle(10)


@pytest.fixture
def account() -> Iterator[Account]:
    sim = ZendeskSimulator.generate(tickets=30, seed=5)
    sim.webhooks.deliverer.retry_scale = 0.01  # retry delays of 10 ms instead of seconds
    sim.webhooks.deliverer.timeout_seconds = 0.3
    with (
        serve_in_thread(create_zendesk_app(sim)) as server,
        httpx.Client(base_url=server.url, auth=AUTH, timeout=10) as client,
    ):
        yield Account(sim, server, client)


def _signature(secret: str, received: Received) -> str:
    timestamp = received.headers["x-zendesk-webhook-signature-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + received.body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def test_an_end_user_comment_fires_a_correctly_signed_webhook(
    account: Account, receiver: Receiver
) -> None:
    hook = account.create_hook(receiver.url)
    assert account.create_trigger(hook["id"]).status_code == 201
    ticket = account.writable_ticket()
    account.customer_comment(ticket)
    (got,) = receiver.wait_for(1)
    assert got.json["ticket_id"] == str(ticket)
    assert got.headers["x-zendesk-webhook-signature"] == _signature(account.secret(hook["id"]), got)
    assert got.headers["x-zendesk-webhook-id"] == hook["id"]
    assert got.headers["x-zendesk-webhook-invocation-id"]
    assert got.headers["content-type"] == "application/json"
    sent = datetime.strptime(
        got.headers["x-zendesk-webhook-signature-timestamp"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 5
    account.settle()
    assert len(receiver.got) == 1


def test_a_new_ticket_from_an_end_user_fires_the_trigger(
    account: Account, receiver: Receiver
) -> None:
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    ticket = account.open_ticket()
    (got,) = receiver.wait_for(1)
    assert got.json["ticket_id"] == str(ticket)


def test_the_firing_request_never_waits_for_the_receiver(
    account: Account, receiver: Receiver
) -> None:
    receiver.script = ["slow"]
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    started = time.monotonic()
    account.customer_comment(account.writable_ticket())
    assert time.monotonic() - started < 0.5
    assert len(receiver.wait_for(1)) == 1


def test_cjm_own_update_runs_triggers_but_never_matches_cjm_trigger(
    account: Account, receiver: Receiver
) -> None:
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    any_change = {"all": [{"field": "update_type", "operator": "is", "value": "Change"}]}
    account.create_trigger(hook["id"], any_change, title="every update")
    ticket = account.writable_ticket()
    response = account.client.put(
        f"/api/v2/tickets/update_many.json?ids={ticket}",
        json={"ticket": {"additional_tags": ["pain__delays_and_waiting"]}},
    )
    assert response.status_code == 200
    account.settle()
    # Triggers did run on the API update (the "every update" one fired) ...
    assert len(receiver.got) == 1 and account.sim.webhooks.fired == 1
    # ... and cjm's trigger did not: an end user's public comment is what it needs.
    account.customer_comment(ticket)
    account.settle()
    assert len(receiver.got) == 3


def test_agent_replies_and_private_notes_do_not_match(account: Account, receiver: Receiver) -> None:
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    ticket = account.writable_ticket()
    account.customer_comment(ticket, author="agent")
    account.customer_comment(ticket, public=False)
    account.settle()
    assert receiver.got == []


def test_current_via_id_tells_api_updates_from_the_web(
    account: Account, receiver: Receiver
) -> None:
    hook = account.create_hook(receiver.url)
    not_api = {
        "all": [
            {"field": "update_type", "operator": "is", "value": "Change"},
            {"field": "current_via_id", "operator": "is_not", "value": "5"},
        ]
    }
    account.create_trigger(hook["id"], not_api)
    ticket = account.writable_ticket()
    account.client.put(
        f"/api/v2/tickets/update_many.json?ids={ticket}",
        json={"ticket": {"additional_tags": ["x_api"]}},
    )
    account.settle()
    assert receiver.got == []
    account.sim.agent_set_tags(ticket, add=["x_web"])  # an agent in the UI: via web (0)
    assert len(receiver.wait_for(1)) == 1


def test_5xx_is_retried_with_the_same_invocation_until_it_succeeds(
    account: Account, receiver: Receiver
) -> None:
    receiver.script = [500, 502, 200]
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    account.customer_comment(account.writable_ticket())
    account.settle()
    assert len(receiver.got) == 3
    assert len({g.headers["x-zendesk-webhook-invocation-id"] for g in receiver.got}) == 1
    secret = account.secret(hook["id"])
    assert all(
        g.headers["x-zendesk-webhook-signature"] == _signature(secret, g) for g in receiver.got
    )
    statuses = [a.status for a in account.sim.webhooks.deliverer.attempts]
    assert statuses == [500, 502, 200]


def test_409_is_retried_at_most_three_times_and_400_never(
    account: Account, receiver: Receiver
) -> None:
    receiver.script = [409] * 10
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    account.customer_comment(account.writable_ticket())
    account.settle()
    assert len(receiver.got) == 4  # the first attempt and 3 retries
    receiver.got.clear()
    receiver.script = [400, 200]
    account.customer_comment(account.writable_ticket())
    account.settle()
    assert len(receiver.got) == 1


def test_429_with_a_short_retry_after_and_timeouts_are_retried(
    account: Account, receiver: Receiver
) -> None:
    receiver.script = [429, "slow", 200]
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    account.customer_comment(account.writable_ticket())
    account.settle()
    attempts = account.sim.webhooks.deliverer.attempts
    assert [a.status for a in attempts][0] == 429
    assert attempts[1].status is None and attempts[1].error  # timed out at 0.3 s
    assert attempts[-1].status == 200 and len(attempts) == 3


def test_duplicate_fault_delivers_the_same_invocation_twice(
    account: Account, receiver: Receiver
) -> None:
    account.sim.webhooks.faults.duplicate_every = 1
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    account.customer_comment(account.writable_ticket())
    account.settle()
    assert len(receiver.got) == 2
    assert (
        receiver.got[0].headers["x-zendesk-webhook-invocation-id"]
        == (receiver.got[1].headers["x-zendesk-webhook-invocation-id"])
    )


def test_reorder_fault_delivers_newest_first(account: Account, receiver: Receiver) -> None:
    account.sim.webhooks.faults.reorder_window = 3
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    tickets = account.sim.open_tickets_with_customer_text()[:3]
    for ticket in tickets:
        account.customer_comment(ticket)
    account.settle()
    assert [int(g.json["ticket_id"]) for g in receiver.got] == list(reversed(tickets))


def test_a_secret_given_at_creation_signs_and_a_reset_changes_it(
    account: Account, receiver: Receiver
) -> None:
    hook = account.create_hook(receiver.url, signing_secret={"algorithm": "SHA256", "secret": "s1"})
    assert account.secret(hook["id"]) == "s1"
    reset = account.client.post(f"/api/v2/webhooks/{hook['id']}/signing_secret")
    assert reset.status_code == 201
    new = reset.json()["signing_secret"]["secret"]
    assert new != "s1" and account.secret(hook["id"]) == new
    account.create_trigger(hook["id"])
    account.customer_comment(account.writable_ticket())
    (got,) = receiver.wait_for(1)
    assert got.headers["x-zendesk-webhook-signature"] == _signature(new, got)


def test_webhook_and_trigger_crud(account: Account, receiver: Receiver) -> None:
    hook = account.create_hook(receiver.url)
    listed = account.client.get("/api/v2/webhooks", params={"filter[name_contains]": "CJ"})
    assert [h["id"] for h in listed.json()["webhooks"]] == [hook["id"]]
    assert listed.json()["webhooks"][0]["signing_secret"]["secret"] is None  # never listed
    put = account.client.put(
        f"/api/v2/webhooks/{hook['id']}",
        json={"webhook": {"name": "cjm", "endpoint": "https://other.example/x"}},
    )
    assert put.status_code == 204
    shown = account.client.get(f"/api/v2/webhooks/{hook['id']}").json()["webhook"]
    assert shown["endpoint"] == "https://other.example/x"
    trigger = account.create_trigger(hook["id"]).json()["trigger"]
    updated = account.client.put(
        f"/api/v2/triggers/{trigger['id']}.json", json={"trigger": {"active": False}}
    )
    assert updated.status_code == 200 and updated.json()["trigger"]["active"] is False
    assert account.client.get("/api/v2/triggers.json").json()["count"] == 1
    assert account.client.delete(f"/api/v2/triggers/{trigger['id']}.json").status_code == 204
    assert account.client.delete(f"/api/v2/webhooks/{hook['id']}").status_code == 204
    assert account.client.get(f"/api/v2/webhooks/{hook['id']}").status_code == 404
    assert account.sim.requests["POST /api/v2/webhooks"] == 1


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            {"title": "t", "conditions": {"all": [{"field": "brand_x", "operator": "is"}]}},
            "brand_x",
        ),
        ({"title": "t", "conditions": {"all": []}}, "at least one condition"),
        ({"conditions": TRIGGER_CONDITIONS}, "Title"),
    ],
)
def test_a_trigger_zendesk_would_refuse_is_a_422(
    account: Account, trigger: dict[str, Any], message: str
) -> None:
    hook = account.create_hook("https://cjm.example/hooks/zendesk/acme")
    body = {**trigger, "actions": [{"field": "notification_webhook", "value": [hook["id"], "{}"]}]}
    response = account.client.post("/api/v2/triggers.json", json={"trigger": body})
    assert response.status_code == 422 and message in response.text


def test_a_trigger_naming_an_unknown_webhook_is_a_422(account: Account) -> None:
    response = account.create_trigger("01NOPE")
    assert response.status_code == 422 and "does not exist" in response.text


def test_webhook_routes_need_credentials(account: Account) -> None:
    anonymous = httpx.get(f"{account.server.url}/api/v2/webhooks")
    assert anonymous.status_code == 401


def test_the_admin_comment_route_is_an_end_user_by_default(account: Account) -> None:
    ticket = account.writable_ticket()
    account.customer_comment(ticket)
    last = account.sim.ticket(ticket).comments[-1]
    assert last["author_id"] >= CUSTOMER_BASE and last["public"] is True
    assert (
        account.client.post("/_sim/tickets/999999/comments", json={"body": "x"}).status_code == 404
    )
    assert account.client.post(f"/_sim/tickets/{ticket}/comments", json={}).status_code == 400


# ---- Freshdesk: automation rules with a "Trigger webhook" action --------------------------


@pytest.fixture
def freshdesk() -> Iterator[tuple[FreshdeskSimulator, httpx.Client]]:
    sim = FreshdeskSimulator.generate(tickets=20, seed=4)
    sim.webhooks.deliverer.retry_scale = 0.0001  # 5/30/60 minutes become 30/180/360 ms
    with (
        serve_in_thread(create_freshdesk_app(sim)) as server,
        httpx.Client(base_url=server.url, auth=("sim-key", "X"), timeout=10) as client,
    ):
        yield sim, client


def _cjm_rule(url: str) -> dict[str, Any]:
    return {
        "name": "cjm: customer wrote",
        "url": url,
        "events": ["ticket_created", "customer_reply"],
        "performer": "customer",
        "headers": {"Authorization": "shared-secret"},
        "body": '{"ticket_id": "{{ticket.id}}"}',
    }


def test_freshdesk_rule_sends_the_shared_secret_on_a_customer_reply_and_a_new_ticket(
    freshdesk: tuple[FreshdeskSimulator, httpx.Client], receiver: Receiver
) -> None:
    sim, client = freshdesk
    assert client.put("/_sim/automation_rules", json=_cjm_rule(receiver.url)).status_code == 200
    ticket = sim.open_tickets_with_customer_text()[0]
    assert (
        client.post(f"/_sim/tickets/{ticket}/reply", json={"body": "Still broken"}).status_code
        == 201
    )
    created = client.post("/_sim/tickets", json={"subject": "Hi", "description": "Refund?"})
    got = receiver.wait_for(2)
    assert [g.json["ticket_id"] for g in got] == [str(ticket), str(created.json()["id"])]
    assert {g.headers["authorization"] for g in got} == {"shared-secret"}


def test_freshdesk_cjm_own_put_and_agent_replies_do_not_match_a_customer_rule(
    freshdesk: tuple[FreshdeskSimulator, httpx.Client], receiver: Receiver
) -> None:
    sim, client = freshdesk
    client.put("/_sim/automation_rules", json=_cjm_rule(receiver.url))
    every_update = {**_cjm_rule(receiver.url), "name": "any update", "events": ["ticket_updated"]}
    client.put("/_sim/automation_rules", json={**every_update, "performer": "any"})
    ticket = sim.open_tickets_with_customer_text()[0]
    response = client.put(f"/api/v2/tickets/{ticket}", json={"tags": ["pain__delays_and_waiting"]})
    assert response.status_code == 200
    client.post(f"/_sim/tickets/{ticket}/reply", json={"body": "On it", "incoming": False})
    assert sim.webhooks.deliverer.wait_idle(10)
    assert len(receiver.got) == 1 and sim.webhooks.fired == 1  # only the "any update" rule


def test_freshdesk_failed_webhooks_are_retried_three_times(
    freshdesk: tuple[FreshdeskSimulator, httpx.Client], receiver: Receiver
) -> None:
    sim, client = freshdesk
    receiver.script = [500] * 10
    client.put("/_sim/automation_rules", json=_cjm_rule(receiver.url))
    client.post(
        f"/_sim/tickets/{sim.open_tickets_with_customer_text()[0]}/reply", json={"body": "x"}
    )
    assert sim.webhooks.deliverer.wait_idle(10)
    assert len(receiver.got) == 4


def test_freshdesk_rule_route_refuses_bad_rules(
    freshdesk: tuple[FreshdeskSimulator, httpx.Client],
) -> None:
    _, client = freshdesk
    assert client.put("/_sim/automation_rules", json={"name": "x"}).status_code == 400
    bad_event = {**_cjm_rule("https://cjm.example/h"), "events": ["nope"]}
    assert client.put("/_sim/automation_rules", json=bad_event).status_code == 400


# ---- single-ticket PUT and the condition rules ---------------------------------------------


def test_single_ticket_put_runs_triggers_and_safe_update_refuses_a_stale_stamp(
    account: Account, receiver: Receiver
) -> None:
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    any_change = {"all": [{"field": "update_type", "operator": "is", "value": "Change"}]}
    account.create_trigger(hook["id"], any_change, title="every update")
    ticket = account.writable_ticket()
    current = account.client.get(f"/api/v2/tickets/{ticket}.json").json()["ticket"]
    body = {"additional_tags": ["pain__refunds"], "safe_update": True}
    fresh = {**body, "updated_stamp": current["updated_at"]}
    response = account.client.put(f"/api/v2/tickets/{ticket}.json", json={"ticket": fresh})
    assert response.status_code == 200
    assert "pain__refunds" in response.json()["ticket"]["tags"]
    account.settle()
    assert len(receiver.got) == 1  # "every update" only; cjm's trigger needs a customer
    account.customer_comment(ticket)  # moves updated_at: the old stamp is now stale
    stale = {**body, "updated_stamp": "2000-01-01T00:00:00Z"}
    response = account.client.put(f"/api/v2/tickets/{ticket}.json", json={"ticket": stale})
    assert response.status_code == 409


def _context(**overrides: Any) -> UpdateContext:
    sim = ZendeskSimulator.generate(tickets=3, seed=1)
    ticket = sim.ticket_state(1)
    ticket.tags = ("vip", "pain__refunds")
    ticket.fields = {360_000_101: "plan_free"}
    values: dict[str, Any] = {
        "ticket": ticket,
        "created": False,
        "updater": CUSTOMER_BASE + 1,
        "channel": "email",
        "comment_public": True,
        "changed": frozenset(),
    }
    return UpdateContext(**{**values, **overrides})


@pytest.mark.parametrize(
    ("condition", "overrides", "expected"),
    [
        (("update_type", "is", "Create"), {"created": True}, True),
        (("update_type", "is", "Create"), {}, False),
        (("comment_is_public", "is", "true"), {}, True),
        (("comment_is_public", "is", "not_relevant"), {"comment_public": None}, True),
        (("comment_is_public", "is", "true"), {"comment_public": False}, False),
        (("role", "is", "end_user"), {}, True),
        (("role", "is", "end_user"), {"updater": INTEGRATION_USER_ID}, False),
        (("role", "is", "admin"), {"updater": INTEGRATION_USER_ID}, True),
        (("current_via_id", "is", "4"), {}, True),
        (("current_via_id", "is_not", "5"), {"channel": "api"}, False),
        (("current_tags", "includes", "vip other"), {}, True),
        (("current_tags", "not_includes", "pain__refunds"), {}, False),
        (("custom_fields_360000101", "is", "plan_free"), {}, True),
        (("custom_fields_360000101", "changed", None), {"changed": frozenset({"360000101"})}, True),
        (("custom_fields_360000101", "not_changed", None), {"changed": frozenset({"tags"})}, True),
        (("custom_fields_360000999", "present", None), {}, False),
    ],
)
def test_trigger_conditions_hold_as_in_zendesk(
    condition: tuple[str, str, Any], overrides: dict[str, Any], expected: bool
) -> None:
    name, operator, value = condition
    conditions = {"all": [{"field": name, "operator": operator, "value": value}], "any": []}
    assert matches(conditions, _context(**overrides)) is expected


def test_any_needs_one_of_its_conditions() -> None:
    either = {
        "all": [],
        "any": [
            {"field": "update_type", "operator": "is", "value": "Create"},
            {"field": "role", "operator": "is", "value": "agent"},
        ],
    }
    assert matches(either, _context(created=True))
    assert not matches(either, _context())


def test_faults_and_the_delivery_log_are_reachable_over_http(
    account: Account, receiver: Receiver
) -> None:
    """A benchmark running the simulator in another process sets faults and reads counts."""
    response = account.client.put("/_sim/webhook_faults", json={"duplicate_every": 1})
    assert response.status_code == 204
    hook = account.create_hook(receiver.url)
    account.create_trigger(hook["id"])
    account.customer_comment(account.writable_ticket())
    account.settle()
    log = account.client.get("/_sim/webhook_deliveries").json()
    assert log["fired"] == 1 and log["pending"] == 0
    assert [a["status"] for a in log["attempts"]] == [200, 200]
    assert "body" not in log["attempts"][0]  # counts and ids only, never ticket text
