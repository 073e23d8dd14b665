"""A Zendesk Support account in memory: its tickets, audits, fields, jobs and OAuth tokens.

Why: the connectors, the demo and the benchmarks need a helpdesk that behaves like Zendesk where
it matters (incremental export cursors and boundary seconds, comment sideloads, users, dropdown
fields whose option values are tags, async bulk updates with job polling, rate limits and the
classic failures) but that is deterministic, local and fast. Every generated ticket carries a
hidden ground truth (stage, themes, language) that is never served, so accuracy can be scored.

Memory: a ticket keeps a few scalars plus a tuple of audits; comment *text* is not stored but
rendered on demand from a per-comment seed (see ``corpus``), so 100,000 tickets stay compact.

This module is the state only. ``shapes`` turns it into Zendesk's JSON, ``routes`` serves it,
``limits`` adds rate limits and injected faults. The routes use the public methods below (under
``lock``), never the underscored attributes.
"""

from __future__ import annotations

import bisect
import collections
import hashlib
import random
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from simulator import corpus
from simulator.clock import SimulatedClock
from simulator.corpus import Truth

from .limits import LimitState, SimulatorFaults

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
    "fees_and_billing_errors": 1,
    "payment_failures": 1,
    "refunds_and_returns": 1,
    "cancellation": 1,
    "delivery_problems": 2,
    "delays_and_waiting": 2,
    "product_defects": 2,
    "app_and_site_errors": 3,
    "account_access": 3,
    "security_and_fraud": 3,
    "usability_and_navigation": 3,
}
_CHANNELS = (
    "email",
    "web",
    "mobile",
    "api",
    "chat",
    "native_messaging",
    "voice",
    "twitter",
    "facebook",
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


@dataclass(slots=True)
class Option:
    id: int
    name: str
    value: str


@dataclass(slots=True)
class Field:
    id: int
    type: str
    title: str
    system: bool
    created: int
    updated: int
    position: int
    options: list[Option] = field(default_factory=list)
    description: str = ""

    def option_by_value(self, value: str) -> Option | None:
        for opt in self.options:
            if opt.value == value:
                return opt
        return None


class Ticket:
    """Compact per-ticket state. ``audits`` holds tuples shared with the global event index."""

    __slots__ = (
        "id",
        "created",
        "updated",
        "gts",
        "status",
        "priority",
        "type",
        "subject",
        "requester_id",
        "submitter_id",
        "assignee_id",
        "group_id",
        "organization_id",
        "tags",
        "fields",
        "channel",
        "brand_id",
        "truth",
        "csat",
        "audits",
        "seed",
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
class Job:
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
def customer_profile(seed: int, uid: int) -> tuple[str, str, str, str]:
    """(first, last, email, phone) of a customer, derived from its id: no per-user storage."""
    rng = random.Random(seed * 1_000_003 + uid)
    first, last = corpus.person_name(rng)
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    local = local.replace("'", "").lower()
    domain = rng.choice(("example.com", "mail.example", "example.org", "inbox.example"))
    return first, last, f"{local}{uid % 1000}@{domain}", corpus.phone_number(rng)


def iso(ts: int) -> str:
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
        self._tickets: dict[int, Ticket] = {}
        self._order: list[tuple[int, int]] = []  # (generated_timestamp, id), sorted
        self._events: list[Audit] = []  # sorted by (timestamp, audit id)
        self._event_ts: list[int] = []
        self._next_audit = AUDIT_BASE
        self._jobs: dict[str, Job] = {}
        self._job_seq = 0
        # Rate-limit windows, Retry-After deadlines and fault sequences (``limits``). A request
        # sent before the deadline a 429 announced is a violation (what the benchmark must keep
        # at zero).
        self.limits = LimitState()
        self.retry_after_violations = 0
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
        self._customers = 0
        self._agents: list[tuple[int, str, str]] = []
        self._fields: dict[int, Field] = {}
        self._interned: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # Called (under the lock) after every runtime create/update with (ticket, audit,
        # created): the triggers of ``webhooks`` listen here. Generation calls nobody.
        self.update_listeners: list[Callable[[Ticket, Audit, bool], None]] = []
        from .webhooks import WebhookAccount  # it reads this module's ids: import after load

        self.webhooks = WebhookAccount()
        self.update_listeners.append(self.webhooks.on_update)
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
            ("subject", "Subject"),
            ("description", "Description"),
            ("status", "Status"),
            ("tickettype", "Type"),
            ("priority", "Priority"),
            ("group", "Group"),
            ("assignee", "Assignee"),
        )
        for pos, (ftype, title) in enumerate(system):
            fid = FIELD_BASE + pos + 1
            self._fields[fid] = Field(fid, ftype, title, True, created, created, pos)
        self._option_seq = OPTION_BASE
        for title, values in (
            ("Brand", (("Acme Store", "brand_acme_store"), ("Acme Cloud", "brand_acme_cloud"))),
            (
                "Plan",
                (
                    ("Free", "plan_free"),
                    ("Plus", "plan_plus"),
                    ("Business", "plan_business"),
                    ("Enterprise", "plan_enterprise"),
                ),
            ),
            (
                "Region",
                (
                    ("North America", "region_na"),
                    ("Europe", "region_eu"),
                    ("UK", "region_uk"),
                    ("Asia Pacific", "region_apac"),
                    ("Latin America", "region_latam"),
                ),
            ),
        ):
            self.create_field(
                "tagger", title, [{"name": n, "value": v} for n, v in values], created
            )
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
            t = Ticket(tid, rng.getrandbits(48))
            if spike_idx is None:
                created = rng.randrange(span_start, now_ts - 3600)
                truth = corpus.draw_truth(rng)
            else:
                counts[spike_idx] += 1
                theme, stage, start, end = spikes[spike_idx]
                created = rng.randrange(start, end)
                truth = Truth(
                    stage, corpus.draw_themes(rng, stage, forced=theme), corpus.draw_language(rng)
                )
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
    def _plan_spikes(rng: random.Random, n: int, now_ts: int) -> list[tuple[str, str, int, int]]:
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

    def _fill_ticket(self, rng: random.Random, t: Ticket, created: int, now_ts: int) -> None:
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
        t.priority = rng.choices(
            (None, "low", "normal", "high", "urgent"), weights=(0.1, 0.2, 0.5, 0.15, 0.05)
        )[0]
        t.type = rng.choices(
            (None, "question", "incident", "problem", "task"), weights=(0.3, 0.35, 0.25, 0.05, 0.05)
        )[0]
        t.subject = corpus.subject(rng, truth) if not outbound else "Update about your order"
        stage = truth.stage
        t.brand_id = (
            BRAND_STORE if stage in ("purchase", "delivery") or rng.random() < 0.55 else BRAND_CLOUD
        )
        fields = self._initial_fields(rng, t)
        t.fields = fields
        extra = ("vip",) if rng.random() < 0.03 else ()
        t.tags = tuple(fields.values()) + extra
        theme = truth.themes[0] if truth.themes else ""
        group = GROUP_BASE + 1 + _THEME_GROUP.get(theme, 0)
        self._lifecycle(rng, t, created, now_ts, agent, group, outbound)

    def _initial_fields(self, rng: random.Random, t: Ticket) -> dict[int, Any]:
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
        plan = rng.choices(
            ("plan_free", "plan_plus", "plan_business", "plan_enterprise"),
            weights=(0.4, 0.35, 0.2, 0.05),
        )[0]
        brand = "brand_acme_store" if t.brand_id == BRAND_STORE else "brand_acme_cloud"
        return {self._brand_field: brand, self._plan_field: plan, self._region_field: region}

    def _lifecycle(
        self,
        rng: random.Random,
        t: Ticket,
        created: int,
        now_ts: int,
        agent: int,
        group: int,
        outbound: bool,
    ) -> None:
        """Creation audit, then agent/customer turns towards a drawn target status."""
        limit = now_ts - 90
        target = rng.choices(
            ("new", "open", "pending", "hold", "solved"), weights=(0.05, 0.15, 0.12, 0.03, 0.65)
        )[0]
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
            self._add_audit(
                t, ts + 1, SYSTEM_USER_ID, VIA_RULE, [("C", SYSTEM_USER_ID, False, K_SYSTEM, None)]
            )
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
    def _plan_turns(rng: random.Random, target: str, outbound: bool) -> list[tuple[str, str, str]]:
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

    def _maybe_csat_and_close(self, rng: random.Random, t: Ticket, ts: int, limit: int) -> None:
        roll = rng.random()
        if roll < 0.12:
            t.csat = "good" if rng.random() < 0.7 else "bad"
        elif roll < 0.35:
            t.csat = "offered"
        close_ts = ts + 4 * 86400 + rng.randrange(3600)
        if close_ts <= limit and rng.random() < 0.26:
            self._add_audit(
                t,
                close_ts,
                SYSTEM_USER_ID,
                VIA_RULE,
                [self._shared(("X", "status", "closed", "solved", VIA_RULE))],
            )
            t.status = "closed"

    def _shared(self, child: tuple[Any, ...]) -> tuple[Any, ...]:
        """Intern a child event that many audits share (memory: one copy for all tickets)."""
        return self._interned.setdefault(child, child)

    def _add_audit(
        self, t: Ticket, ts: int, updater: int, channel: str, children: list[tuple[Any, ...]]
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

    def _touch(self, t: Ticket, ts: int, *, updated: bool = True) -> None:
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
        self,
        t: Ticket,
        updater: int,
        channel: str,
        children: list[tuple[Any, ...]],
        *,
        created: bool = False,
    ) -> Audit:
        ts = self.now_ts()
        self._next_audit += 1
        audit: Audit = (ts, self._next_audit, t.id, updater, channel, tuple(children))
        t.audits.append(audit)
        self._index_audit(audit)
        self._touch(t, ts)
        if created:
            t.created = ts
        for listener in self.update_listeners:
            listener(t, audit, created)
        return audit

    # ---------------------------------------------------------------- fields

    def create_field(self, ftype: str, title: str, options: list[dict[str, Any]], ts: int) -> Field:
        fid = FIELD_BASE + 100 + sum(1 for f in self._fields.values() if not f.system) + 1
        fld = Field(fid, ftype, title, False, ts, ts, len(self._fields))
        for opt in options:
            self._option_seq += 1
            fld.options.append(Option(self._option_seq, str(opt["name"]), str(opt["value"])))
        self._fields[fid] = fld
        return fld

    def option_value_owner(self, value: str) -> int | None:
        for f in self._fields.values():
            if f.option_by_value(value) is not None:
                return f.id
        return None

    def _field_by_key(self, key: int | str) -> Field:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            return self._fields[int(key)]
        for f in self._fields.values():
            if f.title == key:
                return f
        raise KeyError(key)

    def drop_option_everywhere(self, fld: Field, value: str) -> None:
        """Zendesk semantics of deleting an option: its tag vanishes from every ticket, and
        tickets that had it selected lose the value. No audit, but a system update."""
        ts = self.now_ts()
        for t in self._tickets.values():
            if value in t.tags or t.fields.get(fld.id) == value:
                t.tags = tuple(x for x in t.tags if x != value)
                if t.fields.get(fld.id) == value:
                    t.fields.pop(fld.id, None)
                self._touch(t, ts, updated=False)

    # ---------------------------------------------------------------- ticket updates

    def apply_update(
        self, t: Ticket, upd: dict[str, Any], updater: int, channel: str
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
            if (
                fld.type in ("tagger",)
                and value not in (None, "")
                and fld.option_by_value(str(value)) is None
            ):
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
        self,
        tags: list[str],
        old_tags: Iterable[str],
        fields: dict[int, Any],
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
                chosen = (
                    fresh[-1]
                    if fresh
                    else (current if current in present else (present[0] if present else None))
                )
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
            by_title = {
                self._fields[fid].title: v for fid, v in t.fields.items() if fid in self._fields
            }
            comments = tuple(
                {
                    "id": cid,
                    "author_id": kid[1],
                    "public": kid[2],
                    "body": body,
                    "created_at": iso(a[0]),
                }
                for a, cid, kid, body in self.iter_comments(t)
            )
            return TicketView(
                t.id,
                t.status,
                t.tags,
                dict(t.fields),
                by_title,
                corpus.utc(t.updated),
                t.gts,
                t.requester_id,
                t.assignee_id,
                comments,
            )

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
                t.id
                for t in self._tickets.values()
                if t.status not in ("closed", "deleted") and self._has_customer_text(t)
            ]

    def field_coverage(self, title: str) -> tuple[int, int]:
        """(open tickets with customer text, how many of them hold a value in field `title`)."""
        candidates = self.open_tickets_with_customer_text()
        filled = sum(1 for ticket_id in candidates if self.ticket(ticket_id).fields.get(title))
        return len(candidates), filled

    def _has_customer_text(self, t: Ticket) -> bool:
        return any(
            kid[0] == "C" and kid[2] and kid[1] >= CUSTOMER_BASE for a in t.audits for kid in a[5]
        )

    def agent_set_field(
        self,
        ticket_id: int,
        field_title_or_id: int | str,
        value: Any,
        agent_id: int | None = None,
    ) -> None:
        """An agent edits a field in the agent UI: an audit whose updater is an agent."""
        with self._lock:
            t = self._tickets[ticket_id]
            fld = self._field_by_key(field_title_or_id)
            if fld.type == "tagger" and value is not None:
                opt = fld.option_by_value(str(value)) or next(
                    (o for o in fld.options if o.name == value), None
                )
                if opt is None:
                    raise ValueError(f"{value!r} is not an option of {fld.title}")
                value = opt.value
            agent = agent_id or t.assignee_id or self._agents[0][0]
            ok, err = self.apply_update(
                t, {"custom_fields": [{"id": fld.id, "value": value}]}, agent, "web"
            )
            if not ok:
                raise ValueError(err)

    def agent_set_tags(
        self,
        ticket_id: int,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        agent_id: int | None = None,
    ) -> None:
        """An agent adds/removes tags by hand (tests of 'never clobber the agents' tags')."""
        with self._lock:
            t = self._tickets[ticket_id]
            agent = agent_id or t.assignee_id or self._agents[0][0]
            self.apply_update(
                t, {"additional_tags": list(add), "remove_tags": list(remove)}, agent, "web"
            )

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

    def create_ticket(
        self,
        subject: str,
        body: str,
        *,
        requester_id: int | None = None,
        channel: str = "web",
        public: bool = True,
    ) -> int:
        """A new ticket whose first comment an end user wrote (the web form, by default), as
        it arrives after generation: it runs the triggers. Returns the ticket id."""
        with self._lock:
            tid = max(self._tickets, default=0) + 1
            t = Ticket(tid, tid * 7919)
            t.truth = Truth(None, (), "en")
            t.subject, t.channel = subject, channel
            t.requester_id = t.submitter_id = requester_id or CUSTOMER_BASE + 1
            t.status = "new"
            self._tickets[tid] = t
            self._record(
                t,
                t.requester_id,
                channel,
                [("N", "status", "new"), ("C", t.requester_id, public, "x", body)],
                created=True,
            )
            return tid

    def delete_ticket(self, ticket_id: int) -> None:
        """Soft-delete: the export returns a tombstone with status "deleted"; reads 404."""
        with self._lock:
            t = self._tickets[ticket_id]
            t.status = "deleted"
            self._touch(t, self.now_ts())

    def solve_and_close(self, ticket_id: int) -> None:
        """Move a ticket to closed through the automation user (tests of 'skip closed')."""
        with self._lock:
            t = self._tickets[ticket_id]
            self._record(
                t, SYSTEM_USER_ID, VIA_RULE, [("X", "status", "closed", t.status, VIA_RULE)]
            )
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

    def rotate_tokens(self, client_id: str, secret: str, refresh: str) -> tuple[str, str] | None:
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
            now = self.now_ts()
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
            for a, cid, _kid, body in self.iter_comments(t):
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

    def csat_comment(self, t: Ticket) -> str | None:
        if t.id in self._csat_overrides:
            return self._csat_overrides[t.id][1]
        rng = random.Random(t.seed ^ 0xC5A7)
        return corpus.satisfaction_comment(rng, t.csat == "good")

    def csat_times(self, t: Ticket) -> tuple[int, int]:
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
                (self.csat_times(t)[1], t.id)
                for t in self._tickets.values()
                if t.csat in ("good", "bad", "offered") and t.status != "deleted"
            )
        return self._csat_index

    def chat_index(self) -> list[tuple[int, int]]:
        """Legacy Zendesk Chat sessions (one per ``chat`` ticket) as (update time, ticket id)."""
        if self._chat_index is None:
            self._chat_index = sorted(
                (t.created + 600, t.id) for t in self._tickets.values() if t.channel == "chat"
            )
        return self._chat_index

    # ---------------------------------------------------------------- the routes' view of the state
    # Call these with ``lock`` held; the objects returned are the live state, not copies.

    @property
    def lock(self) -> threading.RLock:
        """Held by the routes (and every helper above) around each read or change."""
        return self._lock

    @property
    def agents(self) -> Sequence[tuple[int, str, str]]:
        """(id, first name, last name) of every agent."""
        return self._agents

    @property
    def customer_count(self) -> int:
        return self._customers

    @property
    def export_order(self) -> list[tuple[int, int]]:
        """(generated_timestamp, ticket id) of every ticket, sorted: the export order."""
        return self._order

    def event_index(self) -> tuple[list[Audit], list[int]]:
        """All audits sorted by (timestamp, id), and their timestamps (for bisecting)."""
        return self._events, self._event_ts

    def ticket_state(self, ticket_id: int) -> Ticket:
        """The live ticket (KeyError if unknown); deleted tickets included."""
        return self._tickets[ticket_id]

    def find_ticket(self, ticket_id: int) -> Ticket | None:
        """The live ticket, or None when it is unknown or deleted (reads answer 404)."""
        t = self._tickets.get(ticket_id)
        return None if t is None or t.status == "deleted" else t

    def fields(self) -> list[Field]:
        """Every ticket field, system fields first, in creation order."""
        return list(self._fields.values())

    def get_field(self, field_id: int) -> Field | None:
        return self._fields.get(field_id)

    def new_option(self, name: str, value: str) -> Option:
        """A dropdown option with the next option id (not yet attached to a field)."""
        self._option_seq += 1
        return Option(self._option_seq, name, value)

    def new_job(self, results: list[dict[str, Any]] | None, total: int | None = None) -> Job:
        """Queue a bulk-update job whose (already applied) per-ticket results it reports, or
        (``results=None``) one of ``total`` tickets that runs later (``job_seconds``)."""
        self._job_seq += 1
        jid = hashlib.md5(f"{self.seed}:job:{self._job_seq}".encode(), usedforsecurity=False)
        job = Job(jid.hexdigest(), len(results) if results is not None else total or 0, results)
        self._jobs[job.id] = job
        return job

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def active_jobs(self) -> int:
        """Jobs not yet completed (Zendesk caps them per account)."""
        return sum(
            1
            for j in self._jobs.values()
            if j.polls < self.job_polls_to_complete or j.results is None
        )

    def access_token_valid(self, token: str) -> bool | None:
        """None for a token this account never issued, else whether it is still valid."""
        if token not in self._access_tokens:
            return None
        expires = self._access_tokens[token]
        return expires is None or self.clock().timestamp() < expires

    # ---------------------------------------------------------------- comment rendering

    def iter_comments(self, t: Ticket) -> Iterable[tuple[Audit, int, tuple[Any, ...], str]]:
        for a in t.audits:
            for i, kid in enumerate(a[5]):
                if kid[0] == "C":
                    yield a, a[1] * 100 + i, kid, self.comment_body(t, a, kid, a[1] * 100 + i)

    def comment_body(self, t: Ticket, audit: Audit, kid: tuple[Any, ...], cid: int) -> str:
        if cid in self._redactions:
            return self._redactions[cid]
        if kid[4] is not None:
            return str(kid[4])
        return _render(
            self.seed,
            t.seed,
            cid,
            kid[3],
            t.channel,
            t.requester_id,
            kid[1],
            t.truth,
            audit[0],
            self._quoted_source(t, audit) if kid[3] == K_REPLY else None,
            self.agent_names(),
        )

    def agent_names(self) -> dict[int, tuple[str, str]]:
        names = getattr(self, "_agent_name_map", None)
        if names is None:
            names = {a[0]: (a[1], a[2]) for a in self._agents}
            self._agent_name_map = names
        return names

    def _quoted_source(self, t: Ticket, audit: Audit) -> tuple[int, int, int, int] | None:
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


