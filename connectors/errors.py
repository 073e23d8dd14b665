"""Errors raised by connectors, and the one table that maps HTTP statuses to them.

    ConnectorError                 anything that went wrong talking to a helpdesk
    ├── UnreachableError           DNS, connect, TLS or repeated timeouts
    ├── AuthError                  401 / 403: names the setting to check
    ├── NotFoundError              404: wrong subdomain/base_url, or a deleted record
    ├── RateLimitedError           429 / 503 still failing after the allowed retries
    └── ApiError                   any other 4xx / 5xx, or a body we cannot parse

Messages are one line, never contain a secret, and say what to check.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class: `cli.py` maps these to exit code 1."""


class UnreachableError(ConnectorError):
    pass


class AuthError(ConnectorError):
    pass


class NotFoundError(ConnectorError):
    pass


class RateLimitedError(ConnectorError):
    pass


class ApiError(ConnectorError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
