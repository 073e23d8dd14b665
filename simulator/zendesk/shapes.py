"""Zendesk's JSON shapes of the simulated account: tickets, users, audits (ticket_events),
fields, satisfaction ratings, conversation logs and Chat transcripts.

Pure functions of the state (``state.ZendeskSimulator``, read through its public methods); the
caller holds ``sim.lock``. Only what a client reads is shaped here; errors are in ``http``.
"""

from __future__ import annotations

import random
import unicodedata
from typing import TYPE_CHECKING, Any

from simulator import corpus

from .state import (
    CUSTOMER_BASE,
    FIELD_BASE,
    INTEGRATION_USER_ID,
    ORG_BASE,
    STATUSES,
    SUPPORT_ADDRESS,
    VIA_RULE,
    Audit,
    Field,
    Option,
    Ticket,
    customer_profile,
    iso,
)

if TYPE_CHECKING:
    from .state import ZendeskSimulator


def user_json(sim: ZendeskSimulator, uid: int, base: str) -> dict[str, Any] | None:
    """A Zendesk user object, or None for an unknown id."""
    if uid == INTEGRATION_USER_ID:
        return user(uid, "Acme Integration (cjm)", sim.email, "admin", base, None)
    names = sim.agent_names()
    if uid in names:
        first, last = names[uid]
        email = f"{first}.{last}@acme.example".lower().replace("'", "")
        email = unicodedata.normalize("NFKD", email).encode("ascii", "ignore").decode()
        return user(uid, f"{first} {last}", email, "agent", base, None)
    if CUSTOMER_BASE < uid <= CUSTOMER_BASE + sim.customer_count:
        first, last, email, phone = customer_profile(sim.seed, uid)
        k = uid - CUSTOMER_BASE - 1
        org = ORG_BASE + (k % 25) + 1 if k % 7 == 0 else None
        return user(uid, f"{first} {last}", email, "end-user", base, org, phone)
    return None


def ticket_json(sim: ZendeskSimulator, t: Ticket, base: str) -> dict[str, Any]:
    """A Zendesk ticket object (the export and show shapes)."""
    first = next(iter(sim.iter_comments(t)), None)
    description = first[3] if first else ""
    custom = [{"id": f.id, "value": t.fields.get(f.id)} for f in sim.fields() if not f.system]
    public = any(kid[0] == "C" and kid[2] for a in t.audits for kid in a[5])
    return {
        "url": f"{base}/api/v2/tickets/{t.id}.json",
        "id": t.id,
        "external_id": None,
        "via": via_json(sim, t.channel, t.requester_id, ticket_level=True),
        "created_at": iso(t.created),
        "updated_at": iso(t.updated),
        "generated_timestamp": t.gts,
        "type": t.type,
        "subject": t.subject,
        "raw_subject": t.subject,
        "description": description,
        "priority": t.priority,
        "status": t.status,
        "recipient": SUPPORT_ADDRESS if t.channel == "email" else None,
        "requester_id": t.requester_id,
        "submitter_id": t.submitter_id,
        "assignee_id": t.assignee_id,
        "organization_id": t.organization_id,
        "group_id": t.group_id,
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": public,
        "due_at": None,
        "tags": list(t.tags),
        "custom_fields": custom,
        "fields": [dict(c) for c in custom],
        "satisfaction_rating": csat_json(sim, t),
        "sharing_agreement_ids": [],
        "followup_ids": [],
        "ticket_form_id": FIELD_BASE + 900,
        "brand_id": t.brand_id,
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": t.channel == "native_messaging",
    }


def csat_json(sim: ZendeskSimulator, t: Ticket) -> dict[str, Any]:
    if t.csat in ("unoffered", "offered"):
        return {"score": t.csat}
    return {"id": 5_000_000 + t.id, "score": t.csat, "comment": sim.csat_comment(t), "reason": None}


def rating_json(sim: ZendeskSimulator, t: Ticket, base: str) -> dict[str, Any]:
    created, updated = sim.csat_times(t)
    rid = 5_000_000 + t.id
    return {
        "url": f"{base}/api/v2/satisfaction_ratings/{rid}.json",
        "id": rid,
        "assignee_id": t.assignee_id,
        "group_id": t.group_id,
        "requester_id": t.requester_id,
        "ticket_id": t.id,
        "score": t.csat,
        "comment": sim.csat_comment(t) if t.csat in ("good", "bad") else None,
        "reason": None,
        "reason_id": None,
        "created_at": iso(created),
        "updated_at": iso(updated),
    }


