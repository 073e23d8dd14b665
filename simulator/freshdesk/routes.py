"""The Freshdesk and Freshchat API routes of the simulator: Starlette apps serving one
``FreshdeskSimulator``. Handlers parse the request, read or change the account through its
public methods (under ``sim.lock``) and answer with a shape from ``shapes``; ``_endpoint`` adds
request counting, authentication and the credits, limits and faults of ``limits``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.freshdesk import shapes
from simulator.freshdesk.admin import admin_routes
from simulator.freshdesk.http import ApiError, JsonResponse, not_found, validation_error
from simulator.freshdesk.limits import conflict_due, gate, maybe_malformed
from simulator.freshdesk.state import (
    DEFAULT_PER_PAGE,
    DEFAULT_WINDOW_DAYS,
    FILTERS,
    INTEGRATION_AGENT_ID,
    LIST_INCLUDES,
    MAX_PER_PAGE,
    FreshdeskSimulator,
    Ticket,
    iso,
)

Handler = Callable[[FreshdeskSimulator, Request], Awaitable[Response]]


def _parse_iso(value: str) -> int:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise validation_error("updated_since", "It should be in the 'valid date' format") from exc
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise validation_error(
            name, "It should be a/an Positive Integer", "datatype_mismatch"
        ) from exc


def _paging(request: Request, sim: FreshdeskSimulator, cap: bool = True) -> tuple[int, int]:
    per_page = _int(request, "per_page", DEFAULT_PER_PAGE)
    page = _int(request, "page", 1)
    if per_page < 1 or per_page > MAX_PER_PAGE:
        raise validation_error("per_page", "Must be a number between 1 and 100")
    if page < 1:
        raise validation_error("page", "It should be a Positive Integer")
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


def _ticket(sim: FreshdeskSimulator, request: Request, *, archived: bool = False) -> Ticket:
    t = sim.find_ticket(int(request.path_params["ticket_id"]))
    if t is None or t.archived != archived:
        raise not_found()
    return t


async def _list_tickets(sim: FreshdeskSimulator, request: Request) -> Response:
    q = request.query_params
    flt = q.get("filter")
    if flt is not None and flt not in FILTERS:
        raise validation_error("filter", f"It should be one of these values: '{','.join(FILTERS)}'")
    include = [x for x in q.get("include", "").split(",") if x]
    if any(x not in LIST_INCLUDES for x in include):
        raise validation_error(
            "include", "It should be one of these values: 'requester,stats,description'"
        )
    order_by = q.get("order_by", "created_at")
    if order_by not in ("created_at", "updated_at", "due_by", "status"):
        raise validation_error(
            "order_by", "It should be one of these values: 'created_at,due_by,updated_at,status'"
        )
    desc = q.get("order_type", "desc") == "desc"
    since = _parse_iso(q["updated_since"]) if q.get("updated_since") else None
    per_page, page = _paging(request, sim)
    with sim.lock:
        ids = sim.matching(flt, since, "updated_at" if order_by == "updated_at" else "created_at")
        if desc:
            ids = ids[::-1]
        chunk = ids[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(ids)
        items = [shapes.ticket_json(sim, sim.ticket_state(i), include) for i in chunk]
    return JsonResponse(items, headers=_link(request, page) if more else None)


async def _show_ticket(sim: FreshdeskSimulator, request: Request) -> Response:
    include = [x for x in request.query_params.get("include", "").split(",") if x]
    with sim.lock:
        t = _ticket(sim, request)
        body = shapes.ticket_json(sim, t, ("description", *include))
        if "conversations" in include:
            body["conversations"] = [shapes.conv_json(sim, t, c) for c in t.convs[:10]]
    return JsonResponse(body)


async def _show_archived(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim.lock:
        t = _ticket(sim, request, archived=True)
        return JsonResponse(shapes.ticket_json(sim, t, ("description",)))


async def _conversations(
    sim: FreshdeskSimulator, request: Request, archived: bool = False
) -> Response:
    per_page, page = _paging(request, sim, cap=False)
    with sim.lock:
        t = _ticket(sim, request, archived=archived)
        if t.deleted:
            raise not_found()
        chunk = t.convs[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(t.convs)
        items = [shapes.conv_json(sim, t, c) for c in chunk]
    return JsonResponse(items, headers=_link(request, page) if more else None)


async def _archived_conversations(sim: FreshdeskSimulator, request: Request) -> Response:
    return await _conversations(sim, request, archived=True)


async def _update_ticket(sim: FreshdeskSimulator, request: Request) -> Response:
    body = await _body(request)
    with sim.lock:
        t = _ticket(sim, request)
        if t.deleted or t.spam:
            raise not_found()
        if conflict_due(sim):
            raise ApiError(
                409,
                {
                    "code": "inconsistent_state",
                    "description": "The ticket was updated by someone else",
                },
            )
        custom = body.get("custom_fields") or {}
        if not isinstance(custom, dict):
            raise validation_error(
                "custom_fields", "It should be a/an key/value pair", "datatype_mismatch"
            )
        for name, value in custom.items():
            fld = sim.field(name)
            if fld is None or fld["default"]:
                raise validation_error(name, "Unexpected/invalid field in request", "invalid_field")
            allowed = [c["value"] for c in fld["choices"]]
            if value is not None and value not in allowed:
                raise validation_error(
                    name, f"It should be one of these values: '{','.join(allowed)}'"
                )
        if "tags" in body:
            tags = body["tags"]
            if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
                raise validation_error("tags", "It should be a/an Array", "datatype_mismatch")
            t.tags = tuple(dict.fromkeys(tags))  # Freshdesk replaces the whole list
        t.custom.update(custom)
        if "status" in body:
            t.status = int(body["status"])
        sim.touch(t)
        sim.notify(t.id, "ticket_updated", "agent")  # the API key belongs to an agent
        return JsonResponse(shapes.ticket_json(sim, t, ()))


async def _agents(sim: FreshdeskSimulator, request: Request) -> Response:
    per_page, page = _paging(request, sim, cap=False)
    with sim.lock:
        chunk = sim.agents[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(sim.agents)
    items = [shapes.agent_json(aid, first, last) for aid, first, last in chunk]
    return JsonResponse(items, headers=_link(request, page) if more else None)


async def _me(sim: FreshdeskSimulator, request: Request) -> Response:
    del request
    return JsonResponse({"id": INTEGRATION_AGENT_ID, "contact": {"name": "Acme Integration"}})


async def _fields(sim: FreshdeskSimulator, request: Request) -> Response:
    del request
    with sim.lock:
        return JsonResponse([dict(f) for f in sim.fields()])


async def _create_field(sim: FreshdeskSimulator, request: Request) -> Response:
    body = await _body(request)
    label, ftype = body.get("label"), body.get("type")
    if not label or ftype != "custom_dropdown":
        raise validation_error("type", "It should be one of these values: 'custom_dropdown,...'")
    choices = body.get("choices") or []
    if not choices or not all(isinstance(c, dict) and c.get("value") for c in choices):
        raise validation_error("choices", "It should not be blank for a dropdown")
    with sim.lock:
        name = "cf_" + re.sub(r"[^a-z0-9]+", "_", str(label).lower()).strip("_")
        if sim.field(name):
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
        fld = sim.create_field(str(label), choices, iso(sim.now_ts()))
        return JsonResponse(dict(fld), status_code=201)


async def _update_field(sim: FreshdeskSimulator, request: Request) -> Response:
    """Choices REPLACE the list: a choice left out is deleted and cleared from every ticket."""
    body = await _body(request)
    with sim.lock:
        fid = int(request.path_params["field_id"])
        fld = sim.field_by_id(fid)
        if fld is None:
            raise not_found()
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
                    sim.clear_field_value(fld["name"], old["value"])
            fld["choices"] = new
        fld["updated_at"] = iso(sim.now_ts())
        return JsonResponse(dict(fld))


async def _ratings(sim: FreshdeskSimulator, request: Request) -> Response:
    q = request.query_params
    since = (
        _parse_iso(q["created_since"])
        if q.get("created_since")
        else (sim.now_ts() - DEFAULT_WINDOW_DAYS * 86400)
    )
    per_page, page = _paging(request, sim)
    with sim.lock:
        rows = sorted(
            (t.rating[1], t.rating[0], t)
            for t in sim.tickets()
            if t.rating and t.rating[1] >= since  # archived tickets keep their survey results
        )
        chunk = rows[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(rows)
        items = [shapes.rating_json(rid, ts, t) for ts, rid, t in chunk]
    return JsonResponse(items, headers=_link(request, page) if more else None)


# ---- Freshchat --------------------------------------------------------------------------------


async def _fc_report_create(sim: FreshdeskSimulator, request: Request) -> Response:
    body = await _body(request)
    try:
        start, end = _parse_iso(body["start"]), _parse_iso(body["end"])
    except KeyError as exc:
        raise ApiError(400, {"message": "start and end are required"}) from exc
    with sim.lock:
        rid = sim.new_report(start, end, str(body.get("event")))
    return JsonResponse({"id": rid, "status": "IN_PROGRESS"}, status_code=202)


async def _fc_report_show(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim.lock:
        report = sim.report(request.path_params["report_id"])
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
                "from": iso(report[0]),
                "to": iso(report[1]),
            }
        ]
    return JsonResponse(out)


async def _fc_report_file(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim.lock:
        report = sim.report(request.path_params["report_id"])
        if report is None:
            raise ApiError(404, {"message": "report not found"})
        start, end = report[0], report[1]
        rows = sorted({c.id for c in sim.chats() for m in c.messages if start <= m[1] < end})
    text = "conversation_id,channel\n" + "".join(f"{cid},web\n" for cid in rows)
    return Response(text, media_type="text/csv")


async def _fc_conversation(sim: FreshdeskSimulator, request: Request) -> Response:
    with sim.lock:
        chat = sim.chat(request.path_params["conversation_id"])
        if chat is None:
            raise ApiError(404, {"message": "conversation not found"})
        return JsonResponse(
            {
                "conversation_id": chat.id,
                "channel_id": "web",
                "status": chat.status,
                "created_time": iso(chat.created),
                "users": [{"id": chat.user_id}],
                "assigned_agent_id": "agent-0",
            }
        )


async def _fc_messages(sim: FreshdeskSimulator, request: Request) -> Response:
    per_page = max(1, min(50, _int(request, "items_per_page", 20)))
    page = max(1, _int(request, "page", 1))
    cid = request.path_params["conversation_id"]
    with sim.lock:
        chat = sim.chat(cid)
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
                "created_time": iso(ts),
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
    return JsonResponse(out)


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


# ---- the apps -------------------------------------------------------------------------------


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
        with sim.lock:
            sim.requests[key] += 1
        headers: dict[str, str] = {}
        try:
            open_file = freshchat and key.endswith("/file")  # a pre-signed download link
            with sim.lock:
                if not open_file and not _authenticate(sim, request, freshchat):
                    raise ApiError(
                        401,
                        {
                            "code": "invalid_credentials",
                            "message": "You have to be logged in to perform this action.",
                        },
                    )
                if not freshchat:
                    headers = gate(sim, request, listing)
            response = await handler(sim, request)
            response = maybe_malformed(sim, response)
        except ApiError as exc:
            response = JsonResponse(exc.body, status_code=exc.status, headers=exc.headers)
        response.headers.update(headers)
        with sim.lock:
            sim.status_counts[response.status_code] += 1
        return response

    return endpoint


async def _unknown(request: Request, exc: Exception) -> Response:
    del request, exc
    return JsonResponse({"code": "invalid_endpoint", "description": "Not found"}, status_code=404)


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
    """The ASGI app serving the Freshdesk API of `sim` (API key as Basic user, password X),
    plus the simulator-only admin routes of ``admin`` (automation rules, customer replies)."""
    app = _app(sim, _ROUTES, freshchat=False)
    for route in admin_routes(sim):
        app.router.routes.append(route)
    return app


def create_freshchat_app(sim: FreshdeskSimulator) -> Starlette:
    """The ASGI app serving the Freshchat API of `sim` (bearer token), on its own host."""
    return _app(sim, _FRESHCHAT_ROUTES, freshchat=True)
