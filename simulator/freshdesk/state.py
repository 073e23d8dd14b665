"""A Freshdesk account (plus its Freshchat) in memory: tickets, conversations, fields, ratings,
chats and raw reports.

Why: the Freshdesk connector, its tests and `bench/freshdesk_sync.py` need a helpdesk that
behaves like Freshdesk where it matters — `updated_since` lists ordered by `updated_at` with Link
headers, the 300-page cap (400 beyond it), the 30-day default window, spam/deleted filters,
archived tickets that leave the lists, the description outside the conversations, `stats`,
tag lists replaced on PUT, dropdown choices validated, admin ticket fields, CSAT ratings, credit
costs (`include` = 2 extra), the account and tickets-list limits with `X-RateLimit-*` headers and
`Retry-After` — deterministic, local and fast. It also counts what a client did wrong
(`retry_after_violations`: calls sent while a `Retry-After` was pending).

Every generated ticket carries a hidden ground truth (stage, themes, language), never served.
Text is rendered on demand from per-message seeds, so large accounts stay compact.

This module is the state only; ``shapes`` (Freshdesk's JSON), ``routes`` (the Starlette apps)
and ``limits`` (credits, rate limits, faults) use its public methods, under ``lock``.
"""

from __future__ import annotations

import bisect
import collections
import random
import re
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator import corpus
from simulator.clock import SimulatedClock
from simulator.corpus import Truth
from simulator.freshdesk.limits import FreshdeskFaults, LimitState
from simulator.freshdesk.webhooks import FreshdeskWebhooks

API_KEY = "sim-key"
FRESHCHAT_TOKEN = "sim-freshchat-token"
INTEGRATION_AGENT_ID = 43_000_000_001
AGENT_BASE = 43_000_000_100
CONTACT_BASE = 44_000_000_000
CONVERSATION_BASE = 60_000_000_000
RATING_BASE = 61_000_000_000
FIELD_BASE = 48_000_000_000
GROUP_BASE = 47_000_000_000

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30
MAX_PAGE = 300
DEFAULT_WINDOW_DAYS = 30
INCLUDE_CREDITS = 2
LIST_INCLUDES = frozenset({"requester", "stats", "description"})
FILTERS = frozenset({"spam", "deleted", "new_and_my_open", "watching"})
OPEN, PENDING, RESOLVED, CLOSED = 2, 3, 4, 5

# Ticket sources (weights) and conversation kinds.
_SOURCES = (1, 2, 3, 7, 9, 10)
_SOURCE_WEIGHTS = (0.45, 0.3, 0.05, 0.1, 0.05, 0.05)
K_REPLY, K_AGENT, K_NOTE, K_SURVEY = "r", "a", "n", "v"


class Ticket:
    """Compact per-ticket state; conversations are tuples, their text rendered on demand.

    A conversation: (id, ts, user_id, incoming, private, source, kind, body | None).
    """

    __slots__ = (
        "id",
        "seed",
        "created",
        "updated",
        "status",
        "priority",
        "source",
        "subject",
        "requester_id",
        "responder_id",
        "group_id",
        "tags",
        "custom",
        "spam",
        "deleted",
        "archived",
        "truth",
        "convs",
        "req_resp",
        "agent_resp",
        "rating",
        "description",
    )

    def __init__(self, tid: int, seed: int) -> None:
        self.id, self.seed = tid, seed
        self.created = self.updated = 0
        self.status, self.priority, self.source = OPEN, 1, 1
        self.subject = ""
        self.requester_id = 0
        self.responder_id: int | None = None
        self.group_id: int | None = None
        self.tags: tuple[str, ...] = ()
        self.custom: dict[str, Any] = {}
        self.spam = self.deleted = self.archived = False
        self.truth = Truth(None, (), "en")
        self.convs: list[tuple[Any, ...]] = []
        self.req_resp: int | None = None
        self.agent_resp: int | None = None
        self.rating: tuple[int, int, int, str] | None = None  # (id, ts, score, feedback)
        self.description: str | None = None  # explicit description (tests); else rendered


@dataclass
class Chat:
    id: str
    created: int
    user_id: str
    status: str
    messages: list[tuple[str, int, str, str, str, str]] = field(default_factory=list)
    # (message id, ts, actor_type, actor_id, message_type, text)


