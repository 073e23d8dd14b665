"""Simulator-only admin routes of the Freshdesk simulator (``/_sim/…``, no auth: 127.0.0.1).

What an admin, a customer or an agent does in Freshdesk's UI, over HTTP, so tests and benchmarks
in another process can cause webhooks: ``PUT /_sim/automation_rules`` (a rule with a "Trigger
webhook" action, see ``webhooks``), ``POST /_sim/tickets`` (a customer opens a ticket),
``POST /_sim/tickets/{id}/reply`` (``{"body", "incoming": true}``: a customer reply by default)
and ``GET /_sim/webhook_deliveries`` (the attempt log, counts only).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.freshdesk.http import JsonResponse
from simulator.freshdesk.state import FreshdeskSimulator
from simulator.freshdesk.webhooks import RuleError


async def _object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _bad(message: str, status: int = 400) -> Response:
    return JsonResponse({"description": message}, status_code=status)


def admin_routes(sim: FreshdeskSimulator) -> list[Route]:
    async def put_rule(request: Request) -> Response:
        body = await _object(request)
        if body is None:
            return _bad("the body must be a JSON object")
        try:
            with sim.lock:
                rule = sim.webhooks.put_rule(body)
        except RuleError as exc:
            return _bad(str(exc))
        return JsonResponse({"id": rule.id, "name": rule.name}, status_code=200)

    async def create_ticket(request: Request) -> Response:
        body = await _object(request)
        if body is None or not isinstance(body.get("description"), str):
            return _bad("description (the customer's first message) is required")
        tid = sim.create_ticket(str(body.get("subject") or "Help"), body["description"])
        return JsonResponse({"id": tid}, status_code=201)

    async def reply(request: Request) -> Response:
        body = await _object(request)
        if body is None or not isinstance(body.get("body"), str) or not body["body"].strip():
            return _bad("body is required")
        tid = int(request.path_params["ticket_id"])
        if sim.find_ticket(tid) is None:
            return _bad("ticket not found", 404)
        cid = sim.add_reply(tid, body["body"], incoming=bool(body.get("incoming", True)))
        return JsonResponse({"id": cid, "ticket_id": tid}, status_code=201)

    async def deliveries(request: Request) -> Response:
        deliverer = sim.webhooks.deliverer
        attempts = [a.__dict__ for a in list(deliverer.attempts)]
        return JsonResponse(
            {"attempts": attempts, "pending": deliverer.pending(), "fired": sim.webhooks.fired}
        )

    return [
        Route("/_sim/automation_rules", put_rule, methods=["PUT"]),
        Route("/_sim/tickets", create_ticket, methods=["POST"]),
        Route("/_sim/tickets/{ticket_id:int}/reply", reply, methods=["POST"]),
        Route("/_sim/webhook_deliveries", deliveries, methods=["GET"]),
    ]
