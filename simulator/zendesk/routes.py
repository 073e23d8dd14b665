"""The Zendesk API routes of the simulator: a Starlette app serving one ``ZendeskSimulator``.

Each handler parses the request, reads or changes the account through its public methods (under
``sim.lock``) and answers with a shape from ``shapes``. ``_endpoint`` wraps every handler with
request counting, authentication, the limits and faults of ``limits``, and rate-limit headers.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from . import shapes
from .http import ApiError, JsonResponse, api_error
from .limits import conflict_due, gate, job_failure_due, maybe_malformed, rate_headers
from .state import (
    INTEGRATION_USER_ID,
    MAX_ACTIVE_JOBS,
    MAX_IDS,
    MAX_PER_PAGE,
    Audit,
    Field,
    Job,
    Option,
    ZendeskSimulator,
    iso,
)
from .webhook_routes import WEBHOOK_ROUTES, admin_routes

Handler = Callable[[ZendeskSimulator, Request, str], Awaitable[Response]]


def _encode_cursor(gts: int, tid: int) -> str:
    return base64.urlsafe_b64encode(f"{gts}|{tid}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        gts, tid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return int(gts), int(tid)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise api_error(400, "InvalidCursor", "The cursor is invalid") from exc


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise api_error(400, "InvalidValue", f"{name} must be an integer") from exc


def _per_page(request: Request) -> int:
    value = _int_param(request, "per_page", MAX_PER_PAGE) or MAX_PER_PAGE
    return max(1, min(MAX_PER_PAGE, value))


def _ids_param(request: Request) -> list[int]:
    raw = request.query_params.get("ids", "")
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError as exc:
        raise api_error(400, "InvalidValue", "ids must be integers") from exc
    if len(ids) > MAX_IDS:
        raise _too_many()
    return ids


def _too_many() -> ApiError:
    return api_error(
        400, "TooManyValues", "Parameter ids cannot specify more than 100 values", max_count=MAX_IDS
    )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise api_error(400, "InvalidJSON", "The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise api_error(400, "InvalidJSON", "The request body must be a JSON object")
    return body


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _authenticate(sim: ZendeskSimulator, request: Request) -> int | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and sim.oauth_token and value == sim.oauth_token:
        return INTEGRATION_USER_ID
    if scheme.lower() == "bearer" and (valid := sim.access_token_valid(value)) is not None:
        return INTEGRATION_USER_ID if valid else None
    if scheme.lower() == "basic" and sim.api_token:
        try:
            user, _, secret = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user == f"{sim.email}/token" and secret == sim.api_token:
            return INTEGRATION_USER_ID
    return None


# ---------------------------------------------------------------- endpoint handlers


async def _tickets_cursor(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    per_page = _per_page(request)
    cursor = request.query_params.get("cursor")
    start_time = _int_param(request, "start_time")
    include_users = "users" in request.query_params.get("include", "").split(",")
    exclude_deleted = request.query_params.get("exclude_deleted") in ("true", "1")
    base = _base(request)
    with sim.lock:
        if cursor:
            after = _decode_cursor(cursor)
            i = bisect.bisect_right(sim.export_order, after)
        elif start_time is not None:
            if start_time > sim.now_ts():
                raise api_error(400, "InvalidValue", "start_time cannot be in the future")
            after = None
            i = bisect.bisect_left(sim.export_order, (start_time, -1))
        else:
            raise api_error(400, "InvalidPaginationParameter", "start_time or cursor is required")
        keys: list[tuple[int, int]] = []
        order = sim.export_order
        while i < len(order) and len(keys) < per_page:
            key = order[i]
            i += 1
            if exclude_deleted and sim.ticket_state(key[1]).status == "deleted":
                continue
            keys.append(key)
        end = i >= len(order)
        tickets = [shapes.ticket_json(sim, sim.ticket_state(k[1]), base) for k in keys]
        users = _page_users(sim, keys, base) if include_users else None
    last = keys[-1] if keys else after
    after_cursor = _encode_cursor(*last) if last else None
    before_cursor = _encode_cursor(*keys[0]) if keys else None
    extra = (
        f"&per_page={per_page}"
        + ("&include=users" if include_users else "")
        + ("&exclude_deleted=true" if exclude_deleted else "")
    )
    path = f"{base}/api/v2/incremental/tickets/cursor.json"
    body: dict[str, Any] = {
        "tickets": tickets,
        "after_url": f"{path}?cursor={after_cursor}{extra}" if after_cursor else None,
        "after_cursor": after_cursor,
        "before_url": f"{path}?cursor={before_cursor}{extra}" if before_cursor else None,
        "before_cursor": before_cursor,
        "end_of_stream": end,
    }
    if users is not None:
        body["users"] = users
    return JsonResponse(body)


def _page_users(
    sim: ZendeskSimulator, keys: list[tuple[int, int]], base: str
) -> list[dict[str, Any]]:
    ids: dict[int, None] = {}
    for _, tid in keys:
        t = sim.ticket_state(tid)
        for uid in (t.requester_id, t.submitter_id, t.assignee_id):
            if uid is not None:
                ids[uid] = None
    return [u for uid in ids if (u := shapes.user_json(sim, uid, base)) is not None]


async def _ticket_events(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    per_page = _per_page(request)
    limit = sim.faults.gateway_timeout_above_per_page
    if limit is not None and per_page > limit:
        raise api_error(504, "GatewayTimeout", "The server did not respond in time")
    start_time = _int_param(request, "start_time")
    if start_time is None:
        raise api_error(400, "InvalidPaginationParameter", "start_time is required")
    comments = "comment_events" in request.query_params.get("include", "").split(",")
    base = _base(request)
    with sim.lock:
        if start_time > sim.now_ts():
            raise api_error(400, "InvalidValue", "start_time cannot be in the future")
        page, next_start, exhausted = _event_page(*sim.event_index(), start_time, per_page)
        events = [shapes.event_json(sim, a, base, comments) for a in page]
    end_of_stream = exhausted or len(page) < per_page
    include = "&include=comment_events" if comments else ""
    return JsonResponse(
        {
            "ticket_events": events,
            "next_page": f"{base}/api/v2/incremental/ticket_events.json?start_time={next_start}"
            f"&per_page={per_page}{include}",
            "count": len(events),
            "end_of_stream": end_of_stream,
            "end_time": next_start,
        }
    )


def _event_page(
    events: list[Audit], stamps: list[int], start: int, per_page: int
) -> tuple[list[Audit], int, bool]:
    """A time-based page, the start_time to resume from, and whether the stream is exhausted.

    Like Zendesk, the next page restarts *at* the last second of this one, so events that share
    that second are repeated rather than lost. If a whole page lies inside one second, the page
    is extended to the end of that second and, unless that was the end of the stream, the next
    page starts one second later — otherwise a client would loop forever on that second. (At
    the end of the stream it stays on that second: events still arriving in it are not lost.)
    """
    i = bisect.bisect_left(stamps, start)
    page = events[i : i + per_page]
    if not page:
        return [], start, True
    last_ts = page[-1][0]
    if len(page) < per_page or page[0][0] != last_ts:
        return page, last_ts, i + len(page) >= len(events)
    j = bisect.bisect_right(stamps, last_ts)
    exhausted = j >= len(events)
    return events[i:j], last_ts if exhausted else last_ts + 1, exhausted


async def _users_show_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    ids = _ids_param(request)
    base = _base(request)
    with sim.lock:
        users = [u for uid in ids if (u := shapes.user_json(sim, uid, base)) is not None]
    return JsonResponse(
        {"users": users, "next_page": None, "previous_page": None, "count": len(users)}
    )


async def _user_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    u = shapes.user_json(sim, int(request.path_params["user_id"]), _base(request))
    if u is None:
        raise api_error(404, "RecordNotFound", "Not found")
    return JsonResponse({"user": u})


async def _ticket_fields_list(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    base = _base(request)
    with sim.lock:
        fields = [shapes.field_json(sim, f, base) for f in sim.fields()]
    return JsonResponse(
        {"ticket_fields": fields, "next_page": None, "previous_page": None, "count": len(fields)}
    )


async def _ticket_field_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        f = sim.get_field(int(request.path_params["field_id"]))
        if f is None:
            raise api_error(404, "RecordNotFound", "Not found")
        return JsonResponse({"ticket_field": shapes.field_json(sim, f, _base(request))})


_FIELD_TYPES = (
    "tagger",
    "multiselect",
    "text",
    "textarea",
    "checkbox",
    "integer",
    "decimal",
    "date",
    "regexp",
    "lookup",
)


def _validate_options(
    sim: ZendeskSimulator, options: Any, field_id: int | None
) -> list[dict[str, Any]]:
    """Option values are tags: unique within the field and across all other fields."""
    if not isinstance(options, list):
        raise _invalid("custom_field_options must be a list")
    seen: set[str] = set()
    for opt in options:
        if not isinstance(opt, dict) or not opt.get("name") or not opt.get("value"):
            raise _invalid("each option needs a name and a value")
        value = str(opt["value"])
        owner = sim.option_value_owner(value)
        if value in seen or (owner is not None and owner != field_id):
            raise _invalid(f"Option value {value} is already taken by another field")
        seen.add(value)
    return options


def _invalid(message: str) -> ApiError:
    return ApiError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {"base": [{"description": message}]},
        },
    )


async def _ticket_field_create(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = (await _json_body(request)).get("ticket_field")
    if not isinstance(body, dict) or not body.get("title"):
        raise _invalid("Title: cannot be blank")
    ftype = body.get("type", "text")
    if ftype not in _FIELD_TYPES:
        raise _invalid(f"Type: {ftype} is not valid")
    with sim.lock:
        options = _validate_options(sim, body.get("custom_field_options") or [], None)
        f = sim.create_field(ftype, str(body["title"]), options, sim.now_ts())
        f.description = str(body.get("description") or "")
        return JsonResponse(
            {"ticket_field": shapes.field_json(sim, f, _base(request))}, status_code=201
        )


async def _ticket_field_update(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = (await _json_body(request)).get("ticket_field")
    if not isinstance(body, dict):
        raise _invalid("ticket_field is required")
    with sim.lock:
        f = sim.get_field(int(request.path_params["field_id"]))
        if f is None:
            raise api_error(404, "RecordNotFound", "Not found")
        if "title" in body:
            f.title = str(body["title"])
        if "description" in body:
            f.description = str(body["description"] or "")
        if "custom_field_options" in body and f.type in ("tagger", "multiselect"):
            _replace_options(sim, f, _validate_options(sim, body["custom_field_options"], f.id))
        f.updated = sim.now_ts()
        return JsonResponse({"ticket_field": shapes.field_json(sim, f, _base(request))})


def _replace_options(sim: ZendeskSimulator, f: Field, options: list[dict[str, Any]]) -> None:
    """The trap, faithfully: the list REPLACES the options; omitted ones are deleted and their
    value disappears from every ticket."""
    by_id = {o.id: o for o in f.options}
    by_value = {o.value: o for o in f.options}
    kept: list[Option] = []
    for opt in options:
        existing = by_id.get(int(opt["id"])) if opt.get("id") else by_value.get(str(opt["value"]))
        if existing is None:
            existing = sim.new_option(str(opt["name"]), str(opt["value"]))
        else:
            existing.name, existing.value = str(opt["name"]), str(opt["value"])
        kept.append(existing)
    kept_values = {o.value for o in kept}
    removed = [o.value for o in f.options if o.value not in kept_values]
    f.options = kept
    for value in removed:
        sim.drop_option_everywhere(f, value)


async def _field_option_upsert(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = (await _json_body(request)).get("custom_field_option")
    if not isinstance(body, dict) or not body.get("name") or not body.get("value"):
        raise _invalid("custom_field_option needs a name and a value")
    with sim.lock:
        f = sim.get_field(int(request.path_params["field_id"]))
        if f is None or f.type not in ("tagger", "multiselect"):
            raise api_error(404, "RecordNotFound", "Not found")
        value = str(body["value"])
        existing = next(
            (o for o in f.options if body.get("id") and o.id == int(body["id"])), None
        ) or f.option_by_value(value)
        owner = sim.option_value_owner(value)
        if owner is not None and owner != f.id:
            raise _invalid(f"Option value {value} is already taken by another field")
        if existing is not None:
            old_value = existing.value
            existing.name, existing.value = str(body["name"]), value
            if old_value != value:
                sim.drop_option_everywhere(f, old_value)
            status = 200
        else:
            existing = sim.new_option(str(body["name"]), value)
            f.options.append(existing)
            status = 201
        f.updated = sim.now_ts()
        return JsonResponse(
            {"custom_field_option": shapes.option_json(existing)}, status_code=status
        )


async def _update_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    body = await _json_body(request)
    updater = INTEGRATION_USER_ID
    if "ids" in request.query_params:
        ids = _ids_param(request)
        ticket = body.get("ticket")
        if not isinstance(ticket, dict):
            raise api_error(400, "InvalidValue", "ticket is required with ids")
        items = [(tid, ticket) for tid in ids]
    else:
        batch = body.get("tickets")
        if not isinstance(batch, list):
            raise api_error(400, "InvalidValue", "ids or tickets is required")
        if len(batch) > MAX_IDS:
            raise _too_many()
        items = [(int(x.get("id", 0)), x) for x in batch if isinstance(x, dict)]
    with sim.lock:
        if conflict_due(sim):
            raise api_error(409, "Conflict", "The ticket was updated by someone else; retry")
        if sim.active_jobs() >= MAX_ACTIVE_JOBS:
            raise ApiError(
                429,
                {
                    "error": "TooManyJobs",
                    "description": "Number of allowed background jobs exceeded",
                },
                {"Retry-After": "10"},
            )
        if sim.job_seconds > 0:
            job = sim.new_job(None, len(items))
            _run_later(sim, job, items, updater)
            return JsonResponse({"job_status": _job_json(sim, job, _base(request))})
        results = [
            _update_one(sim, index, tid, upd, updater) for index, (tid, upd) in enumerate(items)
        ]
        job = sim.new_job(results)
        return JsonResponse({"job_status": _job_json(sim, job, _base(request))})


def _run_later(
    sim: ZendeskSimulator, job: Job, items: list[tuple[int, dict[str, Any]]], updater: int
) -> None:
    """Run a bulk job `job_seconds` after it was accepted, in the background, as Zendesk does:
    it finishes even when the client that sent it was killed meanwhile."""

    def run() -> None:
        with sim.lock:
            job.results = [
                _update_one(sim, index, tid, upd, updater) for index, (tid, upd) in enumerate(items)
            ]

    timer = threading.Timer(sim.job_seconds, run)
    timer.daemon = True
    timer.start()


def _update_one(
    sim: ZendeskSimulator, index: int, tid: int, upd: dict[str, Any], updater: int
) -> dict[str, Any]:
    t = sim.find_ticket(tid)
    result: dict[str, Any] = {"id": tid, "index": index, "action": "update"}
    if t is None:
        return {
            **result,
            "status": "Failed",
            "success": False,
            "error": "TicketNotFound",
            "errors": "Ticket not found",
            "details": f"Ticket {tid} not found",
        }
    if t.status == "closed":
        return {
            **result,
            "status": "Failed",
            "success": False,
            "error": "TicketUpdateFailed",
            "errors": "Status: closed prevents ticket update",
        }
    if job_failure_due(sim):
        return {
            **result,
            "status": "Failed",
            "success": False,
            "error": "TicketUpdateFailed",
            "errors": "Temporary failure, try again",
        }
    upd = {k: v for k, v in upd.items() if k != "id"}
    ok, err = sim.apply_update(t, upd, updater, "api")
    if not ok:
        return {
            **result,
            "status": "Failed",
            "success": False,
            "error": "TicketUpdateFailed",
            "errors": err,
        }
    return {**result, "status": "Updated", "success": True}


def _job_json(sim: ZendeskSimulator, job: Job, base: str) -> dict[str, Any]:
    done = job.polls >= sim.job_polls_to_complete and job.results is not None
    working = not done and job.polls >= 2  # queued on the first poll, then working
    progress = job.total if done else (job.total * job.polls) // (sim.job_polls_to_complete + 1)
    return {
        "id": job.id,
        "url": f"{base}/api/v2/job_statuses/{job.id}.json",
        "job_type": "bulk_update",
        "total": job.total,
        "progress": progress,
        "status": "completed" if done else ("working" if working else "queued"),
        "message": f"Completed at {iso(sim.now_ts())}" if done else None,
        "results": job.results if done else None,
    }


def _poll(sim: ZendeskSimulator, job: Job, base: str) -> dict[str, Any]:
    job.polls += 1
    return _job_json(sim, job, base)


async def _job_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        job = sim.job(request.path_params["job_id"])
        if job is None:
            raise api_error(404, "RecordNotFound", "Not found")
        return JsonResponse({"job_status": _poll(sim, job, _base(request))})


async def _job_show_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    ids = [x for x in request.query_params.get("ids", "").split(",") if x]
    if len(ids) > MAX_IDS:
        raise _too_many()
    with sim.lock:
        jobs = [_poll(sim, job, _base(request)) for j in ids if (job := sim.job(j)) is not None]
    return JsonResponse({"job_statuses": jobs})


async def _ticket_show(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        t = sim.find_ticket(int(request.path_params["ticket_id"]))
        if t is None:
            raise api_error(404, "RecordNotFound", "Not found")
        return JsonResponse({"ticket": shapes.ticket_json(sim, t, _base(request))})


async def _ticket_update(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    """``PUT /api/v2/tickets/{id}.json``: one ticket, at once (no job). With ``safe_update`` and
    an ``updated_stamp`` older than the ticket's ``updated_at`` Zendesk answers 409 instead of
    overwriting a concurrent edit. Runs the triggers like any update (the loop guard's test)."""
    upd = (await _json_body(request)).get("ticket")
    if not isinstance(upd, dict):
        raise api_error(400, "InvalidValue", "ticket is required")
    with sim.lock:
        t = sim.find_ticket(int(request.path_params["ticket_id"]))
        if t is None:
            raise api_error(404, "RecordNotFound", "Not found")
        if conflict_due(sim) or (
            upd.get("safe_update") and upd.get("updated_stamp") != iso(t.updated)
        ):
            raise api_error(409, "UpdateConflict", "The ticket was updated by someone else")
        if t.status == "closed":
            raise _invalid("Status: closed prevents ticket update")
        changes = {k: v for k, v in upd.items() if k not in ("id", "safe_update", "updated_stamp")}
        ok, err = sim.apply_update(t, changes, INTEGRATION_USER_ID, "api")
        if not ok:
            raise _invalid(err or "invalid update")
        return JsonResponse({"ticket": shapes.ticket_json(sim, t, _base(request))})


async def _tickets_show_many(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    ids = _ids_param(request)
    base = _base(request)
    with sim.lock:
        tickets = [
            shapes.ticket_json(sim, t, base)
            for tid in ids
            if (t := sim.find_ticket(tid)) is not None
        ]
    return JsonResponse(
        {"tickets": tickets, "next_page": None, "previous_page": None, "count": len(tickets)}
    )


async def _user_me(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    return JsonResponse({"user": shapes.user_json(sim, int(user), _base(request))})


def _cursor_page(
    request: Request,
    index: list[tuple[int, int]],
    *,
    lowest: tuple[int, int] | None = None,
    keep: Any = None,
    max_size: int = 100,
) -> tuple[list[tuple[int, int]], bool]:
    """Zendesk cursor pagination (``page[size]``, ``page[after]``) over a sorted index: one page
    of the entries from ``lowest`` on that ``keep`` accepts (all by default), and whether more
    follow. It scans only as far as the page needs (a filtered copy of the whole index per
    request made a 1,000,000-ticket CSAT pass quadratic)."""
    size = max(1, min(max_size, _int_param(request, "page[size]", max_size) or max_size))
    after = request.query_params.get("page[after]")
    i = bisect.bisect_left(index, lowest) if lowest is not None else 0
    if after:
        i = max(i, bisect.bisect_right(index, _decode_cursor(after)))
    keys: list[tuple[int, int]] = []
    for j in range(i, len(index)):
        k = index[j]
        if keep is None or keep(k):
            if len(keys) == size:
                return keys, True
            keys.append(k)
    return keys, False


def _cursor_body(
    request: Request, key: str, items: list[Any], last: tuple[int, int] | None, more: bool
) -> dict[str, Any]:
    after = _encode_cursor(*last) if last else None
    url = str(request.url.remove_query_params("page[after]"))
    sep = "&" if "?" in url else "?"
    return {
        key: items,
        "meta": {"has_more": more, "after_cursor": after, "before_cursor": None},
        "links": {
            "next": f"{url}{sep}page[after]={after}" if more and after else None,
            "prev": None,
        },
    }


_CSAT_FILTERS: dict[str, tuple[str, ...]] = {
    "received": ("good", "bad"),
    "received_with_comment": ("good", "bad"),
    "good": ("good",),
    "bad": ("bad",),
    "offered": ("offered",),
}


async def _satisfaction_ratings(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    """Cursor-paginated ratings ordered by updated_at; ``start_time`` filters on updated_at so
    an edited rating comes back (documented simulator semantics)."""
    start = _int_param(request, "start_time", 0) or 0
    score = request.query_params.get("score")
    base = _base(request)
    with sim.lock:
        wanted = _CSAT_FILTERS.get(score or "", ("good", "bad", "offered"))
        with_comment = score is not None and score.endswith("with_comment")

        def keep(k: tuple[int, int]) -> bool:
            t = sim.ticket_state(k[1])
            return t.csat in wanted and (not with_comment or bool(sim.csat_comment(t)))

        keys, more = _cursor_page(request, sim.csat_index(), lowest=(start, -1), keep=keep)
        items = [shapes.rating_json(sim, sim.ticket_state(k[1]), base) for k in keys]
    return JsonResponse(
        _cursor_body(request, "satisfaction_ratings", items, keys[-1] if keys else None, more)
    )


async def _conversation_log(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    with sim.lock:
        t = sim.find_ticket(int(request.path_params["ticket_id"]))
        if t is None:
            raise api_error(404, "RecordNotFound", "Not found")
        events = shapes.conversation_log_json(sim, t)
    index = [(n, n) for n in range(len(events))]
    keys, more = _cursor_page(request, index)
    return JsonResponse(
        _cursor_body(
            request, "events", [events[k[0]] for k in keys], keys[-1] if keys else None, more
        )
    )


async def _ticket_comments(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    base = _base(request)
    with sim.lock:
        t = sim.find_ticket(int(request.path_params["ticket_id"]))
        if t is None:
            raise api_error(404, "RecordNotFound", "Not found")
        comments = [
            shapes.comment_json(
                cid, a[1], kid, body, a[0], shapes.via_json(sim, a[4], t.requester_id)
            )
            for a, cid, kid, body in sim.iter_comments(t)
        ]
    del base
    index = [(n, n) for n in range(len(comments))]
    keys, more = _cursor_page(request, index)
    return JsonResponse(
        _cursor_body(
            request, "comments", [comments[k[0]] for k in keys], keys[-1] if keys else None, more
        )
    )


async def _chats_export(sim: ZendeskSimulator, request: Request, user: str) -> Response:
    """Chat API incremental export: ``start_time`` (seconds) + ``start_id``, ``limit`` ≤ 1000;
    the last page is the one with fewer than ``limit`` chats."""
    start = _int_param(request, "start_time", 0) or 0
    start_id = request.query_params.get("start_id")
    limit = max(1, min(MAX_PER_PAGE, _int_param(request, "limit", MAX_PER_PAGE) or 1000))
    base = _base(request)
    with sim.lock:
        index = sim.chat_index()
        after = (start, int(start_id.split(".")[1])) if start_id else (start, -1)
        i = bisect.bisect_right(index, after) if start_id else bisect.bisect_left(index, after)
        keys = index[i : i + limit]
        chats = [shapes.chat_json(sim, sim.ticket_state(k[1])) for k in keys]
    end_time = keys[-1][0] if keys else start
    end_id = chats[-1]["id"] if chats else start_id
    more = len(keys) == limit
    nxt = (
        (f"{base}/api/v2/incremental/chats?start_time={end_time}&start_id={end_id}&limit={limit}")
        if more
        else None
    )
    return JsonResponse(
        {
            "chats": chats,
            "count": len(chats),
            "end_time": end_time,
            "end_id": end_id,
            "next_page": nxt,
        }
    )


async def _oauth_tokens(sim: ZendeskSimulator, request: Request) -> Response:
    """``POST /oauth/tokens`` with the refresh-token grant; rotates the pair."""
    try:
        body = await _json_body(request)
    except ApiError as exc:
        return JsonResponse(exc.body, status_code=exc.status)
    with sim.lock:
        if body.get("grant_type") != "refresh_token":
            return JsonResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only refresh_token is simulated",
                },
                status_code=400,
            )
        pair = sim.rotate_tokens(
            str(body.get("client_id")),
            str(body.get("client_secret")),
            str(body.get("refresh_token")),
        )
        if pair is None:
            return JsonResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "The refresh token is invalid or was used",
                },
                status_code=400,
            )
        return JsonResponse(
            {
                "access_token": pair[0],
                "refresh_token": pair[1],
                "token_type": "bearer",
                "scope": "read write",
                "expires_in": sim.oauth_access_ttl,
                "refresh_token_expires_in": 30 * 86400,
            }
        )


# (method, path template for Starlette, counter key, handler, is export, is list)
_ROUTES: tuple[tuple[str, str, str, Handler, bool, bool], ...] = (
    (
        "GET",
        "/api/v2/incremental/tickets/cursor.json",
        "GET /api/v2/incremental/tickets/cursor.json",
        _tickets_cursor,
        True,
        True,
    ),
    (
        "GET",
        "/api/v2/incremental/ticket_events.json",
        "GET /api/v2/incremental/ticket_events.json",
        _ticket_events,
        True,
        True,
    ),
    (
        "GET",
        "/api/v2/users/show_many.json",
        "GET /api/v2/users/show_many.json",
        _users_show_many,
        False,
        True,
    ),
    ("GET", "/api/v2/users/me.json", "GET /api/v2/users/me.json", _user_me, False, False),
    (
        "GET",
        "/api/v2/users/{user_id:int}.json",
        "GET /api/v2/users/{id}.json",
        _user_show,
        False,
        False,
    ),
    (
        "GET",
        "/api/v2/satisfaction_ratings.json",
        "GET /api/v2/satisfaction_ratings.json",
        _satisfaction_ratings,
        False,
        True,
    ),
    (
        "PUT",
        "/api/v2/tickets/{ticket_id:int}.json",
        "PUT /api/v2/tickets/{id}.json",
        _ticket_update,
        False,
        False,
    ),
    (
        "GET",
        "/api/v2/tickets/{ticket_id:int}/conversation_log",
        "GET /api/v2/tickets/{id}/conversation_log",
        _conversation_log,
        False,
        True,
    ),
    (
        "GET",
        "/api/v2/tickets/{ticket_id:int}/comments.json",
        "GET /api/v2/tickets/{id}/comments.json",
        _ticket_comments,
        False,
        True,
    ),
    (
        "GET",
        "/api/v2/incremental/chats",
        "GET /api/v2/incremental/chats",
        _chats_export,
        False,
        True,
    ),
    (
        "GET",
        "/api/v2/ticket_fields.json",
        "GET /api/v2/ticket_fields.json",
        _ticket_fields_list,
        False,
        True,
    ),
    (
        "POST",
        "/api/v2/ticket_fields.json",
        "POST /api/v2/ticket_fields.json",
        _ticket_field_create,
        False,
        False,
    ),
    (
        "GET",
        "/api/v2/ticket_fields/{field_id:int}.json",
        "GET /api/v2/ticket_fields/{id}.json",
        _ticket_field_show,
        False,
        False,
    ),
    (
        "PUT",
        "/api/v2/ticket_fields/{field_id:int}.json",
        "PUT /api/v2/ticket_fields/{id}.json",
        _ticket_field_update,
        False,
        False,
    ),
    (
        "POST",
        "/api/v2/ticket_fields/{field_id:int}/options.json",
        "POST /api/v2/ticket_fields/{id}/options.json",
        _field_option_upsert,
        False,
        False,
    ),
    (
        "PUT",
        "/api/v2/tickets/update_many.json",
        "PUT /api/v2/tickets/update_many.json",
        _update_many,
        False,
        False,
    ),
    (
        "GET",
        "/api/v2/job_statuses/show_many.json",
        "GET /api/v2/job_statuses/show_many.json",
        _job_show_many,
        False,
        True,
    ),
    (
        "GET",
        "/api/v2/job_statuses/{job_id}.json",
        "GET /api/v2/job_statuses/{id}.json",
        _job_show,
        False,
        False,
    ),
    (
        "GET",
        "/api/v2/tickets/show_many.json",
        "GET /api/v2/tickets/show_many.json",
        _tickets_show_many,
        False,
        True,
    ),
    (
        "GET",
        "/api/v2/tickets/{ticket_id:int}.json",
        "GET /api/v2/tickets/{id}.json",
        _ticket_show,
        False,
        False,
    ),
)


# ---------------------------------------------------------------- the app


def _endpoint(
    sim: ZendeskSimulator, key: str, handler: Handler, export: bool, listing: bool
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with counting, auth, limits, faults and rate-limit headers."""

    async def endpoint(request: Request) -> Response:
        with sim.lock:
            sim.requests[key] += 1
        response = await _guarded(sim, request, handler, export, listing)
        with sim.lock:
            sim.status_counts[response.status_code] += 1
            if sim.faults.rate_limit_headers:
                response.headers.update(rate_headers(sim, export, listing))
        return response

    return endpoint


async def _guarded(
    sim: ZendeskSimulator, request: Request, handler: Handler, export: bool, listing: bool
) -> Response:
    try:
        with sim.lock:
            user = _authenticate(sim, request)
            if user is None:
                return JsonResponse({"error": "Couldn't authenticate you"}, status_code=401)
            gate(sim, export)
        response = await handler(sim, request, str(user))
    except ApiError as exc:
        return JsonResponse(exc.body, status_code=exc.status, headers=exc.headers)
    return maybe_malformed(sim, response)


def _oauth_endpoint(sim: ZendeskSimulator) -> Callable[[Request], Awaitable[Response]]:
    """The token endpoint authenticates with the client secret in the body, not a bearer."""

    async def endpoint(request: Request) -> Response:
        with sim.lock:
            sim.requests["POST /oauth/tokens"] += 1
        response = await _oauth_tokens(sim, request)
        with sim.lock:
            sim.status_counts[response.status_code] += 1
        return response

    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    del exc
    return JsonResponse({"error": "InvalidEndpoint", "description": "Not found"}, status_code=404)


def create_zendesk_app(sim: ZendeskSimulator, preview: dict[str, Any] | None = None) -> Starlette:
    """The ASGI app serving ``sim`` (use with ``httpx.ASGITransport`` or ``serve_in_thread``).

    ``preview`` (vendor → ``simulator.preview.Installation``) adds the sidebar preview, the fake
    host page with cjm's apps installed, at ``/_sim/preview/{vendor}?ticket=ID``."""
    routes: list[BaseRoute] = [
        Route(
            path,
            _endpoint(sim, key, handler, export, listing),
            methods=[method],
            name=f"{method} {key}",
        )
        for method, path, key, handler, export, listing in _ROUTES + WEBHOOK_ROUTES
    ]
    routes.extend(admin_routes(sim))
    if preview is not None:
        from simulator.preview import create_preview_app

        routes.append(Mount("/_sim/preview", app=create_preview_app(preview)))
    routes.append(
        Route("/oauth/tokens", _oauth_endpoint(sim), methods=["POST"], name="POST /oauth/tokens")
    )
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.simulator = sim
    return app
