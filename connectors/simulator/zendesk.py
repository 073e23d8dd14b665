"""A Zendesk Support account in memory, and a Starlette app that serves it with Zendesk's shapes.

Why: the connectors, the demo and the benchmarks need a helpdesk that behaves like Zendesk where
it matters (incremental export cursors and boundary seconds, comment sideloads, users, dropdown
fields whose option values are tags, async bulk updates with job polling, rate limits and the
classic failures) but that is deterministic, local and fast. Every generated ticket carries a
hidden ground truth (stage, themes, language) that is never served, so accuracy can be scored.

Memory: a ticket keeps a few scalars plus a tuple of audits; comment *text* is not stored but
rendered on demand from a per-comment seed (see ``corpus``), so 100,000 tickets stay compact.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import collections
import hashlib
import json
import random
import threading
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import corpus
from .clock import SimulatedClock
from .corpus import Truth

# ---------------------------------------------------------------------------------------------
# Id ranges: disjoint so that a test mixing up a ticket id and a user id fails loudly.

INTEGRATION_USER_ID = 9_000_000_001
AGENT_BASE = 9_000_000_100
CUSTOMER_BASE = 9_100_000_000
SYSTEM_USER_ID = -1  # Zendesk uses -1 as the updater of trigger/automation changes
AUDIT_BASE = 50_000_000_000
FIELD_BASE = 360_000_000
OPTION_BASE = 361_000_000
GROUP_BASE = 8_000_000
ORG_BASE = 7_000_000
BRAND_STORE, BRAND_CLOUD = 6_000_001, 6_000_002

SUPPORT_ADDRESS = "support@acme.example"
MAX_PER_PAGE = 1000
MAX_IDS = 100
MAX_ACTIVE_JOBS = 30
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")

_GROUPS = ("General", "Billing", "Logistics", "Technical")
_THEME_GROUP = {
    "fees_and_billing_errors": 1, "payment_failures": 1, "refunds_and_returns": 1,
    "cancellation": 1, "delivery_problems": 2, "delays_and_waiting": 2, "product_defects": 2,
    "app_and_site_errors": 3, "account_access": 3, "security_and_fraud": 3,
    "usability_and_navigation": 3,
}
_CHANNELS = (
    "email", "web", "mobile", "api", "chat", "native_messaging", "voice", "twitter", "facebook",
)
_CHANNEL_WEIGHTS = (0.38, 0.32, 0.06, 0.04, 0.07, 0.05, 0.04, 0.02, 0.02)

# Kinds of comment whose text is rendered lazily (explicit bodies are stored as strings).
K_FIRST, K_REPLY, K_AGENT, K_NOTE, K_SYSTEM, K_OUTBOUND = "c", "r", "a", "n", "s", "o"
VIA_RULE = "rule"


@dataclass(frozen=True, slots=True)
class PlantedSpike:
    """A burst of one theme planted in recent weeks, so journey-map spike detection is testable."""

    theme: str
    stage: str
    start: datetime
    end: datetime
    tickets: int
    story: str


# (theme, stage, starts N days before now, lasts D days, share of all tickets, story)
_SPIKE_PLAN = (
    ("payment_failures", "purchase", 10, 2, 0.025, "payment provider outage"),
    ("delivery_problems", "delivery", 20, 4, 0.035, "carrier depot backlog"),
    ("app_and_site_errors", "support", 34, 2, 0.02, "broken mobile app release"),
)


@dataclass
class SimulatorFaults:
    """Failure modes for reliability tests; all off by default.

    ``rate_limit_per_minute`` is the account (plan) limit, ``export_limit_per_minute`` the shared
    incremental-export limit (Zendesk: 10/min); both answer 429 with ``Retry-After`` (seconds to
    the end of the current clock minute) unless ``retry_after_header`` is False. ``fail_every_n``
    answers ``fail_status`` to every nth request; ``gateway_timeout_above_per_page`` answers 504
    to ticket_events pages larger than N; ``malformed_json_every_n`` truncates every nth body.
    """

    rate_limit_per_minute: int | None = None
    export_limit_per_minute: int | None = None
    retry_after_header: bool = True
    fail_every_n: int | None = None
    fail_status: int = 503
    gateway_timeout_above_per_page: int | None = None
    malformed_json_every_n: int | None = None
    # --- added for the production-grade connector (see tests/simulator/test_zendesk_parity.py)
    conflict_every_n: int | None = None
    """Answer 409 Conflict to every nth update_many (concurrent agent edit)."""
    ticket_update_fail_every_n: int | None = None
    """Fail every nth ticket inside a bulk job with a transient TicketUpdateFailed result."""
    service_unavailable_retry_after: int | None = None
    """Send this Retry-After (seconds) with injected 503s (Zendesk does during incidents)."""
    rate_limit_headers: bool = True
    """False: strip the X-Rate-Limit/ratelimit-* headers (as some proxies do), so a client
    that trusts its configured limits over-sends and meets 429 + Retry-After."""


@dataclass(slots=True)
class _Option:
    id: int
    name: str
    value: str


@dataclass(slots=True)
class _Field:
    id: int
    type: str
    title: str
    system: bool
    created: int
    updated: int
    position: int
    options: list[_Option] = field(default_factory=list)
    description: str = ""

    def option_by_value(self, value: str) -> _Option | None:
        for opt in self.options:
            if opt.value == value:
                return opt
        return None


class _Ticket:
    """Compact per-ticket state. ``audits`` holds tuples shared with the global event index."""

    __slots__ = (
        "id", "created", "updated", "gts", "status", "priority", "type", "subject",
        "requester_id", "submitter_id", "assignee_id", "group_id", "organization_id", "tags",
        "fields", "channel", "brand_id", "truth", "csat", "audits", "seed",
    )

    def __init__(self, tid: int, seed: int) -> None:
        self.id = tid
        self.seed = seed
        self.created = self.updated = self.gts = 0
        self.status = "new"
        self.priority: str | None = None
        self.type: str | None = None
        self.subject = ""
        self.requester_id = self.submitter_id = 0
        self.assignee_id: int | None = None
        self.group_id: int | None = None
        self.organization_id: int | None = None
        self.tags: tuple[str, ...] = ()
        self.fields: dict[int, Any] = {}
        self.channel = "web"
        self.brand_id = BRAND_STORE
        self.truth: Truth = Truth(None, (), "en")
        self.csat = "unoffered"
        self.audits: list[Audit] = []


# An audit: (timestamp, audit id, ticket id, updater id, via channel, children).
# Children: ("C", author_id, public, kind, body|None) comment — its id is audit_id * 100 + index;
#           ("X", field_name, value, previous_value, via_or_None) change;
#           ("N", field_name, value) create.
Audit = tuple[int, int, int, int, str, tuple[tuple[Any, ...], ...]]


@dataclass
class _Job:
    id: str
    total: int
    results: list[dict[str, Any]] | None  # None: not run yet (job_seconds)
    polls: int = 0


@dataclass(frozen=True)
class TicketView:
    """A read-only, test-friendly snapshot of one ticket (not an API shape)."""

    id: int
    status: str
    tags: tuple[str, ...]
    custom_fields: dict[int, Any]
    fields: dict[str, Any]
    updated_at: datetime
    generated_timestamp: int
    requester_id: int
    assignee_id: int | None
    comments: tuple[dict[str, Any], ...]

    def __getitem__(self, key: str) -> Any:
        if key in self.fields:
            return self.fields[key]
        return getattr(self, key)


@lru_cache(maxsize=65536)
def _customer_profile(seed: int, uid: int) -> tuple[str, str, str, str]:
    """(first, last, email, phone) of a customer, derived from its id: no per-user storage."""
    rng = random.Random(seed * 1_000_003 + uid)
    first, last = corpus.person_name(rng)
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    local = local.replace("'", "").lower()
    domain = rng.choice(("example.com", "mail.example", "example.org", "inbox.example"))
    return first, last, f"{local}{uid % 1000}@{domain}", corpus.phone_number(rng)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ZendeskSimulator(SimulatedClock):
    """The state of one simulated Zendesk account.

    Build with ``ZendeskSimulator(tickets=N, seed=S, now=dt)`` (or ``.generate``). Content is a
    pure function of (tickets, seed, now); the ``clock`` (default: real UTC time) only drives
    what happens afterwards: write-backs, rate-limit windows, helper edits.
    """

    def __init__(
        self,
        tickets: int = 0,
        seed: int = 0,
        now: datetime | None = None,
        *,
        email: str = "lead@acme.example",
        api_token: str | None = "sim-token",
        oauth_token: str | None = None,
        clock: Callable[[], datetime] | None = None,
        faults: SimulatorFaults | None = None,
        job_polls_to_complete: int = 1,
        job_seconds: float = 0.0,
    ) -> None:
        self.email = email
        self.api_token = api_token
        self.oauth_token = oauth_token
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.faults = faults or SimulatorFaults()
        self.job_polls_to_complete = job_polls_to_complete
        # A bulk job changes its tickets this long after update_many accepted it (real jobs
        # take seconds, and run on whether or not anyone polls); 0 = at once.
        self.job_seconds = job_seconds
        self.integration_user_id = INTEGRATION_USER_ID
        self.requests: collections.Counter[str] = collections.Counter()
        self.status_counts: collections.Counter[int] = collections.Counter()
        self.seed = seed
        self.spikes: tuple[PlantedSpike, ...] = ()
        self._lock = threading.RLock()
        self._tickets: dict[int, _Ticket] = {}
        self._order: list[tuple[int, int]] = []  # (generated_timestamp, id), sorted
        self._events: list[Audit] = []  # sorted by (timestamp, audit id)
        self._event_ts: list[int] = []
        self._next_audit = AUDIT_BASE
        self._jobs: dict[str, _Job] = {}
        self._job_seq = 0
        self._seq = 0  # request sequence for fault injection
        self._windows: dict[str, tuple[int, int]] = {}
        # Retry-After bookkeeping: a request sent before the deadline a 429 announced is a
        # violation (what the benchmark must keep at zero). Keys: "account", "export", "jobs".
        self.retry_after_violations = 0
        self._retry_deadlines: dict[str, float] = {}
        # OAuth: access token → expiry (epoch seconds, None = never), refresh token → client id.
        self.oauth_clients: dict[str, str] = {}
        self._access_tokens: dict[str, float | None] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._token_seq = 0
        self.oauth_access_ttl = 7200
        # Solicited feedback and edits made after generation.
        self._csat_overrides: dict[int, tuple[str, str | None, int, int]] = {}
        self._csat_index: list[tuple[int, int]] | None = None
        self._redactions: dict[int, str] = {}
        self._chat_index: list[tuple[int, int]] | None = None
        self._job_failure_seq = 0
        self._customers = 0
        self._agents: list[tuple[int, str, str]] = []
        self._fields: dict[int, _Field] = {}
        self._interned: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        gen_now = now or self.clock()
        self._build_account(random.Random(seed), int(gen_now.timestamp()))
        if tickets:
            self._generate(tickets, seed, int(gen_now.timestamp()))

    @classmethod
    def generate(
        cls, tickets: int, seed: int = 0, now: datetime | None = None, **kwargs: Any
    ) -> ZendeskSimulator:
        """Contract entry point: same as the constructor."""
        return cls(tickets, seed, now, **kwargs)

    # ------------------------------------------------------------------------- generation

    def _build_account(self, rng: random.Random, now_ts: int) -> None:
        """Agents, system fields and the brand/plan/region dropdowns."""
        for k in range(10 + rng.randrange(11)):
            first, last = corpus.person_name(rng)
            self._agents.append((AGENT_BASE + k, first, last))
        created = now_ts - 400 * 86400
        system = (
            ("subject", "Subject"), ("description", "Description"), ("status", "Status"),
            ("tickettype", "Type"), ("priority", "Priority"), ("group", "Group"),
            ("assignee", "Assignee"),
        )
        for pos, (ftype, title) in enumerate(system):
            fid = FIELD_BASE + pos + 1
            self._fields[fid] = _Field(fid, ftype, title, True, created, created, pos)
        self._option_seq = OPTION_BASE
        for title, values in (
            ("Brand", (("Acme Store", "brand_acme_store"), ("Acme Cloud", "brand_acme_cloud"))),
            ("Plan", (("Free", "plan_free"), ("Plus", "plan_plus"), ("Business", "plan_business"),
                      ("Enterprise", "plan_enterprise"))),
            ("Region", (("North America", "region_na"), ("Europe", "region_eu"),
                        ("UK", "region_uk"), ("Asia Pacific", "region_apac"),
                        ("Latin America", "region_latam"))),
        ):
            self._create_field("tagger", title, [{"name": n, "value": v} for n, v in values],
                               created)
        self._brand_field, self._plan_field, self._region_field = sorted(
            f.id for f in self._fields.values() if not f.system
        )

    def _generate(self, n: int, seed: int, now_ts: int) -> None:
        """O(N) generation (plus one sort of the event index)."""
        rng = random.Random(seed ^ 0x5EED)
        self._customers = max(20, int(n * 0.7))
        span_start = now_ts - 26 * 7 * 86400
        spikes = self._plan_spikes(rng, n, now_ts)
        counts = collections.Counter[int]()
        truths: dict[Truth, Truth] = {}
        events: list[Audit] = []
        for tid in range(1, n + 1):
            spike_idx = self._pick_spike(rng, spikes)
            t = _Ticket(tid, rng.getrandbits(48))
            if spike_idx is None:
                created = rng.randrange(span_start, now_ts - 3600)
                truth = corpus.draw_truth(rng)
            else:
                counts[spike_idx] += 1
                theme, stage, start, end = spikes[spike_idx]
                created = rng.randrange(start, end)
                truth = Truth(stage, corpus.draw_themes(rng, stage, forced=theme),
                              corpus.draw_language(rng))
            t.truth = truths.setdefault(truth, truth)
            self._fill_ticket(rng, t, created, now_ts)
            self._tickets[tid] = t
            events.extend(t.audits)
        events.sort(key=lambda a: a[0] * 10_000_000_000_000 + a[1])
        self._events = events
        self._event_ts = [a[0] for a in events]
        self._order = sorted((t.gts, t.id) for t in self._tickets.values())
        self.spikes = tuple(
            PlantedSpike(theme, stage, corpus.utc(start), corpus.utc(end), counts[i], story)
            for i, ((theme, stage, start, end), (*_, story)) in enumerate(
                zip(spikes, _SPIKE_PLAN, strict=True)
            )
        )

    @staticmethod
    def _plan_spikes(
        rng: random.Random, n: int, now_ts: int
    ) -> list[tuple[str, str, int, int]]:
        del rng, n  # the plan is fixed; kept in the signature for future variation
        return [
            (theme, stage, now_ts - ago * 86400, now_ts - (ago - days) * 86400)
            for theme, stage, ago, days, _share, _story in _SPIKE_PLAN
        ]

    @staticmethod
    def _pick_spike(rng: random.Random, spikes: list[tuple[str, str, int, int]]) -> int | None:
        roll = rng.random()
        acc = 0.0
        for i, plan in enumerate(_SPIKE_PLAN):
            acc += plan[4]
            if roll < acc:
                return i
        del spikes
        return None

    def _fill_ticket(self, rng: random.Random, t: _Ticket, created: int, now_ts: int) -> None:
        """Draw one ticket's attributes and its audit history (at most now - 90 s)."""
        truth = t.truth
        t.channel = rng.choices(_CHANNELS, weights=_CHANNEL_WEIGHTS)[0]
        outbound = rng.random() < 0.04
        if outbound or t.channel == "voice":
            t.truth = truth = Truth(None, (), "en")
        k = int(rng.random() ** 1.4 * self._customers)
        t.requester_id = CUSTOMER_BASE + k + 1
        agent = self._agents[rng.randrange(len(self._agents))][0]
        t.submitter_id = agent if outbound else t.requester_id
        t.organization_id = ORG_BASE + (k % 25) + 1 if k % 7 == 0 else None
        t.priority = rng.choices((None, "low", "normal", "high", "urgent"),
                                 weights=(0.1, 0.2, 0.5, 0.15, 0.05))[0]
        t.type = rng.choices((None, "question", "incident", "problem", "task"),
                             weights=(0.3, 0.35, 0.25, 0.05, 0.05))[0]
        t.subject = corpus.subject(rng, truth) if not outbound else "Update about your order"
        stage = truth.stage
        t.brand_id = BRAND_STORE if stage in ("purchase", "delivery") or rng.random() < 0.55 \
            else BRAND_CLOUD
        fields = self._initial_fields(rng, t)
        t.fields = fields
        extra = ("vip",) if rng.random() < 0.03 else ()
        t.tags = tuple(fields.values()) + extra
        theme = truth.themes[0] if truth.themes else ""
        group = GROUP_BASE + 1 + _THEME_GROUP.get(theme, 0)
        self._lifecycle(rng, t, created, now_ts, agent, group, outbound)

    def _initial_fields(self, rng: random.Random, t: _Ticket) -> dict[int, Any]:
        lang = t.truth.language
        if lang == "es":
            region = rng.choice(("region_latam", "region_eu"))
        elif lang in ("de", "fr"):
            region = "region_eu"
        else:
            region = rng.choices(
                ("region_na", "region_eu", "region_uk", "region_apac", "region_latam"),
                weights=(0.45, 0.2, 0.15, 0.15, 0.05),
            )[0]
        plan = rng.choices(("plan_free", "plan_plus", "plan_business", "plan_enterprise"),
                           weights=(0.4, 0.35, 0.2, 0.05))[0]
        brand = "brand_acme_store" if t.brand_id == BRAND_STORE else "brand_acme_cloud"
        return {self._brand_field: brand, self._plan_field: plan, self._region_field: region}

    def _lifecycle(
        self, rng: random.Random, t: _Ticket, created: int, now_ts: int, agent: int, group: int,
        outbound: bool,
    ) -> None:
        """Creation audit, then agent/customer turns towards a drawn target status."""
        limit = now_ts - 90
        target = rng.choices(("new", "open", "pending", "hold", "solved"),
                             weights=(0.05, 0.15, 0.12, 0.03, 0.65))[0]
        if outbound:
            target = rng.choice(("pending", "solved"))
        cust = t.requester_id
        first_kind = K_OUTBOUND if outbound else K_FIRST
        first_author = agent if outbound else cust
        first_public = True
        via = "web" if outbound else t.channel
        if t.channel == "voice":
            first_kind, first_author, first_public = K_SYSTEM, agent, False
        shared = self._shared
        children: list[tuple[Any, ...]] = [
            ("C", first_author, first_public, first_kind, None),
            shared(("N", "status", "new")),
            ("N", "tags", t.tags),
        ]
        if t.priority:
            children.append(shared(("N", "priority", t.priority)))
        children.extend(shared(("N", str(fid), v)) for fid, v in t.fields.items())
        children.append(shared(("X", "group_id", group, None, VIA_RULE)))
        t.group_id = group
        ts = created
        self._add_audit(t, ts, t.submitter_id, via, children)
        if t.channel == "chat" and not outbound:
            self._add_audit(t, ts + 1, SYSTEM_USER_ID, VIA_RULE,
                            [("C", SYSTEM_USER_ID, False, K_SYSTEM, None)])
        if target == "new":
            return
        status = "new"
        steps = self._plan_turns(rng, target, outbound)
        for who, kind, new_status in steps:
            ts += max(300, int(rng.expovariate(1 / (8 * 3600))))
            if ts > limit:
                break
            kids: list[tuple[Any, ...]] = []
            if who == "agent":
                if t.assignee_id is None:
                    kids.append(self._shared(("X", "assignee_id", agent, None, None)))
                    t.assignee_id = agent
                kids.insert(0, ("C", agent, kind == K_AGENT, kind, None))
                updater, channel = agent, "web"
            else:
                kids.append(("C", cust, True, K_REPLY, None))
                updater, channel = cust, t.channel
            if new_status != status:
                kids.append(self._shared(("X", "status", new_status, status, None)))
                status = new_status
            self._add_audit(t, ts, updater, channel, kids)
        t.status = status
        if status == "solved":
            self._maybe_csat_and_close(rng, t, ts, limit)
        if rng.random() < 0.10:  # a system update: generated_timestamp moves, updated_at not
            t.gts = min(limit, t.gts + rng.randrange(60, 86400))

    @staticmethod
    def _plan_turns(
        rng: random.Random, target: str, outbound: bool
    ) -> list[tuple[str, str, str]]:
        """The conversation turns (who, comment kind, status after) to reach a target status."""
        turns: list[tuple[str, str, str]] = []
        if rng.random() < 0.25:
            turns.append(("agent", K_NOTE, "open"))
        if target == "hold":
            return [*turns, ("agent", K_NOTE, "hold")]
        if target == "open" and rng.random() < 0.3:
            return turns or [("agent", K_NOTE, "open")]
        turns.append(("agent", K_AGENT, "pending"))
        if target == "pending":
            return turns
        replies = 0 if outbound else rng.choices((0, 1, 2), weights=(0.45, 0.4, 0.15))[0]
        if target == "open":
            replies = max(1, replies)
        for i in range(replies):
            turns.append(("customer", K_REPLY, "open"))
            if target == "open" and i == replies - 1:
                return turns
            turns.append(("agent", K_AGENT, "pending"))
        turns[-1] = ("agent", K_AGENT, "solved")
        return turns

    def _maybe_csat_and_close(self, rng: random.Random, t: _Ticket, ts: int, limit: int) -> None:
        roll = rng.random()
        if roll < 0.12:
            t.csat = "good" if rng.random() < 0.7 else "bad"
        elif roll < 0.35:
            t.csat = "offered"
        close_ts = ts + 4 * 86400 + rng.randrange(3600)
        if close_ts <= limit and rng.random() < 0.26:
            self._add_audit(t, close_ts, SYSTEM_USER_ID, VIA_RULE,
                            [self._shared(("X", "status", "closed", "solved", VIA_RULE))])
            t.status = "closed"

    def _shared(self, child: tuple[Any, ...]) -> tuple[Any, ...]:
        """Intern a child event that many audits share (memory: one copy for all tickets)."""
        return self._interned.setdefault(child, child)

    def _add_audit(
        self, t: _Ticket, ts: int, updater: int, channel: str, children: list[tuple[Any, ...]]
    ) -> Audit:
        """Record an audit on the ticket; moves updated_at and generated_timestamp."""
        self._next_audit += 1
        audit: Audit = (ts, self._next_audit, t.id, updater, channel, tuple(children))
        t.audits.append(audit)
        t.updated = max(t.updated, ts)
        t.gts = max(t.gts, ts)
        if not t.created:
            t.created = ts
        return audit

    # ---------------------------------------------------------------- runtime mutations

    def _index_audit(self, audit: Audit) -> None:
        i = bisect.bisect_right(self._event_ts, audit[0])
        self._events.insert(i, audit)
        self._event_ts.insert(i, audit[0])

    def _touch(self, t: _Ticket, ts: int, *, updated: bool = True) -> None:
        """Move a ticket to its new export position (generated_timestamp, id)."""
        old = (t.gts, t.id)
        i = bisect.bisect_left(self._order, old)
        if i < len(self._order) and self._order[i] == old:
            del self._order[i]
        t.gts = max(ts, t.gts)
        if updated:
            t.updated = max(ts, t.updated)
        bisect.insort(self._order, (t.gts, t.id))

    def _record(
        self, t: _Ticket, updater: int, channel: str, children: list[tuple[Any, ...]]
    ) -> Audit:
        ts = self._now_ts()
        self._next_audit += 1
        audit: Audit = (ts, self._next_audit, t.id, updater, channel, tuple(children))
        t.audits.append(audit)
        self._index_audit(audit)
        self._touch(t, ts)
        return audit

    # ---------------------------------------------------------------- fields

    def _create_field(
        self, ftype: str, title: str, options: list[dict[str, Any]], ts: int
    ) -> _Field:
        fid = FIELD_BASE + 100 + sum(1 for f in self._fields.values() if not f.system) + 1
        fld = _Field(fid, ftype, title, False, ts, ts, len(self._fields))
        for opt in options:
            self._option_seq += 1
            fld.options.append(_Option(self._option_seq, str(opt["name"]), str(opt["value"])))
        self._fields[fid] = fld
        return fld

    def _option_value_owner(self, value: str) -> int | None:
        for f in self._fields.values():
            if f.option_by_value(value) is not None:
                return f.id
        return None

    def _field_by_key(self, key: int | str) -> _Field:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            return self._fields[int(key)]
        for f in self._fields.values():
            if f.title == key:
                return f
        raise KeyError(key)

    def _drop_option_everywhere(self, fld: _Field, value: str) -> None:
        """Zendesk semantics of deleting an option: its tag vanishes from every ticket, and
        tickets that had it selected lose the value. No audit, but a system update."""
        ts = self._now_ts()
        for t in self._tickets.values():
            if value in t.tags or t.fields.get(fld.id) == value:
                t.tags = tuple(x for x in t.tags if x != value)
                if t.fields.get(fld.id) == value:
                    t.fields.pop(fld.id, None)
                self._touch(t, ts, updated=False)

    # ---------------------------------------------------------------- ticket updates

    def _apply_update(
        self, t: _Ticket, upd: dict[str, Any], updater: int, channel: str
    ) -> tuple[bool, str | None]:
        """Apply one update_many ticket object. Returns (success, error)."""
        old_tags, old_fields, old_status = t.tags, dict(t.fields), t.status
        tags = list(t.tags)
        if "tags" in upd:
            tags = _as_tags(upd["tags"])
        added = set(_as_tags(upd.get("additional_tags", [])))
        removed = set(_as_tags(upd.get("remove_tags", [])))
        tags = [x for x in tags if x not in removed] + [x for x in added if x not in tags]
        explicit: dict[int, Any] = {}
        for item in upd.get("custom_fields") or []:
            if not isinstance(item, dict) or "id" not in item:
                return False, "custom_fields entries need an id"
            fld = self._fields.get(int(item["id"]))
            if fld is None or fld.system:
                continue  # Zendesk ignores unknown field ids
            value = item.get("value")
            if fld.type in ("tagger",) and value not in (None, "") \
                    and fld.option_by_value(str(value)) is None:
                return False, f"{fld.title}: {value} is not a valid option"
            explicit[fld.id] = value if value != "" else None
        status = upd.get("status", t.status)
        if status not in STATUSES:
            return False, f"Status: {status} is not valid"
        new_tags, new_fields = self._reconcile(tags, old_tags, t.fields, explicit)
        t.tags, t.fields = tuple(dict.fromkeys(new_tags)), new_fields
        t.status = status
        kids = _change_children(old_tags, t.tags, old_fields, t.fields, old_status, t.status)
        if kids:
            self._record(t, updater, channel, kids)
        return True, None

    def _reconcile(
        self, tags: list[str], old_tags: Iterable[str], fields: dict[int, Any],
        explicit: dict[int, Any],
    ) -> tuple[list[str], dict[int, Any]]:
        """Keep dropdown values and their tags consistent, as Zendesk does."""
        new_fields = dict(fields)
        old = set(old_tags)
        for fld in self._fields.values():
            if fld.system or fld.type != "tagger":
                if fld.id in explicit:
                    new_fields[fld.id] = explicit[fld.id]
                continue
            values = {o.value for o in fld.options}
            if fld.id in explicit:
                chosen = explicit[fld.id]
                tags = [x for x in tags if x not in values]
                if chosen is not None:
                    tags.append(str(chosen))
            else:
                present = [x for x in tags if x in values]
                fresh = [x for x in present if x not in old]
                current = new_fields.get(fld.id)
                chosen = fresh[-1] if fresh else (current if current in present else
                                                  (present[0] if present else None))
                tags = [x for x in tags if x not in values or x == chosen]
            if chosen is None:
                new_fields.pop(fld.id, None)
            else:
                new_fields[fld.id] = chosen
        return tags, new_fields

    # ---------------------------------------------------------------- helpers for tests/demo

    def ticket(self, ticket_id: int) -> TicketView:
        """Snapshot of a ticket: status, tags, custom fields by id and by title, comments."""
        with self._lock:
            t = self._tickets[ticket_id]
            by_title = {self._fields[fid].title: v for fid, v in t.fields.items()
                        if fid in self._fields}
            comments = tuple(
                {"id": cid, "author_id": kid[1], "public": kid[2], "body": body,
                 "created_at": _iso(a[0])}
                for a, cid, kid, body in self._iter_comments(t)
            )
            return TicketView(t.id, t.status, t.tags, dict(t.fields), by_title,
                              corpus.utc(t.updated), t.gts, t.requester_id, t.assignee_id,
                              comments)

    def truth(self, ticket_id: int) -> tuple[str | None, tuple[str, ...], str]:
        """The hidden ground truth (stage, themes, language) of a ticket."""
        tr = self._tickets[ticket_id].truth
        return tr.stage, tr.themes, tr.language

    def ticket_ids(self) -> list[int]:
        """All ticket ids, including deleted ones."""
        return list(self._tickets)

    def open_tickets_with_customer_text(self) -> list[int]:
        """Ids of tickets an integration may still write to (not closed/deleted) that contain
        at least one public end-user comment: the population for write-back benchmarks."""
        with self._lock:
            return [
                t.id for t in self._tickets.values()
                if t.status not in ("closed", "deleted") and self._has_customer_text(t)
            ]

    def _has_customer_text(self, t: _Ticket) -> bool:
        return any(
            kid[0] == "C" and kid[2] and kid[1] >= CUSTOMER_BASE
            for a in t.audits for kid in a[5]
        )

    def agent_set_field(
        self, ticket_id: int, field_title_or_id: int | str, value: Any,
        agent_id: int | None = None,
    ) -> None:
        """An agent edits a field in the agent UI: an audit whose updater is an agent."""
        with self._lock:
            t = self._tickets[ticket_id]
            fld = self._field_by_key(field_title_or_id)
            if fld.type == "tagger" and value is not None:
                opt = fld.option_by_value(str(value)) or next(
                    (o for o in fld.options if o.name == value), None)
                if opt is None:
                    raise ValueError(f"{value!r} is not an option of {fld.title}")
                value = opt.value
            agent = agent_id or t.assignee_id or self._agents[0][0]
            ok, err = self._apply_update(
                t, {"custom_fields": [{"id": fld.id, "value": value}]}, agent, "web")
            if not ok:
                raise ValueError(err)

    def agent_set_tags(self, ticket_id: int, add: Iterable[str] = (),
                       remove: Iterable[str] = (), agent_id: int | None = None) -> None:
        """An agent adds/removes tags by hand (tests of 'never clobber the agents' tags')."""
        with self._lock:
            t = self._tickets[ticket_id]
            agent = agent_id or t.assignee_id or self._agents[0][0]
            self._apply_update(t, {"additional_tags": list(add), "remove_tags": list(remove)},
                               agent, "web")

    def add_comment(self, ticket_id: int, author_id: int, body: str, public: bool = True) -> int:
        """Add a comment (customer or agent). An end-user comment reopens pending/solved
        tickets, as Zendesk does. Returns the comment id."""
        with self._lock:
            t = self._tickets[ticket_id]
            if t.status in ("closed", "deleted"):
                raise ValueError(f"ticket {ticket_id} is {t.status}")
            is_customer = author_id >= CUSTOMER_BASE
            kids: list[tuple[Any, ...]] = [("C", author_id, public, "x", body)]
            if is_customer and t.status in ("pending", "solved", "new", "hold"):
                kids.append(("X", "status", "open", t.status, None))
                t.status = "open"
            audit = self._record(t, author_id, t.channel if is_customer else "web", kids)
            return audit[1] * 100

    def delete_ticket(self, ticket_id: int) -> None:
        """Soft-delete: the export returns a tombstone with status "deleted"; reads 404."""
        with self._lock:
            t = self._tickets[ticket_id]
            t.status = "deleted"
            self._touch(t, self._now_ts())

    def solve_and_close(self, ticket_id: int) -> None:
        """Move a ticket to closed through the automation user (tests of 'skip closed')."""
        with self._lock:
            t = self._tickets[ticket_id]
            self._record(t, SYSTEM_USER_ID, VIA_RULE,
                         [("X", "status", "closed", t.status, VIA_RULE)])
            t.status = "closed"

    # ---------------------------------------------------------------- parity helpers (OAuth,
    # CSAT, redaction): what an admin, a customer or an agent does between two syncs.

    def register_oauth_client(self, client_id: str, secret: str) -> None:
        """An OAuth client (the cjm integration) that may use the refresh-token grant."""
        with self._lock:
            self.oauth_clients[client_id] = secret

    def issue_oauth_tokens(self, client_id: str, ttl: int | None = None) -> tuple[str, str]:
        """The (access, refresh) pair an admin gets when authorising cjm; access expires."""
        with self._lock:
            if client_id not in self.oauth_clients:
                raise ValueError(f"unknown OAuth client {client_id!r}")
            return self._new_token_pair(client_id, ttl)

    def _new_token_pair(self, client_id: str, ttl: int | None = None) -> tuple[str, str]:
        self._token_seq += 1
        salt = f"{self.seed}:{client_id}:{self._token_seq}".encode()
        access = "zat_" + hashlib.sha256(b"a" + salt).hexdigest()[:32]
        refresh = "zrt_" + hashlib.sha256(b"r" + salt).hexdigest()[:32]
        lifetime = self.oauth_access_ttl if ttl is None else ttl
        self._access_tokens[access] = self.clock().timestamp() + lifetime
        self._refresh_tokens[refresh] = client_id
        return access, refresh

    def _rotate(self, client_id: str, secret: str, refresh: str) -> tuple[str, str] | None:
        """Refresh-token grant: a new pair; the old refresh token is spent (rotation)."""
        if self.oauth_clients.get(client_id) != secret:
            return None
        if self._refresh_tokens.pop(refresh, None) != client_id:
            return None
        return self._new_token_pair(client_id)

    def rate_ticket(self, ticket_id: int, score: str, comment: str | None = None) -> int:
        """The requester answers (or changes) the satisfaction survey. Returns the rating id."""
        with self._lock:
            t = self._tickets[ticket_id]
            now = self._now_ts()
            created = self._csat_overrides.get(ticket_id, (None, None, now, now))[2]
            self._csat_overrides[ticket_id] = (score, comment, created, now)
            t.csat = score
            self._csat_index = None
            self._touch(t, now, updated=False)
            return 5_000_000 + t.id

    def redact_comment(self, ticket_id: int, comment_id: int, text: str) -> None:
        """An agent redacts ``text`` from a comment: the stored body changes for good and a
        CommentRedactionEvent audit appears in the event export (the comment event itself keeps
        its original id and time)."""
        with self._lock:
            t = self._tickets[ticket_id]
            for a, cid, _kid, body in self._iter_comments(t):
                if cid == comment_id:
                    self._redactions[cid] = body.replace(text, "\u2587" * len(text))
                    agent = t.assignee_id or self._agents[0][0]
                    self._record(t, agent, "web", [("R", cid)])
                    del a
                    return
            raise ValueError(f"comment {comment_id} is not on ticket {ticket_id}")

    def field_id(self, title: str) -> int:
        """Id of a ticket field by its title (e.g. "Plan", "Journey stage")."""
        return self._field_by_key(title).id

    def agent_ids(self) -> list[int]:
        return [a[0] for a in self._agents]

    def __len__(self) -> int:
        return len(self._tickets)

    # ---------------------------------------------------------------- comment rendering

    def _iter_comments(self, t: _Ticket) -> Iterable[tuple[Audit, int, tuple[Any, ...], str]]:
        for a in t.audits:
            for i, kid in enumerate(a[5]):
                if kid[0] == "C":
                    yield a, a[1] * 100 + i, kid, self._comment_body(t, a, kid, a[1] * 100 + i)

    def _comment_body(self, t: _Ticket, audit: Audit, kid: tuple[Any, ...], cid: int) -> str:
        if cid in self._redactions:
            return self._redactions[cid]
        if kid[4] is not None:
            return str(kid[4])
        return _render(self.seed, t.seed, cid, kid[3], t.channel, t.requester_id, kid[1],
                       t.truth, audit[0], self._quoted_source(t, audit) if kid[3] == K_REPLY
                       else None, self._agent_names())

    def _agent_names(self) -> dict[int, tuple[str, str]]:
        names = getattr(self, "_agent_name_map", None)
        if names is None:
            names = {a[0]: (a[1], a[2]) for a in self._agents}
            self._agent_name_map = names
        return names

    def _quoted_source(self, t: _Ticket, audit: Audit) -> tuple[int, int, int, int] | None:
        """(comment id, author, timestamp, audit index) of the last public agent reply
        before ``audit``: what a customer's email reply quotes."""
        found = None
        for a in t.audits:
            if a is audit:
                break
            for i, kid in enumerate(a[5]):
                if kid[0] == "C" and kid[2] and kid[3] == K_AGENT:
                    found = (a[1] * 100 + i, kid[1], a[0], i)
        return found

    # ---------------------------------------------------------------- JSON shapes

    def user_json(self, uid: int, base: str) -> dict[str, Any] | None:
        """A Zendesk user object, or None for an unknown id."""
        if uid == INTEGRATION_USER_ID:
            return _user(uid, "Acme Integration (cjm)", self.email, "admin", base, None)
        names = self._agent_names()
        if uid in names:
            first, last = names[uid]
            email = f"{first}.{last}@acme.example".lower().replace("'", "")
            email = unicodedata.normalize("NFKD", email).encode("ascii", "ignore").decode()
            return _user(uid, f"{first} {last}", email, "agent", base, None)
        if CUSTOMER_BASE < uid <= CUSTOMER_BASE + self._customers:
            first, last, email, phone = _customer_profile(self.seed, uid)
            k = uid - CUSTOMER_BASE - 1
            org = ORG_BASE + (k % 25) + 1 if k % 7 == 0 else None
            return _user(uid, f"{first} {last}", email, "end-user", base, org, phone)
        return None

    def ticket_json(self, t: _Ticket, base: str) -> dict[str, Any]:
        """A Zendesk ticket object (the export and show shapes)."""
        first = next(iter(self._iter_comments(t)), None)
        description = first[3] if first else ""
        custom = [{"id": f.id, "value": t.fields.get(f.id)}
                  for f in self._fields.values() if not f.system]
        public = any(kid[0] == "C" and kid[2] for a in t.audits for kid in a[5])
        return {
            "url": f"{base}/api/v2/tickets/{t.id}.json",
            "id": t.id,
            "external_id": None,
            "via": self._via(t.channel, t.requester_id, ticket_level=True),
            "created_at": _iso(t.created),
            "updated_at": _iso(t.updated),
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
            "satisfaction_rating": self._csat_json(t),
            "sharing_agreement_ids": [],
            "followup_ids": [],
            "ticket_form_id": FIELD_BASE + 900,
            "brand_id": t.brand_id,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": t.channel == "native_messaging",
        }

    def _csat_json(self, t: _Ticket) -> dict[str, Any]:
        if t.csat in ("unoffered", "offered"):
            return {"score": t.csat}
        return {"id": 5_000_000 + t.id, "score": t.csat, "comment": self._csat_comment(t),
                "reason": None}

    def _csat_comment(self, t: _Ticket) -> str | None:
        if t.id in self._csat_overrides:
            return self._csat_overrides[t.id][1]
        rng = random.Random(t.seed ^ 0xC5A7)
        return corpus.satisfaction_comment(rng, t.csat == "good")

    def _csat_times(self, t: _Ticket) -> tuple[int, int]:
        """(created, updated) of a ticket's rating: a survey answered a few hours after the
        last generated turn, unless a test rated it later."""
        if t.id in self._csat_overrides:
            _, _, created, updated = self._csat_overrides[t.id]
            return created, updated
        solved = max(a[0] for a in t.audits if not _only_status_close(a))
        answered = solved + 3600 + t.seed % 20_000
        return answered, answered

    def csat_index(self) -> list[tuple[int, int]]:
        """Rated tickets as (rating updated_at, ticket id), sorted: the rating list order."""
        if self._csat_index is None:
            self._csat_index = sorted(
                (self._csat_times(t)[1], t.id) for t in self._tickets.values()
                if t.csat in ("good", "bad", "offered") and t.status != "deleted"
            )
        return self._csat_index

    def rating_json(self, t: _Ticket, base: str) -> dict[str, Any]:
        created, updated = self._csat_times(t)
        rid = 5_000_000 + t.id
        return {
            "url": f"{base}/api/v2/satisfaction_ratings/{rid}.json",
            "id": rid,
            "assignee_id": t.assignee_id,
            "group_id": t.group_id,
            "requester_id": t.requester_id,
            "ticket_id": t.id,
            "score": t.csat,
            "comment": self._csat_comment(t) if t.csat in ("good", "bad") else None,
            "reason": None,
            "reason_id": None,
            "created_at": _iso(created),
            "updated_at": _iso(updated),
        }

    def conversation_log_json(self, t: _Ticket) -> list[dict[str, Any]]:
        """The ticket's conversation log: every comment as a ``Comment`` event, and for tickets
        from a messaging channel the messaging exchange itself, including the bot phase before
        an agent joined, which exists only here (never as a ticket comment)."""
        events: list[dict[str, Any]] = []
        messaging = t.channel == "native_messaging"
        if messaging:
            rng = random.Random(t.seed ^ 0xB07)
            start = t.created - 120
            prefix = f"01SIM{t.id:012d}"
            for n, (who, text) in enumerate((
                ("bot", "Hi! I'm Acme's virtual assistant. How can I help?"),
                ("user", rng.choice(_BOT_PHASE_LINES)),
                ("bot", "Thanks, I'm connecting you with a member of our team."),
            )):
                events.append(_log_event(f"{prefix}{n:02d}", "Messaging::ConversationMessage",
                                         None, start + 30 * n, who,
                                         t.requester_id if who == "user" else None, text, True))
        for a, cid, kid, body in self._iter_comments(t):
            author = kid[1]
            who = "user" if author >= CUSTOMER_BASE else "agent"
            if messaging and kid[2]:
                events.append(_log_event(f"01SIM{cid:020d}", "Messaging::ConversationMessage",
                                         cid, a[0], who, author, body, True))
            else:
                events.append(_log_event(str(cid), "Comment", cid, a[0], who, author, body,
                                         bool(kid[2])))
        return events

    def chat_index(self) -> list[tuple[int, int]]:
        """Legacy Zendesk Chat sessions (one per ``chat`` ticket) as (update time, ticket id)."""
        if self._chat_index is None:
            self._chat_index = sorted(
                (t.created + 600, t.id) for t in self._tickets.values() if t.channel == "chat"
            )
        return self._chat_index

    def chat_json(self, t: _Ticket) -> dict[str, Any]:
        """A Chat API chat object: the live transcript that never reaches the ticket comments."""
        first, last, email, _ = _customer_profile(self.seed, t.requester_id)
        first_comment = next(iter(self._iter_comments(t)), None)
        opener = first_comment[3] if first_comment else "Hello?"
        agent_id, agent_first, _ = self._agents[t.seed % len(self._agents)]
        start = t.created - 300
        history = [
            {"type": "chat.memberjoin", "name": f"{first} {last}", "nick": "visitor",
             "timestamp": _iso(start)},
            {"type": "chat.msg", "name": f"{first} {last}", "nick": "visitor",
             "msg": opener.split("\n\n")[0], "timestamp": _iso(start + 5)},
            {"type": "chat.memberjoin", "name": agent_first, "nick": f"agent:{agent_id}",
             "timestamp": _iso(start + 40)},
            {"type": "chat.msg", "name": agent_first, "nick": f"agent:{agent_id}",
             "msg": "Thanks for waiting, let me check that for you.",
             "timestamp": _iso(start + 60)},
            {"type": "chat.msg", "name": f"{first} {last}", "nick": "visitor",
             "msg": "ok thanks", "timestamp": _iso(start + 90)},
        ]
        return {
            "id": f"{2600 + self.seed % 100}.{t.id}.SIMCHAT",
            "type": "chat",
            "timestamp": _iso(start),
            "update_timestamp": _iso(t.created + 600),
            "visitor": {"id": f"{t.requester_id}", "name": f"{first} {last}", "email": email},
            "agent_ids": [str(agent_id)],
            "department_name": "Support",
            "tags": [],
            "missed": False,
            "zendesk_ticket_id": t.id,
            "history": history,
        }

    def _via(self, channel: str, requester: int, *, ticket_level: bool = False) -> dict[str, Any]:
        source: dict[str, Any] = {"from": {}, "to": {}, "rel": None}
        if channel == "email":
            prof = _customer_profile(self.seed, requester) if requester >= CUSTOMER_BASE else None
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

    def event_json(self, a: Audit, base: str, comments: bool) -> dict[str, Any]:
        """One ticket_events item (an audit) with its child events."""
        ts, aid, tid, updater, channel, kids = a
        t = self._tickets[tid]
        via = self._via(channel, t.requester_id)
        has_comment = any(k[0] == "C" for k in kids)
        comment_public = any(k[0] == "C" and k[2] for k in kids)
        children = []
        for i, kid in enumerate(kids):
            cid = aid * 100 + i
            child: dict[str, Any] = {"id": cid, "via": via, "via_reference_id": None,
                                     "comment_present": has_comment,
                                     "comment_public": comment_public}
            if kid[0] == "C":
                child["event_type"] = "Comment"
                if comments:
                    body = self._comment_body(t, a, kid, cid)
                    child.update(_comment_json(cid, aid, kid, body, ts, via))
            elif kid[0] == "R":
                child.update({"event_type": "CommentRedactionEvent", "comment_id": kid[1]})
            elif kid[0] == "X":
                child.update({"event_type": "Change", "field_name": kid[1],
                              "value": _jsonable(kid[2]), "previous_value": _jsonable(kid[3])})
                if kid[4] == VIA_RULE:
                    child["via"] = self._via(VIA_RULE, 0)
            else:
                child.update({"event_type": "Create", "field_name": kid[1],
                              "value": _jsonable(kid[2])})
            children.append(child)
        return {
            "id": aid,
            "ticket_id": tid,
            "timestamp": ts,
            "created_at": _iso(ts),
            "updater_id": updater,
            "via": via,
            "system": {"client": "cjm-simulator" if channel == "api" else None,
                       "ip_address": None, "location": None, "latitude": None,
                       "longitude": None},
            "event_type": "Audit",
            "merged_ticket_ids": [],
            "child_events": children,
        }

    def field_json(self, f: _Field, base: str) -> dict[str, Any]:
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
            "created_at": _iso(f.created),
            "updated_at": _iso(f.updated),
            "removable": not f.system,
            "key": None,
            "agent_description": None,
        }
        if f.type == "tagger":
            out["custom_field_options"] = [_option_json(o) for o in f.options]
        elif f.type in ("status", "priority", "tickettype"):
            names = {"status": STATUSES[:-1] + ("closed",),
                     "priority": ("low", "normal", "high", "urgent"),
                     "tickettype": ("question", "incident", "problem", "task")}[f.type]
            out["system_field_options"] = [{"name": n.title(), "value": n} for n in names]
        return out


