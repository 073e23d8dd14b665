"""Zendesk's side of real time: the webhook that rings `cjm serve`, and the trigger that rings it.

Why a webhook *and* a trigger: a Zendesk webhook only calls out when something invokes it; a
trigger connects it to ticket activity (notes/realtime-and-apps.md §2.2). The trigger's body is a
doorbell — `{"ticket_id": "{{ticket.id}}"}` — and the worker reads the ticket through the API.

Why these conditions (§2.4): every update runs the triggers again, including cjm's own
write-back through `update_many`. The trigger therefore fires only for a *public comment* written
by an *end user* (ticket creation from the web form or e-mail carries one): cjm's updates add no
comment and are made by the integration user, an agent/admin, so they never match, whatever
fields or tags they change. The worker's unchanged-desired-state check is the second guard.

Idempotent by name: running setup again finds the webhook by its name and the trigger by its
title and updates them in place (PUT) only when they differ; nothing is duplicated. Calls go
through the connector's `ApiClient`, so they share its rate limiter and retry rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connectors.errors import ApiError
from connectors.http import ApiClient

WEBHOOKS = "/api/v2/webhooks"
WEBHOOK = "/api/v2/webhooks/{id}"
SIGNING_SECRET = "/api/v2/webhooks/{id}/signing_secret"
TRIGGERS = "/api/v2/triggers.json"
TRIGGER = "/api/v2/triggers/{id}.json"

WEBHOOK_NAME = "cjm real-time tagging"
TRIGGER_TITLE = "cjm: customer wrote (real-time tagging)"
DESCRIPTION = "Created by `cjm setup-webhook`; rings cjm serve when a customer writes."
# Only ids: the payload is a doorbell, never the data (placeholders render as raw text).
TRIGGER_BODY = (
    '{"ticket_id": "{{ticket.id}}", "updated_at": "{{ticket.updated_at_with_timestamp}}"}'
)
TRIGGER_CONDITIONS: dict[str, list[dict[str, Any]]] = {
    "all": [
        # A public comment is part of this update (a new ticket's first message counts) ...
        {"field": "comment_is_public", "operator": "is", "value": "true"},
        # ... and the user making the update is an end user: never cjm's integration user.
        # ("Current user is (end user)" in the admin UI; `role` / `end_user` is the API's
        # spelling in peers' trigger definitions, e.g. nukosuke/terraform-provider-zendesk.)
        {"field": "role", "operator": "is", "value": "end_user"},
    ],
    "any": [],
}


@dataclass(frozen=True)
class WebhookSetup:
    """What setup found and did. `*_action` is created, updated or unchanged."""

    webhook_id: str
    webhook_action: str
    trigger_id: str
    trigger_action: str
    signing_secret: str

    def __repr__(self) -> str:  # the secret never reaches a log line or a traceback
        return (
            f"WebhookSetup(webhook_id={self.webhook_id!r}, webhook_action={self.webhook_action!r},"
            f" trigger_id={self.trigger_id!r}, trigger_action={self.trigger_action!r})"
        )


def webhook_body(url: str) -> dict[str, Any]:
    return {
        "name": WEBHOOK_NAME,
        "endpoint": url,
        "http_method": "POST",
        "request_format": "json",
        "status": "active",
        "subscriptions": ["conditional_ticket_events"],
        "description": DESCRIPTION,
    }


def trigger_body(webhook_id: str) -> dict[str, Any]:
    return {
        "title": TRIGGER_TITLE,
        "active": True,
        "description": DESCRIPTION,
        "conditions": TRIGGER_CONDITIONS,
        "actions": [{"field": "notification_webhook", "value": [webhook_id, TRIGGER_BODY]}],
    }


async def setup_webhook(api: ApiClient, url: str) -> WebhookSetup:
    """Create or update cjm's webhook (pointing at `url`) and trigger; read the signing secret."""
    hook, hook_action = await ensure_webhook(api, url)
    hook_id = str(hook["id"])
    secret = await signing_secret(api, hook_id)
    trigger, trigger_action = await ensure_trigger(api, hook_id)
    return WebhookSetup(hook_id, hook_action, str(trigger["id"]), trigger_action, secret)


