"""The Starlette application of `cjm serve`, assembled from each module's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from journey.web import api, health, hooks, pages
from journey.web.context import WebContext
from journey.worker import POOL_KEY


def create_app(context: WebContext) -> Starlette:
    """One app for webhooks, health, the app API and the pages (no work until a request).

    If `context.state[POOL_KEY]` holds a `journey.worker.WorkerPool`, the app's lifespan starts
    its workers when the server starts and lets them finish their batch when it stops."""
    routes = [
        *hooks.routes(context),
        *health.routes(context),
        *api.routes(context),
        *pages.routes(context),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool = context.state.get(POOL_KEY)
        if pool is not None:
            pool.start()  # type: ignore[attr-defined]
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()  # type: ignore[attr-defined]

    return Starlette(routes=routes, lifespan=lifespan)
