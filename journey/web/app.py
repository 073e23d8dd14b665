"""The Starlette application of `cjm serve`, assembled from each module's routes."""

from __future__ import annotations

from starlette.applications import Starlette

from journey.web import api, health, hooks, pages
from journey.web.context import WebContext


def create_app(context: WebContext) -> Starlette:
    """One app for webhooks, health, the app API and the pages (no work until a request)."""
    routes = [
        *hooks.routes(context),
        *health.routes(context),
        *api.routes(context),
        *pages.routes(context),
    ]
    return Starlette(routes=routes)
