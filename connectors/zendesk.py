"""Zendesk Support: two incremental export streams in, bulk `update_many` deltas out.

Why these endpoints (see ../shared/notes/helpdesk-apis.md §1): the cursor ticket export and the
ticket-events export with `include=comment_events` carry every ticket and every comment in about
ten requests per thousand tickets, where a call per ticket costs a thousand. Both share the
account's incremental-export budget (10/min, 30/min with High Volume), so they go through one
export limiter. Checkpoints are the API's own (`after_cursor`, event `start_time`), never
`updated_at`, which does not move on system updates.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.errors import ApiError
from connectors.http import ApiClient, CallStats, Clock, SystemClock
from connectors.records import (
    FieldIds,
    Page,
    PersonRecord,
    TicketUpdate,
    UpdateResult,
)
from connectors.settings import ZendeskSettings
from connectors.zendesk_mapping import (
    events_to_messages,
    ticket_to_record,
    update_body,
    user_to_person,
)

log = logging.getLogger("cjm.zendesk")
T = TypeVar("T")
_WARNED_TOKEN_RETIREMENT: set[str] = set()  # warn once per source and process

TICKETS_EXPORT = "/api/v2/incremental/tickets/cursor.json"
EVENTS_EXPORT = "/api/v2/incremental/ticket_events.json"
USERS_SHOW_MANY = "/api/v2/users/show_many.json"
CURRENT_USER = "/api/v2/users/me.json"
TICKET_FIELDS = "/api/v2/ticket_fields.json"
FIELD_OPTIONS = "/api/v2/ticket_fields/{id}/options.json"
UPDATE_MANY = "/api/v2/tickets/update_many.json"
JOB_STATUSES = "/api/v2/job_statuses/show_many.json"

STAGE_FIELD_TITLE = "Journey stage"
CONFIDENCE_FIELD_TITLE = "Journey stage confidence"
MAX_IDS_PER_CALL = 100
MAX_JOBS_IN_FLIGHT = 10
BULK_GROUP_MIN = 10  # a delta shared by this many tickets goes out in the `?ids=` bulk form
TOKEN_RETIREMENT = "2027-04-30"
FIELD_DESCRIPTION = "Set by cjm, the customer-journey miner. Agents may correct it."


class ZendeskConnector:
    """One Zendesk account. Streams: `tickets` (cursor export), `ticket_events` (comments)."""

    kind = "zendesk"

    def __init__(
        self,
        settings: ZendeskSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        job_poll_seconds: float = 1.0,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.job_poll_seconds = job_poll_seconds
        self._clock = clock or SystemClock()
        self._self_user_id: str | None = None
        client = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            auth=self._auth(settings),
            timeout=httpx.Timeout(settings.limits.timeout_seconds, connect=10.0),
            transport=transport,
            verify=settings.verify_tls,
            headers={"Accept": "application/json", "User-Agent": "cjm/0.1"},
        )
        self.api = ApiClient(
            client,
            vendor="Zendesk",
            credential_env=settings.credential_env,
            base_url_hint=settings.base_url,
            limits=settings.limits,
            clock=self._clock,
        )

    @staticmethod
    def _auth(settings: ZendeskSettings) -> httpx.Auth | None:
        if settings.oauth_token:
            return _BearerAuth(settings.oauth_token)
        if settings.api_token and settings.email:
            if settings.name in _WARNED_TOKEN_RETIREMENT:
                return httpx.BasicAuth(f"{settings.email}/token", settings.api_token)
            _WARNED_TOKEN_RETIREMENT.add(settings.name)
            log.warning(
                "Zendesk API tokens stop working on %s: switch %s to OAuth (oauth_token_env)",
                TOKEN_RETIREMENT,
                settings.name,
            )
            return httpx.BasicAuth(f"{settings.email}/token", settings.api_token)
        return None

    @property
    def streams(self) -> tuple[str, ...]:
        return ("tickets", "ticket_events")

    @property
    def stats(self) -> CallStats:
        return self.api.stats

    @property
    def self_user_id(self) -> str | None:
        return self._self_user_id

    async def aclose(self) -> None:
        await self.api.client.aclose()

    # ---- pull -------------------------------------------------------------------------------

    def pull(self, stream: str, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        if stream == "tickets":
            return self._pull_tickets(checkpoint, start)
        if stream == "ticket_events":
            return self._pull_events(checkpoint, start)
        raise ValueError(f"unknown Zendesk stream {stream!r}")

    async def _pull_tickets(self, cursor: str | None, start: datetime) -> AsyncIterator[Page]:
        """Cursor export: only the first call carries `start_time`; stop on `end_of_stream`."""
        params: dict[str, Any] = {"per_page": self.settings.tickets_per_page}
        if self.settings.include_users:
            params["include"] = "users"
        while True:
            query = dict(params)
            if cursor:
                query["cursor"] = cursor
            else:
                query["start_time"] = max(0, int(start.timestamp()))
            body = await self.api.get_json(
                TICKETS_EXPORT, endpoint="incremental/tickets/cursor", params=query, export=True
            )
            next_cursor = body.get("after_cursor") or cursor
            yield Page(
                stream="tickets",
                checkpoint=next_cursor,
                conversations=tuple(ticket_to_record(t) for t in body.get("tickets") or ()),
                people=tuple(user_to_person(u) for u in body.get("users") or ()),
            )
            if body.get("end_of_stream") or not body.get("after_cursor"):
                return
            if next_cursor == cursor:
                log.warning("Zendesk repeated cursor %s without end_of_stream; stopping", cursor)
                return
            cursor = next_cursor

    async def _pull_events(self, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        """Time-based export of audits with their comments; resumes from the last event time.

        Zendesk repeats the boundary second on the next page, so a page may carry events we
        already stored: the store upserts on the comment id, so repeats are harmless.
        """
        start_time = int(checkpoint) if checkpoint else max(0, int(start.timestamp()))
        per_page = self.settings.events_per_page
        while True:
            body = await self.api.get_json(
                EVENTS_EXPORT,
                endpoint="incremental/ticket_events",
                params={
                    "start_time": start_time,
                    "include": "comment_events",
                    "per_page": per_page,
                },
                export=True,
            )
            events = body.get("ticket_events") or []
            next_start = _next_start_time(body, start_time)
            yield Page(
                stream="ticket_events",
                checkpoint=str(next_start),
                messages=tuple(events_to_messages(events)),
            )
            if body.get("end_of_stream") or not events:
                return
            if next_start <= start_time:
                # A whole page inside one second: move on rather than loop forever.
                log.warning("Zendesk events did not advance past %s; skipping ahead", start_time)
                next_start = start_time + 1
            start_time = next_start

    async def lookup_people(self, ids: Iterable[str]) -> list[PersonRecord]:
        """Roles of comment authors, 100 per call (`users/show_many`)."""
        wanted = sorted({i for i in ids if i}, key=lambda v: (len(v), v))
        people: list[PersonRecord] = []
        for chunk in _chunks(wanted, MAX_IDS_PER_CALL):
            body = await self.api.get_json(
                USERS_SHOW_MANY, endpoint="users/show_many", params={"ids": ",".join(chunk)}
            )
            people.extend(user_to_person(u) for u in body.get("users") or ())
        return people

    async def identify_self(self) -> str | None:
        """The integration user, so its own updates are never taken for an agent's."""
        body = await self.api.get_json(CURRENT_USER, endpoint="users/me")
        user = body.get("user") or {}
        self._self_user_id = str(user["id"]) if user.get("id") is not None else None
        return self._self_user_id

    # ---- fields -----------------------------------------------------------------------------

    async def _list_fields(self) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        url: str | None = TICKET_FIELDS
        while url:
            body = await self.api.get_json(url, endpoint="ticket_fields")
            fields.extend(body.get("ticket_fields") or ())
            url = body.get("next_page")
        return fields

    async def discover_fields(self) -> FieldIds:
        fields = await self._list_fields()
        stage = _find_field(fields, STAGE_FIELD_TITLE)
        confidence = _find_field(fields, CONFIDENCE_FIELD_TITLE)
        return FieldIds(
            stage=str(stage["id"]) if stage else None,
            confidence=str(confidence["id"]) if confidence else None,
            stage_options=tuple(
                o["value"] for o in (stage or {}).get("custom_field_options") or ()
            ),
        )

    async def setup_fields(
        self, stages: Sequence[tuple[str, str]], confidence_levels: Sequence[tuple[str, str]]
    ) -> FieldIds:
        """Idempotent: create missing fields, add missing options one at a time.

        Never PUTs an option list: Zendesk treats it as the complete list and deletes every
        option left out, clearing that value from every ticket.
        """
        fields = await self._list_fields()
        stage = await self._ensure_dropdown(fields, STAGE_FIELD_TITLE, stages)
        confidence = await self._ensure_dropdown(fields, CONFIDENCE_FIELD_TITLE, confidence_levels)
        return FieldIds(
            stage=str(stage["id"]),
            confidence=str(confidence["id"]),
            stage_options=tuple(value for value, _ in stages),
        )

    async def _ensure_dropdown(
        self, fields: list[dict[str, Any]], title: str, options: Sequence[tuple[str, str]]
    ) -> dict[str, Any]:
        existing = _find_field(fields, title)
        if existing is None:
            response = await self.api.request(
                "POST",
                TICKET_FIELDS,
                endpoint="ticket_fields:create",
                json={
                    "ticket_field": {
                        "type": "tagger",
                        "title": title,
                        "description": FIELD_DESCRIPTION,
                        "active": True,
                        "visible_in_portal": False,
                        "custom_field_options": [
                            {"name": label, "value": value} for value, label in options
                        ],
                    }
                },
            )
            created: dict[str, Any] = self.api.decode(response, "ticket_fields:create")[
                "ticket_field"
            ]
            return created
        have = {o.get("value") for o in existing.get("custom_field_options") or ()}
        for value, label in options:
            if value in have:
                continue
            await self.api.request(
                "POST",
                FIELD_OPTIONS.format(id=existing["id"]),
                endpoint="ticket_fields:options",
                json={"custom_field_option": {"name": label, "value": value}},
            )
        return existing

    # ---- write-back -------------------------------------------------------------------------

    async def apply_updates(self, updates: Sequence[TicketUpdate]) -> list[UpdateResult]:
        """Send deltas through `update_many`: shared deltas in bulk, the rest as batches of 100.

        At most MAX_JOBS_IN_FLIGHT background jobs are open at once (the account allows 30, and
        agents' apps need some); job statuses are polled together with back-off.
        """
        pending = [u for u in updates if not u.is_empty]
        results: dict[str, UpdateResult] = {}
        requests = list(_plan_requests(pending))
        in_flight: dict[str, list[str]] = {}
        delay = self.job_poll_seconds
        while requests or in_flight:
            while requests and len(in_flight) < MAX_JOBS_IN_FLIGHT:
                params, body, ids = requests.pop(0)
                response = await self.api.request(
                    "PUT", UPDATE_MANY, endpoint="tickets/update_many", params=params, json=body
                )
                job = self.api.decode(response, "tickets/update_many").get("job_status") or {}
                if not job.get("id"):
                    raise ApiError("Zendesk update_many answered without a job_status id")
                in_flight[str(job["id"])] = ids
            await self._clock.sleep(delay)
            body = await self.api.get_json(
                JOB_STATUSES, endpoint="job_statuses/show_many", params={"ids": ",".join(in_flight)}
            )
            finished = 0
            for job in body.get("job_statuses") or ():
                job_id = str(job.get("id"))
                if job_id not in in_flight or job.get("status") not in ("completed", "failed"):
                    continue
                finished += 1
                ids = in_flight.pop(job_id)
                results.update(_job_results(job, ids))
            delay = self.job_poll_seconds if finished else min(delay * 2 or 0.5, 10.0)
        return [results[u.external_id] for u in pending if u.external_id in results]


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = self._header
        yield request


