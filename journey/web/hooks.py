"""Routes of `cjm serve` (see journey/web/__init__.py); filled in by its issue."""

from __future__ import annotations

from starlette.routing import BaseRoute

from journey.web.context import WebContext


def routes(context: WebContext) -> list[BaseRoute]:
    return []
