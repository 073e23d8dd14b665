"""`GET /healthz`: is the database reachable, how deep and how old is the queue, who works it.

For a load balancer or monitoring: 200 with the numbers while the database answers, 503 when it
does not (webhooks cannot be stored then, so the helpdesk should retry elsewhere or later).
Workers are listed from their heartbeat rows; one silent for longer than `events.STALE_AFTER`
is reported as not alive (its claims go back to the queue).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from journey import events
from journey.models import utcnow
from journey.web.context import WebContext

log = logging.getLogger("cjm.serve")


def routes(context: WebContext) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        try:
            body = await run_in_threadpool(health, context)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:200]
            log.error("healthz: database unreachable: %s", reason)
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable", "error": reason},
                status_code=503,
            )
        return JSONResponse(body)

    return [Route("/healthz", healthz, methods=["GET"])]


def health(context: WebContext) -> dict[str, Any]:
    engine = context.engine
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    queue = events.stats(engine)
    now = utcnow()
    workers = [
        {
            "worker": w.worker,
            "source": w.source,
            "last_beat_seconds": round((now - w.beat_at).total_seconds(), 1),
            "alive": now - w.beat_at <= events.STALE_AFTER,
            "processed": w.processed,
        }
        for w in events.heartbeats(engine)
    ]
    return {
        "status": "ok",
        "database": "ok",
        "queue": {
            "depth": queue.queued + queue.claimed,
            "queued": queue.queued,
            "in_progress": queue.claimed,
            "failed": queue.failed,
            "oldest_age_seconds": (
                round(queue.oldest_age_seconds, 1) if queue.oldest_age_seconds is not None else None
            ),
        },
        "workers": workers,
    }
