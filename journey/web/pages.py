"""The pages of `cjm serve`: the live journey map and the labelling page.

    GET  /map                 journey.live_map (the `cjm map` renderer, the CLI's filters)
    GET  /label               the labelling page (keyboard-first; static HTML + JS)
    GET  /label/next          the next batch to label (journey.label_web.next_batch, JSON)
    POST /label/decisions     one decision → the `label` table (JSON)
    POST /label/undo          delete the label the page just stored (JSON)

Both show customer text, so they are protected (decided here, documented in the README):
with `[serve].pages_token_env` set, every request needs that token — `Authorization: Bearer`,
or the HttpOnly cookie that opening `/label?token=…` (or `/map?token=…`) once sets before
redirecting to the clean URL; without it, only clients on this machine (127.0.0.1, ::1) get an
answer, which is what the default `--host 127.0.0.1` gives anyway.
"""

from __future__ import annotations

import hmac
import json
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route

from journey import label_web
from journey.errors import ConfigError
from journey.live_map import live_map
from journey.runner import MinerOptions, build_miner, load_taxonomy_for
from journey.web.context import WebContext
from miner import ConversationMiner, Taxonomy

COOKIE = "cjm_pages"
LOCAL_CLIENTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_BODY = 16_384


def _cache(context: WebContext) -> dict[str, Any]:
    cache = context.state.setdefault("pages", {})
    assert isinstance(cache, dict)
    return cache


def _taxonomy(context: WebContext) -> Taxonomy:
    cache = _cache(context)
    if "taxonomy" not in cache:
        cache["taxonomy"] = load_taxonomy_for(context.settings)
    taxonomy: Taxonomy = cache["taxonomy"]
    return taxonomy


def _miner(context: WebContext) -> ConversationMiner:
    """The configured miner, built once per process on the first labelling request."""
    cache = _cache(context)
    if "miner" not in cache:
        cache["miner"], _ = build_miner(MinerOptions.from_settings(context.settings))
    miner: ConversationMiner = cache["miner"]
    return miner


def guard(context: WebContext, request: Request) -> Response | None:
    """None when the request may see the pages, else the refusal (or the cookie redirect)."""
    variable = context.settings.serve.pages_token_env
    if not variable:
        host = request.client.host if request.client else ""
        if host in LOCAL_CLIENTS:
            return None
        return PlainTextResponse(
            "the map and labelling pages answer only this machine: set [serve].pages_token_env "
            "to open them to others",
            status_code=403,
        )
    expected = context.settings.environ.get(variable, "")
    if not expected:
        return PlainTextResponse(
            f"[serve].pages_token_env names {variable}, which is not set: export it", 503
        )
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    given = [
        bearer.strip() if scheme.lower() == "bearer" else "",
        request.cookies.get(COOKIE, ""),
        request.query_params.get("token", ""),
    ]
    ok = [bool(g) and hmac.compare_digest(g.encode(), expected.encode()) for g in given]
    if ok[2]:  # a token in the URL: swap it for a cookie, so it leaves the address bar
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        clean = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        redirect = RedirectResponse(clean, status_code=303)
        redirect.set_cookie(COOKIE, expected, httponly=True, samesite="strict")
        return redirect
    if ok[0] or ok[1]:
        return None
    return PlainTextResponse(
        "this page needs cjm's pages token: open it once as /label?token=<token>", 401
    )


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


async def map_page(context: WebContext, request: Request) -> Response:
    refused = guard(context, request)
    if refused is not None:
        return refused
    try:
        body, media_type = await run_in_threadpool(
            live_map, context.engine, _taxonomy(context), _params(request)
        )
    except ConfigError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    return Response(body, media_type=media_type)


def _page_html() -> str:
    return (
        resources.files("journey")
        .joinpath("templates", "label_page.html")
        .read_text(encoding="utf-8")
    )


async def label_page(context: WebContext, request: Request) -> Response:
    refused = guard(context, request)
    if refused is not None:
        return refused
    keymap = json.dumps(label_web.keys(await run_in_threadpool(_taxonomy, context)))
    return HTMLResponse(_page_html().replace("/*KEYS*/null", keymap.replace("</", "<\\/")))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def next_batch(context: WebContext, request: Request) -> Response:
    refused = guard(context, request)
    if refused is not None:
        return refused
    try:
        n = int(request.query_params.get("n", "10"))
        exclude = [int(x) for x in request.query_params.get("exclude", "").split(",") if x]
    except ValueError:
        return _error(400, "n and exclude must be integers (exclude: comma-separated)")
    source = request.query_params.get("source") or None
    try:
        miner = await run_in_threadpool(_miner, context)
        items = await run_in_threadpool(
            lambda: label_web.next_batch(context.engine, miner, n=n, source=source, exclude=exclude)
        )
    except ConfigError as exc:
        return _error(400, str(exc))
    return JSONResponse({"items": items})


async def _json_body(request: Request) -> Any:
    """The JSON body. Only `application/json`: a browser cannot send that cross-site without a
    CORS preflight (which cjm never grants here), so another site cannot post labels."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ConfigError("send the body as Content-Type: application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ConfigError(f"body larger than {MAX_BODY} bytes")
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ConfigError("the body is not JSON") from None


async def decision(context: WebContext, request: Request) -> Response:
    refused = guard(context, request)
    if refused is not None:
        return refused
    try:
        cid, stage, themes, who = label_web.parse_decision(
            await _json_body(request), _taxonomy(context)
        )
        label_id = await run_in_threadpool(
            label_web.record, context.engine, cid, stage, themes, who
        )
    except ConfigError as exc:
        return _error(400, str(exc))
    except LookupError as exc:
        return _error(404, str(exc.args[0]))
    return JSONResponse({"label_id": label_id})


async def undo(context: WebContext, request: Request) -> Response:
    refused = guard(context, request)
    if refused is not None:
        return refused
    try:
        body = await _json_body(request)
    except ConfigError as exc:
        return _error(400, str(exc))
    label_id = body.get("label_id") if isinstance(body, dict) else None
    if not isinstance(label_id, int) or isinstance(label_id, bool):
        return _error(400, '"label_id" must be an integer')
    try:
        await run_in_threadpool(label_web.undo, context.engine, label_id)
    except LookupError as exc:
        return _error(404, str(exc.args[0]))
    return JSONResponse({"undone": label_id})


def routes(context: WebContext) -> list[BaseRoute]:
    def bind(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            return await handler(context, request)

        return endpoint

    return [
        Route("/map", bind(map_page), methods=["GET"]),
        Route("/label", bind(label_page), methods=["GET"]),
        Route("/label/next", bind(next_batch), methods=["GET"]),
        Route("/label/decisions", bind(decision), methods=["POST"]),
        Route("/label/undo", bind(undo), methods=["POST"]),
    ]
