"""Zendesk-shaped responses and errors, shared by the routes and the limits."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ApiError(Exception):
    """A Zendesk-shaped error response raised from a handler."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("error"))
        self.status, self.body, self.headers = status, body, headers or {}


def api_error(status: int, error: str, description: str, **extra: Any) -> ApiError:
    return ApiError(status, {"error": error, "description": description, **extra})
