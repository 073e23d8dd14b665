"""The sidebar preview: a fake helpdesk host page that hosts cjm's agent apps the way Zendesk
and Freshdesk do, served by the simulator (``GET /_sim/preview/zendesk?ticket=ID``).

Why in the simulator: a person trying cjm (``cjm demo --serve``) wants to *see* the sidebar
without a helpdesk account, and the browser tests need the same host. One copy serves both.

The host page (``host.html`` + ``host.js``) embeds the app's page on another origin — the page
is served on ``127.0.0.1``, the app on ``localhost`` of the same port, as the real helpdesks
serve apps from their own domain — and answers the app client's messages: ticket id, current
user, settings, field set, resize and the request proxy. The proxy is here: ``proxy/zendesk``
substitutes ``{{setting.…}}`` (secure settings only for ``secure: true`` requests, as Zendesk's
proxy does) and signs the per-request HS256 JWT with the secure shared secret; ``proxy/freshdesk``
fills a template of the app's ``config/requests.json`` with the iparams and the call's context.
Both then call cjm over HTTP. The one liberty: the apps' templates say https and a local cjm
listens on plain http on loopback, so the proxy uses http.

The app files come from a folder the caller names (the unpacked upload zip, which cli.py or the
test builds from ``apps/``); the simulator imports nothing of cjm's. Zendesk's SDK (a CDN
script) and Freshworks' ``{{{appclient}}}`` are swapped for the stand-ins in this folder.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

HOST_DIR = Path(__file__).parent
HOST_FILES = ("host.js", "fake_zaf_sdk.js", "fake_fw_client.js")
APP_CLIENT = "{{{appclient}}}"
ZAF_SDK = re.compile(r"https://static\.zdassets\.com/zendesk_app_framework_sdk/[^\"']+\.js")
SETTING = re.compile(r"\{\{setting\.([A-Za-z0-9_]+)\}\}")
TEMPLATE = re.compile(r"<%=\s*(iparam|context)\.([A-Za-z0-9_]+)\s*%>")
MEDIA = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
}
ENTRIES = {
    ("zendesk", "ticket_sidebar"): "assets/iframe.html",
    ("zendesk", "nav_bar"): "assets/map.html",
    ("freshdesk", "ticket_sidebar"): "app/index.html",
    ("freshdesk", "full_page_app"): "app/map.html",
}


@dataclass
class Installation:
    """One installed app: its settings (what the admin typed in), which are secure, and what
    the host answers to ``client.get`` / ``client.data.get``."""

    vendor: str
    app_dir: Path  # the unpacked upload zip
    settings: dict[str, str]
    secure: set[str]
    data: dict[str, Any] = field(default_factory=dict)
    proxied: list[dict[str, Any]] = field(default_factory=list)

    def public_settings(self) -> dict[str, str]:
        return {k: v for k, v in self.settings.items() if k not in self.secure}

    def ticket_data(self, ticket: str | None) -> dict[str, Any]:
        """What the host answers about the open ticket (``?ticket=`` overrides the default)."""
        if ticket is None:
            return self.data
        if self.vendor == "zendesk":
            return {**self.data, "ticket.id": int(ticket)}
        return {**self.data, "ticket": {**(self.data.get("ticket") or {}), "id": int(ticket)}}


def hs256(claims: dict[str, Any], secret: str) -> str:
    """A compact HS256 JWT (RFC 7519), as Zendesk's proxy signs one per secure request."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = part(json.dumps(claims, separators=(",", ":")).encode())
    signed = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{part(hmac.new(secret.encode(), signed, hashlib.sha256).digest())}"