def _plan_requests(
    updates: Sequence[TicketUpdate],
) -> Iterable[tuple[dict[str, str], dict[str, Any], list[str]]]:
    groups: dict[tuple[object, ...], list[TicketUpdate]] = defaultdict(list)
    for update in updates:
        groups[update.delta_key()].append(update)
    leftovers: list[TicketUpdate] = []
    for members in groups.values():
        if len(members) < BULK_GROUP_MIN:
            leftovers.extend(members)
            continue
        body = {"ticket": update_body(members[0])}
        for chunk in _chunks(members, MAX_IDS_PER_CALL):
            ids = [u.external_id for u in chunk]
            yield {"ids": ",".join(ids)}, body, ids
    for chunk in _chunks(leftovers, MAX_IDS_PER_CALL):
        tickets = [{"id": _ticket_id(u.external_id), **update_body(u)} for u in chunk]
        yield {}, {"tickets": tickets}, [u.external_id for u in chunk]


def _job_results(job: dict[str, Any], ids: list[str]) -> dict[str, UpdateResult]:
    if job.get("status") == "failed":
        message = str(job.get("message") or "job failed")
        return {i: UpdateResult(i, False, message) for i in ids}
    by_id = {str(r.get("id")): r for r in job.get("results") or ()}
    out: dict[str, UpdateResult] = {}
    for ticket_id in ids:
        result = by_id.get(ticket_id)
        if result is None:
            out[ticket_id] = UpdateResult(ticket_id, False, "missing from job results")
        elif result.get("success", result.get("status") == "Updated"):
            out[ticket_id] = UpdateResult(ticket_id, True)
        else:
            out[ticket_id] = UpdateResult(
                ticket_id, False, str(result.get("errors") or result.get("status") or "failed")
            )
    return out


def _next_start_time(body: dict[str, Any], current: int) -> int:
    next_page = body.get("next_page")
    if next_page:
        values = parse_qs(urlsplit(next_page).query).get("start_time")
        if values:
            return int(values[0])
    end_time = body.get("end_time")
    return int(end_time) if end_time is not None else current


def _find_field(fields: Iterable[dict[str, Any]], title: str) -> dict[str, Any] | None:
    for field in fields:
        if field.get("title") == title and field.get("type") == "tagger":
            return field
    return None


def _ticket_id(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
