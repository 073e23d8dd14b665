"""Freshdesk: `updated_since` ticket lists in, one conversations call per changed ticket, and
read-merge-write ticket updates out.

Why this shape (see ../shared/notes/helpdesk-apis.md §2): Freshdesk has no bulk export of
conversations, so the floor is one `/tickets/{id}/conversations` call per ticket whose messages
changed, and one `PUT /tickets/{id}` per ticket written (PUT replaces the tag list). Everything
else is kept to a handful of calls: the tickets list at 100 per page with `include=description`
(the first customer message) and `include=stats` (tells a reply from cjm's own tag write), one
pass each for spam and deleted tickets, the CSAT ratings list, the agents list (contacts vs
agents) and the admin fields list.

Pagination: the list is ordered `updated_at asc` and offset-paged (Link header, ≤ 300 pages).
Offsets drift when a ticket already paged past is updated meanwhile (it jumps to the end and the
next ticket slides back onto a page already read: lost). So by default every request restarts
`updated_since` from the last record's `updated_at` (`restart_every_pages = 1`) and drops the
boundary second's repeats; Link pages are followed only inside one crowded second, and the
300-page cap is the same restart. When a single second holds more than 300 pages the boundary
cannot advance: the walker warns and moves one second on rather than loop.

Rate limits: one limiter per account (the plan's calls/min × `budget_share`), a second one for
the lower tickets-list limit, each `include` charged its 2 extra credits on both, the plan learnt
from `X-RateLimit-Total`, a pause when `X-RateLimit-Remaining` runs low (agents' apps share the
budget), and `Retry-After` on 429 pausing the whole account: the headers are read in one place,
`ApiClient` (connectors/http.py: `RateLimitHeaders`); this module adds the tickets-list limit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from connectors.errors import ApiError, FieldGoneError, NotFoundError
from connectors.freshchat import FreshchatClient
from connectors.freshdesk_mapping import (
    CHAT_PREFIX,
    agent_to_person,
    completed_choices,
    conversation_to_message,
    description_message,
    dropdown_field_body,
    field_choices,
    iso,
    parse_time,
    rating_to_message,
    requester_to_person,
    ticket_to_record,
    update_body,
)
from connectors.http import ApiClient, CallStats, Clock, RateLimiter, SystemClock, make_http_client
from connectors.records import (
    FieldIds,
    MessageRecord,
    Page,
    PersonRecord,
    TicketUpdate,
    UpdateResult,
)
from connectors.settings import FRESHDESK_LIST_LIMIT, FreshdeskSettings

log = logging.getLogger("cjm.freshdesk")
T = TypeVar("T")

TICKETS = "/api/v2/tickets"
TICKET = "/api/v2/tickets/{id}"
CONVERSATIONS = "/api/v2/tickets/{id}/conversations"
ARCHIVED_TICKET = "/api/v2/tickets/archived/{id}"
ARCHIVED_CONVERSATIONS = "/api/v2/tickets/archived/{id}/conversations"
AGENTS = "/api/v2/agents"
CURRENT_AGENT = "/api/v2/agents/me"
ADMIN_FIELDS = "/api/v2/admin/ticket_fields"
ADMIN_FIELD = "/api/v2/admin/ticket_fields/{id}"
RATINGS = "/api/v2/surveys/satisfaction_ratings"

STAGE_FIELD_LABEL = "Journey stage"
CONFIDENCE_FIELD_LABEL = "Journey stage confidence"
STAGE_FIELD_NAME = "cf_journey_stage"
CONFIDENCE_FIELD_NAME = "cf_journey_stage_confidence"


@dataclass(frozen=True)
class ListStream:
    """Endpoint facts of one list stream (data, not branches)."""

    name: str
    path: str
    endpoint: str
    since_param: str
    key: str  # the record time the list is ordered by and restarts from
    params: tuple[tuple[str, str], ...] = ()
    include: tuple[str, ...] = ()
    ticket_list: bool = True  # counts against the lower tickets-list limit
    ordered: bool = True  # the API sorts by `key` ascending: checkpoint after every page


def _list_streams(settings: FreshdeskSettings) -> dict[str, ListStream]:
    order = (("order_by", "updated_at"), ("order_type", "asc"))
    includes: tuple[str, ...] = ("description",)
    if settings.include_stats:
        includes += ("stats",)
    if settings.include_requester:
        includes += ("requester",)
    return {
        "tickets": ListStream(
            "tickets", TICKETS, "tickets", "updated_since", "updated_at", order, includes
        ),
        "deleted": ListStream(
            "deleted",
            TICKETS,
            "tickets?filter=deleted",
            "updated_since",
            "updated_at",
            (("filter", "deleted"), *order),
        ),
        "spam": ListStream(
            "spam",
            TICKETS,
            "tickets?filter=spam",
            "updated_since",
            "updated_at",
            (("filter", "spam"), *order),
        ),
        "satisfaction_ratings": ListStream(
            "satisfaction_ratings",
            RATINGS,
            "surveys/satisfaction_ratings",
            "created_since",
            "created_at",
            ticket_list=False,
            ordered=False,
        ),
    }


class FreshdeskConnector:
    """One Freshdesk account (plus, optionally, its Freshchat transcripts).

    Streams: `tickets` (conversations fetched on demand), `deleted` and `spam` (tombstones),
    `satisfaction_ratings` (solicited CSAT comments) and `freshchat` when configured.
    """

    kind = "freshdesk"

    def __init__(
        self,
        settings: FreshdeskSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        freshchat_transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self._clock = clock or SystemClock()
        limits = settings.limits
        client = make_http_client(
            settings.base_url,
            auth=httpx.BasicAuth(settings.api_key, "X") if settings.api_key else None,
            timeout_seconds=limits.timeout_seconds,
            transport=transport,
            verify=settings.verify_tls,
        )
        self.api = ApiClient(
            client,
            vendor="Freshdesk",
            credential_env=settings.credential_env,
            base_url_hint=settings.base_url,
            limits=limits,
            clock=self._clock,
        )
        # `concurrency` calls may be on their way when the account runs low: keep them spare
        self.api.reserve_calls = settings.concurrency + 1
        self.api.reserve_pause_seconds = settings.low_remaining_pause_seconds
        # The tickets-list sub-limit is ours, not ApiClient's export limiter: a 429 must pause
        # the whole account (ApiClient pauses only the export limiter for export calls).
        self.list_limiter = RateLimiter(
            max(1.0, limits.export_requests_per_minute * limits.budget_share),
            self._clock,
            on_wait=lambda seconds, paused: self.api.report_limit_wait(
                seconds, paused, self.list_limiter.per_minute, " (ticket list)"
            ),
        )
        self._learnt_plan: int | None = None
        self._streams = _list_streams(settings)
        self._agents: frozenset[str] | None = None
        self._agents_lock = asyncio.Lock()
        self._self_user_id: str | None = None
        self._tags: OrderedDict[str, tuple[tuple[str, ...], float]] = OrderedDict()
        self.freshchat = (
            FreshchatClient(
                settings.freshchat, transport=freshchat_transport, clock=self._clock, now=now
            )
            if settings.freshchat
            else None
        )

    @property
    def streams(self) -> tuple[str, ...]:
        base = ("tickets", "deleted", "spam", "satisfaction_ratings")
        return (*base, "freshchat") if self.freshchat else base

    @property
    def stats(self) -> CallStats:
        if self.freshchat is None:
            return self.api.stats
        return _merged_stats(self.api.stats, self.freshchat.api.stats)

    @property
    def self_user_id(self) -> str | None:
        return self._self_user_id

    async def aclose(self) -> None:
        await self.api.client.aclose()
        if self.freshchat:
            await self.freshchat.aclose()

    # ---- rate budget ------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        credits: int = 1,
        ticket_list: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call through the account limiter, charging extra credits and the list limit."""
        if ticket_list:
            await self.list_limiter.acquire(credits)
        if credits > 1:
            await self.api.limiter.acquire(credits - 1)  # `ApiClient.request` takes the first
        response = await self.api.request(method, url, endpoint=endpoint, **kwargs)
        self._learn_list_limit()
        return response

    def _learn_list_limit(self) -> None:
        """The tickets-list limit of the plan the account announced (`ApiClient` reads the
        rate-limit headers, adopts the account limit and pauses when the budget runs low)."""
        total = self.api.plan_limit
        if total is not None and self.settings.learn_list_limit and total != self._learnt_plan:
            self._learnt_plan = total
            share = self.settings.limits.budget_share
            self.list_limiter.set_rate(max(1, int(plan_list_limit(total) * share)))

    # ---- pull -------------------------------------------------------------------------------

    def pull(self, stream: str, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        if stream == "freshchat" and self.freshchat:
            return self.freshchat.pull(checkpoint, start)
        spec = self._streams.get(stream)
        if spec is None:
            raise ValueError(f"unknown Freshdesk stream {stream!r}")
        if stream == "satisfaction_ratings":
            return self._pull_ratings(spec, checkpoint, start)
        return self._pull_tickets(spec, checkpoint, start)

    async def _pull_tickets(
        self, spec: ListStream, checkpoint: str | None, start: datetime
    ) -> AsyncIterator[Page]:
        async for items, next_checkpoint in self._walk(spec, checkpoint, start):
            records = tuple(ticket_to_record(raw) for raw in items)
            now = self._clock.monotonic()
            for record in records:
                self._remember_tags(record.external_id, record.tags, now)
            on_demand = spec.name == "tickets"
            yield Page(
                stream=spec.name,
                checkpoint=next_checkpoint,
                conversations=records,
                messages_on_demand=on_demand,
                descriptions=tuple((str(raw["id"]), description_message(raw)) for raw in items)
                if on_demand
                else (),
                requesters=tuple(
                    requester_to_person(raw["requester"])
                    for raw in items
                    if isinstance(raw.get("requester"), dict)
                ),
            )

    async def _pull_ratings(
        self, spec: ListStream, checkpoint: str | None, start: datetime
    ) -> AsyncIterator[Page]:
        async for items, next_checkpoint in self._walk(spec, checkpoint, start):
            messages = tuple(m for raw in items if (m := rating_to_message(raw)) is not None)
            yield Page(stream=spec.name, checkpoint=next_checkpoint, messages=messages)

    async def _walk(
        self, spec: ListStream, checkpoint: str | None, start: datetime
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """Raw items of one list, oldest first, each exactly once per run, with checkpoints.

        `updated_since` is inclusive, so a restart re-reads the boundary second: the ids already
        yielded at that second are dropped. The first run starts from `start` (whole history),
        never from Freshdesk's 30-day default window.
        """
        settings = self.settings
        since = parse_time(checkpoint) if checkpoint else start
        restart_every = max(1, min(settings.restart_every_pages, settings.max_page))
        at_boundary: set[str] = set()  # ids yielded whose key time equals `since`
        in_window: set[str] = set()  # ids yielded since the last restart (offset drift repeats)
        tail: datetime | None = None  # the latest key time seen, and the ids seen at it
        tail_ids: set[str] = set()
        high_water = since  # unordered streams: checkpoint only when the run is complete
        page = 1
        while True:
            items, has_next, capped = await self._list_page(spec, since, page)
            fresh: list[dict[str, Any]] = []
            for raw in items:
                item_id, key = str(raw["id"]), parse_time(raw.get(spec.key))
                if tail is None or key > tail:
                    tail, tail_ids = key, {item_id}
                elif key == tail:
                    tail_ids.add(item_id)
                if item_id in in_window or (key == since and item_id in at_boundary):
                    continue
                in_window.add(item_id)
                fresh.append(raw)
                high_water = max(high_water, key)
            done = not has_next or not items
            if spec.ordered:
                mark = iso(max(tail, since) if tail else since)
            else:
                mark = iso(high_water) if done else (checkpoint or iso(start))
            if fresh or done or page == 1:
                yield fresh, mark
            if done and not capped:
                return
            if page < restart_every and not capped:
                page += 1
                continue
            if tail is not None and tail > since:
                since, at_boundary = tail, set(tail_ids)
            elif page < settings.max_page and not capped:
                at_boundary |= tail_ids  # one crowded second: keep following the Link pages
                page += 1
                continue
            else:
                log.warning(
                    "Freshdesk %s: more than %s pages share %s; moving on one second "
                    "(tickets updated in that second may be missed until they change again)",
                    spec.name,
                    settings.max_page,
                    iso(since),
                )
                since, at_boundary = since + timedelta(seconds=1), set()
            in_window, tail, tail_ids, page = set(), None, set(), 1

    async def _list_page(
        self, spec: ListStream, since: datetime, page: int
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        """(items, has a next page, hit the page cap) for one list request."""
        params: dict[str, Any] = {
            spec.since_param: iso(since),
            **dict(spec.params),
            "per_page": self.settings.tickets_per_page,
            "page": page,
        }
        if spec.include:
            params["include"] = ",".join(spec.include)
        try:
            response = await self._request(
                "GET",
                spec.path,
                endpoint=spec.endpoint,
                params=params,
                credits=1 + self.settings.include_credits * len(spec.include),
                ticket_list=spec.ticket_list,
            )
        except ApiError as exc:
            if exc.status_code == 400 and page > 1:
                # Page 1 of the same query was accepted, so the page number is what is refused
                # ("You cannot access tickets beyond the 300th page"): restart from the last record.
                return [], False, True
            raise
        body = self.api.shaped(self.api.decode(response, spec.endpoint), spec.endpoint)
        has_next = "next" in response.links
        return body, has_next, has_next and page >= self.settings.max_page

    # ---- conversations ------------------------------------------------------------------------

    async def fetch_messages(
        self,
        conversation_ids: Sequence[str],
        descriptions: Mapping[str, MessageRecord | None] | None = None,
    ) -> list[MessageRecord]:
        """Description + conversations of each ticket, `concurrency` calls in flight at once.
        A description the page carried (`Page.descriptions`) saves reading the ticket."""
        tickets = [i for i in dict.fromkeys(conversation_ids) if not i.startswith(CHAT_PREFIX)]
        if not tickets:
            return []
        agents = await self._agent_ids()
        known = descriptions or {}
        results = await _bounded(
            [functools.partial(self._ticket_messages, t, agents, known) for t in tickets],
            self.settings.concurrency,
        )
        return [m for messages in results for m in messages]

    async def _ticket_messages(
        self,
        ticket_id: str,
        agents: frozenset[str],
        descriptions: Mapping[str, MessageRecord | None],
    ) -> list[MessageRecord]:
        archived = False
        if ticket_id in descriptions:
            first = descriptions[ticket_id]
        else:
            raw, archived = await self._ticket_or_archived(ticket_id)
            if raw is None:
                return []
            first = description_message(raw)
        path = (ARCHIVED_CONVERSATIONS if archived else CONVERSATIONS).format(id=ticket_id)
        conversations = await self._conversations(path, ticket_id, agents)
        if conversations is None and not archived:
            # Archived meanwhile (archived tickets leave the list and 404 on the live path).
            path = ARCHIVED_CONVERSATIONS.format(id=ticket_id)
            conversations = await self._conversations(path, ticket_id, agents)
        if conversations is None:
            return []  # deleted: the deleted pass will tombstone it
        return ([first] if first else []) + conversations

    async def _conversations(
        self, path: str, ticket_id: str, agents: frozenset[str]
    ) -> list[MessageRecord] | None:
        out: list[MessageRecord] = []
        url: str | None = path
        params: dict[str, Any] | None = {"per_page": self.settings.conversations_per_page}
        endpoint = "tickets/archived/conversations" if "archived" in path else "conversations"
        while url:
            response = await self._request(
                "GET", url, endpoint=endpoint, params=params, not_found_ok=True
            )
            if response.status_code == 404:
                return None
            body = self.api.decode(response, endpoint)
            out.extend(conversation_to_message(c, ticket_id, agents) for c in body or ())
            url = _next_link(response)
            params = None  # the next link carries its own query
        return out

    async def _ticket_or_archived(self, ticket_id: str) -> tuple[dict[str, Any] | None, bool]:
        for path, archived in ((TICKET, False), (ARCHIVED_TICKET, True)):
            response = await self._request(
                "GET",
                path.format(id=ticket_id),
                endpoint="tickets/archived/show" if archived else "tickets/show",
                not_found_ok=True,
            )
            if response.status_code != 404:
                raw = self.api.decode(response, "tickets/show")
                self._remember_tags(ticket_id, tuple(raw.get("tags") or ()))
                return raw, archived
        return None, False

    async def fetch_tickets(self, ticket_ids: Sequence[str]) -> Page:
        """Live (or archived) tickets by id with their description and conversations: what a
        webhook worker reads (Freshdesk webhooks carry no trustworthy data). Deleted or unknown
        tickets are left out."""
        agents = await self._agent_ids()
        records, messages = [], []
        for ticket_id in dict.fromkeys(t for t in ticket_ids if t):
            raw, archived = await self._ticket_or_archived(ticket_id)
            if raw is None:
                continue
            records.append(ticket_to_record(raw))
            first = description_message(raw)
            path = (ARCHIVED_CONVERSATIONS if archived else CONVERSATIONS).format(id=ticket_id)
            found = await self._conversations(path, ticket_id, agents)
            messages.extend(([first] if first else []) + (found or []))
        return Page(
            stream="tickets_by_id",
            checkpoint=None,
            conversations=tuple(records),
            messages=tuple(messages),
        )

    async def fetch_archived(self, ticket_ids: Iterable[str]) -> Page:
        """Archived tickets by id (they never appear in lists), with their messages."""
        agents = await self._agent_ids()
        records, messages = [], []
        for ticket_id in ticket_ids:
            response = await self._request(
                "GET",
                ARCHIVED_TICKET.format(id=ticket_id),
                endpoint="tickets/archived/show",
                not_found_ok=True,
            )
            if response.status_code == 404:
                continue
            raw = self.api.decode(response, "tickets/archived/show")
            records.append(ticket_to_record(raw))
            first = description_message(raw)
            found = await self._conversations(
                ARCHIVED_CONVERSATIONS.format(id=ticket_id), ticket_id, agents
            )
            messages.extend(([first] if first else []) + (found or []))
        return Page(
            stream="archived",
            checkpoint=None,
            conversations=tuple(records),
            messages=tuple(messages),
        )

    # ---- people -----------------------------------------------------------------------------

    async def _agent_ids(self) -> frozenset[str]:
        """Every agent id, listed once per connector (a few calls) and cached."""
        async with self._agents_lock:
            if self._agents is None:
                ids: set[str] = set()
                url: str | None = AGENTS
                params: dict[str, Any] | None = {"per_page": self.settings.agents_per_page}
                while url:
                    response = await self._request("GET", url, endpoint="agents", params=params)
                    ids.update(str(a["id"]) for a in self.api.decode(response, "agents") or ())
                    url, params = _next_link(response), None
                self._agents = frozenset(ids)
            return self._agents

    async def lookup_people(self, ids: Iterable[str]) -> list[PersonRecord]:
        """Agents by the cached agents list; everyone else is a contact (a customer)."""
        agents = await self._agent_ids()
        return [
            agent_to_person({"id": i}) if i in agents else PersonRecord(i, "end_user")
            for i in sorted({i for i in ids if i})
        ]

    async def identify_self(self) -> str | None:
        body = self.api.decode(
            await self._request("GET", CURRENT_AGENT, endpoint="agents/me"), "agents/me"
        )
        self._self_user_id = str(body["id"]) if body.get("id") is not None else None
        return self._self_user_id

    # ---- fields -----------------------------------------------------------------------------

    async def _list_fields(self) -> list[dict[str, Any]]:
        response = await self._request("GET", ADMIN_FIELDS, endpoint="admin/ticket_fields")
        return list(
            self.api.shaped(self.api.decode(response, "admin/ticket_fields"), "admin/ticket_fields")
        )

    async def discover_fields(self) -> FieldIds:
        fields = await self._list_fields()
        stage = _find_field(fields, STAGE_FIELD_NAME, STAGE_FIELD_LABEL)
        confidence = _find_field(fields, CONFIDENCE_FIELD_NAME, CONFIDENCE_FIELD_LABEL)
        return FieldIds(
            stage=str(stage["name"]) if stage else None,
            confidence=str(confidence["name"]) if confidence else None,
            stage_options=field_choices(stage or {}),
            names=tuple(
                (str(f["name"]), str(f["label"]))
                for f in fields
                if str(f.get("name") or "").startswith("cf_") and f.get("label")
            ),
        )

    async def setup_fields(
        self, stages: Sequence[tuple[str, str]], confidence_levels: Sequence[tuple[str, str]]
    ) -> FieldIds:
        """Idempotent: create the two dropdowns, or add their missing choices (whole list)."""
        fields = await self._list_fields()
        stage = await self._ensure_dropdown(fields, STAGE_FIELD_NAME, STAGE_FIELD_LABEL, stages)
        confidence = await self._ensure_dropdown(
            fields, CONFIDENCE_FIELD_NAME, CONFIDENCE_FIELD_LABEL, confidence_levels
        )
        return FieldIds(
            stage=str(stage["name"]),
            confidence=str(confidence["name"]),
            stage_options=tuple(value for value, _ in stages),
        )

    async def _ensure_dropdown(
        self,
        fields: list[dict[str, Any]],
        name: str,
        label: str,
        options: Sequence[tuple[str, str]],
    ) -> dict[str, Any]:
        existing = _find_field(fields, name, label)
        if existing is None:
            response = await self._request(
                "POST",
                ADMIN_FIELDS,
                endpoint="admin/ticket_fields:create",
                json=dropdown_field_body(label, options),
            )
            created: dict[str, Any] = self.api.shaped(
                self.api.decode(response, "admin/ticket_fields:create"),
                "admin/ticket_fields:create",
                "name",
            )
            return created
        choices = completed_choices(existing.get("choices") or (), options)
        if choices is None:
            return existing
        response = await self._request(
            "PUT",
            ADMIN_FIELD.format(id=existing["id"]),
            endpoint="admin/ticket_fields:update",
            json={"choices": choices},
        )
        updated: dict[str, Any] = self.api.decode(response, "admin/ticket_fields:update")
        return updated

    # ---- write-back -------------------------------------------------------------------------

    async def apply_updates(self, updates: Sequence[TicketUpdate]) -> list[UpdateResult]:
        """Read-merge-write each ticket, `concurrency` at a time under the account limiter.

        Current tags come from this connector's own pull when younger than
        `tags_max_age_seconds` (the nightly run writes minutes after it pulled), otherwise from
        a `GET` first. Only the delta's `stage__`/`pain__` tags move; agents' tags are kept.
        A 4xx fails that ticket only; auth, rate-limit and network failures stop the run.
        """
        pending = [u for u in updates if not u.is_empty]
        return await _bounded(
            [functools.partial(self._apply_one, u) for u in pending], self.settings.concurrency
        )

    async def _apply_one(self, update: TicketUpdate) -> UpdateResult:
        ticket_id = update.external_id
        if ticket_id.startswith(CHAT_PREFIX):
            return UpdateResult(ticket_id, True)  # chat transcripts are read-only: nothing to do
        try:
            tags = self._fresh_tags(ticket_id)
            if tags is None:
                response = await self._request(
                    "GET", TICKET.format(id=ticket_id), endpoint="tickets/show"
                )
                tags = tuple(self.api.decode(response, "tickets/show").get("tags") or ())
            body = update_body(update, tags)
            if not body:
                return UpdateResult(ticket_id, True)
            response = await self._request(
                "PUT", TICKET.format(id=ticket_id), endpoint="tickets/update", json=body
            )
        except (ApiError, NotFoundError) as exc:
            self._tags.pop(ticket_id, None)
            unknown = exc.invalid_fields if isinstance(exc, ApiError) else frozenset()
            gone = unknown & {k for k, _ in update.set_fields}
            if gone:  # cjm's own field: every ticket would fail the same way
                raise FieldGoneError(
                    f"{self.name}: Freshdesk says field {', '.join(sorted(gone))} does not exist: "
                    f"run `cjm setup-fields --source {self.name}`",
                    exc.status_code if isinstance(exc, ApiError) else None,
                    invalid_fields=gone,
                ) from None
            return UpdateResult(ticket_id, False, str(exc))
        written = self.api.decode(response, "tickets/update")
        self._remember_tags(ticket_id, tuple(written.get("tags") or body.get("tags") or tags))
        return UpdateResult(ticket_id, True)

    def _remember_tags(
        self, ticket_id: str, tags: tuple[str, ...], now: float | None = None
    ) -> None:
        self._tags[ticket_id] = (tags, self._clock.monotonic() if now is None else now)
        self._tags.move_to_end(ticket_id)
        while len(self._tags) > self.settings.tag_cache_size:
            self._tags.popitem(last=False)

    def _fresh_tags(self, ticket_id: str) -> tuple[str, ...] | None:
        seen = self._tags.get(ticket_id)
        if seen is None:
            return None
        tags, when = seen
        if self._clock.monotonic() - when > self.settings.tags_max_age_seconds:
            return None
        return tags


async def _bounded(jobs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run `jobs` with at most `limit` in flight; results in order; the first error cancels
    the rest (a TaskGroup), so an auth failure stops the run instead of repeating 1,000 times."""
    semaphore = asyncio.Semaphore(max(1, limit))

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(job)) for job in jobs]
    except* Exception as errors:
        first = errors.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


def _next_link(response: httpx.Response) -> str | None:
    link = response.links.get("next")
    return link.get("url") if link else None


# Freshdesk's per-minute plans and their tickets-list sub-limit (support.freshdesk.com, "What are
# the rate limits for the API calls to Freshdesk?"): Growth, Pro, Enterprise.
PLAN_LIST_LIMITS = {200: 20, 400: 100, 700: 200}


def plan_list_limit(total: int) -> int:
    """The tickets-list limit of the plan whose account limit is `total` calls/min. An account
    above Enterprise (bought extra capacity) keeps Enterprise's proportion; below Growth (trial,
    50/min) or an unknown plan in between, Growth's 20."""
    if total in PLAN_LIST_LIMITS:
        return PLAN_LIST_LIMITS[total]
    top = max(PLAN_LIST_LIMITS)
    if total > top:
        return total * PLAN_LIST_LIMITS[top] // top
    return FRESHDESK_LIST_LIMIT  # a plan we do not know: Growth's, the safe guess


def _find_field(fields: Iterable[dict[str, Any]], name: str, label: str) -> dict[str, Any] | None:
    for field in fields:
        if field.get("name") == name or (
            field.get("label") == label and field.get("type") == "custom_dropdown"
        ):
            return field
    return None


def _merged_stats(*parts: CallStats) -> CallStats:
    merged = CallStats()
    for part in parts:
        merged.api_calls += part.api_calls
        merged.rate_limited += part.rate_limited
        merged.retries += part.retries
        for endpoint, count in part.by_endpoint.items():
            merged.by_endpoint[endpoint] = merged.by_endpoint.get(endpoint, 0) + count
    return merged