@dataclass(frozen=True)
class FreshdeskTicketView:
    """A read-only snapshot of one ticket for tests (not an API shape)."""

    id: int
    status: int
    tags: tuple[str, ...]
    custom_fields: dict[str, Any]
    updated_at: datetime
    requester_id: int
    spam: bool
    deleted: bool
    archived: bool
    conversations: tuple[dict[str, Any], ...]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def contact(seed: int, uid: int) -> tuple[str, str, str, str]:
    rng = random.Random(seed * 1_000_003 + uid)
    first, last = corpus.person_name(rng)
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    return (
        first,
        last,
        f"{local.replace(chr(39), '').lower()}{uid % 1000}@example.com",
        (corpus.phone_number(rng)),
    )


class FreshdeskSimulator(SimulatedClock):
    """The state of one simulated Freshdesk account (and its Freshchat).

    Content is a pure function of (tickets, seed, now); the `clock` only drives what happens
    afterwards (updates, rate windows, helper edits). `max_page` is 300 like Freshdesk; tests
    lower it to reach the cap with few tickets.
    """

    def __init__(
        self,
        tickets: int = 0,
        seed: int = 0,
        now: datetime | None = None,
        *,
        api_key: str | None = API_KEY,
        freshchat_token: str | None = FRESHCHAT_TOKEN,
        chats: int | None = None,
        clock: Callable[[], datetime] | None = None,
        faults: FreshdeskFaults | None = None,
        max_page: int = MAX_PAGE,
        report_polls_to_complete: int = 1,
    ) -> None:
        self.api_key = api_key
        self.freshchat_token = freshchat_token
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.faults = faults or FreshdeskFaults()
        self.max_page = max_page
        self.report_polls_to_complete = report_polls_to_complete
        self.seed = seed
        self.requests: collections.Counter[str] = collections.Counter()
        self.status_counts: collections.Counter[int] = collections.Counter()
        self.credits_used = 0
        self.retry_after_violations = 0
        self.rate_limited = 0
        self.credits_by_minute: collections.Counter[int] = collections.Counter()
        self._lock = threading.RLock()
        self._tickets: dict[int, Ticket] = {}
        self._order: list[tuple[int, int]] = []  # (updated, id) of every ticket, sorted
        self._version = 0
        self._memo: tuple[tuple[Any, ...], list[int]] | None = None
        self._agents: list[tuple[int, str, str]] = []
        self._contacts = 0
        self._fields: list[dict[str, Any]] = []
        self._next_conv = CONVERSATION_BASE
        self._chats: dict[str, Chat] = {}
        self._reports: dict[str, list[Any]] = {}
        self.limits = LimitState()  # rate windows, Retry-After deadline, fault sequences
        # Automation rules with a webhook action (``webhooks``), run on every runtime event.
        self.webhooks = FreshdeskWebhooks()
        gen_now = int((now or self.clock()).timestamp())
        rng = random.Random(seed)
        self._build_account(rng, gen_now)
        if tickets:
            self._generate(tickets, seed, gen_now)
        self._generate_chats(chats if chats is not None else tickets // 10, seed, gen_now)

    @classmethod
    def generate(
        cls, tickets: int, seed: int = 0, now: datetime | None = None, **kwargs: Any
    ) -> FreshdeskSimulator:
        return cls(tickets, seed, now, **kwargs)

    # ---- generation -------------------------------------------------------------------------

    def _build_account(self, rng: random.Random, now_ts: int) -> None:
        for k in range(8 + rng.randrange(8)):
            first, last = corpus.person_name(rng)
            self._agents.append((AGENT_BASE + k, first, last))
        self._agents.append((INTEGRATION_AGENT_ID, "Acme", "Integration"))
        created = iso(now_ts - 400 * 86400)
        for pos, (name, label, ftype) in enumerate(
            (
                ("requester", "Search a requester", "default_requester"),
                ("subject", "Subject", "default_subject"),
                ("ticket_type", "Type", "default_ticket_type"),
                ("source", "Source", "default_source"),
                ("status", "Status", "default_status"),
                ("priority", "Priority", "default_priority"),
                ("group", "Group", "default_group"),
                ("agent", "Agent", "default_agent"),
                ("description", "Description", "default_description"),
            )
        ):
            self._fields.append(
                self._field_json(
                    FIELD_BASE + pos + 1, name, label, ftype, True, pos + 1, [], created
                )
            )
        for label, values in (
            ("Plan", ("Free", "Plus", "Business", "Enterprise")),
            ("Region", ("North America", "Europe", "UK", "Asia Pacific", "Latin America")),
        ):
            self.create_field(label, [{"value": v} for v in values], created)

    def _field_json(
        self,
        fid: int,
        name: str,
        label: str,
        ftype: str,
        default: bool,
        position: int,
        choices: list[dict[str, Any]],
        created: str,
    ) -> dict[str, Any]:
        return {
            "id": fid,
            "name": name,
            "label": label,
            "label_for_customers": label,
            "description": None,
            "position": position,
            "required_for_closure": False,
            "required_for_agents": False,
            "type": ftype,
            "default": default,
            "customers_can_edit": False,
            "displayed_to_customers": False,
            "created_at": created,
            "updated_at": created,
            "choices": choices,
        }

    def create_field(self, label: str, choices: list[dict[str, Any]], created: str) -> dict:
        name = "cf_" + re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
        fid = FIELD_BASE + 100 + len(self._fields)
        numbered = [
            {"id": fid * 100 + i + 1, "value": str(c["value"]), "position": i + 1}
            for i, c in enumerate(choices)
        ]
        fld = self._field_json(
            fid, name, label, "custom_dropdown", False, len(self._fields) + 1, numbered, created
        )
        self._fields.append(fld)
        return fld

    def field(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self._fields if f["name"] == name), None)

    def _generate(self, n: int, seed: int, now_ts: int) -> None:
        rng = random.Random(seed ^ 0xF5D)
        self._contacts = max(20, int(n * 0.7))
        span_start = now_ts - 26 * 7 * 86400
        for tid in range(1, n + 1):
            t = Ticket(tid, rng.getrandbits(48))
            t.truth = corpus.draw_truth(rng)
            t.source = rng.choices(_SOURCES, weights=_SOURCE_WEIGHTS)[0]
            if t.source == 10:
                t.truth = Truth(None, (), "en")
            t.requester_id = CONTACT_BASE + int(rng.random() ** 1.4 * self._contacts) + 1
            t.priority = rng.choice((1, 1, 2, 2, 3, 4))
            t.subject = corpus.subject(rng, t.truth) if t.truth.stage else "Update from Acme"
            t.group_id = GROUP_BASE + rng.randrange(4)
            t.custom = {
                "cf_plan": rng.choice(("Free", "Plus", "Business", "Enterprise")),
                "cf_region": rng.choice(("North America", "Europe", "UK")),
            }
            t.tags = ("vip",) if rng.random() < 0.05 else ()
            created = rng.randrange(span_start, now_ts - 3600)
            self._lifecycle(rng, t, created, now_ts - 90)
            roll = rng.random()
            if roll < 0.01:
                t.spam = True
            elif roll < 0.02:
                t.deleted = True
            elif t.status == CLOSED and t.updated < now_ts - 120 * 86400 and rng.random() < 0.5:
                t.archived = True
            self._tickets[tid] = t
        self._order = sorted((t.updated, t.id) for t in self._tickets.values())

    def _lifecycle(self, rng: random.Random, t: Ticket, created: int, limit: int) -> None:
        t.created = t.updated = created
        agent = self._agents[rng.randrange(len(self._agents) - 1)][0]
        ts = created
        target = rng.choices((OPEN, PENDING, RESOLVED, CLOSED), weights=(0.2, 0.15, 0.45, 0.2))[0]
        turns: list[str] = []
        if rng.random() < 0.3:
            turns.append(K_NOTE)
        if target != OPEN or rng.random() < 0.6:
            turns.append(K_AGENT)
            for _ in range(0 if t.source == 10 else rng.choice((0, 0, 1, 1, 2))):
                turns += [K_REPLY, K_AGENT]
        if target == OPEN and turns and turns[-1] == K_AGENT and t.source != 10:
            turns.append(K_REPLY)
        for kind in turns:
            ts += max(300, int(rng.expovariate(1 / (6 * 3600))))
            if ts > limit:
                break
            self._add_conv(t, ts, agent, kind)
        t.status = target if t.convs or target == OPEN else OPEN
        t.responder_id = agent if t.convs else None
        if t.status in (RESOLVED, CLOSED) and t.source != 10 and rng.random() < 0.25:
            good = rng.random() < 0.7
            rts = min(limit, ts + 3600)
            feedback = corpus.satisfaction_comment(random.Random(t.seed ^ 0xC5A7), good)
            t.rating = (RATING_BASE + t.id, rts, 103 if good else -103, feedback)
            if rng.random() < 0.5:
                self._add_conv(t, rts, t.requester_id, K_SURVEY)
        t.updated = max(t.updated, ts if ts <= limit else t.updated)

    def _add_conv(self, t: Ticket, ts: int, agent: int, kind: str, body: str | None = None) -> int:
        self._next_conv += 1
        customer = kind in (K_REPLY, K_SURVEY)
        user = t.requester_id if customer else agent
        source = {K_NOTE: 2, K_SURVEY: 6}.get(kind, 0)
        t.convs.append((self._next_conv, ts, user, customer, kind == K_NOTE, source, kind, body))
        if kind == K_REPLY:
            t.req_resp = ts
        elif kind == K_AGENT:
            t.agent_resp = ts
        t.updated = max(t.updated, ts)
        return self._next_conv

    def _generate_chats(self, n: int, seed: int, now_ts: int) -> None:
        rng = random.Random(seed ^ 0xC4A7)
        for k in range(n):
            cid = str(uuid.UUID(int=rng.getrandbits(128)))
            created = rng.randrange(now_ts - 60 * 86400, now_ts - 3600)
            truth = corpus.draw_truth(rng, foreign_rate=0.0)
            uid = str(uuid.UUID(int=rng.getrandbits(128)))
            chat = Chat(cid, created, uid, rng.choice(("resolved", "resolved", "assigned")))
            first, last, email, phone = contact(seed, CONTACT_BASE + k)
            ts = created
            for i, actor in enumerate(("user", "bot", "agent", "user", "agent")[: 2 + k % 4]):
                ts += rng.randrange(20, 600)
                if actor == "user":
                    text = corpus.compose_customer_text(
                        rng,
                        truth,
                        first=first,
                        last=last,
                        email=email,
                        phone=phone,
                        channel="chat",
                        follow_up=i > 0,
                    )
                elif actor == "bot":
                    text = "Hi! I'm Acme's assistant. An agent will be with you shortly."
                else:
                    text = corpus.agent_reply(rng, truth, first, "Sam")
                mid = str(uuid.UUID(int=rng.getrandbits(128)))
                actor_id = uid if actor == "user" else f"agent-{k % 5}"
                chat.messages.append((mid, ts, actor, actor_id, "normal", text))
            if k % 7 == 0:
                mid = str(uuid.UUID(int=rng.getrandbits(128)))
                chat.messages.append((mid, ts + 5, "agent", "agent-0", "private", "internal note"))
            self._chats[cid] = chat

    # ---- runtime mutations ------------------------------------------------------------------

    def touch(self, t: Ticket, ts: int | None = None) -> None:
        """Move a ticket to its new list position (updated_at, id)."""
        old = (t.updated, t.id)
        i = bisect.bisect_left(self._order, old)
        if i < len(self._order) and self._order[i] == old:
            del self._order[i]
        t.updated = max(t.updated, self.now_ts() if ts is None else ts)
        bisect.insort(self._order, (t.updated, t.id))
        self._version += 1

    def notify(self, ticket_id: int, event: str, performer: str) -> None:
        """Run the automation rules on one event (see ``webhooks.EVENTS``)."""
        with self._lock:
            self.webhooks.on_event(ticket_id, event, performer)

    def agent_set_field(self, ticket_id: int, name: str, value: Any) -> None:
        """An agent edits a custom field in the UI."""
        with self._lock:
            t = self._tickets[ticket_id]
            t.custom[name] = value
            self.touch(t)
            self.notify(ticket_id, "ticket_updated", "agent")

    def agent_set_tags(
        self, ticket_id: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        """An agent adds/removes tags by hand."""
        with self._lock:
            t = self._tickets[ticket_id]
            gone = set(remove)
            tags = [x for x in t.tags if x not in gone]
            t.tags = tuple(tags + [x for x in add if x not in tags])
            self.touch(t)
            self.notify(ticket_id, "ticket_updated", "agent")

    def add_reply(self, ticket_id: int, body: str, *, incoming: bool = True) -> int:
        """A customer reply (incoming, reopens the ticket) or an agent reply."""
        with self._lock:
            t = self._tickets[ticket_id]
            agent = t.responder_id or self._agents[0][0]
            cid = self._add_conv(t, self.now_ts(), agent, K_REPLY if incoming else K_AGENT, body)
            if incoming and t.status in (PENDING, RESOLVED):
                t.status = OPEN
            self.touch(t)
            if incoming:
                self.notify(ticket_id, "customer_reply", "customer")
            else:
                self.notify(ticket_id, "agent_reply", "agent")
            return cid

    def add_note(self, ticket_id: int, body: str) -> int:
        with self._lock:
            t = self._tickets[ticket_id]
            author = t.responder_id or self._agents[0][0]
            cid = self._add_conv(t, self.now_ts(), author, K_NOTE, body)
            self.touch(t)
            self.notify(ticket_id, "ticket_updated", "agent")
            return cid

    def create_ticket(self, subject: str, description: str, *, at: int | None = None) -> int:
        """A new customer ticket (optionally at a given second: crowded-second tests)."""
        with self._lock:
            tid = max(self._tickets, default=0) + 1
            t = Ticket(tid, tid * 7919)
            t.truth = Truth("support", (), "en")
            t.subject, t.description = subject, description
            t.requester_id = CONTACT_BASE + 1 + tid % max(1, self._contacts or 1)
            t.created = t.updated = self.now_ts() if at is None else at
            self._tickets[tid] = t
            bisect.insort(self._order, (t.updated, t.id))
            self._version += 1
            self.notify(tid, "ticket_created", "customer")
            return tid

    def delete_ticket(self, ticket_id: int) -> None:
        with self._lock:
            t = self._tickets[ticket_id]
            t.deleted = True
            self.touch(t)

    def restore_ticket(self, ticket_id: int) -> None:
        with self._lock:
            t = self._tickets[ticket_id]
            t.deleted = t.spam = False
            self.touch(t)

    def mark_spam(self, ticket_id: int) -> None:
        with self._lock:
            t = self._tickets[ticket_id]
            t.spam = True
            self.touch(t)

    def archive_ticket(self, ticket_id: int) -> None:
        """Archived tickets leave every list and 404 on the live paths (no updated_at move)."""
        with self._lock:
            t = self._tickets[ticket_id]
            t.status, t.archived = CLOSED, True
            self._version += 1

    def add_chat_message(self, chat_id: str, text: str, actor_type: str = "user") -> None:
        with self._lock:
            chat = self._chats[chat_id]
            mid = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{chat_id}:{len(chat.messages)}"))
            actor = chat.user_id if actor_type == "user" else "agent-0"
            chat.messages.append((mid, self.now_ts(), actor_type, actor, "normal", text))

    # ---- read helpers for tests -------------------------------------------------------------

    def ticket(self, ticket_id: int) -> FreshdeskTicketView:
        with self._lock:
            t = self._tickets[ticket_id]
            from simulator.freshdesk import shapes  # shapes imports this module

            convs = tuple(shapes.conv_json(self, t, c) for c in t.convs)
            return FreshdeskTicketView(
                t.id,
                t.status,
                t.tags,
                dict(t.custom),
                datetime.fromtimestamp(t.updated, UTC),
                t.requester_id,
                t.spam,
                t.deleted,
                t.archived,
                convs,
            )

    def truth(self, ticket_id: int) -> tuple[str | None, tuple[str, ...], str]:
        tr = self._tickets[ticket_id].truth
        return tr.stage, tr.themes, tr.language

    def ticket_ids(self) -> list[int]:
        return list(self._tickets)

    def chat_ids(self) -> list[str]:
        return list(self._chats)

    def listed_ticket_ids(self) -> list[int]:
        """Tickets the default list can return (not spam, deleted or archived)."""
        return [t.id for t in self._tickets.values() if not (t.spam or t.deleted or t.archived)]

    def open_tickets_with_customer_text(self) -> list[int]:
        """Listed, writable (not closed) tickets with a customer description: write-back
        population."""
        return [
            t.id
            for t in self._tickets.values()
            if not (t.spam or t.deleted or t.archived)
            and t.status != CLOSED
            and t.truth.stage is not None
        ]

    def agent_ids(self) -> list[int]:
        return [a[0] for a in self._agents]

    def __len__(self) -> int:
        return len(self._tickets)

    # ---- the routes' view of the state (call with `lock` held; live objects, not copies) ----

    @property
    def lock(self) -> threading.RLock:
        """Held by the routes (and every helper above) around each read or change."""
        return self._lock

    @property
    def agents(self) -> Sequence[tuple[int, str, str]]:
        """(id, first name, last name) of every agent, the integration's last."""
        return self._agents

    def find_ticket(self, ticket_id: int) -> Ticket | None:
        return self._tickets.get(ticket_id)

    def ticket_state(self, ticket_id: int) -> Ticket:
        return self._tickets[ticket_id]

    def tickets(self) -> Iterable[Ticket]:
        return self._tickets.values()

    def fields(self) -> list[dict[str, Any]]:
        """Every ticket field, kept in its API shape (default fields first)."""
        return self._fields

    def field_by_id(self, field_id: int) -> dict[str, Any] | None:
        return next((f for f in self._fields if f["id"] == field_id), None)

    def clear_field_value(self, name: str, value: Any) -> None:
        """A dropdown choice was deleted: tickets holding it lose the value (no update)."""
        for t in self._tickets.values():
            if t.custom.get(name) == value:
                t.custom[name] = None

    def chat(self, chat_id: str) -> Chat | None:
        return self._chats.get(chat_id)

    def chats(self) -> Iterable[Chat]:
        return self._chats.values()

    def new_report(self, start: int, end: int, event: str) -> str:
        """A Freshchat raw report over [start, end) that completes after some polls."""
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"report:{len(self._reports)}:{start}:{end}"))
        self._reports[rid] = [start, end, 0, event]
        return rid

    def report(self, report_id: str) -> list[Any] | None:
        """[start, end, polls so far, event] of a report, or None."""
        return self._reports.get(report_id)

    # ---- rendering ---------------------------------------------------------------------------

    def render(self, t: Ticket, conv: tuple[Any, ...] | None) -> str:
        if conv is None:
            if t.description is not None:
                return t.description
            rng = random.Random(t.seed * 1_000_003)
            first, last, email, phone = contact(self.seed, t.requester_id)
            if t.source == 10:
                return corpus.outbound_message(rng, first, "Sam")
            return corpus.compose_customer_text(
                rng,
                t.truth,
                first=first,
                last=last,
                email=email,
                phone=phone,
                channel="chat" if t.source == 7 else "email",
            )
        cid, _, user, _, _, _, kind, body = conv
        if body is not None:
            return str(body)
        rng = random.Random(t.seed * 1_000_003 + cid)
        first, last, email, phone = contact(self.seed, t.requester_id)
        if kind == K_REPLY:
            return corpus.compose_customer_text(
                rng,
                t.truth,
                first=first,
                last=last,
                email=email,
                phone=phone,
                channel="email",
                follow_up=True,
            )
        if kind == K_AGENT:
            names = {a[0]: a[1] for a in self._agents}
            return corpus.agent_reply(rng, t.truth, first, names.get(user, "Sam"))
        if kind == K_SURVEY and t.rating:
            return t.rating[3]
        return corpus.agent_note(rng)

    # ---- list queries -------------------------------------------------------------------------

    def matching(self, flt: str | None, since: int | None, order_by: str) -> list[int]:
        key = (flt, since, order_by, self._version)
        if self._memo and self._memo[0] == key:
            return self._memo[1]
        floor = since if since is not None else self.now_ts() - DEFAULT_WINDOW_DAYS * 86400
        out: list[int] = []
        if order_by == "updated_at":
            start = bisect.bisect_left(self._order, (floor, -1)) if since is not None else 0
            candidates: Iterable[int] = (tid for _, tid in self._order[start:])
        else:
            candidates = sorted(self._tickets, key=lambda i: (self._tickets[i].created, i))
        for tid in candidates:
            t = self._tickets[tid]
            if since is None and t.created < floor:
                continue  # the 30-day default window: created in the last 30 days
            if t.archived:
                continue
            if flt == "deleted":
                if not t.deleted:
                    continue
            elif flt == "spam":
                if not t.spam or t.deleted:
                    continue
            elif t.spam or t.deleted:
                continue
            out.append(tid)
        self._memo = (key, out)
        return out
