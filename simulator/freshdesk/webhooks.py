"""Automation rules with a "Trigger webhook" action in the simulated Freshdesk.

Why: Freshdesk rings `cjm serve` through an automation rule (notes/realtime-and-apps.md §3.1):
on ticket creation, or on a ticket update such as "reply sent by the customer", the rule POSTs
its body to a URL with the headers the admin configured. Freshdesk webhooks are unsigned; cjm
authenticates them with a shared secret in the `Authorization` header. There is no documented
public API to create these rules, so the simulator takes them through a simulator-only admin
route (`PUT /_sim/automation_rules`, in ``routes``) and tests configure them the way an admin
would in the UI.

Events: ``ticket_created`` (a customer opened a ticket), ``customer_reply``, ``agent_reply``,
``ticket_updated`` (any other change, including cjm's own `PUT /tickets/{id}`). A rule lists the
events it runs on and the performer it requires (``customer``, ``agent`` or ``any``); cjm's rules
need a customer, so cjm's API updates (performed by the API key's agent) never match.
Retries follow Freshdesk: after 5, 30 and 60 minutes, scaled by the deliverer's `retry_scale`.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from simulator.delivery import FRESHDESK_DELAYS, FRESHDESK_RETRIES, Deliverer, Delivery

EVENTS = ("ticket_created", "customer_reply", "agent_reply", "ticket_updated")
PERFORMERS = ("customer", "agent", "any")
_PLACEHOLDER = re.compile(r"\{\{\s*ticket\.id\s*\}\}")


class RuleError(ValueError):
    """An automation rule the admin route refuses (400 with this message)."""


@dataclass
class AutomationRule:
    id: int
    name: str
    url: str
    events: tuple[str, ...]
    performer: str
    headers: dict[str, str]
    body: str
    active: bool = True


@dataclass
class FreshdeskWebhooks:
    deliverer: Deliverer = field(
        default_factory=lambda: Deliverer(
            retries=dict(FRESHDESK_RETRIES), delays=FRESHDESK_DELAYS, name="freshdesk-webhooks"
        )
    )
    rules: dict[int, AutomationRule] = field(default_factory=dict)
    fired: int = 0

    def put_rule(self, body: dict[str, Any]) -> AutomationRule:
        """Create a rule, or replace the one with the same name (an admin editing it)."""
        name, url = body.get("name"), body.get("url")
        if not name or not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
            raise RuleError("a rule needs a name and an http(s) url")
        events = tuple(body.get("events") or ("ticket_created", "customer_reply"))
        if not set(events) <= set(EVENTS):
            raise RuleError(f"events are among {', '.join(EVENTS)}")
        performer = str(body.get("performer") or "customer")
        if performer not in PERFORMERS:
            raise RuleError(f"performer is one of {', '.join(PERFORMERS)}")
        headers = body.get("headers") or {}
        if not isinstance(headers, dict):
            raise RuleError("headers is an object of header name to value")
        existing = next((r for r in self.rules.values() if r.name == name), None)
        rule = AutomationRule(
            id=existing.id if existing else 1000 + len(self.rules) + 1,
            name=str(name),
            url=url,
            events=events,
            performer=performer,
            headers={str(k): str(v) for k, v in headers.items()},
            body=str(body.get("body") or '{"ticket_id": "{{ticket.id}}"}'),
            active=bool(body.get("active", True)),
        )
        self.rules[rule.id] = rule
        return rule

    def on_event(self, ticket_id: int, event: str, performer: str) -> None:
        """Run the active rules against one event (called under the simulator's lock)."""
        for rule in self.rules.values():
            if not rule.active or event not in rule.events:
                continue
            if rule.performer != "any" and rule.performer != performer:
                continue
            self.fired += 1
            payload = _PLACEHOLDER.sub(str(ticket_id), rule.body).encode("utf-8")
            headers = dict(rule.headers)
            self.deliverer.submit(
                Delivery(
                    str(rule.id),
                    secrets.token_hex(8),
                    ticket_id,
                    rule.url,
                    "POST",
                    payload,
                    functools.partial(_fixed_headers, headers),
                )
            )


def _fixed_headers(headers: dict[str, str], _body: bytes) -> dict[str, str]:
    """Freshdesk signs nothing: every attempt carries the rule's own headers unchanged."""
    return headers