# ---------------------------------------------------------------------------------------------
# Pure helpers


_BOT_PHASE_LINES = (
    "I need to speak to someone about my order",
    "my payment didn't go through",
    "where is my parcel??",
    "I can't log in to my account",
    "I want a refund",
)


def _only_status_close(audit: Audit) -> bool:
    return all(k[0] == "X" and k[1] == "status" and k[2] == "closed" for k in audit[5])


def _log_event(
    eid: str, etype: str, cid: int | None, ts: int, who: str, user_id: int | None, body: str,
    public: bool,
) -> dict[str, Any]:
    author: dict[str, Any] = {"type": who}
    if user_id is not None:
        author["zen:support:user_id"] = user_id
    return {
        "id": eid,
        "type": etype,
        "reference": f"zen:ticket_event:{cid}" if cid is not None else None,
        "created_at": _iso(ts),
        "attachments": [],
        "author": author,
        "content": {"type": "text", "body": body},
        "metadata": {"public": public},
    }


def _as_tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [x for x in value.replace(",", " ").split() if x]
    return [str(x) for x in value or []]


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _change_children(
    old_tags: tuple[str, ...], new_tags: tuple[str, ...], old_fields: dict[int, Any],
    new_fields: dict[int, Any], old_status: str, new_status: str,
) -> list[tuple[Any, ...]]:
    kids: list[tuple[Any, ...]] = []
    if set(old_tags) != set(new_tags):
        kids.append(("X", "tags", new_tags, old_tags, None))
    for fid in sorted(set(old_fields) | set(new_fields)):
        if old_fields.get(fid) != new_fields.get(fid):
            kids.append(("X", str(fid), new_fields.get(fid), old_fields.get(fid), None))
    if old_status != new_status:
        kids.append(("X", "status", new_status, old_status, None))
    return kids


