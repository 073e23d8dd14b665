"""The Webhooks and Triggers API of the simulated Zendesk, and its simulator-only admin routes.

API routes (authenticated, counted and rate-limited like every other route by ``routes``):
``/api/v2/webhooks`` (POST, GET; ``/{id}``: GET, PUT, PATCH, DELETE; ``/{id}/signing_secret``:
GET shows it, POST resets it) and ``/api/v2/triggers`` (POST, GET; ``/{id}``: GET, PUT,
DELETE), with and without ``.json`` as Zendesk accepts both for triggers.

Admin routes (``/_sim/…``, no auth: the simulator binds 127.0.0.1 only) do what a customer or an
agent would do in Zendesk's UI, so a benchmark in another process can cause webhooks:
``POST /_sim/tickets`` (an end user opens a ticket), ``POST /_sim/tickets/{id}/comments``
(``{"body", "public", "author": "end_user"|"agent"}``), ``GET /_sim/webhook_deliveries`` (the
attempt log, counts only) and ``PUT /_sim/webhook_faults`` (duplicates, reordering, retry
speed).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .http import ApiError, JsonResponse, api_error
from .state import ZendeskSimulator
from .webhooks import WebhookError, trigger_json, webhook_json

Handler = Callable[[ZendeskSimulator, Request, str], Awaitable[Response]]


async def _body(request: Request, key: str | None = None) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise api_error(400, "InvalidJSON", "The request body is not valid JSON") from exc
    if key is not None and isinstance(body, dict):
        body = body.get(key)
    if not isinstance(body, dict):
        raise api_error(400, "InvalidJSON", f"The request body must hold a {key or 'JSON'} object")
    return body


def _invalid(exc: WebhookError) -> ApiError:
    return ApiError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {"base": [{"description": str(exc)}]},
        },
    )


def _not_found() -> ApiError:
    return api_error(404, "RecordNotFound", "Not found")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# ---- webhooks -----------------------------------------------------------------------------


async def _webhook_create(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = await _body(request, "webhook")
    with sim.lock:
        try:
            hook = sim.webhooks.create_webhook(body, sim.now_ts())
        except WebhookError as exc:
            raise _invalid(exc) from None
        return JsonResponse({"webhook": webhook_json(hook)}, status_code=201)


async def _webhook_list(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    contains = request.query_params.get("filter[name_contains]", "").lower()
    with sim.lock:
        hooks = [
            webhook_json(h) for h in sim.webhooks.webhooks.values() if contains in h.name.lower()
        ]
    return JsonResponse(
        {
            "webhooks": hooks,
            "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
            "links": {"next": None, "prev": None},
        }
    )


def _hook(sim: ZendeskSimulator, request: Request):  # noqa: ANN202 - a Webhook
    hook = sim.webhooks.webhooks.get(request.path_params["webhook_id"])
    if hook is None:
        raise _not_found()
    return hook


async def _webhook_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        return JsonResponse({"webhook": webhook_json(_hook(sim, request))})


async def _webhook_update(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = await _body(request, "webhook")
    with sim.lock:
        hook = _hook(sim, request)
        try:
            sim.webhooks.update_webhook(hook, body, sim.now_ts(), replace=request.method == "PUT")
        except WebhookError as exc:
            raise _invalid(exc) from None
    return Response(status_code=204)


async def _webhook_delete(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        if not sim.webhooks.delete_webhook(request.path_params["webhook_id"]):
            raise _not_found()
    return Response(status_code=204)


async def _secret_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        hook = _hook(sim, request)
        return JsonResponse({"signing_secret": {"algorithm": "SHA256", "secret": hook.secret}})


async def _secret_reset(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        secret = sim.webhooks.reset_secret(_hook(sim, request))
    return JsonResponse(
        {"signing_secret": {"algorithm": "SHA256", "secret": secret}}, status_code=201
    )


# ---- triggers -----------------------------------------------------------------------------


async def _trigger_create(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = await _body(request, "trigger")
    with sim.lock:
        try:
            trigger = sim.webhooks.create_trigger(body, sim.now_ts())
        except WebhookError as exc:
            raise _invalid(exc) from None
        return JsonResponse({"trigger": trigger_json(trigger, _base(request))}, status_code=201)


async def _trigger_list(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    active = request.query_params.get("active")
    with sim.lock:
        triggers = [
            trigger_json(t, _base(request))
            for t in sorted(sim.webhooks.triggers.values(), key=lambda t: (t.position, t.id))
            if active is None or str(t.active).lower() == active.lower()
        ]
    return JsonResponse(
        {"triggers": triggers, "next_page": None, "previous_page": None, "count": len(triggers)}
    )


def _trigger(sim: ZendeskSimulator, request: Request):  # noqa: ANN202 - a Trigger
    trigger = sim.webhooks.triggers.get(int(request.path_params["trigger_id"]))
    if trigger is None:
        raise _not_found()
    return trigger


async def _trigger_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        return JsonResponse({"trigger": trigger_json(_trigger(sim, request), _base(request))})


async def _trigger_update(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = await _body(request, "trigger")
    with sim.lock:
        trigger = _trigger(sim, request)
        try:
            sim.webhooks.update_trigger(trigger, body, sim.now_ts())
        except WebhookError as exc:
            raise _invalid(exc) from None
        return JsonResponse({"trigger": trigger_json(trigger, _base(request))})


async def _trigger_delete(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        if not sim.webhooks.delete_trigger(int(request.path_params["trigger_id"])):
            raise _not_found()
    return Response(status_code=204)


_HOOK = "/api/v2/webhooks/{webhook_id}"
# (method, path, counter key, handler, is export, is list) — the format of routes._ROUTES.
WEBHOOK_ROUTES: tuple[tuple[str, str, str, Handler, bool, bool], ...] = (
    ("POST", "/api/v2/webhooks", "POST /api/v2/webhooks", _webhook_create, False, False),
    ("GET", "/api/v2/webhooks", "GET /api/v2/webhooks", _webhook_list, False, True),
    ("GET", _HOOK, "GET /api/v2/webhooks/{id}", _webhook_show, False, False),
    ("PUT", _HOOK, "PUT /api/v2/webhooks/{id}", _webhook_update, False, False),
    ("PATCH", _HOOK, "PATCH /api/v2/webhooks/{id}", _webhook_update, False, False),
    ("DELETE", _HOOK, "DELETE /api/v2/webhooks/{id}", _webhook_delete, False, False),
    (
        "GET",
        f"{_HOOK}/signing_secret",
        "GET /api/v2/webhooks/{id}/signing_secret",
        _secret_show,
        False,
        False,
    ),
    (
        "POST",
        f"{_HOOK}/signing_secret",
        "POST /api/v2/webhooks/{id}/signing_secret",
        _secret_reset,
        False,
        False,
    ),
) + tuple(
    route
    for suffix in ("", ".json")
    for route in (
        (
            "POST",
            f"/api/v2/triggers{suffix}",
            "POST /api/v2/triggers",
            _trigger_create,
            False,
            False,
        ),
        ("GET", f"/api/v2/triggers{suffix}", "GET /api/v2/triggers", _trigger_list, False, True),
        (
            "GET",
            f"/api/v2/triggers/{{trigger_id:int}}{suffix}",
            "GET /api/v2/triggers/{id}",
            _trigger_show,
            False,
            False,
        ),
        (
            "PUT",
            f"/api/v2/triggers/{{trigger_id:int}}{suffix}",
            "PUT /api/v2/triggers/{id}",
            _trigger_update,
            False,
            False,
        ),
        (
            "DELETE",
            f"/api/v2/triggers/{{trigger_id:int}}{suffix}",
            "DELETE /api/v2/triggers/{id}",
            _trigger_delete,
            False,
            False,
        ),
    )
)


# ---- simulator-only admin routes ----------------------------------------------------------


def admin_routes(sim: ZendeskSimulator) -> list[Route]:
    """What people do in Zendesk's UI, over HTTP, for benchmarks running in another process."""

    async def create_ticket(request: Request) -> Response:
        try:
            body = await _body(request)
        except ApiError as exc:
            return JsonResponse(exc.body, status_code=exc.status)
        text = body.get("body")
        if not isinstance(text, str) or not text.strip():
            return JsonResponse({"error": "body (the first comment) is required"}, status_code=400)
        tid = sim.create_ticket(
            str(body.get("subject") or text[:40]),
            text,
            requester_id=body.get("requester_id"),
            channel=str(body.get("channel") or "web"),
        )
        return JsonResponse({"ticket": {"id": tid}}, status_code=201)

    async def add_comment(request: Request) -> Response:
        try:
            body = await _body(request)
        except ApiError as exc:
            return JsonResponse(exc.body, status_code=exc.status)
        tid = int(request.path_params["ticket_id"])
        text = body.get("body")
        author = body.get("author", "end_user")
        if not isinstance(text, str) or not text.strip() or author not in ("end_user", "agent"):
            return JsonResponse(
                {"error": "body is required; author is end_user or agent"}, status_code=400
            )
        with sim.lock:
            t = sim.find_ticket(tid)
            if t is None:
                return JsonResponse({"error": "RecordNotFound"}, status_code=404)
            author_id = t.requester_id if author == "end_user" else sim.agent_ids()[0]
            try:
                cid = sim.add_comment(tid, author_id, text, public=bool(body.get("public", True)))
            except ValueError as exc:
                return JsonResponse({"error": str(exc)}, status_code=422)
        return JsonResponse({"comment": {"id": cid, "ticket_id": tid}}, status_code=201)

    async def deliveries(request: Request) -> Response:
        deliverer = sim.webhooks.deliverer
        with sim.lock:
            attempts = [a.__dict__ for a in deliverer.attempts]
        return JsonResponse(
            {"attempts": attempts, "pending": deliverer.pending(), "fired": sim.webhooks.fired}
        )

    async def faults(request: Request) -> Response:
        try:
            body = await _body(request)
        except ApiError as exc:
            return JsonResponse(exc.body, status_code=exc.status)
        deliverer = sim.webhooks.deliverer
        for name in ("duplicate_every", "reorder_window"):
            if name in body:
                setattr(deliverer.faults, name, int(body[name]))
        if "retry_scale" in body:
            deliverer.retry_scale = float(body["retry_scale"])
        if "timeout_seconds" in body:
            deliverer.timeout_seconds = float(body["timeout_seconds"])
        return Response(status_code=204)

    return [
        Route("/_sim/tickets", create_ticket, methods=["POST"]),
        Route("/_sim/tickets/{ticket_id:int}/comments", add_comment, methods=["POST"]),
        Route("/_sim/webhook_deliveries", deliveries, methods=["GET"]),
        Route("/_sim/webhook_faults", faults, methods=["PUT"]),
    ]