def conversation_log_json(sim: ZendeskSimulator, t: Ticket) -> list[dict[str, Any]]:
    """The ticket's conversation log: every comment as a ``Comment`` event, and for tickets
    from a messaging channel the messaging exchange itself, including the bot phase before
    an agent joined, which exists only here (never as a ticket comment)."""
    events: list[dict[str, Any]] = []
    messaging = t.channel == "native_messaging"
    if messaging:
        rng = random.Random(t.seed ^ 0xB07)
        start = t.created - 120
        prefix = f"01SIM{t.id:012d}"
        for n, (who, text) in enumerate(
            (
                ("bot", "Hi! I'm Acme's virtual assistant. How can I help?"),
                ("user", rng.choice(_BOT_PHASE_LINES)),
                ("bot", "Thanks, I'm connecting you with a member of our team."),
            )
        ):
            events.append(
                log_event(
                    f"{prefix}{n:02d}",
                    "Messaging::ConversationMessage",
                    None,
                    start + 30 * n,
                    who,
                    t.requester_id if who == "user" else None,
                    text,
                    True,
                )
            )
    for a, cid, kid, body in sim.iter_comments(t):
        author = kid[1]
        who = "user" if author >= CUSTOMER_BASE else "agent"
        if messaging and kid[2]:
            events.append(
                log_event(
                    f"01SIM{cid:020d}",
                    "Messaging::ConversationMessage",
                    cid,
                    a[0],
                    who,
                    author,
                    body,
                    True,
                )
            )
        else:
            events.append(
                log_event(str(cid), "Comment", cid, a[0], who, author, body, bool(kid[2]))
            )
    return events


def chat_json(sim: ZendeskSimulator, t: Ticket) -> dict[str, Any]:
    """A Chat API chat object: the live transcript that never reaches the ticket comments."""
    first, last, email, _ = customer_profile(sim.seed, t.requester_id)
    first_comment = next(iter(sim.iter_comments(t)), None)
    opener = first_comment[3] if first_comment else "Hello?"
    agent_id, agent_first, _ = sim.agents[t.seed % len(sim.agents)]
    start = t.created - 300
    history = [
        {
            "type": "chat.memberjoin",
            "name": f"{first} {last}",
            "nick": "visitor",
            "timestamp": iso(start),
        },
        {
            "type": "chat.msg",
            "name": f"{first} {last}",
            "nick": "visitor",
            "msg": opener.split("\n\n")[0],
            "timestamp": iso(start + 5),
        },
        {
            "type": "chat.memberjoin",
            "name": agent_first,
            "nick": f"agent:{agent_id}",
            "timestamp": iso(start + 40),
        },
        {
            "type": "chat.msg",
            "name": agent_first,
            "nick": f"agent:{agent_id}",
            "msg": "Thanks for waiting, let me check that for you.",
            "timestamp": iso(start + 60),
        },
        {
            "type": "chat.msg",
            "name": f"{first} {last}",
            "nick": "visitor",
            "msg": "ok thanks",
            "timestamp": iso(start + 90),
        },
    ]
    return {
        "id": f"{2600 + sim.seed % 100}.{t.id}.SIMCHAT",
        "type": "chat",
        "timestamp": iso(start),
        "update_timestamp": iso(t.created + 600),
        "visitor": {"id": f"{t.requester_id}", "name": f"{first} {last}", "email": email},
        "agent_ids": [str(agent_id)],
        "department_name": "Support",
        "tags": [],
        "missed": False,
        "zendesk_ticket_id": t.id,
        "history": history,
    }


def via_json(
    sim: ZendeskSimulator, channel: str, requester: int, *, ticket_level: bool = False
) -> dict[str, Any]:
    source: dict[str, Any] = {"from": {}, "to": {}, "rel": None}
    if channel == "email":
        prof = customer_profile(sim.seed, requester) if requester >= CUSTOMER_BASE else None
        if prof:
            source["from"] = {"address": prof[2], "name": f"{prof[0]} {prof[1]}"}
        source["to"] = {"address": SUPPORT_ADDRESS, "name": "Acme Support"}
    elif channel == "voice":
        source["rel"] = "inbound"
    elif channel == VIA_RULE:
        source = {"from": {"id": 9100, "title": "Acme routing"}, "to": {}, "rel": "trigger"}
    elif channel in ("twitter", "facebook"):
        source["rel"] = "direct_message"
    elif channel == "native_messaging":
        source["rel"] = "messaging"
    del ticket_level
    return {"channel": channel, "source": source}


