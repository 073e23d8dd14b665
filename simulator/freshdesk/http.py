"""Freshdesk-shaped responses and errors, shared by the routes and the limits."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("description") or body.get("message"))
        self.status, self.body, self.headers = status, body, headers or {}


def validation_error(name: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(
        400,
        {
            "description": "Validation failed",
            "errors": [{"field": name, "message": message, "code": code}],
        },
    )


def not_found() -> ApiError:
    return ApiError(404, {"code": "not_found", "description": "Record not found"})
