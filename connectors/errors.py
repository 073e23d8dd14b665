"""Errors raised by connectors, and the one table that maps HTTP statuses to them.

    ConnectorError                 anything that went wrong talking to a helpdesk
    ├── UnreachableError           DNS, connect, TLS or repeated timeouts
    ├── AuthError                  401 / 403: names the setting to check
    ├── NotFoundError              404: wrong subdomain/base_url, or a deleted record
    ├── RateLimitedError           429 / 503 still failing after the allowed retries
    └── ApiError                   any other 4xx / 5xx, or a body we cannot parse
        ├── MalformedRecordError   a record with missing or mistyped fields
        └── FieldGoneError         a write named one of cjm's fields the helpdesk no longer has

Messages are one line, never contain a secret, and say what to check.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


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
    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        invalid_fields: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        # fields the helpdesk called unknown (Freshdesk: errors[].code "invalid_field")
        self.invalid_fields = invalid_fields


class MalformedRecordError(ApiError):
    """The helpdesk sent a record we cannot read (missing or mistyped fields)."""


class FieldGoneError(ApiError):
    """A ticket write named a field of cjm's that the helpdesk says does not exist (deleted or
    re-created since `cjm setup-fields` saved its id): every other write would fail the same way,
    so the run stops and the saved id is forgotten."""


class NotTheApiError(ApiError):
    """base_url answers JSON, but not the helpdesk's: another server, a proxy's page."""


_MAPPING_FAILURES = (
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    ArithmeticError,
    OSError,
)


def mapper(vendor: str, what: str) -> Callable[[F], F]:
    """Turn any failure inside a raw-JSON → record mapper into one MalformedRecordError.

    The sync then stops that source with a one-line message and keeps its checkpoint, so the page
    is retried on the next run instead of being skipped (at-least-once: nothing is lost). The
    message names the record and the field, never its content.
    """

    def decorate(function: F) -> F:
        def describe(args: tuple[object, ...], exc: Exception) -> MalformedRecordError:
            # Only ids and field names we asked for may appear: values can hold customer text.
            raw = next((a for a in args if isinstance(a, dict)), None)
            record_id = raw.get("id") if isinstance(raw, dict) else None
            shown = (
                record_id if isinstance(record_id, int) and not isinstance(record_id, bool) else "?"
            )
            key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
            detail = (
                f"missing field {key!r}"
                if isinstance(key, str) and key.isidentifier()
                else f"a field of the wrong type ({type(exc).__name__})"
            )
            return MalformedRecordError(
                f"{vendor} sent a malformed {what} (id {shown}): {detail}; "
                "nothing stored was lost, report it"
            )

        if inspect.isgeneratorfunction(function):

            @functools.wraps(function)
            def generator(*args: Any, **kwargs: Any) -> Any:
                try:
                    yield from function(*args, **kwargs)
                except _MAPPING_FAILURES as exc:
                    raise describe(args, exc) from None

            return cast(F, generator)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except _MAPPING_FAILURES as exc:
                raise describe(args, exc) from None

        return cast(F, wrapper)

    return decorate