def _only_status_close(audit: Audit) -> bool:
    return all(k[0] == "X" and k[1] == "status" and k[2] == "closed" for k in audit[5])


def _as_tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [x for x in value.replace(",", " ").split() if x]
    return [str(x) for x in value or []]


def _change_children(
    old_tags: tuple[str, ...],
    new_tags: tuple[str, ...],
    old_fields: dict[int, Any],
    new_fields: dict[int, Any],
    old_status: str,
    new_status: str,
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


def _render(
    acct_seed: int,
    ticket_seed: int,
    cid: int,
    kind: str,
    channel: str,
    requester: int,
    author: int,
    truth: Truth,
    ts: int,
    quoted: tuple[int, int, int, int] | None,
    agents: dict[int, tuple[str, str]],
) -> str:
    """Render a generated comment's text from its seed; deterministic, nothing stored."""
    rng = random.Random(ticket_seed * 1_000_003 + cid)
    first, last, email, phone = customer_profile(acct_seed, requester)
    agent_first = agents.get(author, ("Alex", "Reed"))[0]
    if kind in (K_FIRST, K_REPLY):
        text = corpus.compose_customer_text(
            rng,
            truth,
            first=first,
            last=last,
            email=email,
            phone=phone,
            channel=channel,
            follow_up=kind == K_REPLY,
        )
        if kind == K_REPLY and quoted and channel == "email" and rng.random() < 0.6:
            q_cid, q_author, q_ts, _ = quoted
            prev = _render(
                acct_seed,
                ticket_seed,
                q_cid,
                K_AGENT,
                channel,
                requester,
                q_author,
                truth,
                q_ts,
                None,
                agents,
            )
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