def event_json(sim: ZendeskSimulator, a: Audit, base: str, comments: bool) -> dict[str, Any]:
    """One ticket_events item (an audit) with its child events."""
    ts, aid, tid, updater, channel, kids = a
    t = sim.ticket_state(tid)
    via = via_json(sim, channel, t.requester_id)
    has_comment = any(k[0] == "C" for k in kids)
    comment_public = any(k[0] == "C" and k[2] for k in kids)
    children = []
    for i, kid in enumerate(kids):
        cid = aid * 100 + i
        child: dict[str, Any] = {
            "id": cid,
            "via": via,
            "via_reference_id": None,
            "comment_present": has_comment,
            "comment_public": comment_public,
        }
        if kid[0] == "C":
            child["event_type"] = "Comment"
            if comments:
                body = sim.comment_body(t, a, kid, cid)
                child.update(comment_json(cid, aid, kid, body, ts, via))
        elif kid[0] == "R":
            child.update({"event_type": "CommentRedactionEvent", "comment_id": kid[1]})
        elif kid[0] == "X":
            child.update(
                {
                    "event_type": "Change",
                    "field_name": kid[1],
                    "value": jsonable(kid[2]),
                    "previous_value": jsonable(kid[3]),
                }
            )
            if kid[4] == VIA_RULE:
                child["via"] = via_json(sim, VIA_RULE, 0)
        else:
            child.update({"event_type": "Create", "field_name": kid[1], "value": jsonable(kid[2])})
        children.append(child)
    return {
        "id": aid,
        "ticket_id": tid,
        "timestamp": ts,
        "created_at": iso(ts),
        "updater_id": updater,
        "via": via,
        "system": {
            "client": "cjm-simulator" if channel == "api" else None,
            "ip_address": None,
            "location": None,
            "latitude": None,
            "longitude": None,
        },
        "event_type": "Audit",
        "merged_ticket_ids": [],
        "child_events": children,
    }


def field_json(sim: ZendeskSimulator, f: Field, base: str) -> dict[str, Any]:
    """A ticket_field object; dropdown options carry ids."""
    out: dict[str, Any] = {
        "url": f"{base}/api/v2/ticket_fields/{f.id}.json",
        "id": f.id,
        "type": f.type,
        "title": f.title,
        "raw_title": f.title,
        "description": f.description,
        "raw_description": f.description,
        "position": f.position,
        "active": True,
        "required": False,
        "collapsed_for_agents": False,
        "regexp_for_validation": None,
        "title_in_portal": f.title,
        "raw_title_in_portal": f.title,
        "visible_in_portal": f.system,
        "editable_in_portal": f.system,
        "required_in_portal": False,
        "tag": None,
        "created_at": iso(f.created),
        "updated_at": iso(f.updated),
        "removable": not f.system,
        "key": None,
        "agent_description": None,
    }
    if f.type == "tagger":
        out["custom_field_options"] = [option_json(o) for o in f.options]
    elif f.type in ("status", "priority", "tickettype"):
        names = {
            "status": STATUSES[:-1] + ("closed",),
            "priority": ("low", "normal", "high", "urgent"),
            "tickettype": ("question", "incident", "problem", "task"),
        }[f.type]
        out["system_field_options"] = [{"name": n.title(), "value": n} for n in names]
    return out


# ---------------------------------------------------------------- small pieces


_BOT_PHASE_LINES = (
    "I need to speak to someone about my order",
    "my payment didn't go through",
    "where is my parcel??",
    "I can't log in to my account",
    "I want a refund",
)


def log_event(
    eid: str,
    etype: str,
    cid: int | None,
    ts: int,
    who: str,
    user_id: int | None,
    body: str,
    public: bool,
) -> dict[str, Any]:
    author: dict[str, Any] = {"type": who}
    if user_id is not None:
        author["zen:support:user_id"] = user_id
    return {
        "id": eid,
        "type": etype,
        "reference": f"zen:ticket_event:{cid}" if cid is not None else None,
        "created_at": iso(ts),
        "attachments": [],
        "author": author,
        "content": {"type": "text", "body": body},
        "metadata": {"public": public},
    }


def jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def user(
    uid: int,
    name: str,
    email: str,
    role: str,
    base: str,
    org: int | None,
    phone: str | None = None,
) -> dict[str, Any]:
    return {
        "id": uid,
        "url": f"{base}/api/v2/users/{uid}.json",
        "name": name,
        "email": email,
        "role": role,
        "role_type": None,
        "active": True,
        "verified": True,
        "suspended": False,
        "shared": False,
        "locale": "en-US",
        "time_zone": "UTC",
        "phone": phone,
        "organization_id": org,
        "created_at": "2024-01-02T09:00:00Z",
        "updated_at": "2025-06-01T09:00:00Z",
        "tags": [],
        "user_fields": {},
    }


def option_json(o: Option) -> dict[str, Any]:
    return {"id": o.id, "name": o.name, "raw_name": o.name, "value": o.value, "default": False}


def comment_json(
    cid: int, aid: int, kid: tuple[Any, ...], body: str, ts: int, via: dict[str, Any]
) -> dict[str, Any]:
    html = body if body.lstrip().startswith("<") else corpus.as_html(escape(body))
    return {
        "id": cid,
        "type": "Comment",
        "author_id": kid[1],
        "body": body,
        "html_body": html,
        "plain_body": body,
        "public": kid[2],
        "attachments": [],
        "audit_id": aid,
        "created_at": iso(ts),
        "via": via,
    }


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
