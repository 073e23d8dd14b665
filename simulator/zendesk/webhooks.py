"""Webhooks and triggers of the simulated Zendesk account, and the signed deliveries they cause.

Why: cjm's real-time path (`cjm serve`) must be tested against a helpdesk that fires webhooks the
way Zendesk does, not against requests a test forges. Zendesk connects a webhook to ticket
activity through a *trigger*: after every ticket create or update, each active trigger whose
conditions hold runs its actions, and a `notification_webhook` action `[webhook id, JSON body
with placeholders]` makes Zendesk POST the rendered body to the webhook's endpoint, signed with
`base64(HMAC-SHA256(signing secret, timestamp + body))` (notes §2.1–2.2). Updates made through
the API (cjm's own write-back) run triggers too: that is what the loop guard must survive, so
they are evaluated here like any other update.

Conditions evaluated (the subset cjm's trigger and its tests need; anything else is refused
with a 422 at create time rather than silently never matching): `update_type` (Create/Change),
`comment_is_public` (true/false/not_relevant), `role` (the current user: end_user/agent/admin),
`current_via_id` and `via_id` (Zendesk's channel numbers), `current_tags`, `status`,
`custom_fields_<id>` (is/is_not/present/not_present/changed/not_changed). `all` must all hold,
and at least one of `any` when `any` is not empty.

This module is state and rules; `webhook_routes` serves them over the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator.delivery import Deliverer, Delivery, DeliveryFaults

from .state import AGENT_BASE, CUSTOMER_BASE, INTEGRATION_USER_ID, Audit, Ticket, iso

ACCOUNT_ID = 10_203_040
TEST_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # the builder's documented one
# Zendesk's via ids (ticket `via.channel` → number used by via_id/current_via_id conditions).
VIA_IDS = {
    "web": 0,
    "email": 4,
    "api": 5,
    "rule": 8,
    "twitter": 23,
    "facebook": 38,
    "chat": 29,
    "voice": 45,
    "mobile": 56,
    "native_messaging": 74,
}
CONDITION_FIELDS = (
    "update_type",
    "comment_is_public",
    "role",
    "current_via_id",
    "via_id",
    "current_tags",
    "status",
)
METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")
FORMATS = ("json", "xml", "form_encoded")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_.]+)\s*\}\}")


class WebhookError(ValueError):
    """A request the Zendesk API would refuse (422 RecordInvalid with this description)."""


@dataclass
class Webhook:
    id: str
    name: str
    endpoint: str
    http_method: str
    request_format: str
    status: str
    subscriptions: list[str]
    secret: str
    description: str
    created_at: str
    updated_at: str
    created_by: str


@dataclass
class Trigger:
    id: int
    title: str
    active: bool
    conditions: dict[str, list[dict[str, Any]]]
    actions: list[dict[str, Any]]
    description: str
    position: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class UpdateContext:
    """What the trigger conditions look at for one ticket create/update."""

    ticket: Ticket
    created: bool
    updater: int
    channel: str
    comment_public: bool | None  # None: the update carries no comment
    changed: frozenset[str]  # "tags", "status", custom field ids as strings


@dataclass
class WebhookAccount:
    """The webhooks and triggers of one simulated account; fires deliveries through a
    `Deliverer`. All methods are called under the simulator's lock."""

    deliverer: Deliverer = field(default_factory=Deliverer)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    triggers: dict[int, Trigger] = field(default_factory=dict)
    fired: int = 0  # trigger actions that produced a delivery
    _seq: int = 0
    _invocations: int = 0

    @property
    def faults(self) -> DeliveryFaults:
        return self.deliverer.faults

    # ---- webhooks ----------------------------------------------------------------------

    def create_webhook(self, body: dict[str, Any], now: int) -> Webhook:
        _require(body, "name", "endpoint")
        self._seq += 1
        secret_spec = body.get("signing_secret") or {}
        secret = secret_spec.get("secret") if isinstance(secret_spec, dict) else None
        hook = Webhook(
            id=f"01HSIMWEBHOOK{self._seq:013d}",
            name=str(body["name"]),
            endpoint=_endpoint(body["endpoint"]),
            http_method=_choice(body.get("http_method", "POST"), METHODS),
            request_format=_choice(body.get("request_format", "json"), FORMATS),
            status=_choice(body.get("status", "active"), ("active", "inactive")),
            subscriptions=list(body.get("subscriptions") or ["conditional_ticket_events"]),
            secret=str(secret) if secret else _new_secret(),
            description=str(body.get("description") or ""),
            created_at=iso(now),
            updated_at=iso(now),
            created_by=str(INTEGRATION_USER_ID),
        )
        self.webhooks[hook.id] = hook
        return hook

    def update_webhook(
        self, hook: Webhook, body: dict[str, Any], now: int, *, replace: bool
    ) -> None:
        """PUT replaces the webhook (name and endpoint required), PATCH changes what is given."""
        if replace:
            _require(body, "name", "endpoint")
        if "name" in body:
            hook.name = str(body["name"])
        if "endpoint" in body:
            hook.endpoint = _endpoint(body["endpoint"])
        if "http_method" in body:
            hook.http_method = _choice(body["http_method"], METHODS)
        if "request_format" in body:
            hook.request_format = _choice(body["request_format"], FORMATS)
        if "status" in body:
            hook.status = _choice(body["status"], ("active", "inactive"))
        if "subscriptions" in body:
            hook.subscriptions = list(body["subscriptions"] or [])
        if "description" in body:
            hook.description = str(body["description"] or "")
        hook.updated_at = iso(now)

    def delete_webhook(self, hook_id: str) -> bool:
        return self.webhooks.pop(hook_id, None) is not None

    def reset_secret(self, hook: Webhook) -> str:
        hook.secret = _new_secret()
        return hook.secret

    # ---- triggers ----------------------------------------------------------------------

    def create_trigger(self, body: dict[str, Any], now: int) -> Trigger:
        _require(body, "title")
        conditions, actions = self._validate(body.get("conditions"), body.get("actions"))
        trigger_id = 360_100_000 + len(self.triggers) + 1
        while trigger_id in self.triggers:
            trigger_id += 1
        trigger = Trigger(
            id=trigger_id,
            title=str(body["title"]),
            active=bool(body.get("active", True)),
            conditions=conditions,
            actions=actions,
            description=str(body.get("description") or ""),
            position=int(body.get("position") or len(self.triggers) + 1),
            created_at=iso(now),
            updated_at=iso(now),
        )
        self.triggers[trigger.id] = trigger
        return trigger

    def update_trigger(self, trigger: Trigger, body: dict[str, Any], now: int) -> None:
        conditions, actions = self._validate(
            body.get("conditions", trigger.conditions), body.get("actions", trigger.actions)
        )
        trigger.conditions, trigger.actions = conditions, actions
        if "title" in body:
            if not body["title"]:
                raise WebhookError("Title: cannot be blank")
            trigger.title = str(body["title"])
        if "active" in body:
            trigger.active = bool(body["active"])
        if "description" in body:
            trigger.description = str(body["description"] or "")
        if "position" in body:
            trigger.position = int(body["position"])
        trigger.updated_at = iso(now)

    def delete_trigger(self, trigger_id: int) -> bool:
        return self.triggers.pop(trigger_id, None) is not None

    def _validate(
        self, conditions: Any, actions: Any
    ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        if not isinstance(conditions, dict):
            raise WebhookError("Conditions: must be an object with all and any")
        clean: dict[str, list[dict[str, Any]]] = {"all": [], "any": []}
        for group in ("all", "any"):
            items = conditions.get(group) or []
            if not isinstance(items, list):
                raise WebhookError(f"Conditions: {group} must be a list")
            for item in items:
                if not isinstance(item, dict) or "field" not in item or "operator" not in item:
                    raise WebhookError("Conditions: each needs field, operator and value")
                name = str(item["field"])
                if name not in CONDITION_FIELDS and not name.startswith("custom_fields_"):
                    raise WebhookError(f"Conditions: {name} is not supported by the simulator")
                clean[group].append(
                    {"field": name, "operator": str(item["operator"]), "value": item.get("value")}
                )
        if not clean["all"] and not clean["any"]:
            raise WebhookError("Conditions: a trigger needs at least one condition")
        if not isinstance(actions, list) or not actions:
            raise WebhookError("Actions: a trigger needs at least one action")
        for action in actions:
            if not isinstance(action, dict) or "field" not in action:
                raise WebhookError("Actions: each needs field and value")
            if action["field"] == "notification_webhook":
                value = action.get("value")
                if not (isinstance(value, list) and len(value) == 2):
                    raise WebhookError("Actions: notification_webhook takes [webhook id, body]")
                if str(value[0]) not in self.webhooks:
                    raise WebhookError(f"Actions: webhook {value[0]} does not exist")
        return clean, [dict(a) for a in actions]

    # ---- firing ------------------------------------------------------------------------

    def on_update(self, ticket: Ticket, audit: Audit, created: bool) -> None:
        """Run the active triggers, in position order, against one create/update."""
        if not self.triggers:
            return
        _, _, _, updater, channel, kids = audit
        comments = [k for k in kids if k[0] == "C"]
        context = UpdateContext(
            ticket=ticket,
            created=created,
            updater=updater,
            channel=channel,
            comment_public=any(k[2] for k in comments) if comments else None,
            changed=frozenset(str(k[1]) for k in kids if k[0] == "X"),
        )
        for trigger in sorted(self.triggers.values(), key=lambda t: (t.position, t.id)):
            if trigger.active and matches(trigger.conditions, context):
                for action in trigger.actions:
                    if action["field"] == "notification_webhook":
                        self._fire(str(action["value"][0]), str(action["value"][1]), context)

    def _fire(self, hook_id: str, template: str, context: UpdateContext) -> None:
        hook = self.webhooks.get(hook_id)
        if hook is None or hook.status != "active":
            return
        self._invocations += 1
        self.fired += 1
        invocation = f"{self._invocations:08d}{secrets.token_hex(4)}"
        body = render(template, context).encode("utf-8")
        secret = hook.secret

        def sign(payload: bytes) -> dict[str, str]:
            timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return {
                "X-Zendesk-Webhook-Signature": signature(secret, timestamp, payload),
                "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
                "x-zendesk-webhook-id": hook_id,
                "x-zendesk-webhook-invocation-id": invocation,
                "x-zendesk-account-id": str(ACCOUNT_ID),
            }

        self.deliverer.submit(
            Delivery(
                hook_id, invocation, context.ticket.id, hook.endpoint, hook.http_method, body, sign
            )
        )


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's webhook signature: base64(HMAC-SHA256(secret, timestamp + raw body))."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def role(user_id: int) -> str:
    """The role Zendesk gives the simulated users (the integration user is an admin)."""
    if user_id >= CUSTOMER_BASE:
        return "end_user"
    if user_id == INTEGRATION_USER_ID:
        return "admin"
    if user_id >= AGENT_BASE:
        return "agent"
    return "system"  # -1: triggers and automations


def matches(conditions: dict[str, list[dict[str, Any]]], context: UpdateContext) -> bool:
    everything = all(_holds(c, context) for c in conditions.get("all") or [])
    some = conditions.get("any") or []
    return everything and (not some or any(_holds(c, context) for c in some))


def _holds(condition: dict[str, Any], ctx: UpdateContext) -> bool:
    name, op, value = condition["field"], condition["operator"], condition.get("value")
    t = ctx.ticket
    if name == "current_tags":
        wanted = set(str(value or "").split())
        present = bool(wanted & set(t.tags))
        return present if op == "includes" else not present if op == "not_includes" else False
    if name.startswith("custom_fields_"):
        fid = name.removeprefix("custom_fields_")
        current = t.fields.get(int(fid)) if fid.isdigit() else None
        return _compare(op, current, value, changed=fid in ctx.changed)
    actual: Any = {
        "update_type": "Create" if ctx.created else "Change",
        "comment_is_public": (
            "not_relevant" if ctx.comment_public is None else str(ctx.comment_public).lower()
        ),
        "role": role(ctx.updater),
        "current_via_id": VIA_IDS.get(ctx.channel, 0),
        "via_id": VIA_IDS.get(t.channel, 0),
        "status": t.status,
    }[name]
    return _compare(op, actual, value, changed=name == "status" and "status" in ctx.changed)


def _compare(op: str, actual: Any, value: Any, *, changed: bool) -> bool:
    same = str(actual).lower() == str(value).lower() if actual is not None else value in (None, "")
    if op == "is":
        return same
    if op == "is_not":
        return not same
    if op == "present":
        return actual not in (None, "")
    if op == "not_present":
        return actual in (None, "")
    if op == "changed":
        return changed
    if op == "not_changed":
        return not changed
    if op == "changed_to":
        return changed and same
    return False


def render(template: str, ctx: UpdateContext) -> str:
    """Substitute the placeholders a cjm body uses; unknown ones render empty, as in Zendesk."""
    t = ctx.ticket
    values = {
        "ticket.id": str(t.id),
        "ticket.status": t.status,
        "ticket.via": t.channel,
        "ticket.requester.id": str(t.requester_id),
        "ticket.tags": " ".join(t.tags),
        "ticket.created_at_with_timestamp": iso(t.created),
        "ticket.updated_at_with_timestamp": iso(t.updated),
        "current_user.id": str(ctx.updater),
        "current_user.role": role(ctx.updater),
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def webhook_json(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "name": hook.name,
        "status": hook.status,
        "endpoint": hook.endpoint,
        "http_method": hook.http_method,
        "request_format": hook.request_format,
        "subscriptions": hook.subscriptions,
        "description": hook.description,
        "created_at": hook.created_at,
        "created_by": hook.created_by,
        "updated_at": hook.updated_at,
        "updated_by": hook.created_by,
        "signing_secret": {"algorithm": "SHA256", "secret": None},
    }


def trigger_json(trigger: Trigger, base: str) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "url": f"{base}/api/v2/triggers/{trigger.id}.json",
        "title": trigger.title,
        "raw_title": trigger.title,
        "active": trigger.active,
        "position": trigger.position,
        "conditions": trigger.conditions,
        "actions": trigger.actions,
        "description": trigger.description,
        "default": False,
        "category_id": "10000",
        "created_at": trigger.created_at,
        "updated_at": trigger.updated_at,
    }


def _require(body: dict[str, Any], *names: str) -> None:
    for name in names:
        if not body.get(name):
            raise WebhookError(f"{name.capitalize()}: cannot be blank")


def _choice(value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if str(value) not in allowed:
        raise WebhookError(f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _endpoint(value: Any) -> str:
    text = str(value)
    if not re.match(r"^https?://[^\s/]+", text):
        raise WebhookError("Endpoint: must be an http(s) URL")
    return text


def _new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")
