"""Zendesk Support: two incremental export streams in, bulk `update_many` deltas out.

Why these endpoints (see ../shared/notes/helpdesk-apis.md §1): the cursor ticket export and the
ticket-events export with `include=comment_events` carry every ticket and every comment in about
ten requests per thousand tickets, where a call per ticket costs a thousand. Both share the
account's incremental-export budget (10/min, 30/min with High Volume), so they go through one
export limiter. Checkpoints are the API's own (`after_cursor`, event `start_time`), never
`updated_at`, which does not move on system updates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.errors import ApiError, AuthError, NotFoundError
from connectors.http import ApiClient, CallStats, Clock, SystemClock, make_http_client
from connectors.records import (
    ConversationRecord,
    FieldIds,
    MessageRecord,
    Page,
    PersonRecord,
    TicketUpdate,
    UpdateResult,
)
from connectors.settings import OAuthTokens, ZendeskSettings
from connectors.zendesk_mapping import (
    chat_to_records,
    comment_to_message,
    events_to_field_changes,
    events_to_messages,
    has_field_changes,
    log_events_to_messages,
    messaging_ticket_ids,
    rating_to_message,
    redacted_ticket_ids,
    ticket_to_record,
    update_body,
    user_to_person,
)
from connectors.zendesk_webhooks import WebhookSetup, setup_webhook

log = logging.getLogger("cjm.zendesk")
T = TypeVar("T")
OnJob = Callable[[str, list[str]], None]

TICKETS_EXPORT = "/api/v2/incremental/tickets/cursor.json"
EVENTS_EXPORT = "/api/v2/incremental/ticket_events.json"
USERS_SHOW_MANY = "/api/v2/users/show_many.json"
CURRENT_USER = "/api/v2/users/me.json"
TICKET_FIELDS = "/api/v2/ticket_fields.json"
FIELD_OPTIONS = "/api/v2/ticket_fields/{id}/options.json"
UPDATE_MANY = "/api/v2/tickets/update_many.json"
JOB_STATUSES = "/api/v2/job_statuses/show_many.json"
EARLY_POLLS = 2  # polls at the base interval before the back-off doubles it
SATISFACTION_RATINGS = "/api/v2/satisfaction_ratings.json"
CONVERSATION_LOG = "/api/v2/tickets/{id}/conversation_log"
TICKET_COMMENTS = "/api/v2/tickets/{id}/comments.json"
TICKETS_SHOW_MANY = "/api/v2/tickets/show_many.json"
TICKET_UPDATE = "/api/v2/tickets/{id}.json"
OAUTH_TOKENS = "/oauth/tokens"
CHAT_EXPORT = "/api/v2/incremental/chats"

CURSOR_PAGE_SIZE = 100  # cursor-paginated lists (ratings, comments, conversation log)
CHAT_PAGE_SIZE = 1000
CSAT_SCORE_FILTER = "received_with_comment"  # only ratings that carry text
REFRESH_BEFORE_EXPIRY = 300.0  # seconds: refresh an access token this close to expiry
MAX_JOBS_CAP = 25  # never more than this many of the account's 30 background jobs
ENRICH_CONCURRENCY = 4  # conversation-log / comment re-pulls in flight (the limiter still rules)
PERMANENT_UPDATE_ERRORS = ("TicketNotFound", "RecordNotFound", "RecordInvalid", "closed")

STAGE_FIELD_TITLE = "Journey stage"
CONFIDENCE_FIELD_TITLE = "Journey stage confidence"
MAX_IDS_PER_CALL = 100
MAX_JOBS_IN_FLIGHT = 10  # default of settings.max_jobs_in_flight
# A delta shared by a full call's worth of tickets goes out in the `?ids=` bulk form (the form
# Zendesk documents `additional_tags`/`remove_tags` for since the start); every remainder joins
# the batch form, 100 tickets per call, so grouping never costs an extra call.
BULK_GROUP_MIN = MAX_IDS_PER_CALL
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
        chat_transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        job_poll_seconds: float = 1.0,
        wall_clock: Any = time.time,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.job_poll_seconds = job_poll_seconds
        # A lone ticket update goes through `PUT tickets/{id}` instead of an update_many job
        # (the real-time worker turns this on; the nightly sync always batches).
        self.single_updates = False
        self._clock = clock or SystemClock()
        self._wall = wall_clock  # Unix seconds, for OAuth expiry only
        self._self_user_id: str | None = None
        self._self_checked = False
        self._events_per_page = settings.events_per_page
        self._logged: set[str] = set()  # tickets whose conversation log this run already read
        self._refresh_lock = asyncio.Lock()
        self._tokens: OAuthTokens | None = None
        if settings.oauth_token:
            self._tokens = OAuthTokens(
                settings.oauth_token, settings.oauth_refresh_token, settings.oauth_expires_at
            )
        self._bearer = _BearerAuth(settings.oauth_token) if settings.oauth_token else None
        client = make_http_client(
            settings.base_url,
            auth=self._bearer or self._auth(settings),
            timeout_seconds=settings.limits.timeout_seconds,
            transport=transport,
            verify=settings.verify_tls,
        )
        self.api = ApiClient(
            client,
            vendor="Zendesk",
            credential_env=settings.credential_env,
            base_url_hint=settings.base_url,
            limits=settings.limits,
            clock=self._clock,
            on_unauthorized=self._refresh_on_401 if self._can_refresh() else None,
        )
        self.chat_api: ApiClient | None = None
        if settings.chat_export:
            chat_token = settings.chat_oauth_token or settings.oauth_token
            self.chat_api = ApiClient(
                make_http_client(
                    settings.chat_base_url,
                    auth=_BearerAuth(chat_token) if chat_token else None,
                    timeout_seconds=settings.limits.timeout_seconds,
                    transport=chat_transport or transport,
                    verify=settings.verify_tls,
                ),
                vendor="Zendesk Chat",
                credential_env=settings.credential_env,
                base_url_hint=settings.chat_base_url,
                limits=replace(
                    settings.limits,
                    requests_per_minute=settings.chat_requests_per_minute,
                ),
                clock=self._clock,
                stats=self.api.stats,
            )

    def _can_refresh(self) -> bool:
        s = self.settings
        return bool(s.oauth_token and s.oauth_refresh_token and s.oauth_client_id)

    @staticmethod
    def _auth(settings: ZendeskSettings) -> httpx.Auth | None:
        if settings.oauth_token:
            return _BearerAuth(settings.oauth_token)
        if settings.api_token and settings.email:
            return httpx.BasicAuth(f"{settings.email}/token", settings.api_token)
        return None

    @property
    def notices(self) -> tuple[str, ...]:
        """What the person running cjm should hear about this account's set-up (the pipeline
        decides how often: once a day, not into every cron mail)."""
        s = self.settings
        if s.api_token and s.email and not s.oauth_token:
            return (
                f"Zendesk API tokens stop working on {TOKEN_RETIREMENT}: switch {s.name} to "
                "OAuth (oauth_token_env)",
            )
        return ()

    @property
    def streams(self) -> tuple[str, ...]:
        streams = ["tickets", "ticket_events"]
        if self.settings.satisfaction_ratings:
            streams.append("satisfaction_ratings")
        if self.settings.chat_export:
            streams.append("chats")
        return tuple(streams)

    @property
    def stats(self) -> CallStats:
        return self.api.stats

    @property
    def self_user_id(self) -> str | None:
        return self._self_user_id

    async def aclose(self) -> None:
        await self.api.client.aclose()
        if self.chat_api is not None:
            await self.chat_api.client.aclose()

    # ---- OAuth ------------------------------------------------------------------------------

    async def _refresh_on_401(self, response: httpx.Response) -> bool:
        """A 401 with a refreshable OAuth pair: rotate once (concurrent 401s share it)."""
        sent = response.request.headers.get("Authorization")
        async with self._refresh_lock:
            if self._bearer is not None and sent != self._bearer.header:
                return True  # another request already rotated the pair; just resend
            await self._rotate_tokens()
            return True

    async def _ensure_fresh_token(self) -> None:
        """Rotate before the access token expires, rather than after a failed request."""
        tokens = self._tokens
        if not self._can_refresh() or tokens is None or tokens.expires_at is None:
            return
        if tokens.expires_at - self._wall() > REFRESH_BEFORE_EXPIRY:
            return
        async with self._refresh_lock:
            if self._tokens is tokens:
                await self._rotate_tokens()

    async def _rotate_tokens(self) -> None:
        """POST /oauth/tokens (refresh_token grant). The new pair goes to `token_store`
        *before* the new access token is used: the old refresh token is dead from now on, so a
        crash after this point must still find the new one on disk."""
        assert self._tokens is not None and self._bearer is not None
        s = self.settings
        await self.api.limiter.acquire()
        self.api.stats.count("oauth/tokens")
        try:
            response = await self.api.client.post(
                OAUTH_TOKENS,
                json={
                    "grant_type": "refresh_token",
                    "refresh_token": self._tokens.refresh_token,
                    "client_id": s.oauth_client_id,
                    "client_secret": s.oauth_client_secret,
                },
                auth=httpx.Auth(),  # none: the client authenticates with its secret in the body
            )
        except httpx.HTTPError as exc:
            raise AuthError(
                f"cannot refresh the Zendesk OAuth token ({type(exc).__name__}); "
                "nothing was stored, run again"
            ) from None
        if response.status_code != 200:
            raise AuthError(
                f"{response.status_code} from Zendesk on oauth/tokens: the refresh token was "
                f"rejected; re-authorise cjm and set {s.credential_env} and the refresh-token "
                "variable again"
            )
        body = self.api.decode(response, "oauth/tokens")
        expires_in = body.get("expires_in")
        tokens = OAuthTokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or self._tokens.refresh_token),
            expires_at=self._wall() + float(expires_in) if expires_in else None,
        )
        if s.token_store is not None:
            s.token_store(tokens)  # persisted (or raising) before the new token is used
        self._tokens = tokens
        self._bearer.set(tokens.access_token)
        self.api.stats.token_refreshes += 1
        log.info("Zendesk OAuth token for %s rotated", self.name)

    # ---- pull -------------------------------------------------------------------------------

    def pull(self, stream: str, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        if stream == "tickets":
            return self._pull_tickets(checkpoint, start)
        if stream == "ticket_events":
            return self._pull_events(checkpoint, start)
        if stream == "satisfaction_ratings":
            return self._pull_ratings(checkpoint, start)
        if stream == "chats":
            return self._pull_chats(checkpoint, start)
        raise ValueError(f"unknown Zendesk stream {stream!r}")

    async def _pull_tickets(self, cursor: str | None, start: datetime) -> AsyncIterator[Page]:
        """Cursor export: only the first call carries `start_time`; stop on `end_of_stream`."""
        await self._ensure_fresh_token()
        params: dict[str, Any] = {"per_page": self.settings.tickets_per_page}
        if self.settings.include_users:
            params["include"] = "users"
        while True:
            query = dict(params)
            if cursor:
                query["cursor"] = cursor
            else:
                query["start_time"] = max(0, int(start.timestamp()))
            body = self.api.shaped(
                await self.api.get_json(
                    TICKETS_EXPORT, endpoint="incremental/tickets/cursor", params=query, export=True
                ),
                "incremental/tickets/cursor",
                "tickets",
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
        await self._ensure_fresh_token()
        start_time = int(checkpoint) if checkpoint else max(0, int(start.timestamp()))
        floor = max(1, self.settings.min_events_per_page)
        while True:
            per_page = self._events_per_page
            try:
                body = await self.api.get_json(
                    EVENTS_EXPORT,
                    endpoint="incremental/ticket_events",
                    params={
                        "start_time": start_time,
                        "include": "comment_events",
                        "per_page": per_page,
                    },
                    export=True,
                    raise_on=frozenset({504}) if per_page > floor else frozenset(),
                )
            except ApiError as exc:
                if exc.status_code != 504:
                    raise
                # Big comment pages time out at Zendesk's gateway: halve and ask again (the
                # smaller size holds for the rest of this run).
                self._events_per_page = max(floor, per_page // 2)
                log.warning(
                    "Zendesk ticket_events timed out at per_page=%s; retrying with %s",
                    per_page,
                    self._events_per_page,
                )
                continue
            body = self.api.shaped(body, "incremental/ticket_events", "ticket_events")
            events = body.get("ticket_events") or []
            next_start = _next_start_time(body, start_time)
            messages = list(events_to_messages(events))
            messages.extend(await self._enrich(events))
            # Who set ticket fields: the journey layer tells cjm's own values from agents' edits
            # by the audit's updater, not by its local records (which a crash or a restored
            # database can leave behind). users/me once, only when some audit set a field.
            self_id = await self._identify_self_once() if has_field_changes(events) else None
            yield Page(
                stream="ticket_events",
                checkpoint=str(next_start),
                messages=_dedupe(messages),
                field_changes=tuple(events_to_field_changes(events, self_id)),
            )
            if body.get("end_of_stream") or not events:
                return
            if next_start <= start_time:
                # A whole page inside one second: move on rather than loop forever.
                log.warning("Zendesk events did not advance past %s; skipping ahead", start_time)
                next_start = start_time + 1
            start_time = next_start

    async def _enrich(self, events: Sequence[dict[str, Any]]) -> list[MessageRecord]:
        """Text the event export cannot carry: messaging transcripts (conversation log) of
        tickets that got a new messaging comment from someone other than us, and the comments
        of tickets where an agent redacted something. One call per such ticket, no more."""
        wanted: list[tuple[str, str]] = []
        if self.settings.messaging_transcripts and messaging_ticket_ids(events, None):
            self_id = await self._identify_self_once()  # users/me, once, only when needed
            fresh = messaging_ticket_ids(events, self_id) - self._logged
            self._logged |= fresh
            wanted.extend((ticket_id, "log") for ticket_id in sorted(fresh, key=_numeric))
        if self.settings.repull_redacted:
            redacted = redacted_ticket_ids(events)
            wanted.extend((ticket_id, "comments") for ticket_id in sorted(redacted, key=_numeric))
        if not wanted:
            return []
        gate = asyncio.Semaphore(ENRICH_CONCURRENCY)

        async def one(ticket_id: str, kind: str) -> list[MessageRecord]:
            async with gate:
                if kind == "log":
                    return await self.conversation_log(ticket_id)
                return await self.ticket_comments(ticket_id)

        batches = await asyncio.gather(*(one(t, k) for t, k in wanted))
        return [m for batch in batches for m in batch]

    async def _cursor_pages(
        self, path: str, endpoint: str, key: str, params: dict[str, Any]
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str | None, bool]]:
        """Zendesk cursor pagination: `page[size]`, then `page[after]` until `has_more` is
        false. Yields (items, after_cursor, has_more); a 404 (deleted ticket) yields nothing;
        a 403 (a plan without the feature) is raised as ApiError for the caller to judge."""
        query = {**params, "page[size]": CURSOR_PAGE_SIZE}
        seen: set[str] = set()
        while True:
            response = await self.api.request(
                "GET",
                path,
                endpoint=endpoint,
                params=query,
                not_found_ok=True,
                raise_on=frozenset({403}),
            )
            if response.status_code == 404:
                return
            body = self.api.decode(response, endpoint)
            meta = body.get("meta") or {}
            after = meta.get("after_cursor")
            more = bool(meta.get("has_more")) and bool(after) and after not in seen
            yield list(body.get(key) or ()), after, more
            if not more or not after:
                return
            seen.add(after)
            query = {**params, "page[size]": CURSOR_PAGE_SIZE, "page[after]": after}

    async def conversation_log(self, ticket_id: str) -> list[MessageRecord]:
        """A ticket's conversation log (messaging transcript), all pages."""
        messages: list[MessageRecord] = []
        async for items, _, _ in self._cursor_pages(
            CONVERSATION_LOG.format(id=ticket_id), "tickets/conversation_log", "events", {}
        ):
            messages.extend(log_events_to_messages(ticket_id, items))
        return messages

    async def ticket_comments(self, ticket_id: str) -> list[MessageRecord]:
        """A ticket's comments as they are now (after a redaction), all pages."""
        messages: list[MessageRecord] = []
        async for items, _, _ in self._cursor_pages(
            TICKET_COMMENTS.format(id=ticket_id), "tickets/comments", "comments", {}
        ):
            messages.extend(comment_to_message(ticket_id, c) for c in items)
        return messages

    async def fetch_tickets(self, ticket_ids: Sequence[str]) -> Page:
        """Tickets by id (`tickets/show_many`, 100 per call) with their comments (one cursor
        call per ticket; the conversation log for messaging tickets): what a webhook worker
        reads instead of the export streams, whose 10 calls a minute a doorbell must not spend.
        Deleted or unknown tickets are left out."""
        await self._ensure_fresh_token()
        wanted = list(dict.fromkeys(t for t in ticket_ids if t))
        records: list[ConversationRecord] = []
        for chunk in _chunks(wanted, MAX_IDS_PER_CALL):
            body = await self.api.get_json(
                TICKETS_SHOW_MANY, endpoint="tickets/show_many", params={"ids": ",".join(chunk)}
            )
            records.extend(ticket_to_record(t) for t in body.get("tickets") or ())
        live = [r for r in records if not r.deleted]
        gate = asyncio.Semaphore(ENRICH_CONCURRENCY)

        async def one(record: ConversationRecord) -> list[MessageRecord]:
            async with gate:
                messages = await self.ticket_comments(record.external_id)
                if record.from_messaging and self.settings.messaging_transcripts:
                    messages += await self.conversation_log(record.external_id)
                return messages

        batches = await asyncio.gather(*(one(r) for r in live))
        return Page(
            stream="tickets_by_id",
            checkpoint=None,
            conversations=tuple(records),
            messages=_dedupe(m for batch in batches for m in batch),
        )

    async def _pull_ratings(self, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        """CSAT ratings with a comment, as solicited messages. Checkpoint `since|after`: the
        run's start time plus the page cursor while paging, `max(updated_at)|` once done, so a
        crash resumes on the page it stopped and a later edit of a rating comes back."""
        since, _, after = (checkpoint or "").partition("|")
        start_time = int(since) if since else max(0, int(start.timestamp()))
        newest = start_time
        params: dict[str, Any] = {"start_time": start_time, "score": CSAT_SCORE_FILTER}
        if after:
            params["page[after]"] = after
        try:
            async for items, cursor, more in self._cursor_pages(
                SATISFACTION_RATINGS, "satisfaction_ratings", "satisfaction_ratings", params
            ):
                messages = [m for m in map(rating_to_message, items) if m is not None]
                for item in items:
                    stamp = item.get("updated_at") or item.get("created_at")
                    if stamp:
                        newest = max(newest, int(_parse_ts(stamp)))
                resume = f"{start_time}|{cursor}" if more and cursor else f"{newest}|"
                yield Page(
                    stream="satisfaction_ratings", checkpoint=resume, messages=_dedupe(messages)
                )
        except ApiError as exc:
            if exc.status_code != 403:
                raise
            log.warning("Zendesk satisfaction ratings are not available on %s: skipped", self.name)

    async def _pull_chats(self, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        """Legacy Zendesk Chat: the Chat API incremental export (`start_time` + `start_id`,
        ≤1000 per page). Transcripts attach to the ticket each chat created."""
        assert self.chat_api is not None
        since, _, start_id = (checkpoint or "").partition("|")
        start_time = int(since) if since else max(0, int(start.timestamp()))
        while True:
            params: dict[str, Any] = {
                "start_time": start_time,
                "limit": CHAT_PAGE_SIZE,
                "fields": "chats(*)",
            }
            if start_id:
                params["start_id"] = start_id
            body = await self.chat_api.get_json(
                CHAT_EXPORT, endpoint="chat/incremental/chats", params=params
            )
            chats = body.get("chats") or []
            conversations: list[ConversationRecord] = []
            messages: list[MessageRecord] = []
            for chat in chats:
                conversation, lines = chat_to_records(chat)
                if conversation is not None:
                    conversations.append(conversation)
                messages.extend(lines)
            end_time = int(body.get("end_time") or start_time)
            end_id = str(body.get("end_id") or start_id or "")
            yield Page(
                stream="chats",
                checkpoint=f"{end_time}|{end_id}",
                conversations=tuple(conversations),
                messages=_dedupe(messages),
            )
            if not body.get("next_page") or len(chats) < CHAT_PAGE_SIZE:
                return
            if (end_time, end_id) == (start_time, start_id):
                log.warning("Zendesk Chat export repeated its position; stopping")
                return
            start_time, start_id = end_time, end_id

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
        self._self_checked = True
        return self._self_user_id

    async def _identify_self_once(self) -> str | None:
        if not self._self_checked:
            try:
                await self.identify_self()
            except NotFoundError:
                self._self_checked = True  # a proxy without users/me: no self-filtering
        return self._self_user_id

    # ---- fields -----------------------------------------------------------------------------

    async def _list_fields(self) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        url: str | None = TICKET_FIELDS
        while url:
            body = self.api.shaped(
                await self.api.get_json(url, endpoint="ticket_fields"),
                "ticket_fields",
                "ticket_fields",
            )
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
            names=tuple(
                (str(f["id"]), str(f["title"])) for f in fields if f.get("id") and f.get("title")
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
            created: dict[str, Any] = self.api.shaped(
                self.api.decode(response, "ticket_fields:create"),
                "ticket_fields:create",
                "ticket_field",
            )["ticket_field"]
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

    # ---- real time ---------------------------------------------------------------------------

    async def setup_webhook(self, url: str) -> WebhookSetup:
        """Create or update cjm's webhook and trigger (connectors/zendesk_webhooks.py) through
        this account's client, limiter and OAuth rotation."""
        await self._ensure_fresh_token()
        return await setup_webhook(self.api, url)

    # ---- write-back -------------------------------------------------------------------------

    async def apply_updates(
        self, updates: Sequence[TicketUpdate], *, on_job: OnJob | None = None
    ) -> list[UpdateResult]:
        """Send deltas through `update_many`: shared deltas in bulk, the rest as batches of 100.

        At most MAX_JOBS_IN_FLIGHT background jobs are open at once (the account allows 30, and
        agents' apps need some); job statuses are polled together with back-off. `on_job(job id,
        ticket ids)` hears of every job as soon as Zendesk accepted it, so a caller can record it
        and, after a crash, resume polling it (`resume_jobs`) instead of sending it again.
        """
        await self._ensure_fresh_token()
        pending = [u for u in updates if not u.is_empty]
        if self.single_updates and len(pending) == 1:
            return [await self._update_one(pending[0])]
        by_id = {u.external_id: u for u in pending}
        results = await self._run_jobs(list(_plan_requests(pending)), by_id, on_job=on_job)
        for _ in range(max(0, self.settings.retry_failed_updates)):
            again = [by_id[i] for i, r in results.items() if not r.ok and _transient(r.error)]
            if not again:
                break
            log.info("Zendesk: retrying %d ticket updates that failed inside a job", len(again))
            results.update(await self._run_jobs(list(_plan_requests(again)), by_id, on_job=on_job))
        return [results[u.external_id] for u in pending if u.external_id in results]

    async def _update_one(self, update: TicketUpdate) -> UpdateResult:
        """One ticket through `PUT tickets/{id}.json`: applied before the answer, no job to
        poll — one call instead of three, and the tags are on the ticket a second sooner. The
        real-time worker's choice when a batch holds a single ticket (`single_updates`)."""
        try:
            await self.api.request(
                "PUT",
                TICKET_UPDATE.format(id=update.external_id),
                endpoint="tickets/update",
                json={"ticket": update_body(update)},
                raise_on=frozenset({404, 422}),
            )
        except ApiError as exc:
            if exc.status_code not in (404, 422):
                raise
            return UpdateResult(update.external_id, False, str(exc))
        return UpdateResult(update.external_id, True)

    async def resume_jobs(self, jobs: Mapping[str, Sequence[str]]) -> list[UpdateResult]:
        """Poll jobs an earlier, interrupted run started (job id → its ticket ids) until they
        finish. Tickets of a job Zendesk no longer knows (job statuses expire) are left out:
        the caller compares those tickets with what it sent."""
        await self._ensure_fresh_token()
        in_flight = {job_id: list(ids) for job_id, ids in jobs.items()}
        results: dict[str, UpdateResult] = {}
        delay = 0.0
        while in_flight:
            if delay:
                await self._clock.sleep(delay)
            known: set[str] = set()
            for chunk in _chunks(list(in_flight), MAX_IDS_PER_CALL):
                body = await self.api.get_json(
                    JOB_STATUSES,
                    endpoint="job_statuses/show_many",
                    params={"ids": ",".join(chunk)},
                )
                for job in body.get("job_statuses") or ():
                    job_id = str(job.get("id"))
                    if job_id not in in_flight:
                        continue
                    known.add(job_id)
                    if job.get("status") in ("completed", "failed"):
                        results.update(_job_results(job, in_flight.pop(job_id)))
            for job_id in set(in_flight) - known:
                del in_flight[job_id]  # expired or never accepted: nothing to wait for
            delay = min(delay * 2 or self.job_poll_seconds, 10.0)
        return list(results.values())

    async def _run_jobs(
        self,
        requests: list[tuple[dict[str, str], dict[str, Any], list[str]]],
        updates: dict[str, TicketUpdate],
        *,
        on_job: OnJob | None = None,
    ) -> dict[str, UpdateResult]:
        """Send update_many requests with at most `max_jobs_in_flight` jobs open, poll their
        statuses together (show_many) with back-off, and collect per-ticket results. A 422 on a
        request (one bad ticket rejects the whole call) is split in halves until the bad ticket
        stands alone and is reported, so the others still get written."""
        slots = max(1, min(self.settings.max_jobs_in_flight, MAX_JOBS_CAP))
        results: dict[str, UpdateResult] = {}
        in_flight: dict[str, list[str]] = {}
        delay = self.job_poll_seconds
        waiting = 0  # polls in a row that found no job finished
        while requests or in_flight:
            while requests and len(in_flight) < slots:
                params, body, ids = requests.pop(0)
                try:
                    response = await self.api.request(
                        "PUT",
                        UPDATE_MANY,
                        endpoint="tickets/update_many",
                        params=params,
                        json=body,
                        raise_on=frozenset({422}),
                    )
                except ApiError as exc:
                    if exc.status_code != 422:
                        raise
                    if len(ids) == 1:
                        results[ids[0]] = UpdateResult(ids[0], False, str(exc))
                        continue
                    half = len(ids) // 2
                    for part in (ids[:half], ids[half:]):
                        requests[:0] = list(_plan_requests([updates[i] for i in part], bulk=False))
                    continue
                job = self.api.decode(response, "tickets/update_many").get("job_status") or {}
                if not job.get("id"):
                    raise ApiError("Zendesk update_many answered without a job_status id")
                in_flight[str(job["id"])] = ids
                if on_job is not None:
                    on_job(str(job["id"]), ids)
            if not in_flight:
                continue
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
            # A small job takes about a second: poll at the base interval twice before backing
            # off (0.5, 1.0, 2.0, 4.0 s… rather than 0.5, 1.5, 3.5 s…), so a finished job is
            # seen half a second sooner for one extra call at most.
            waiting = 0 if finished else waiting + 1
            if waiting >= EARLY_POLLS:
                delay = min(delay * 2 or 0.5, 10.0)
            else:
                delay = self.job_poll_seconds
        return results


class _BearerAuth(httpx.Auth):
    """Bearer auth whose token can be swapped after a rotation (no I/O in the flow)."""

    def __init__(self, token: str) -> None:
        self.header = f"Bearer {token}"

    def set(self, token: str) -> None:
        self.header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = self.header
        yield request


def _plan_requests(
    updates: Sequence[TicketUpdate], *, bulk: bool = True
) -> Iterable[tuple[dict[str, str], dict[str, Any], list[str]]]:
    groups: dict[tuple[object, ...], list[TicketUpdate]] = defaultdict(list)
    for update in updates:
        groups[update.delta_key()].append(update)
    leftovers: list[TicketUpdate] = []
    for members in groups.values():
        if not bulk or len(members) < BULK_GROUP_MIN:
            leftovers.extend(members)
            continue
        body = {"ticket": update_body(members[0])}
        full = len(members) - len(members) % MAX_IDS_PER_CALL
        for chunk in _chunks(members[:full], MAX_IDS_PER_CALL):
            ids = [u.external_id for u in chunk]
            yield {"ids": ",".join(ids)}, body, ids
        leftovers.extend(members[full:])
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
            detail = str(result.get("errors") or result.get("details") or "failed")
            code = result.get("error")
            out[ticket_id] = UpdateResult(ticket_id, False, f"{code}: {detail}" if code else detail)
    return out


def _transient(error: str | None) -> bool:
    """Worth one more try: not a closed/missing ticket or a value Zendesk will never take."""
    text = error or ""
    return not any(marker in text for marker in PERMANENT_UPDATE_ERRORS)


def _dedupe(messages: Iterable[MessageRecord]) -> tuple[MessageRecord, ...]:
    """One record per message id per page (the last, freshest wins): the store upserts a page
    in one statement, and PostgreSQL refuses to touch one row twice in a statement."""
    return tuple({m.external_id: m for m in messages}.values())


def _numeric(value: str) -> tuple[int, str]:
    return (len(value), value)


def _parse_ts(value: Any) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


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