def _user(
    uid: int, name: str, email: str, role: str, base: str, org: int | None,
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


def _option_json(o: _Option) -> dict[str, Any]:
    return {"id": o.id, "name": o.name, "raw_name": o.name, "value": o.value, "default": False}


def _comment_json(
    cid: int, aid: int, kid: tuple[Any, ...], body: str, ts: int, via: dict[str, Any]
) -> dict[str, Any]:
    html = body if body.lstrip().startswith("<") else corpus.as_html(_escape(body))
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
        "created_at": _iso(ts),
        "via": via,
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render(
    acct_seed: int, ticket_seed: int, cid: int, kind: str, channel: str, requester: int,
    author: int, truth: Truth, ts: int, quoted: tuple[int, int, int, int] | None,
    agents: dict[int, tuple[str, str]],
) -> str:
    """Render a generated comment's text from its seed; deterministic, nothing stored."""
    rng = random.Random(ticket_seed * 1_000_003 + cid)
    first, last, email, phone = _customer_profile(acct_seed, requester)
    agent_first = agents.get(author, ("Alex", "Reed"))[0]
    if kind in (K_FIRST, K_REPLY):
        text = corpus.compose_customer_text(
            rng, truth, first=first, last=last, email=email, phone=phone, channel=channel,
            follow_up=kind == K_REPLY)
        if kind == K_REPLY and quoted and channel == "email" and rng.random() < 0.6:
            q_cid, q_author, q_ts, _ = quoted
            prev = _render(acct_seed, ticket_seed, q_cid, K_AGENT, channel, requester, q_author,
                           truth, q_ts, None, agents)
            name = "Acme Support"
            when = corpus.utc(q_ts)
            if rng.random() < 0.7:
                text += "\n\n" + corpus.quote_gmail(prev, name, SUPPORT_ADDRESS, when)
            else:
                text += "\n\n" + corpus.quote_outlook(prev, name, SUPPORT_ADDRESS, email, when)
        if channel in ("email", "api") and rng.random() < 0.05:
            text = corpus.as_html(text)
        return text
    if kind == K_AGENT:
        return corpus.agent_reply(rng, truth, first, agent_first)
    if kind == K_NOTE:
        return corpus.agent_note(rng)
    if kind == K_OUTBOUND:
        return corpus.outbound_message(rng, first, agent_first)
    return corpus.system_comment(rng, corpus.utc(ts))


# ---------------------------------------------------------------------------------------------
# HTTP layer

Handler = Callable[[ZendeskSimulator, Request, str], Awaitable[Response]]


class _JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ApiError(Exception):
    """A Zendesk-shaped error response raised from a handler."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("error"))
        self.status, self.body, self.headers = status, body, headers or {}


def _err(status: int, error: str, description: str, **extra: Any) -> ApiError:
    return ApiError(status, {"error": error, "description": description, **extra})


def _encode_cursor(gts: int, tid: int) -> str:
    return base64.urlsafe_b64encode(f"{gts}|{tid}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        gts, tid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return int(gts), int(tid)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _err(400, "InvalidCursor", "The cursor is invalid") from exc


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise _err(400, "InvalidValue", f"{name} must be an integer") from exc


def _per_page(request: Request) -> int:
    value = _int_param(request, "per_page", MAX_PER_PAGE) or MAX_PER_PAGE
    return max(1, min(MAX_PER_PAGE, value))


def _ids_param(request: Request) -> list[int]:
    raw = request.query_params.get("ids", "")
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError as exc:
        raise _err(400, "InvalidValue", "ids must be integers") from exc
    if len(ids) > MAX_IDS:
        raise _too_many()
    return ids


def _too_many() -> ApiError:
    return _err(400, "TooManyValues", "Parameter ids cannot specify more than 100 values",
                max_count=MAX_IDS)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise _err(400, "InvalidJSON", "The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _err(400, "InvalidJSON", "The request body must be a JSON object")
    return body


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _authenticate(sim: ZendeskSimulator, request: Request) -> int | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and sim.oauth_token and value == sim.oauth_token:
        return INTEGRATION_USER_ID
    if scheme.lower() == "bearer" and value in sim._access_tokens:
        expires = sim._access_tokens[value]
        if expires is None or sim.clock().timestamp() < expires:
            return INTEGRATION_USER_ID
        return None
    if scheme.lower() == "basic" and sim.api_token:
        try:
            user, _, secret = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user == f"{sim.email}/token" and secret == sim.api_token:
            return INTEGRATION_USER_ID
    return None


# ---------------------------------------------------------------- endpoint handlers


async def _tickets_cursor(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    per_page = _per_page(request)
    cursor = request.query_params.get("cursor")
    start_time = _int_param(request, "start_time")
    include_users = "users" in request.query_params.get("include", "").split(",")
    exclude_deleted = request.query_params.get("exclude_deleted") in ("true", "1")
    base = _base(request)
    with sim._lock:
        if cursor:
            after = _decode_cursor(cursor)
            i = bisect.bisect_right(sim._order, after)
        elif start_time is not None:
            if start_time > sim._now_ts():
                raise _err(400, "InvalidValue", "start_time cannot be in the future")
            after = None
            i = bisect.bisect_left(sim._order, (start_time, -1))
        else:
            raise _err(400, "InvalidPaginationParameter", "start_time or cursor is required")
        keys: list[tuple[int, int]] = []
        order = sim._order
        while i < len(order) and len(keys) < per_page:
            key = order[i]
            i += 1
            if exclude_deleted and sim._tickets[key[1]].status == "deleted":
                continue
            keys.append(key)
        end = i >= len(order)
        tickets = [sim.ticket_json(sim._tickets[k[1]], base) for k in keys]
        users = _page_users(sim, keys, base) if include_users else None
    last = keys[-1] if keys else after
    after_cursor = _encode_cursor(*last) if last else None
    before_cursor = _encode_cursor(*keys[0]) if keys else None
    extra = f"&per_page={per_page}" + ("&include=users" if include_users else "") + (
        "&exclude_deleted=true" if exclude_deleted else "")
    path = f"{base}/api/v2/incremental/tickets/cursor.json"
    body: dict[str, Any] = {
        "tickets": tickets,
        "after_url": f"{path}?cursor={after_cursor}{extra}" if after_cursor else None,
        "after_cursor": after_cursor,
        "before_url": f"{path}?cursor={before_cursor}{extra}" if before_cursor else None,
        "before_cursor": before_cursor,
        "end_of_stream": end,
    }
    if users is not None:
        body["users"] = users
    return _JSON(body)


def _page_users(
    sim: ZendeskSimulator, keys: list[tuple[int, int]], base: str
) -> list[dict[str, Any]]:
    ids: dict[int, None] = {}
    for _, tid in keys:
        t = sim._tickets[tid]
        for uid in (t.requester_id, t.submitter_id, t.assignee_id):
            if uid is not None:
                ids[uid] = None
    return [u for uid in ids if (u := sim.user_json(uid, base)) is not None]


async def _ticket_events(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    per_page = _per_page(request)
    limit = sim.faults.gateway_timeout_above_per_page
    if limit is not None and per_page > limit:
        raise _err(504, "GatewayTimeout", "The server did not respond in time")
    start_time = _int_param(request, "start_time")
    if start_time is None:
        raise _err(400, "InvalidPaginationParameter", "start_time is required")
    comments = "comment_events" in request.query_params.get("include", "").split(",")
    base = _base(request)
    with sim._lock:
        if start_time > sim._now_ts():
            raise _err(400, "InvalidValue", "start_time cannot be in the future")
        page, next_start, exhausted = _event_page(sim._events, sim._event_ts, start_time,
                                                  per_page)
        events = [sim.event_json(a, base, comments) for a in page]
    end_of_stream = exhausted or len(page) < per_page
    include = "&include=comment_events" if comments else ""
    return _JSON({
        "ticket_events": events,
        "next_page": f"{base}/api/v2/incremental/ticket_events.json?start_time={next_start}"
                     f"&per_page={per_page}{include}",
        "count": len(events),
        "end_of_stream": end_of_stream,
        "end_time": next_start,
    })


def _event_page(
    events: list[Audit], stamps: list[int], start: int, per_page: int
) -> tuple[list[Audit], int, bool]:
    """A time-based page, the start_time to resume from, and whether the stream is exhausted.

    Like Zendesk, the next page restarts *at* the last second of this one, so events that share
    that second are repeated rather than lost. If a whole page lies inside one second, the page
    is extended to the end of that second and, unless that was the end of the stream, the next
    page starts one second later — otherwise a client would loop forever on that second. (At
    the end of the stream it stays on that second: events still arriving in it are not lost.)
    """
    i = bisect.bisect_left(stamps, start)
    page = events[i : i + per_page]
    if not page:
        return [], start, True
    last_ts = page[-1][0]
    if len(page) < per_page or page[0][0] != last_ts:
        return page, last_ts, i + len(page) >= len(events)
    j = bisect.bisect_right(stamps, last_ts)
    exhausted = j >= len(events)
    return events[i:j], last_ts if exhausted else last_ts + 1, exhausted


async def _users_show_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    ids = _ids_param(request)
    base = _base(request)
    with sim._lock:
        users = [u for uid in ids if (u := sim.user_json(uid, base)) is not None]
    return _JSON({"users": users, "next_page": None, "previous_page": None, "count": len(users)})


async def _user_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    u = sim.user_json(int(request.path_params["user_id"]), _base(request))
    if u is None:
        raise _err(404, "RecordNotFound", "Not found")
    return _JSON({"user": u})


async def _ticket_fields_list(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    base = _base(request)
    with sim._lock:
        fields = [sim.field_json(f, base) for f in sim._fields.values()]
    return _JSON({"ticket_fields": fields, "next_page": None, "previous_page": None,
                  "count": len(fields)})


async def _ticket_field_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim._lock:
        f = sim._fields.get(int(request.path_params["field_id"]))
        if f is None:
            raise _err(404, "RecordNotFound", "Not found")
        return _JSON({"ticket_field": sim.field_json(f, _base(request))})


_FIELD_TYPES = ("tagger", "multiselect", "text", "textarea", "checkbox", "integer", "decimal",
                "date", "regexp", "lookup")


def _validate_options(
    sim: ZendeskSimulator, options: Any, field_id: int | None
) -> list[dict[str, Any]]:
    """Option values are tags: unique within the field and across all other fields."""
    if not isinstance(options, list):
        raise _invalid("custom_field_options must be a list")
    seen: set[str] = set()
    for opt in options:
        if not isinstance(opt, dict) or not opt.get("name") or not opt.get("value"):
            raise _invalid("each option needs a name and a value")
        value = str(opt["value"])
        owner = sim._option_value_owner(value)
        if value in seen or (owner is not None and owner != field_id):
            raise _invalid(f"Option value {value} is already taken by another field")
        seen.add(value)
    return options


def _invalid(message: str) -> ApiError:
    return ApiError(422, {"error": "RecordInvalid", "description": "Record validation errors",
                          "details": {"base": [{"description": message}]}})


async def _ticket_field_create(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = (await _json_body(request)).get("ticket_field")
    if not isinstance(body, dict) or not body.get("title"):
        raise _invalid("Title: cannot be blank")
    ftype = body.get("type", "text")
    if ftype not in _FIELD_TYPES:
        raise _invalid(f"Type: {ftype} is not valid")
    with sim._lock:
        options = _validate_options(sim, body.get("custom_field_options") or [], None)
        f = sim._create_field(ftype, str(body["title"]), options, sim._now_ts())
        f.description = str(body.get("description") or "")
        return _JSON({"ticket_field": sim.field_json(f, _base(request))}, status_code=201)


async def _ticket_field_update(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = (await _json_body(request)).get("ticket_field")
    if not isinstance(body, dict):
        raise _invalid("ticket_field is required")
    with sim._lock:
        f = sim._fields.get(int(request.path_params["field_id"]))
        if f is None:
            raise _err(404, "RecordNotFound", "Not found")
        if "title" in body:
            f.title = str(body["title"])
        if "description" in body:
            f.description = str(body["description"] or "")
        if "custom_field_options" in body and f.type in ("tagger", "multiselect"):
            _replace_options(sim, f, _validate_options(sim, body["custom_field_options"], f.id))
        f.updated = sim._now_ts()
        return _JSON({"ticket_field": sim.field_json(f, _base(request))})


def _replace_options(sim: ZendeskSimulator, f: _Field, options: list[dict[str, Any]]) -> None:
    """The trap, faithfully: the list REPLACES the options; omitted ones are deleted and their
    value disappears from every ticket."""
    by_id = {o.id: o for o in f.options}
    by_value = {o.value: o for o in f.options}
    kept: list[_Option] = []
    for opt in options:
        existing = by_id.get(int(opt["id"])) if opt.get("id") else by_value.get(str(opt["value"]))
        if existing is None:
            sim._option_seq += 1
            existing = _Option(sim._option_seq, str(opt["name"]), str(opt["value"]))
        else:
            existing.name, existing.value = str(opt["name"]), str(opt["value"])
        kept.append(existing)
    kept_values = {o.value for o in kept}
    removed = [o.value for o in f.options if o.value not in kept_values]
    f.options = kept
    for value in removed:
        sim._drop_option_everywhere(f, value)


async def _field_option_upsert(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = (await _json_body(request)).get("custom_field_option")
    if not isinstance(body, dict) or not body.get("name") or not body.get("value"):
        raise _invalid("custom_field_option needs a name and a value")
    with sim._lock:
        f = sim._fields.get(int(request.path_params["field_id"]))
        if f is None or f.type not in ("tagger", "multiselect"):
            raise _err(404, "RecordNotFound", "Not found")
        value = str(body["value"])
        existing = next((o for o in f.options if body.get("id") and o.id == int(body["id"])),
                        None) or f.option_by_value(value)
        owner = sim._option_value_owner(value)
        if owner is not None and owner != f.id:
            raise _invalid(f"Option value {value} is already taken by another field")
        if existing is not None:
            old_value = existing.value
            existing.name, existing.value = str(body["name"]), value
            if old_value != value:
                sim._drop_option_everywhere(f, old_value)
            status = 200
        else:
            sim._option_seq += 1
            existing = _Option(sim._option_seq, str(body["name"]), value)
            f.options.append(existing)
            status = 201
        f.updated = sim._now_ts()
        return _JSON({"custom_field_option": _option_json(existing)}, status_code=status)


async def _update_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = await _json_body(request)
    updater = INTEGRATION_USER_ID
    if "ids" in request.query_params:
        ids = _ids_param(request)
        ticket = body.get("ticket")
        if not isinstance(ticket, dict):
            raise _err(400, "InvalidValue", "ticket is required with ids")
        items = [(tid, ticket) for tid in ids]
    else:
        batch = body.get("tickets")
        if not isinstance(batch, list):
            raise _err(400, "InvalidValue", "ids or tickets is required")
        if len(batch) > MAX_IDS:
            raise _too_many()
        items = [(int(x.get("id", 0)), x) for x in batch if isinstance(x, dict)]
    with sim._lock:
        n = sim.faults.conflict_every_n
        if n:
            sim._conflict_seq = getattr(sim, "_conflict_seq", 0) + 1
            if sim._conflict_seq % n == 0:
                raise _err(409, "Conflict", "The ticket was updated by someone else; retry")
        active = sum(1 for j in sim._jobs.values()
                     if j.polls < sim.job_polls_to_complete or j.results is None)
        if active >= MAX_ACTIVE_JOBS:
            raise ApiError(429, {"error": "TooManyJobs",
                                 "description": "Number of allowed background jobs exceeded"},
                           {"Retry-After": "10"})
        if sim.job_seconds > 0:
            job = _new_job(sim, None, len(items))
            _run_later(sim, job, items, updater)
            return _JSON({"job_status": _job_json(sim, job, _base(request))})
        results = [_update_one(sim, index, tid, upd, updater) for index, (tid, upd)
                   in enumerate(items)]
        job = _new_job(sim, results)
        return _JSON({"job_status": _job_json(sim, job, _base(request))})


def _run_later(
    sim: ZendeskSimulator, job: _Job, items: list[tuple[int, dict[str, Any]]], updater: int
) -> None:
    """Run a bulk job `job_seconds` after it was accepted, in the background, as Zendesk does:
    it finishes even when the client that sent it was killed meanwhile."""

    def run() -> None:
        with sim._lock:
            job.results = [_update_one(sim, index, tid, upd, updater)
                           for index, (tid, upd) in enumerate(items)]

    timer = threading.Timer(sim.job_seconds, run)
    timer.daemon = True
    timer.start()


def _update_one(
    sim: ZendeskSimulator, index: int, tid: int, upd: dict[str, Any], updater: int
) -> dict[str, Any]:
    t = sim._tickets.get(tid)
    result: dict[str, Any] = {"id": tid, "index": index, "action": "update"}
    if t is None or t.status == "deleted":
        return {**result, "status": "Failed", "success": False, "error": "TicketNotFound",
                "errors": "Ticket not found", "details": f"Ticket {tid} not found"}
    if t.status == "closed":
        return {**result, "status": "Failed", "success": False, "error": "TicketUpdateFailed",
                "errors": "Status: closed prevents ticket update"}
    n = sim.faults.ticket_update_fail_every_n
    if n:
        sim._job_failure_seq += 1
        if sim._job_failure_seq % n == 0:
            return {**result, "status": "Failed", "success": False,
                    "error": "TicketUpdateFailed", "errors": "Temporary failure, try again"}
    upd = {k: v for k, v in upd.items() if k != "id"}
    ok, err = sim._apply_update(t, upd, updater, "api")
    if not ok:
        return {**result, "status": "Failed", "success": False, "error": "TicketUpdateFailed",
                "errors": err}
    return {**result, "status": "Updated", "success": True}


def _new_job(
    sim: ZendeskSimulator, results: list[dict[str, Any]] | None, total: int | None = None
) -> _Job:
    sim._job_seq += 1
    jid = hashlib.md5(f"{sim.seed}:job:{sim._job_seq}".encode(), usedforsecurity=False)
    job = _Job(jid.hexdigest(), len(results) if results is not None else total or 0, results)
    sim._jobs[job.id] = job
    return job


def _job_json(sim: ZendeskSimulator, job: _Job, base: str) -> dict[str, Any]:
    done = job.polls >= sim.job_polls_to_complete and job.results is not None
    working = not done and job.polls >= 2  # queued on the first poll, then working
    progress = job.total if done else (job.total * job.polls) // (sim.job_polls_to_complete + 1)
    return {
        "id": job.id,
        "url": f"{base}/api/v2/job_statuses/{job.id}.json",
        "job_type": "bulk_update",
        "total": job.total,
        "progress": progress,
        "status": "completed" if done else ("working" if working else "queued"),
        "message": f"Completed at {_iso(sim._now_ts())}" if done else None,
        "results": job.results if done else None,
    }


def _poll(sim: ZendeskSimulator, job: _Job, base: str) -> dict[str, Any]:
    job.polls += 1
    return _job_json(sim, job, base)


async def _job_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim._lock:
        job = sim._jobs.get(request.path_params["job_id"])
        if job is None:
            raise _err(404, "RecordNotFound", "Not found")
        return _JSON({"job_status": _poll(sim, job, _base(request))})


async def _job_show_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    ids = [x for x in request.query_params.get("ids", "").split(",") if x]
    if len(ids) > MAX_IDS:
        raise _too_many()
    with sim._lock:
        jobs = [_poll(sim, sim._jobs[j], _base(request)) for j in ids if j in sim._jobs]
    return _JSON({"job_statuses": jobs})


async def _ticket_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim._lock:
        t = sim._tickets.get(int(request.path_params["ticket_id"]))
        if t is None or t.status == "deleted":
            raise _err(404, "RecordNotFound", "Not found")
        return _JSON({"ticket": sim.ticket_json(t, _base(request))})


async def _tickets_show_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    ids = _ids_param(request)
    base = _base(request)
    with sim._lock:
        tickets = [sim.ticket_json(t, base) for tid in ids
                   if (t := sim._tickets.get(tid)) is not None and t.status != "deleted"]
    return _JSON({"tickets": tickets, "next_page": None, "previous_page": None,
                  "count": len(tickets)})


async def _user_me(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    return _JSON({"user": sim.user_json(int(user), _base(request))})


def _cursor_page(
    request: Request,
    index: list[tuple[int, int]],
    *,
    lowest: tuple[int, int] | None = None,
    keep: Any = None,
    max_size: int = 100,
) -> tuple[list[tuple[int, int]], bool]:
    """Zendesk cursor pagination (``page[size]``, ``page[after]``) over a sorted index: one page
    of the entries from ``lowest`` on that ``keep`` accepts (all by default), and whether more
    follow. It scans only as far as the page needs (a filtered copy of the whole index per
    request made a 1,000,000-ticket CSAT pass quadratic)."""
    size = max(1, min(max_size, _int_param(request, "page[size]", max_size) or max_size))
    after = request.query_params.get("page[after]")
    i = bisect.bisect_left(index, lowest) if lowest is not None else 0
    if after:
        i = max(i, bisect.bisect_right(index, _decode_cursor(after)))
    keys: list[tuple[int, int]] = []
    for j in range(i, len(index)):
        k = index[j]
        if keep is None or keep(k):
            if len(keys) == size:
                return keys, True
            keys.append(k)
    return keys, False


def _cursor_body(
    request: Request, key: str, items: list[Any], last: tuple[int, int] | None, more: bool
) -> dict[str, Any]:
    after = _encode_cursor(*last) if last else None
    url = str(request.url.remove_query_params("page[after]"))
    sep = "&" if "?" in url else "?"
    return {
        key: items,
        "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
        "links": {"next": f"{url}{sep}page[after]={after}" if more and after else None,
                  "prev": None},
    }


_CSAT_FILTERS: dict[str, tuple[str, ...]] = {
    "received": ("good", "bad"), "received_with_comment": ("good", "bad"),
    "good": ("good",), "bad": ("bad",), "offered": ("offered",),
}


async def _satisfaction_ratings(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    """Cursor-paginated ratings ordered by updated_at; ``start_time`` filters on updated_at so
    an edited rating comes back (documented simulator semantics)."""
    start = _int_param(request, "start_time", 0) or 0
    score = request.query_params.get("score")
    base = _base(request)
    with sim._lock:
        wanted = _CSAT_FILTERS.get(score or "", ("good", "bad", "offered"))
        with_comment = score is not None and score.endswith("with_comment")

        def keep(k: tuple[int, int]) -> bool:
            t = sim._tickets[k[1]]
            return t.csat in wanted and (not with_comment or bool(sim._csat_comment(t)))

        keys, more = _cursor_page(request, sim.csat_index(), lowest=(start, -1), keep=keep)
        items = [sim.rating_json(sim._tickets[k[1]], base) for k in keys]
    return _JSON(_cursor_body(request, "satisfaction_ratings", items,
                              keys[-1] if keys else None, more))


async def _conversation_log(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim._lock:
        t = sim._tickets.get(int(request.path_params["ticket_id"]))
        if t is None or t.status == "deleted":
            raise _err(404, "RecordNotFound", "Not found")
        events = sim.conversation_log_json(t)
    index = [(n, n) for n in range(len(events))]
    keys, more = _cursor_page(request, index)
    return _JSON(_cursor_body(request, "events", [events[k[0]] for k in keys],
                              keys[-1] if keys else None, more))


async def _ticket_comments(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    base = _base(request)
    with sim._lock:
        t = sim._tickets.get(int(request.path_params["ticket_id"]))
        if t is None or t.status == "deleted":
            raise _err(404, "RecordNotFound", "Not found")
        comments = [
            _comment_json(cid, a[1], kid, body, a[0], sim._via(a[4], t.requester_id))
            for a, cid, kid, body in sim._iter_comments(t)
        ]
    del base
    index = [(n, n) for n in range(len(comments))]
    keys, more = _cursor_page(request, index)
    return _JSON(_cursor_body(request, "comments", [comments[k[0]] for k in keys],
                              keys[-1] if keys else None, more))


async def _chats_export(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    """Chat API incremental export: ``start_time`` (seconds) + ``start_id``, ``limit`` ≤ 1000;
    the last page is the one with fewer than ``limit`` chats."""
    start = _int_param(request, "start_time", 0) or 0
    start_id = request.query_params.get("start_id")
    limit = max(1, min(MAX_PER_PAGE, _int_param(request, "limit", MAX_PER_PAGE) or 1000))
    base = _base(request)
    with sim._lock:
        index = sim.chat_index()
        after = (start, int(start_id.split(".")[1])) if start_id else (start, -1)
        i = bisect.bisect_right(index, after) if start_id else bisect.bisect_left(index, after)
        keys = index[i : i + limit]
        chats = [sim.chat_json(sim._tickets[k[1]]) for k in keys]
    end_time = keys[-1][0] if keys else start
    end_id = chats[-1]["id"] if chats else start_id
    more = len(keys) == limit
    nxt = (f"{base}/api/v2/incremental/chats?start_time={end_time}&start_id={end_id}"
           f"&limit={limit}") if more else None
    return _JSON({"chats": chats, "count": len(chats), "end_time": end_time, "end_id": end_id,
                  "next_page": nxt})


async def _oauth_tokens(sim: ZendeskSimulator, request: Request) -> Response:
    """``POST /oauth/tokens`` with the refresh-token grant; rotates the pair."""
    try:
        body = await _json_body(request)
    except ApiError as exc:
        return _JSON(exc.body, status_code=exc.status)
    with sim._lock:
        if body.get("grant_type") != "refresh_token":
            return _JSON({"error": "unsupported_grant_type",
                          "error_description": "Only refresh_token is simulated"},
                         status_code=400)
        pair = sim._rotate(str(body.get("client_id")), str(body.get("client_secret")),
                           str(body.get("refresh_token")))
        if pair is None:
            return _JSON({"error": "invalid_grant",
                          "error_description": "The refresh token is invalid or was used"},
                         status_code=400)
        return _JSON({"access_token": pair[0], "refresh_token": pair[1], "token_type": "bearer",
                      "scope": "read write", "expires_in": sim.oauth_access_ttl,
                      "refresh_token_expires_in": 30 * 86400})


# (method, path template for Starlette, counter key, handler, is export, is list)
_ROUTES: tuple[tuple[str, str, str, Handler, bool, bool], ...] = (
    ("GET", "/api/v2/incremental/tickets/cursor.json",
     "GET /api/v2/incremental/tickets/cursor.json", _tickets_cursor, True, True),
    ("GET", "/api/v2/incremental/ticket_events.json",
     "GET /api/v2/incremental/ticket_events.json", _ticket_events, True, True),
    ("GET", "/api/v2/users/show_many.json", "GET /api/v2/users/show_many.json",
     _users_show_many, False, True),
    ("GET", "/api/v2/users/me.json", "GET /api/v2/users/me.json", _user_me, False, False),
    ("GET", "/api/v2/users/{user_id:int}.json", "GET /api/v2/users/{id}.json", _user_show,
     False, False),
    ("GET", "/api/v2/satisfaction_ratings.json", "GET /api/v2/satisfaction_ratings.json",
     _satisfaction_ratings, False, True),
    ("GET", "/api/v2/tickets/{ticket_id:int}/conversation_log",
     "GET /api/v2/tickets/{id}/conversation_log", _conversation_log, False, True),
    ("GET", "/api/v2/tickets/{ticket_id:int}/comments.json",
     "GET /api/v2/tickets/{id}/comments.json", _ticket_comments, False, True),
    ("GET", "/api/v2/incremental/chats", "GET /api/v2/incremental/chats", _chats_export,
     False, True),
    ("GET", "/api/v2/ticket_fields.json", "GET /api/v2/ticket_fields.json",
     _ticket_fields_list, False, True),
    ("POST", "/api/v2/ticket_fields.json", "POST /api/v2/ticket_fields.json",
     _ticket_field_create, False, False),
    ("GET", "/api/v2/ticket_fields/{field_id:int}.json", "GET /api/v2/ticket_fields/{id}.json",
     _ticket_field_show, False, False),
    ("PUT", "/api/v2/ticket_fields/{field_id:int}.json", "PUT /api/v2/ticket_fields/{id}.json",
     _ticket_field_update, False, False),
    ("POST", "/api/v2/ticket_fields/{field_id:int}/options.json",
     "POST /api/v2/ticket_fields/{id}/options.json", _field_option_upsert, False, False),
    ("PUT", "/api/v2/tickets/update_many.json", "PUT /api/v2/tickets/update_many.json",
     _update_many, False, False),
    ("GET", "/api/v2/job_statuses/show_many.json", "GET /api/v2/job_statuses/show_many.json",
     _job_show_many, False, True),
    ("GET", "/api/v2/job_statuses/{job_id}.json", "GET /api/v2/job_statuses/{id}.json",
     _job_show, False, False),
    ("GET", "/api/v2/tickets/show_many.json", "GET /api/v2/tickets/show_many.json",
     _tickets_show_many, False, True),
    ("GET", "/api/v2/tickets/{ticket_id:int}.json", "GET /api/v2/tickets/{id}.json",
     _ticket_show, False, False),
)


# ---------------------------------------------------------------- cross-cutting behaviour


def _window(sim: ZendeskSimulator, name: str, limit: int | None) -> tuple[int, int, int]:
    """(used, limit, seconds to reset) of a fixed one-minute window on the injected clock."""
    now = sim._now_ts()
    minute = now // 60
    start, used = sim._windows.get(name, (minute, 0))
    if start != minute:
        used = 0
    sim._windows[name] = (minute, used)
    return used, limit or 0, 60 - now % 60


def _consume(sim: ZendeskSimulator, name: str) -> None:
    minute, used = sim._windows[name]
    sim._windows[name] = (minute, used + 1)


def _limited(sim: ZendeskSimulator, reset: int, what: str, key: str = "account") -> ApiError:
    wait = max(1, reset)
    # The deadline holds whether or not the header is sent: without it, a client must assume
    # the 60 s Zendesk documents; sending earlier than the deadline counts as a violation.
    deadline = sim._now_ts() + (wait if sim.faults.retry_after_header else 60)
    sim._retry_deadlines[key] = max(sim._retry_deadlines.get(key, 0.0), deadline)
    headers = {"Retry-After": str(wait)} if sim.faults.retry_after_header else {}
    return ApiError(429, {"error": "APIRateLimitExceeded",
                          "description": f"Number of allowed {what} requests per minute exceeded"},
                    headers)


def _rate_headers(sim: ZendeskSimulator, export: bool, listing: bool) -> dict[str, str]:
    used, limit, reset = _window(sim, "account", sim.faults.rate_limit_per_minute)
    shown = limit or 2500
    remaining = max(0, shown - used)
    headers = {"X-Rate-Limit": str(shown), "X-Rate-Limit-Remaining": str(remaining)}
    if listing:
        headers.update({"ratelimit-limit": str(shown), "ratelimit-remaining": str(remaining),
                        "ratelimit-reset": str(reset)})
    if export and sim.faults.export_limit_per_minute:
        e_used, e_limit, e_reset = _window(sim, "export", sim.faults.export_limit_per_minute)
        headers["zendesk-ratelimit-incremental-exports"] = (
            f"total={e_limit}; remaining={max(0, e_limit - e_used)}; resets={e_reset}")
    return headers


def _gate(sim: ZendeskSimulator, export: bool) -> None:
    """Plan and export limits (429) and injected 5xx, in Zendesk's order."""
    faults = sim.faults
    now = sim.clock().timestamp()
    for key in ("account", "export") if export else ("account",):
        if now < sim._retry_deadlines.get(key, 0.0):
            sim.retry_after_violations += 1
            break
    used, limit, reset = _window(sim, "account", faults.rate_limit_per_minute)
    if limit and used >= limit:
        raise _limited(sim, reset, "API")
    if export and faults.export_limit_per_minute:
        e_used, e_limit, e_reset = _window(sim, "export", faults.export_limit_per_minute)
        if e_used >= e_limit:
            raise _limited(sim, e_reset, "incremental export API", "export")
        _consume(sim, "export")
    _consume(sim, "account")
    sim._seq += 1
    if faults.fail_every_n and sim._seq % faults.fail_every_n == 0:
        status = faults.fail_status
        name = "ServiceUnavailable" if status == 503 else "InternalServerError"
        error = _err(status, name, "Injected failure from the simulator")
        if status == 503 and faults.service_unavailable_retry_after is not None:
            wait = faults.service_unavailable_retry_after
            error.headers["Retry-After"] = str(wait)
            sim._retry_deadlines["account"] = max(sim._retry_deadlines.get("account", 0.0),
                                                  sim._now_ts() + wait)
        raise error


def _endpoint(
    sim: ZendeskSimulator, key: str, handler: Handler, export: bool, listing: bool
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with counting, auth, limits, faults and rate-limit headers."""

    async def endpoint(request: Request) -> Response:
        with sim._lock:
            sim.requests[key] += 1
        response = await _guarded(sim, request, handler, export, listing)
        with sim._lock:
            sim.status_counts[response.status_code] += 1
            if sim.faults.rate_limit_headers:
                response.headers.update(_rate_headers(sim, export, listing))
        return response

    return endpoint


async def _guarded(
    sim: ZendeskSimulator, request: Request, handler: Handler, export: bool, listing: bool
) -> Response:
    try:
        with sim._lock:
            user = _authenticate(sim, request)
            if user is None:
                return _JSON({"error": "Couldn't authenticate you"}, status_code=401)
            _gate(sim, export)
        response = await handler(sim, request, str(user))
    except ApiError as exc:
        return _JSON(exc.body, status_code=exc.status, headers=exc.headers)
    return _maybe_malformed(sim, response)


def _maybe_malformed(sim: ZendeskSimulator, response: Response) -> Response:
    n = sim.faults.malformed_json_every_n
    if not n or response.status_code >= 400:
        return response
    with sim._lock:
        sim._malformed_seq = getattr(sim, "_malformed_seq", 0) + 1
        if sim._malformed_seq % n:
            return response
    body = bytes(response.body)
    return Response(body[: max(1, len(body) // 2)], status_code=response.status_code,
                    media_type="application/json")


def _oauth_endpoint(sim: ZendeskSimulator) -> Callable[[Request], Awaitable[Response]]:
    """The token endpoint authenticates with the client secret in the body, not a bearer."""

    async def endpoint(request: Request) -> Response:
        with sim._lock:
            sim.requests["POST /oauth/tokens"] += 1
        response = await _oauth_tokens(sim, request)
        with sim._lock:
            sim.status_counts[response.status_code] += 1
        return response

    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    del exc
    return _JSON({"error": "InvalidEndpoint", "description": "Not found"}, status_code=404)


def create_zendesk_app(sim: ZendeskSimulator) -> Starlette:
    """The ASGI app serving ``sim`` (use with ``httpx.ASGITransport`` or ``serve_in_thread``)."""
    routes = [
        Route(path, _endpoint(sim, key, handler, export, listing), methods=[method],
              name=f"{method} {key}")
        for method, path, key, handler, export, listing in _ROUTES
    ]
    routes.append(Route("/oauth/tokens", _oauth_endpoint(sim), methods=["POST"],
                        name="POST /oauth/tokens"))
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.simulator = sim
    return app
