"""A Freshdesk account (plus its Freshchat) in memory, and Starlette apps that serve it with
Freshdesk's and Freshchat's shapes.

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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import collections
import json
import random
import re
import threading
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import corpus
from .clock import SimulatedClock
from .corpus import Truth

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


@dataclass
class FreshdeskFaults:
    """Limits and failures; all off by default.

    `rate_limit_per_minute` is the plan's credits per minute for the account and
    `ticket_list_per_minute` the lower tickets-list limit (Growth: 200 and 20). Both answer 429
    with `Retry-After` (seconds to the end of the clock minute) unless `retry_after_header` is
    False. `background_credits_per_minute` are spent by "other apps" at the start of each minute.
    `fail_every_n` answers `fail_status` to every nth call; `conflict_every_n_updates` answers 409
    to every nth ticket update; `malformed_json_every_n` truncates every nth 2xx body.
    """

    rate_limit_per_minute: int | None = None
    ticket_list_per_minute: int | None = None
    retry_after_header: bool = True
    background_credits_per_minute: int = 0
    fail_every_n: int | None = None
    fail_status: int = 503
    conflict_every_n_updates: int | None = None
    malformed_json_every_n: int | None = None


class VirtualClock:
    """Simulated time shared by the simulator (`clock()` → datetime) and a connector
    (`monotonic()` / `sleep()`): a sync that would wait 20 minutes for the rate limit runs in
    seconds, and rate-limit windows stay consistent on both sides."""

    def __init__(self, start: datetime) -> None:
        self._epoch = start.timestamp()
        self.elapsed = 0.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self._epoch + self.elapsed, UTC)

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        target = self.elapsed + max(0.0, seconds)
        await asyncio.sleep(0)
        self.elapsed = max(self.elapsed, target)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


class _Tk:
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
class _Chat:
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


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> int:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _validation("updated_since", "It should be in the 'valid date' format") from exc
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _contact(seed: int, uid: int) -> tuple[str, str, str, str]:
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
        self._tickets: dict[int, _Tk] = {}
        self._order: list[tuple[int, int]] = []  # (updated, id) of every ticket, sorted
        self._version = 0
        self._memo: tuple[tuple[Any, ...], list[int]] | None = None
        self._agents: list[tuple[int, str, str]] = []
        self._contacts = 0
        self._fields: list[dict[str, Any]] = []
        self._next_conv = CONVERSATION_BASE
        self._chats: dict[str, _Chat] = {}
        self._reports: dict[str, list[Any]] = {}
        self._windows: dict[str, tuple[int, int]] = {}
        self._retry_until = 0.0
        self._retry_issued = 0.0
        self._seq = 0
        self._updates = 0
        self._malformed = 0
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
        created = _iso(now_ts - 400 * 86400)
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
            self._create_field(label, [{"value": v} for v in values], created)

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

    def _create_field(self, label: str, choices: list[dict[str, Any]], created: str) -> dict:
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

    def _field(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self._fields if f["name"] == name), None)

    def _generate(self, n: int, seed: int, now_ts: int) -> None:
        rng = random.Random(seed ^ 0xF5D)
        self._contacts = max(20, int(n * 0.7))
        span_start = now_ts - 26 * 7 * 86400
        for tid in range(1, n + 1):
            t = _Tk(tid, rng.getrandbits(48))
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

    def _lifecycle(self, rng: random.Random, t: _Tk, created: int, limit: int) -> None:
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

    def _add_conv(self, t: _Tk, ts: int, agent: int, kind: str, body: str | None = None) -> int:
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
            chat = _Chat(cid, created, uid, rng.choice(("resolved", "resolved", "assigned")))
            first, last, email, phone = _contact(seed, CONTACT_BASE + k)
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

    def _touch(self, t: _Tk, ts: int | None = None) -> None:
        """Move a ticket to its new list position (updated_at, id)."""
        old = (t.updated, t.id)
        i = bisect.bisect_left(self._order, old)
        if i < len(self._order) and self._order[i] == old:
            del self._order[i]
        t.updated = max(t.updated, self.now_ts() if ts is None else ts)
        bisect.insort(self._order, (t.updated, t.id))
        self._version += 1

    def agent_set_field(self, ticket_id: int, name: str, value: Any) -> None:
        """An agent edits a custom field in the UI."""
        with self._lock:
            t = self._tickets[ticket_id]
            t.custom[name] = value
            self._touch(t)

    def agent_set_tags(
        self, ticket_id: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        """An agent adds/removes tags by hand."""
        with self._lock:
            t = self._tickets[ticket_id]
            gone = set(remove)
            tags = [x for x in t.tags if x not in gone]
            t.tags = tuple(tags + [x for x in add if x not in tags])
            self._touch(t)

    def add_reply(self, ticket_id: int, body: str, *, incoming: bool = True) -> int:
        """A customer reply (incoming, reopens the ticket) or an agent reply."""
        with self._lock:
            t = self._tickets[ticket_id]
            agent = t.responder_id or self._agents[0][0]
            cid = self._add_conv(t, self.now_ts(), agent, K_REPLY if incoming else K_AGENT, body)
            if incoming and t.status in (PENDING, RESOLVED):
                t.status = OPEN
            self._touch(t)
            return cid

    def add_note(self, ticket_id: int, body: str) -> int:
        with self._lock:
            t = self._tickets[ticket_id]
            author = t.responder_id or self._agents[0][0]
            cid = self._add_conv(t, self.now_ts(), author, K_NOTE, body)
            self._touch(t)
            return cid

    def create_ticket(self, subject: str, description: str, *, at: int | None = None) -> int:
        """A new customer ticket (optionally at a given second: crowded-second tests)."""
        with self._lock:
            tid = max(self._tickets, default=0) + 1
            t = _Tk(tid, tid * 7919)
            t.truth = Truth("support", (), "en")
            t.subject, t.description = subject, description
            t.requester_id = CONTACT_BASE + 1 + tid % max(1, self._contacts or 1)
            t.created = t.updated = self.now_ts() if at is None else at
            self._tickets[tid] = t
            bisect.insort(self._order, (t.updated, t.id))
            self._version += 1
            return tid

    def delete_ticket(self, ticket_id: int) -> None:
        with self._lock:
            t = self._tickets[ticket_id]
            t.deleted = True
            self._touch(t)

    def restore_ticket(self, ticket_id: int) -> None:
        with self._lock:
            t = self._tickets[ticket_id]
            t.deleted = t.spam = False
            self._touch(t)

    def mark_spam(self, ticket_id: int) -> None:
        with self._lock:
            t = self._tickets[ticket_id]
            t.spam = True
            self._touch(t)

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
            convs = tuple(self._conv_json(t, c) for c in t.convs)
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

    # ---- JSON shapes --------------------------------------------------------------------------

    def _render(self, t: _Tk, conv: tuple[Any, ...] | None) -> str:
        if conv is None:
            if t.description is not None:
                return t.description
            rng = random.Random(t.seed * 1_000_003)
            first, last, email, phone = _contact(self.seed, t.requester_id)
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
        first, last, email, phone = _contact(self.seed, t.requester_id)
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

    def ticket_json(self, t: _Tk, includes: Iterable[str] = ("description",)) -> dict[str, Any]:
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
                f["name"]: t.custom.get(f["name"]) for f in self._fields if not f["default"]
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
            "created_at": _iso(t.created),
            "updated_at": _iso(t.updated),
            "due_by": _iso(t.created + 3 * 86400),
            "fr_due_by": _iso(t.created + 86400),
        }
        if t.deleted:
            out["deleted"] = True
        if "description" in inc:
            text = self._render(t, None)
            out["description_text"] = text
            out["description"] = corpus.as_html(_escape(text))
        if "stats" in inc:
            out["stats"] = {
                "agent_responded_at": _iso(t.agent_resp) if t.agent_resp else None,
                "requester_responded_at": _iso(t.req_resp) if t.req_resp else None,
                "first_responded_at": _iso(t.agent_resp) if t.agent_resp else None,
                "status_updated_at": _iso(t.updated),
                "reopened_at": None,
                "resolved_at": _iso(t.updated) if t.status >= RESOLVED else None,
                "closed_at": _iso(t.updated) if t.status == CLOSED else None,
                "pending_since": None,
            }
        if "requester" in inc:
            first, last, email, _ = _contact(self.seed, t.requester_id)
            out["requester"] = {"id": t.requester_id, "name": f"{first} {last}", "email": email}
        return out

    def _conv_json(self, t: _Tk, conv: tuple[Any, ...]) -> dict[str, Any]:
        cid, ts, user, incoming, private, source, _, _ = conv
        text = self._render(t, conv)
        return {
            "id": cid,
            "body": corpus.as_html(_escape(text)),
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
            "created_at": _iso(ts),
            "updated_at": _iso(ts),
            "attachments": [],
            "last_edited_at": None,
            "last_edited_user_id": None,
        }

    # ---- list queries -------------------------------------------------------------------------

    def _matching(self, flt: str | None, since: int | None, order_by: str) -> list[int]:
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


# ---------------------------------------------------------------------------------------------
# HTTP layer

Handler = Callable[[FreshdeskSimulator, Request], Awaitable[Response]]


class _JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("description") or body.get("message"))
        self.status, self.body, self.headers = status, body, headers or {}


def _validation(name: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(
        400,
        {
            "description": "Validation failed",
            "errors": [{"field": name, "message": message, "code": code}],
        },
    )


def _not_found() -> ApiError:
    return ApiError(404, {"code": "not_found", "description": "Record not found"})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise _validation(name, "It should be a/an Positive Integer", "datatype_mismatch") from exc


def _paging(request: Request, sim: FreshdeskSimulator, cap: bool = True) -> tuple[int, int]:
    per_page = _int(request, "per_page", DEFAULT_PER_PAGE)
    page = _int(request, "page", 1)
    if per_page < 1 or per_page > MAX_PER_PAGE:
        raise _validation("per_page", "Must be a number between 1 and 100")
    if page < 1:
        raise _validation("page", "It should be a Positive Integer")
    if cap and page > sim.max_page:
        raise ApiError(
            400,
            {
                "description": "Validation failed",
                "errors": [
                    {
                        "field": "page",
                        "code": "invalid_value",
                        "message": f"You cannot access tickets beyond the {sim.max_page}th page. "
                        "Please provide a smaller page number.",
                    }
                ],
            },
        )
    return per_page, page


def _link(request: Request, page: int) -> dict[str, str]:
    params = dict(request.query_params)
    params["page"] = str(page + 1)
    url = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(params)}"
    return {"Link": f'<{url}>; rel="next"'}


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, {"code": "invalid_json", "description": "Request body has invalid json format"}
        ) from exc
    if not isinstance(body, dict):
        raise ApiError(400, {"code": "invalid_json", "description": "Expected a JSON object"})
    return body


def _ticket(sim: FreshdeskSimulator, request: Request, *, archived: bool = False) -> _Tk:
    t = sim._tickets.get(int(request.path_params["ticket_id"]))
    if t is None or t.archived != archived:
        raise _not_found()
    return t


async def _list_tickets(sim: FreshdeskSimulator, request: Request) -> Response:
    q = request.query_params
    flt = q.get("filter")
    if flt is not None and flt not in FILTERS:
        raise _validation("filter", f"It should be one of these values: '{','.join(FILTERS)}'")
    include = [x for x in q.get("include", "").split(",") if x]
    if any(x not in LIST_INCLUDES for x in include):
        raise _validation(
            "include", "It should be one of these values: 'requester,stats,description'"
        )
    order_by = q.get("order_by", "created_at")
    if order_by not in ("created_at", "updated_at", "due_by", "status"):
        raise _validation(
            "order_by", "It should be one of these values: 'created_at,due_by,updated_at,status'"
        )
    desc = q.get("order_type", "desc") == "desc"
    since = _parse_iso(q["updated_since"]) if q.get("updated_since") else None
    per_page, page = _paging(request, sim)
    with sim._lock:
        ids = sim._matching(flt, since, "updated_at" if order_by == "updated_at" else "created_at")
        if desc:
            ids = ids[::-1]
        chunk = ids[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(ids)
        items = [sim.ticket_json(sim._tickets[i], include) for i in chunk]
    return _JSON(items, headers=_link(request, page) if more else None)


async def _show_ticket(sim: FreshdeskSimulator, request: Request) -> Response:
    include = [x for x in request.query_params.get("include", "").split(",") if x]
    with sim._lock:
        t = _ticket(sim, request)
        body = sim.ticket_json(t, ("description", *include))
        if "conversations" in include:
            body["conversations"] = [sim._conv_json(t, c) for c in t.convs[:10]]
    return _JSON(body)


async def _show_archived(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim._lock:
        return _JSON(sim.ticket_json(_ticket(sim, request, archived=True), ("description",)))


async def _conversations(
    sim: FreshdeskSimulator, request: Request, archived: bool = False
) -> Response:
    per_page, page = _paging(request, sim, cap=False)
    with sim._lock:
        t = _ticket(sim, request, archived=archived)
        if t.deleted:
            raise _not_found()
        chunk = t.convs[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(t.convs)
        items = [sim._conv_json(t, c) for c in chunk]
    return _JSON(items, headers=_link(request, page) if more else None)


async def _archived_conversations(sim: FreshdeskSimulator, request: Request) -> Response:
    return await _conversations(sim, request, archived=True)


async def _update_ticket(sim: FreshdeskSimulator, request: Request) -> Response:
    body = await _body(request)
    with sim._lock:
        t = _ticket(sim, request)
        if t.deleted or t.spam:
            raise _not_found()
        sim._updates += 1
        n = sim.faults.conflict_every_n_updates
        if n and sim._updates % n == 0:
            raise ApiError(
                409,
                {
                    "code": "inconsistent_state",
                    "description": "The ticket was updated by someone else",
                },
            )
        custom = body.get("custom_fields") or {}
        if not isinstance(custom, dict):
            raise _validation(
                "custom_fields", "It should be a/an key/value pair", "datatype_mismatch"
            )
        for name, value in custom.items():
            fld = sim._field(name)
            if fld is None or fld["default"]:
                raise _validation(name, "Unexpected/invalid field in request", "invalid_field")
            allowed = [c["value"] for c in fld["choices"]]
            if value is not None and value not in allowed:
                raise _validation(name, f"It should be one of these values: '{','.join(allowed)}'")
        if "tags" in body:
            tags = body["tags"]
            if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
                raise _validation("tags", "It should be a/an Array", "datatype_mismatch")
            t.tags = tuple(dict.fromkeys(tags))  # Freshdesk replaces the whole list
        t.custom.update(custom)
        if "status" in body:
            t.status = int(body["status"])
        sim._touch(t)
        return _JSON(sim.ticket_json(t, ()))


async def _agents(sim: FreshdeskSimulator, request: Request) -> Response:
    per_page, page = _paging(request, sim, cap=False)
    with sim._lock:
        chunk = sim._agents[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(sim._agents)
    items = [
        {
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
        for aid, first, last in chunk
    ]
    return _JSON(items, headers=_link(request, page) if more else None)


async def _me(sim: FreshdeskSimulator, request: Request) -> Response:
    del request
    return _JSON({"id": INTEGRATION_AGENT_ID, "contact": {"name": "Acme Integration"}})


async def _fields(sim: FreshdeskSimulator, request: Request) -> Response:
    del request
    with sim._lock:
        return _JSON([dict(f) for f in sim._fields])


async def _create_field(sim: FreshdeskSimulator, request: Request) -> Response:
    body = await _body(request)
    label, ftype = body.get("label"), body.get("type")
    if not label or ftype != "custom_dropdown":
        raise _validation("type", "It should be one of these values: 'custom_dropdown,...'")
    choices = body.get("choices") or []
    if not choices or not all(isinstance(c, dict) and c.get("value") for c in choices):
        raise _validation("choices", "It should not be blank for a dropdown")
    with sim._lock:
        name = "cf_" + re.sub(r"[^a-z0-9]+", "_", str(label).lower()).strip("_")
        if sim._field(name):
            raise ApiError(
                409,
                {
                    "description": "Validation failed",
                    "errors": [
                        {
                            "field": "label",
                            "message": "It should be a unique value",
                            "code": "duplicate_value",
                        }
                    ],
                },
            )
        fld = sim._create_field(str(label), choices, _iso(sim.now_ts()))
        return _JSON(dict(fld), status_code=201)


async def _update_field(sim: FreshdeskSimulator, request: Request) -> Response:
    """Choices REPLACE the list: a choice left out is deleted and cleared from every ticket."""
    body = await _body(request)
    with sim._lock:
        fid = int(request.path_params["field_id"])
        fld = next((f for f in sim._fields if f["id"] == fid), None)
        if fld is None:
            raise _not_found()
        if "choices" in body:
            new = []
            for i, c in enumerate(body["choices"]):
                new.append(
                    {
                        "id": c.get("id") or fid * 100 + 50 + i,
                        "value": str(c["value"]),
                        "position": c.get("position") or i + 1,
                    }
                )
            kept = {c["value"] for c in new}
            for old in fld["choices"]:
                if old["value"] not in kept:
                    for t in sim._tickets.values():
                        if t.custom.get(fld["name"]) == old["value"]:
                            t.custom[fld["name"]] = None
            fld["choices"] = new
        fld["updated_at"] = _iso(sim.now_ts())
        return _JSON(dict(fld))


async def _ratings(sim: FreshdeskSimulator, request: Request) -> Response:
    q = request.query_params
    since = (
        _parse_iso(q["created_since"])
        if q.get("created_since")
        else (sim.now_ts() - DEFAULT_WINDOW_DAYS * 86400)
    )
    per_page, page = _paging(request, sim)
    with sim._lock:
        rows = sorted(
            (t.rating[1], t.rating[0], t)
            for t in sim._tickets.values()
            if t.rating and t.rating[1] >= since  # archived tickets keep their survey results
        )
        chunk = rows[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(rows)
        items = [
            {
                "id": rid,
                "survey_id": 1,
                "user_id": t.requester_id,
                "agent_id": t.responder_id,
                "group_id": t.group_id,
                "ticket_id": t.id,
                "feedback": t.rating[3],
                "ratings": {"default_question": t.rating[2]},
                "created_at": _iso(ts),
                "updated_at": _iso(ts),
            }
            for ts, rid, t in chunk
        ]
    return _JSON(items, headers=_link(request, page) if more else None)


# ---- Freshchat --------------------------------------------------------------------------------


async def _fc_report_create(sim: FreshdeskSimulator, request: Request) -> Response:
    body = await _body(request)
    try:
        start, end = _parse_iso(body["start"]), _parse_iso(body["end"])
    except KeyError as exc:
        raise ApiError(400, {"message": "start and end are required"}) from exc
    with sim._lock:
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"report:{len(sim._reports)}:{start}:{end}"))
        sim._reports[rid] = [start, end, 0, str(body.get("event"))]
    return _JSON({"id": rid, "status": "IN_PROGRESS"}, status_code=202)


async def _fc_report_show(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim._lock:
        report = sim._reports.get(request.path_params["report_id"])
        if report is None:
            raise ApiError(404, {"message": "report not found"})
        report[2] += 1
        done = report[2] >= sim.report_polls_to_complete
    rid = request.path_params["report_id"]
    base = str(request.base_url).rstrip("/")
    out: dict[str, Any] = {"id": rid, "status": "COMPLETED" if done else "IN_PROGRESS"}
    if done:
        out["links"] = [
            {
                "link": {"rel": "extract", "href": f"{base}/v2/reports/raw/{rid}/file"},
                "from": _iso(report[0]),
                "to": _iso(report[1]),
            }
        ]
    return _JSON(out)


async def _fc_report_file(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim._lock:
        report = sim._reports.get(request.path_params["report_id"])
        if report is None:
            raise ApiError(404, {"message": "report not found"})
        start, end = report[0], report[1]
        rows = sorted(
            {c.id for c in sim._chats.values() for m in c.messages if start <= m[1] < end}
        )
    text = "conversation_id,channel\n" + "".join(f"{cid},web\n" for cid in rows)
    return Response(text, media_type="text/csv")


async def _fc_conversation(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim._lock:
        chat = sim._chats.get(request.path_params["conversation_id"])
        if chat is None:
            raise ApiError(404, {"message": "conversation not found"})
        return _JSON(
            {
                "conversation_id": chat.id,
                "channel_id": "web",
                "status": chat.status,
                "created_time": _iso(chat.created),
                "users": [{"id": chat.user_id}],
                "assigned_agent_id": "agent-0",
            }
        )


async def _fc_messages(sim: FreshdeskSimulator, request: Request) -> Response:
    per_page = max(1, min(50, _int(request, "items_per_page", 20)))
    page = max(1, _int(request, "page", 1))
    cid = request.path_params["conversation_id"]
    with sim._lock:
        chat = sim._chats.get(cid)
        if chat is None:
            raise ApiError(404, {"message": "conversation not found"})
        newest_first = sorted(chat.messages, key=lambda m: (m[1], m[0]), reverse=True)
        chunk = newest_first[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(newest_first)
    out: dict[str, Any] = {
        "messages": [
            {
                "id": mid,
                "actor_type": actor,
                "actor_id": actor_id,
                "message_type": mtype,
                "message_parts": [{"text": {"content": text}}],
                "created_time": _iso(ts),
                "conversation_id": cid,
            }
            for mid, ts, actor, actor_id, mtype, text in chunk
        ],
        "pagination": {
            "total_items": len(newest_first),
            "total_pages": -(-len(newest_first) // per_page),
            "current_page": page,
            "items_per_page": per_page,
        },
    }
    if more:
        out["link"] = {
            "rel": "next",
            "href": f"/v2/conversations/{cid}/messages?page={page + 1}&items_per_page={per_page}",
        }
    return _JSON(out)


# (method, path, counter key, handler, credits beyond 1 come from `include`, tickets list?)
_ROUTES: tuple[tuple[str, str, str, Handler, bool], ...] = (
    ("GET", "/api/v2/tickets", "GET /api/v2/tickets", _list_tickets, True),
    (
        "GET",
        "/api/v2/tickets/archived/{ticket_id:int}",
        "GET /api/v2/tickets/archived/{id}",
        _show_archived,
        False,
    ),
    (
        "GET",
        "/api/v2/tickets/archived/{ticket_id:int}/conversations",
        "GET /api/v2/tickets/archived/{id}/conversations",
        _archived_conversations,
        False,
    ),
    ("GET", "/api/v2/tickets/{ticket_id:int}", "GET /api/v2/tickets/{id}", _show_ticket, False),
    ("PUT", "/api/v2/tickets/{ticket_id:int}", "PUT /api/v2/tickets/{id}", _update_ticket, False),
    (
        "GET",
        "/api/v2/tickets/{ticket_id:int}/conversations",
        "GET /api/v2/tickets/{id}/conversations",
        _conversations,
        False,
    ),
    ("GET", "/api/v2/agents", "GET /api/v2/agents", _agents, False),
    ("GET", "/api/v2/agents/me", "GET /api/v2/agents/me", _me, False),
    ("GET", "/api/v2/admin/ticket_fields", "GET /api/v2/admin/ticket_fields", _fields, False),
    (
        "POST",
        "/api/v2/admin/ticket_fields",
        "POST /api/v2/admin/ticket_fields",
        _create_field,
        False,
    ),
    (
        "PUT",
        "/api/v2/admin/ticket_fields/{field_id:int}",
        "PUT /api/v2/admin/ticket_fields/{id}",
        _update_field,
        False,
    ),
    (
        "GET",
        "/api/v2/surveys/satisfaction_ratings",
        "GET /api/v2/surveys/satisfaction_ratings",
        _ratings,
        False,
    ),
)

_FRESHCHAT_ROUTES: tuple[tuple[str, str, str, Handler, bool], ...] = (
    ("POST", "/v2/reports/raw", "POST /v2/reports/raw", _fc_report_create, False),
    ("GET", "/v2/reports/raw/{report_id}", "GET /v2/reports/raw/{id}", _fc_report_show, False),
    (
        "GET",
        "/v2/reports/raw/{report_id}/file",
        "GET /v2/reports/raw/{id}/file",
        _fc_report_file,
        False,
    ),
    (
        "GET",
        "/v2/conversations/{conversation_id}",
        "GET /v2/conversations/{id}",
        _fc_conversation,
        False,
    ),
    (
        "GET",
        "/v2/conversations/{conversation_id}/messages",
        "GET /v2/conversations/{id}/messages",
        _fc_messages,
        False,
    ),
)


# ---- cross-cutting: auth, credits, limits, faults ---------------------------------------------


def _window(sim: FreshdeskSimulator, name: str) -> tuple[int, int]:
    """(credits used, seconds to reset) of the fixed one-minute window `name`."""
    now = sim.now_ts()
    minute = now // 60
    start, used = sim._windows.get(name, (minute, 0))
    if start != minute:
        used = sim.faults.background_credits_per_minute if name == "account" else 0
    sim._windows[name] = (minute, used)
    return used, 60 - now % 60


def _credits(request: Request, listing: bool) -> int:
    if not listing:
        return 1
    include = [x for x in request.query_params.get("include", "").split(",") if x]
    return 1 + INCLUDE_CREDITS * len(include)


def _gate(sim: FreshdeskSimulator, request: Request, listing: bool) -> dict[str, str]:
    """Account and tickets-list limits (429 + Retry-After), Retry-After violations, faults."""
    faults = sim.faults
    now = sim.clock().timestamp()
    if sim._retry_issued < now < sim._retry_until:
        sim.retry_after_violations += 1
    cost = _credits(request, listing)
    used, reset = _window(sim, "account")
    total = faults.rate_limit_per_minute
    limits = [(total, used, "account")]
    if listing and faults.ticket_list_per_minute:
        list_used, _ = _window(sim, "list")
        limits.append((faults.ticket_list_per_minute, list_used, "list"))
    for limit, spent, _name in limits:
        if limit and spent + cost > limit:
            sim.rate_limited += 1
            sim._retry_issued, sim._retry_until = now, max(sim._retry_until, now + reset)
            headers = {"Retry-After": str(reset)} if faults.retry_after_header else {}
            headers.update(_rate_headers(sim, 0))
            raise ApiError(
                429, {"message": "You have exceeded the limit of requests per minute"}, headers
            )
    minute = int(now) // 60
    sim._windows["account"] = (minute, used + cost)
    if listing and faults.ticket_list_per_minute:
        sim._windows["list"] = (minute, sim._windows["list"][1] + cost)
    sim.credits_used += cost
    sim.credits_by_minute[minute] += cost
    sim._seq += 1
    if faults.fail_every_n and sim._seq % faults.fail_every_n == 0:
        raise ApiError(faults.fail_status, {"description": "Injected failure from the simulator"})
    return _rate_headers(sim, cost)


def _rate_headers(sim: FreshdeskSimulator, cost: int) -> dict[str, str]:
    total = sim.faults.rate_limit_per_minute or 50_000
    used, _ = _window(sim, "account")
    return {
        "X-RateLimit-Total": str(total),
        "X-RateLimit-Remaining": str(max(0, total - used)),
        "X-RateLimit-Used-CurrentRequest": str(cost),
    }


def _authenticate(sim: FreshdeskSimulator, request: Request, freshchat: bool) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if freshchat:
        return (
            scheme.lower() == "bearer"
            and bool(sim.freshchat_token)
            and (value == sim.freshchat_token)
        )
    if scheme.lower() != "basic" or not sim.api_key:
        return False
    try:
        user, _, _password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return user == sim.api_key


def _endpoint(
    sim: FreshdeskSimulator, key: str, handler: Handler, listing: bool, freshchat: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        with sim._lock:
            sim.requests[key] += 1
        headers: dict[str, str] = {}
        try:
            open_file = freshchat and key.endswith("/file")  # a pre-signed download link
            with sim._lock:
                if not open_file and not _authenticate(sim, request, freshchat):
                    raise ApiError(
                        401,
                        {
                            "code": "invalid_credentials",
                            "message": "You have to be logged in to perform this action.",
                        },
                    )
                if not freshchat:
                    headers = _gate(sim, request, listing)
            response = await handler(sim, request)
            response = _maybe_malformed(sim, response)
        except ApiError as exc:
            response = _JSON(exc.body, status_code=exc.status, headers=exc.headers)
        response.headers.update(headers)
        with sim._lock:
            sim.status_counts[response.status_code] += 1
        return response

    return endpoint


def _maybe_malformed(sim: FreshdeskSimulator, response: Response) -> Response:
    n = sim.faults.malformed_json_every_n
    if not n or response.status_code >= 400 or response.media_type != "application/json":
        return response
    with sim._lock:
        sim._malformed += 1
        if sim._malformed % n:
            return response
    body = bytes(response.body)
    return Response(
        body[: max(1, len(body) // 2)],
        status_code=response.status_code,
        media_type="application/json",
    )


async def _unknown(request: Request, exc: Exception) -> Response:
    del request, exc
    return _JSON({"code": "invalid_endpoint", "description": "Not found"}, status_code=404)


def _app(sim: FreshdeskSimulator, routes: Any, freshchat: bool) -> Starlette:
    app = Starlette(
        routes=[
            Route(
                path,
                _endpoint(sim, key, handler, listing, freshchat),
                methods=[method],
                name=f"{method} {key}",
            )
            for method, path, key, handler, listing in routes
        ],
        exception_handlers={404: _unknown, 405: _unknown},
    )
    app.state.simulator = sim
    return app


def create_freshdesk_app(sim: FreshdeskSimulator) -> Starlette:
    """The ASGI app serving the Freshdesk API of `sim` (API key as Basic user, password X)."""
    return _app(sim, _ROUTES, freshchat=False)


def create_freshchat_app(sim: FreshdeskSimulator) -> Starlette:
    """The ASGI app serving the Freshchat API of `sim` (bearer token), on its own host."""
    return _app(sim, _FRESHCHAT_ROUTES, freshchat=True)
