"""Freshdesk's JSON shapes of the simulated account: tickets (with their `include`s),
conversations, agents and satisfaction ratings. Pure functions of the state (read through its
public methods); the caller holds ``sim.lock``. Error bodies are in ``http``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from simulator import corpus
from simulator.freshdesk.state import CLOSED, RESOLVED, contact, iso

if TYPE_CHECKING:
    from simulator.freshdesk.state import FreshdeskSimulator, Ticket


def ticket_json(
    sim: FreshdeskSimulator, t: Ticket, includes: Iterable[str] = ("description",)
) -> dict[str, Any]:
    inc = set(includes)
    out: dict[str, Any] = {
        "id": t.id,
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "source": t.source,
        "requester_id": t.requester_id,
        "responder_id": t.responder_id,
        "group_id": t.group_id,
        "company_id": None,
        "type": None,
        "tags": list(t.tags),
        "custom_fields": {
            f["name"]: t.custom.get(f["name"]) for f in sim.fields() if not f["default"]
        },
        "cc_emails": [],
        "fwd_emails": [],
        "reply_cc_emails": [],
        "to_emails": None,
        "fr_escalated": False,
        "is_escalated": False,
        "spam": t.spam,
        "email_config_id": None,
        "product_id": None,
        "created_at": iso(t.created),
        "updated_at": iso(t.updated),
        "due_by": iso(t.created + 3 * 86400),
        "fr_due_by": iso(t.created + 86400),
    }
    if t.deleted:
        out["deleted"] = True
    if "description" in inc:
        text = sim.render(t, None)
        out["description_text"] = text
        out["description"] = corpus.as_html(escape(text))
    if "stats" in inc:
        out["stats"] = {
            "agent_responded_at": iso(t.agent_resp) if t.agent_resp else None,
            "requester_responded_at": iso(t.req_resp) if t.req_resp else None,
            "first_responded_at": iso(t.agent_resp) if t.agent_resp else None,
            "status_updated_at": iso(t.updated),
            "reopened_at": None,
            "resolved_at": iso(t.updated) if t.status >= RESOLVED else None,
            "closed_at": iso(t.updated) if t.status == CLOSED else None,
            "pending_since": None,
        }
    if "requester" in inc:
        first, last, email, _ = contact(sim.seed, t.requester_id)
        out["requester"] = {"id": t.requester_id, "name": f"{first} {last}", "email": email}
    return out


def conv_json(sim: FreshdeskSimulator, t: Ticket, conv: tuple[Any, ...]) -> dict[str, Any]:
    cid, ts, user, incoming, private, source, _, _ = conv
    text = sim.render(t, conv)
    return {
        "id": cid,
        "body": corpus.as_html(escape(text)),
        "body_text": text,
        "incoming": incoming,
        "private": private,
        "source": source,
        "user_id": user,
        "support_email": None if incoming else "support@acme.example",
        "to_emails": [],
        "from_email": None,
        "cc_emails": [],
        "bcc_emails": None,
        "ticket_id": t.id,
        "created_at": iso(ts),
        "updated_at": iso(ts),
        "attachments": [],
        "last_edited_at": None,
        "last_edited_user_id": None,
    }


def agent_json(aid: int, first: str, last: str) -> dict[str, Any]:
    return {
        "id": aid,
        "available": True,
        "occasional": False,
        "ticket_scope": 1,
        "contact": {
            "name": f"{first} {last}",
            "email": f"{first}.{last}@acme.example".lower(),
            "active": True,
        },
    }


def rating_json(rid: int, ts: int, t: Ticket) -> dict[str, Any]:
    assert t.rating is not None
    return {
        "id": rid,
        "survey_id": 1,
        "user_id": t.requester_id,
        "agent_id": t.responder_id,
        "group_id": t.group_id,
        "ticket_id": t.id,
        "feedback": t.rating[3],
        "ratings": {"default_question": t.rating[2]},
        "created_at": iso(ts),
        "updated_at": iso(ts),
    }


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
