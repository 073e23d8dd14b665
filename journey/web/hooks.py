"""Helpdesk webhooks: authenticate, store a `webhook_event`, answer 202 — nothing else.

The payload is a doorbell: it only names a ticket (`{"ticket_id": "{{ticket.id}}"}`); a worker
reads the ticket from the API (journey/worker.py). Answering fast matters: Zendesk times out
after ~10 s and opens a circuit breaker on repeated errors, so the handler does one insert.

Zendesk (`POST /hooks/zendesk/{source}`): `X-Zendesk-Webhook-Signature` must equal
base64(HMAC-SHA256(signing secret, `X-Zendesk-Webhook-Signature-Timestamp` + raw body)),
compared in constant time; a timestamp more than 5 minutes away is a replay. Deliveries are
deduplicated on (`x-zendesk-webhook-id`, `x-zendesk-webhook-invocation-id`, ticket).
Freshdesk (`POST /hooks/freshdesk/{source}`): its webhooks are unsigned, so the automation rule
sends the shared secret in `Authorization` (`Bearer <secret>` or the bare secret).

Errors, checked in this order, each a JSON `{"error": …}` and one log line without the secret or
any body text: unknown source or a source of the other kind → 404; body over 1 MiB → 413; no
secret configured, missing or wrong signature, old timestamp → 401; malformed JSON or no ticket
id → 400. Nothing is stored unless the answer is 202.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from journey import events
from journey.config import SourceConfig
from journey.credentials import webhook_secret
from journey.errors import CjmError
from journey.web.context import WebContext
from journey.worker import POOL_KEY

log = logging.getLogger("cjm.serve")

MAX_BODY = 1 << 20  # 1 MiB: a doorbell is a few hundred bytes
REPLAY_WINDOW = timedelta(minutes=5)
SIGNATURE = "x-zendesk-webhook-signature"
TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
INVOCATION = "x-zendesk-webhook-invocation-id"
WEBHOOK_ID = "x-zendesk-webhook-id"


class HookError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def routes(context: WebContext) -> list[BaseRoute]:
    async def zendesk(request: Request) -> Response:
        return await _handle(context, request, "zendesk")

    async def freshdesk(request: Request) -> Response:
        return await _handle(context, request, "freshdesk")

    return [
        Route("/hooks/zendesk/{source}", zendesk, methods=["POST"]),
        Route("/hooks/freshdesk/{source}", freshdesk, methods=["POST"]),
    ]


async def _handle(context: WebContext, request: Request, kind: str) -> Response:
    name = request.path_params["source"]
    try:
        source = _source(context, name, kind)
        body = await _read_body(request)
        try:
            secret = await run_in_threadpool(
                webhook_secret, context.settings, context.engine, source
            )
        except CjmError as exc:  # the variable is named but not set: the server's problem
            log.error("%s webhook for %r: %s", kind, name, exc)
            secret = None
        if not secret:
            raise HookError(
                401,
                f"no webhook secret for source {name!r}: set the variable webhook_secret_env "
                "names, or run `cjm setup-webhook`",
            )
        if kind == "zendesk":
            check_zendesk_signature(request.headers, body, secret)
        else:
            check_shared_secret(request.headers.get("authorization"), secret)
        tickets = ticket_ids(body)
    except HookError as exc:
        log.warning("%s webhook for %r rejected (%d): %s", kind, name, exc.status, exc.message)
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    delivery = _delivery(request, body)
    added = await run_in_threadpool(events.enqueue, context.engine, name, delivery, tickets)
    pool = context.state.get(POOL_KEY)
    if added and pool is not None:
        pool.wake()  # type: ignore[attr-defined]
    log.info(
        "%s webhook for %r: ticket %s %s",
        kind, name, ",".join(tickets), "queued" if added else "already queued (duplicate)",
    )  # fmt: skip
    return JSONResponse(
        {"status": "queued" if added else "duplicate", "tickets": tickets}, status_code=202
    )


def _source(context: WebContext, name: str, kind: str) -> SourceConfig:
    for source in context.settings.sources:
        if source.name == name:
            if source.kind != kind:
                raise HookError(
                    404,
                    f"source {name!r} is a {source.kind} source: use /hooks/{source.kind}/{name}",
                )
            return source
    raise HookError(404, f"no source named {name!r} in cjm's config")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise HookError(413, f"body over {MAX_BODY} bytes: a webhook body names a ticket only")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise HookError(
                    413, f"body over {MAX_BODY} bytes: a webhook body names a ticket only"
                )
            chunks.append(chunk)
    except ClientDisconnect:
        raise HookError(400, "the client disconnected before the body ended") from None
    return b"".join(chunks)


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, timestamp + body)), as Zendesk signs a webhook."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_zendesk_signature(
    headers: Any, body: bytes, secret: str, now: datetime | None = None
) -> None:
    signature = headers.get(SIGNATURE)
    timestamp = headers.get(TIMESTAMP)
    if not signature or not timestamp:
        raise HookError(401, f"unsigned webhook: {SIGNATURE} and {TIMESTAMP} are required")
    expected = zendesk_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise HookError(401, "wrong signature (check the webhook's signing secret)")
    try:
        sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise HookError(401, f"{TIMESTAMP} is not an ISO-8601 time") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs((now or datetime.now(UTC)) - sent) > REPLAY_WINDOW:
        raise HookError(401, "timestamp more than 5 minutes away: a replayed or delayed request")


def check_shared_secret(authorization: str | None, secret: str) -> None:
    if not authorization:
        raise HookError(401, "missing Authorization header (Bearer <webhook secret>)")
    value = authorization.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    if not hmac.compare_digest(value.encode(), secret.encode()):
        raise HookError(401, "wrong webhook secret in the Authorization header")


def ticket_ids(body: bytes) -> list[str]:
    """The ticket(s) a doorbell names: `ticket_id` (number or digits), top level or under
    `freshdesk_webhook`; nothing else of the payload is used."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HookError(400, 'body is not JSON: expected {"ticket_id": "{{ticket.id}}"}') from None
    if isinstance(payload, dict) and isinstance(payload.get("freshdesk_webhook"), dict):
        payload = payload["freshdesk_webhook"]
    value = payload.get("ticket_id") if isinstance(payload, dict) else None
    if isinstance(value, bool) or value is None:
        raise HookError(400, 'no ticket_id in the body: expected {"ticket_id": "{{ticket.id}}"}')
    text = str(value).strip()
    if not text.isdigit() or len(text) > 20:
        raise HookError(400, "ticket_id must be a ticket number (digits only)")
    return [str(int(text))]


def _delivery(request: Request, body: bytes) -> str:
    invocation = request.headers.get(INVOCATION)
    if invocation:
        return f"{request.headers.get(WEBHOOK_ID, '')}:{invocation}"[:200]
    return events.body_key(body)
