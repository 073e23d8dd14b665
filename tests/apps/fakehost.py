"""TESTS ONLY — a fake helpdesk that hosts cjm's apps the way Zendesk and Freshdesk do.

The host page (host/host.html + host.js) runs on http://127.0.0.1:<port> and embeds the app's
page, served from the *packaged zip*, on http://localhost:<port> — another origin, as in the
real helpdesks — and answers the app client's messages. Its request proxy is here:
`/proxy/zendesk` substitutes `{{setting.…}}` (secure settings only for `secure: true`
requests, as Zendesk's proxy does) and signs the per-request HS256 JWT with the secure shared
secret; `/proxy/freshdesk` fills a template of the app's config/requests.json with the iparams
and the call's context. Both then call the real `cjm serve` over HTTP. The one liberty: the
templates say https and the test cjm listens on plain http on loopback, so the proxy uses http.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

HOST_DIR = Path(__file__).parent / "host"
APP_CLIENT = "{{{appclient}}}"
SETTING = re.compile(r"\{\{setting\.([A-Za-z0-9_]+)\}\}")
TEMPLATE = re.compile(r"<%=\s*(iparam|context)\.([A-Za-z0-9_]+)\s*%>")
MEDIA = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


@dataclass
class Installation:
    """One installed app: its settings (what the admin typed in), which are secure, and what
    the host answers to `client.get` / `client.data.get`."""

    vendor: str
    app_dir: Path  # the unpacked upload zip
    settings: dict[str, str]
    secure: set[str]
    data: dict[str, Any] = field(default_factory=dict)
    proxied: list[dict[str, Any]] = field(default_factory=list)

    def public_settings(self) -> dict[str, str]:
        return {k: v for k, v in self.settings.items() if k not in self.secure}


def create_host_app(installations: dict[str, Installation]) -> Starlette:
    async def page(request: Request) -> Response:
        vendor = request.query_params["vendor"]
        location = request.query_params.get("location", "ticket_sidebar")
        install = installations[vendor]
        port = request.url.port
        if vendor == "zendesk":
            entry = "assets/map.html" if location == "nav_bar" else "assets/iframe.html"
        else:
            entry = "app/map.html" if location == "full_page_app" else "app/index.html"
        config = {
            "vendor": vendor,
            "location": location,
            "ticket_id": install.data.get("ticket.id")
            or (install.data.get("ticket") or {}).get("id"),
            "app_url": f"http://localhost:{port}/app/{vendor}/{entry}",
            "settings": install.public_settings(),
            "data": install.data,
        }
        html = (HOST_DIR / "host.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("/*HOST*/null", json.dumps(config)))

    async def host_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("host.js", "fake_zaf_sdk.js", "fake_fw_client.js"):
            return Response(status_code=404)
        return Response((HOST_DIR / name).read_bytes(), media_type="text/javascript")

    async def app_file(request: Request) -> Response:
        install = installations[request.path_params["vendor"]]
        path = (install.app_dir / request.path_params["path"]).resolve()
        if install.app_dir.resolve() not in path.parents or not path.is_file():
            return Response(status_code=404)
        content = path.read_bytes()
        if path.suffix == ".html" and install.vendor == "freshdesk":
            content = content.replace(APP_CLIENT.encode(), b"/host/fake_fw_client.js")
        return Response(content, media_type=MEDIA.get(path.suffix, "application/octet-stream"))

    async def zendesk_proxy(request: Request) -> Response:
        install = installations["zendesk"]
        options = await request.json()
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
            token = jwt.encode(claims, fill(spec["secret_key"]), algorithm=spec["algorithm"])
            headers = {k: v.replace("{{jwt.token}}", token) for k, v in headers.items()}
        if options.get("contentType"):
            headers["Content-Type"] = options["contentType"]
        data = options.get("data")
        return await _forward(
            options.get("type", "GET"), fill(options["url"]), headers, data, options
        )

    async def freshdesk_proxy(request: Request) -> Response:
        install = installations["freshdesk"]
        call = await request.json()
        install.proxied.append(call)
        templates = json.loads((install.app_dir / "config" / "requests.json").read_text())
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
            Route("/host/page", page),
            Route("/host/{name}", host_file),
            Route("/app/{vendor}/{path:path}", app_file),
            Route("/proxy/zendesk", zendesk_proxy, methods=["POST"]),
            Route("/proxy/freshdesk", freshdesk_proxy, methods=["POST"]),
        ]
    )


async def _forward(
    method: str, url: str, headers: dict[str, str], data: Any, options: dict[str, Any]
) -> Response:
    """Call cjm like the vendor's proxy; 502 when cjm does not answer (the proxy's own error)."""
    try:
        async with httpx.AsyncClient(timeout=20) as client:
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