async def ensure_webhook(api: ApiClient, url: str) -> tuple[dict[str, Any], str]:
    wanted = webhook_body(url)
    existing = await find_webhook(api)
    if existing is None:
        response = await api.request(
            "POST", WEBHOOKS, endpoint="webhooks:create", json={"webhook": wanted}
        )
        return _record(api, response, "webhook", "webhooks:create"), "created"
    if all(existing.get(k) == v for k, v in wanted.items()):
        return existing, "unchanged"
    await api.request(
        "PUT",
        WEBHOOK.format(id=existing["id"]),
        endpoint="webhooks:update",
        json={"webhook": wanted},
    )
    return {**existing, **wanted}, "updated"


async def find_webhook(api: ApiClient) -> dict[str, Any] | None:
    """cjm's webhook, by exact name (the list filter only narrows by substring)."""
    url: str | None = WEBHOOKS
    params: dict[str, Any] | None = {"filter[name_contains]": WEBHOOK_NAME}
    while url:
        body = await api.get_json(url, endpoint="webhooks", params=params)
        for hook in body.get("webhooks") or ():
            if hook.get("name") == WEBHOOK_NAME:
                return dict(hook)
        url, params = (body.get("links") or {}).get("next"), None
    return None


async def signing_secret(api: ApiClient, webhook_id: str) -> str:
    body = await api.get_json(
        SIGNING_SECRET.format(id=webhook_id), endpoint="webhooks:signing_secret"
    )
    secret = (body.get("signing_secret") or {}).get("secret")
    if not secret:
        raise ApiError(
            "Zendesk returned no signing secret for cjm's webhook (webhooks created by an app "
            "cannot reveal theirs): delete the webhook and run setup-webhook again"
        )
    return str(secret)


async def ensure_trigger(api: ApiClient, webhook_id: str) -> tuple[dict[str, Any], str]:
    wanted = trigger_body(webhook_id)
    existing = await find_trigger(api)
    if existing is None:
        response = await api.request(
            "POST", TRIGGERS, endpoint="triggers:create", json={"trigger": wanted}
        )
        return _record(api, response, "trigger", "triggers:create"), "created"
    if _same_trigger(existing, wanted):
        return existing, "unchanged"
    response = await api.request(
        "PUT",
        TRIGGER.format(id=existing["id"]),
        endpoint="triggers:update",
        json={"trigger": wanted},
    )
    return _record(api, response, "trigger", "triggers:update"), "updated"


async def find_trigger(api: ApiClient) -> dict[str, Any] | None:
    url: str | None = TRIGGERS
    while url:
        body = await api.get_json(url, endpoint="triggers")
        for trigger in body.get("triggers") or ():
            if trigger.get("title") == TRIGGER_TITLE:
                return dict(trigger)
        url = body.get("next_page")
    return None


def _same_trigger(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def canon(conditions: Any) -> str:
        conditions = conditions or {}
        return json.dumps(
            {g: [_condition(c) for c in conditions.get(g) or ()] for g in ("all", "any")},
            sort_keys=True,
        )

    def actions(items: Any) -> str:
        return json.dumps(items or [], sort_keys=True)

    return (
        bool(existing.get("active")) == wanted["active"]
        and canon(existing.get("conditions")) == canon(wanted["conditions"])
        and actions(existing.get("actions")) == actions(wanted["actions"])
    )


def _condition(c: dict[str, Any]) -> dict[str, str]:
    return {
        "field": str(c.get("field")),
        "operator": str(c.get("operator")),
        "value": str(c.get("value")),
    }


def _record(api: ApiClient, response: Any, key: str, endpoint: str) -> dict[str, Any]:
    record = api.decode(response, endpoint)
    record = record.get(key) if isinstance(record, dict) else None
    if not isinstance(record, dict) or record.get("id") is None:
        raise ApiError(f"Zendesk answered {endpoint} without a {key} id", response.status_code)
    return record