def create_preview_app(installations: dict[str, Installation]) -> Starlette:
    """The host page, its scripts, the apps' files and the request proxies, as one ASGI app
    (served at the root by the tests, mounted at ``/_sim/preview`` by the simulator)."""

    def bad(message: str, status: int = 400) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    async def page(request: Request) -> Response:
        vendor = request.path_params.get("vendor") or request.query_params.get("vendor", "")
        install = installations.get(vendor)
        if install is None:
            known = ", ".join(sorted(installations)) or "none"
            return bad(
                f"no {vendor or '?'} app is installed in this preview (installed: {known})", 404
            )
        location = request.query_params.get("location", "ticket_sidebar")
        entry = ENTRIES.get((vendor, location))
        if entry is None:
            return bad(f"unknown location {location!r} for {vendor}")
        ticket = request.query_params.get("ticket")
        if ticket is not None and not ticket.isdigit():
            return bad(f"ticket={ticket!r} is not a ticket id: use ?ticket=123")
        data = install.ticket_data(ticket)
        base = request.scope.get("root_path", "").rstrip("/")
        config = {
            "vendor": vendor,
            "location": location,
            "base": base,
            "ticket_id": data.get("ticket.id") or (data.get("ticket") or {}).get("id"),
            "app_url": f"http://localhost:{request.url.port}{base}/app/{vendor}/{entry}",
            "settings": install.public_settings(),
            "data": data,
        }
        html = (HOST_DIR / "host.html").read_text(encoding="utf-8")
        html = html.replace("/*HOST*/null", json.dumps(config)).replace("/*BASE*/", base)
        return HTMLResponse(html)

    async def host_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in HOST_FILES:
            return Response(status_code=404)
        return Response((HOST_DIR / name).read_bytes(), media_type="text/javascript")

    async def app_file(request: Request) -> Response:
        install = installations.get(request.path_params["vendor"])
        if install is None:
            return Response(status_code=404)
        path = (install.app_dir / request.path_params["path"]).resolve()
        if install.app_dir.resolve() not in path.parents or not path.is_file():
            return Response(status_code=404)
        content = path.read_bytes()
        if path.suffix == ".html":
            stand_in = f"{request.scope.get('root_path', '').rstrip('/')}/host/"
            if install.vendor == "freshdesk":
                content = content.replace(
                    APP_CLIENT.encode(), f"{stand_in}fake_fw_client.js".encode()
                )
            else:
                content = ZAF_SDK.sub(f"{stand_in}fake_zaf_sdk.js", content.decode()).encode()
        return Response(content, media_type=MEDIA.get(path.suffix, "application/octet-stream"))

    async def zendesk_proxy(request: Request) -> Response:
        install = installations.get("zendesk")
        options = await _json(request)
        if install is None or not isinstance(options, dict) or "url" not in options:
            return bad("expected the ZAF client.request options as JSON, with a url")
        install.proxied.append(options)
        secure_ok = bool(options.get("secure")) and not options.get("cors")

        def fill(text: str) -> str:
            def one(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in install.secure and not secure_ok:
                    return match.group(0)  # Zendesk leaves secure settings alone here
                return install.settings.get(name, "")

            return SETTING.sub(one, text)

        headers = {k: fill(str(v)) for k, v in (options.get("headers") or {}).items()}
        spec = options.get("jwt")
        if spec:
            now = int(time.time())
            claims = {**(spec.get("claims") or {}), "iat": now, "exp": now + int(spec["expiry"])}
            if spec.get("algorithm", "HS256") != "HS256":
                return bad("the preview signs HS256 JWTs only")
            token = hs256(claims, fill(spec["secret_key"]))
            headers = {k: v.replace("{{jwt.token}}", token) for k, v in headers.items()}
        if options.get("contentType"):
            headers["Content-Type"] = options["contentType"]
        return await _forward(
            options.get("type", "GET"), fill(options["url"]), headers, options.get("data"), options
        )

    async def freshdesk_proxy(request: Request) -> Response:
        install = installations.get("freshdesk")
        call = await _json(request)
        if install is None or not isinstance(call, dict) or "name" not in call:
            return bad("expected the invokeTemplate call as JSON, with a name")
        install.proxied.append(call)
        templates = json.loads((install.app_dir / "config" / "requests.json").read_text())
        if call["name"] not in templates:
            return bad(f"no request template {call['name']!r} in config/requests.json")
        schema = templates[call["name"]]["schema"]
        context = (call.get("options") or {}).get("context") or {}

        def fill(text: str) -> str:
            def one(match: re.Match[str]) -> str:
                scope, name = match.groups()
                return str(install.settings[name] if scope == "iparam" else context[name])

            return TEMPLATE.sub(one, text)

        url = f"http://{fill(schema['host'])}{fill(schema.get('path', '/'))}"
        headers = {k: fill(v) for k, v in (schema.get("headers") or {}).items()}
        body = (call.get("options") or {}).get("body")
        return await _forward(schema["method"], url, headers, body, {"dataType": "text"})

    return Starlette(
        routes=[
            Route("/host/page", page),  # ?vendor=… (the browser tests' address)
            Route("/host/{name}", host_file),
            Route("/app/{vendor}/{path:path}", app_file),
            Route("/proxy/zendesk", zendesk_proxy, methods=["POST"]),
            Route("/proxy/freshdesk", freshdesk_proxy, methods=["POST"]),
            Route("/{vendor}", page),  # /zendesk?ticket=ID (the demo's address)
        ]
    )


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


async def _forward(
    method: str, url: str, headers: dict[str, str], data: Any, options: dict[str, Any]
) -> Response:
    """Call cjm like the vendor's proxy; 502 when cjm does not answer (the proxy's own error)."""
    try:
        async with httpx.AsyncClient(timeout=20, trust_env=False) as client:
            response = await client.request(method, url, headers=headers, content=data)
    except httpx.TransportError:
        return JSONResponse({"ok": False, "status": 502, "text": "", "json": None})
    text = response.text
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    ok = 200 <= response.status_code < 300
    body = parsed if options.get("dataType", "json") == "json" else text
    return JSONResponse(
        {"ok": ok, "status": response.status_code, "body": body, "json": parsed, "text": text}
    )
