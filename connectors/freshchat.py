"""Freshchat chat transcripts: an option of a Freshdesk source, with its own host, bearer key,
limiter and pagination.

Freshchat has no incremental list of conversations (see ../shared/notes/helpdesk-apis.md §2.7).
The documented bulk way to enumerate them is the raw-report extract: `POST /v2/reports/raw` for a
time window and the `Chat-Transcript` event, poll `GET /v2/reports/raw/{id}` until it is
COMPLETED, then download its CSV (a short-lived link, often on another host: the bearer key is
only ever sent to the Freshchat host). Each conversation id found is read with
`GET /v2/conversations/{id}` and its messages with `GET /v2/conversations/{id}/messages`
(newest first, `link.next` to follow). The checkpoint is the end of the last window done.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.errors import ApiError
from connectors.freshdesk_mapping import chat_messages, chat_to_record, iso, parse_time
from connectors.http import ApiClient, Clock, SystemClock, make_http_client
from connectors.records import ConversationRecord, MessageRecord, Page
from connectors.settings import FreshchatSettings, RateLimitSettings

log = logging.getLogger("cjm.freshchat")

REPORTS = "/v2/reports/raw"
REPORT = "/v2/reports/raw/{id}"
CONVERSATION = "/v2/conversations/{id}"
MESSAGES = "/v2/conversations/{id}/messages"
TRANSCRIPT_EVENT = "Chat-Transcript"
ID_COLUMNS = ("conversation_id", "Conversation ID", "conversation id")
MAX_REPORT_POLLS = 60


class FreshchatClient:
    """Pulls the `freshchat` stream of a Freshdesk source as chat-transcript pages."""

    def __init__(
        self,
        settings: FreshchatSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or SystemClock()
        self._now = now or (lambda: datetime.now(UTC))
        host = urlsplit(settings.base_url).netloc
        client = make_http_client(
            settings.base_url,
            auth=_HostBearerAuth(settings.token, host) if settings.token else None,
            timeout_seconds=120.0,
            transport=transport,
        )
        self.api = ApiClient(
            client,
            vendor="Freshchat",
            credential_env=settings.credential_env,
            base_url_hint=settings.base_url,
            limits=RateLimitSettings(
                requests_per_minute=settings.requests_per_minute,
                budget_share=settings.budget_share,
            ),
            clock=self._clock,
        )

    async def aclose(self) -> None:
        await self.api.client.aclose()

    async def pull(self, checkpoint: str | None, start: datetime) -> AsyncIterator[Page]:
        now = self._now()
        window_start = parse_time(checkpoint) if checkpoint else start
        window_start = max(window_start, now - timedelta(days=self.settings.lookback_days))
        step = timedelta(hours=self.settings.report_window_hours)
        while window_start < now:
            window_end = min(window_start + step, now)
            conversations, messages = [], []
            for conversation_id in await self._conversation_ids(window_start, window_end):
                record, found = await self._transcript(conversation_id)
                if record is not None:
                    conversations.append(record)
                    messages.extend(found)
            yield Page(
                stream="freshchat",
                checkpoint=iso(window_end),
                conversations=tuple(conversations),
                messages=tuple(messages),
            )
            window_start = window_end

    async def _conversation_ids(self, start: datetime, end: datetime) -> list[str]:
        response = await self.api.request(
            "POST",
            REPORTS,
            endpoint="reports/raw",
            json={"start": iso(start), "end": iso(end), "event": TRANSCRIPT_EVENT, "format": "csv"},
        )
        report_id = self.api.decode(response, "reports/raw").get("id")
        if not report_id:
            raise ApiError("Freshchat reports/raw answered without a report id")
        for _ in range(MAX_REPORT_POLLS):
            body = await self.api.get_json(REPORT.format(id=report_id), endpoint="reports/raw/show")
            status = str(body.get("status") or "").upper()
            if status == "COMPLETED":
                break
            if status in ("FAILED", "ERROR"):
                raise ApiError(f"Freshchat report {report_id} failed ({status})")
            await self._clock.sleep(self.settings.report_poll_seconds)
        else:
            raise ApiError(f"Freshchat report {report_id} did not complete; run again later")
        ids: dict[str, None] = {}
        for link in body.get("links") or ():
            href = (link.get("link") or {}).get("href") if isinstance(link, dict) else None
            if href:
                response = await self.api.request("GET", href, endpoint="reports/raw/download")
                ids.update(dict.fromkeys(_csv_ids(response.text)))
        return list(ids)

    async def _transcript(
        self, conversation_id: str
    ) -> tuple[ConversationRecord | None, list[MessageRecord]]:
        response = await self.api.request(
            "GET",
            CONVERSATION.format(id=conversation_id),
            endpoint="conversations/show",
            not_found_ok=True,
        )
        if response.status_code == 404:
            return None, []
        raw = self.api.decode(response, "conversations/show")
        found: list[dict[str, Any]] = []
        url: str | None = MESSAGES.format(id=conversation_id)
        params: dict[str, Any] | None = {
            "items_per_page": self.settings.messages_per_page,
            "page": 1,
        }
        while url:
            body = await self.api.get_json(url, endpoint="conversations/messages", params=params)
            found.extend(body.get("messages") or ())
            link = body.get("link") or {}
            url = link.get("href") if link.get("rel") == "next" else None
            params = None
        messages = chat_messages(found, conversation_id)
        last = messages[-1].created_at if messages else None
        return chat_to_record(raw, last), messages


class _HostBearerAuth(httpx.Auth):
    """Bearer key for the Freshchat host only: report downloads live on other hosts."""

    def __init__(self, token: str, host: str) -> None:
        self._header = f"Bearer {token}"
        self._host = host

    def auth_flow(self, request: httpx.Request):
        if request.url.netloc.decode() == self._host:
            request.headers["Authorization"] = self._header
        yield request


def _csv_ids(text: str) -> list[str]:
    reader = csv.DictReader(io.StringIO(text))
    column = next((c for c in ID_COLUMNS if c in (reader.fieldnames or ())), None)
    if column is None:
        return []
    return [row[column] for row in reader if row.get(column)]
