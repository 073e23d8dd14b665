"""Dates a person types (`--since 2026-11-01`, `?since=2026-11-01`), read one way everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from journey.errors import ConfigError


def parse_day(value: str | None, label: str) -> datetime | None:
    """`value` as an aware datetime (UTC when no zone is given), None when empty; a value that is
    not an ISO date is a one-line ConfigError naming `label` (how the user spelled the input)."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{label} is not a date: use YYYY-MM-DD") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
