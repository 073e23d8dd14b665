"""`/api/v1`: what the agent sidebar apps read and write (JSON).

    GET  /api/v1/tickets/{source}/{ticket_id}        → journey.ticket_view.ticket_view
    POST /api/v1/tickets/{source}/{ticket_id}/label  → journey.corrections.record_correction
    GET  /api/v1/map/{source}                         → journey.live_map (the apps' map pages)

Authentication per source (journey/web/app_auth.py): Zendesk's per-request HS256 JWT, the
Freshdesk app's bearer token. CORS is limited to `[serve].allowed_origins` (the helpdesk
domains); the Zendesk app calls through Zendesk's server-side proxy and needs none.

A correction is committed (label + outbox) before the answer. When `cjm serve` was started with a
connector factory (``context.state[CONNECTOR_FACTORY]``, set by the CLI) and the source writes
back, the ticket is written at once in a background task through the ordinary write-back path;
otherwise (or while a `cjm sync` holds the source's lock) the outbox row waits for the worker or
the next sync, and the answer says so (`"writeback": "deferred"`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from journey.config import SourceConfig
from journey.corrections import Correction, parse_correction, record_correction
from journey.db import session_scope
from journey.errors import ConfigError, SyncLockedError
from journey.live_map import live_map
from journey.lock import sync_lock
from journey.models import Source
from journey.runner import ConnectorFactory, load_taxonomy_for
from journey.sync import field_ids_for
from journey.ticket_view import TicketRef, find_ticket, ticket_view
from journey.web.app_auth import AuthError, Caller, authenticate
from journey.web.context import WebContext
from journey.writeback import write_back
from miner import Taxonomy

#: `context.state` key of the (Settings, SourceConfig) → connector factory `cjm serve` passes.
CONNECTOR_FACTORY = "connector_factory"
MAX_BODY = 16_384
log = logging.getLogger("cjm.serve.api")


def error(status: int, message: str) -> JSONResponse:
    """Every refusal has the same shape: `{"error": "<one line>"}`."""
    return JSONResponse({"error": message}, status_code=status)


def _taxonomy(context: WebContext) -> Taxonomy:
    cache = context.state.setdefault("api", {})
    assert isinstance(cache, dict)
    if "taxonomy" not in cache:
        cache["taxonomy"] = load_taxonomy_for(context.settings)
    taxonomy = cache["taxonomy"]
    assert isinstance(taxonomy, Taxonomy)
    return taxonomy


def _view(context: WebContext, session: Any, ref: Any) -> dict[str, Any]:
    """The ticket view plus what the app needs to offer a correction: the taxonomy's stages
    and themes (names and labels) and the helpdesk id of the *Journey stage* field."""
    taxonomy = _taxonomy(context)
    view = ticket_view(session, ref)
    source = session.get(Source, ref.source_id)
    view["stage_field_id"] = source.stage_field_id if source is not None else None
    view["choices"] = {
        "stages": [{"name": s.name, "label": s.label} for s in taxonomy.stages],
        "themes": [{"name": t.name, "label": t.label} for t in taxonomy.themes],
    }
    return view


def _source_config(context: WebContext, name: str) -> SourceConfig | None:
    return next((s for s in context.settings.sources if s.name == name), None)


def _guard(context: WebContext, request: Request) -> tuple[SourceConfig, Caller] | JSONResponse:
    name, ticket_id = request.path_params["source"], request.path_params.get("ticket_id")
    config = _source_config(context, name)
    if config is None:
        return error(404, f"unknown source {name!r}: it is not in cjm's config")
    try:
        caller = authenticate(
            context.settings, config, request.headers.get("authorization"), ticket_id
        )
    except AuthError as exc:
        return error(401, str(exc))
    return config, caller


def _read_view(context: WebContext, source: str, ticket_id: str) -> dict[str, Any] | None:
    with session_scope(context.engine) as session:
        ref = find_ticket(session, source, ticket_id)
        return None if ref is None else _view(context, session, ref)


async def get_ticket(context: WebContext, request: Request) -> JSONResponse:
    guarded = _guard(context, request)
    if isinstance(guarded, JSONResponse):
        return guarded
    config, _ = guarded
    ticket_id = request.path_params["ticket_id"]
    # Database work runs in the thread pool: the event loop also answers webhooks.
    view = await run_in_threadpool(_read_view, context, config.name, ticket_id)
    if view is None:
        return error(404, f"ticket {ticket_id} of {config.name!r} is not in cjm yet")
    return JSONResponse(view)


async def get_map(context: WebContext, request: Request) -> Response:
    """The live map of this source for the nav_bar / full_page_app page (HTML by default)."""
    guarded = _guard(context, request)
    if isinstance(guarded, JSONResponse):
        return guarded
    config, _ = guarded
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    params.pop("source", None)  # the app's source, always
    try:
        body, media_type = await run_in_threadpool(
            live_map, context.engine, _taxonomy(context), params, source=config.name
        )
    except ConfigError as exc:
        return error(400, str(exc))
    return Response(body, media_type=media_type)


def _store(
    context: WebContext,
    source: str,
    ticket_id: str,
    correction: Correction,
    labeller: str,
    caller: Caller,
) -> tuple[TicketRef, int] | None:
    with session_scope(context.engine) as session:
        ref = find_ticket(session, source, ticket_id)
    if ref is None:
        return None
    return ref, record_correction(
        context.engine, ref, correction, labeller=labeller, origin=caller.app
    )


async def post_label(context: WebContext, request: Request) -> JSONResponse:
    guarded = _guard(context, request)
    if isinstance(guarded, JSONResponse):
        return guarded
    config, caller = guarded
    ticket_id = request.path_params["ticket_id"]
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return error(413, f"body larger than {MAX_BODY} bytes")
    try:
        body: Any = json.loads(raw or b"null")
    except ValueError:
        return error(400, 'the body is not JSON: send {"stage": "<stage>"}')
    try:
        correction = parse_correction(body, _taxonomy(context))
    except ConfigError as exc:
        return error(400, str(exc))
    agent = caller.agent or (body.get("agent") if isinstance(body.get("agent"), str) else None)
    stored = await run_in_threadpool(
        _store, context, config.name, ticket_id, correction, (agent or caller.app)[:200], caller
    )
    if stored is None:
        return error(404, f"ticket {ticket_id} of {config.name!r} is not in cjm yet")
    ref, label_id = stored
    factory: Any = context.state.get(CONNECTOR_FACTORY)  # set by `cjm serve` (runner)
    if factory is not None and config.writeback:
        state, note = "sending", "written to the ticket now"
        task: BackgroundTask | None = BackgroundTask(
            write_now, context, factory, config, ref.conversation_id
        )
    else:
        state = "deferred"
        note = (
            "write-back is off for this source"
            if not config.writeback
            else "saved; the worker or the next cjm sync writes it to the ticket"
        )
        task = None
    view = await run_in_threadpool(_read_view, context, config.name, ticket_id)
    return JSONResponse(
        {"label_id": label_id, "writeback": state, "note": note, "ticket": view},
        background=task,
    )


async def write_now(
    context: WebContext, factory: ConnectorFactory, config: SourceConfig, conversation_id: int
) -> None:
    """Write one corrected ticket through the ordinary write-back path. A running sync holds
    the source's lock: then that sync (or the next) sends it; nothing is lost either way."""
    engine: Engine = context.engine
    with session_scope(engine) as session:
        source = session.execute(select(Source).where(Source.name == config.name)).scalar_one()
        source_id, fields = source.id, field_ids_for(source)
    assert source_id is not None
    if not fields.stage:
        log.warning("correction kept in the outbox: run `cjm setup-fields` for %s", config.name)
        return
    try:
        with sync_lock(engine, config.name):
            connector = factory(context.settings, config)
            try:
                report = await write_back(
                    engine, source_id, connector, fields, conversation_ids=[conversation_id]
                )
            finally:
                await connector.aclose()
    except SyncLockedError:
        log.info("correction kept in the outbox: a sync of %s is running", config.name)
        return
    except Exception as exc:  # noqa: BLE001 - the outbox keeps it; the next sync retries
        log.warning("correction kept in the outbox (%s: %s)", type(exc).__name__, exc)
        return
    if report.failed:
        log.warning("correction write-back failed: %s", "; ".join(report.errors))


def routes(context: WebContext) -> list[BaseRoute]:
    async def get(request: Request) -> JSONResponse:
        return await get_ticket(context, request)

    async def post(request: Request) -> JSONResponse:
        return await post_label(context, request)

    async def journey_map(request: Request) -> Response:
        return await get_map(context, request)

    api = Starlette(
        routes=[
            Route("/tickets/{source}/{ticket_id}", get, methods=["GET"]),
            Route("/tickets/{source}/{ticket_id}/label", post, methods=["POST"]),
            Route("/map/{source}", journey_map, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(context.settings.serve.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        ],
    )
    return [Mount("/api/v1", app=api)]
