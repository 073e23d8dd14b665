"""Which conversations a map (or an analyst query) covers: period, source, channel, segment.

Every query of the map starts from `conversation_conditions`, so deleted conversations are
excluded in exactly one place and the filters mean the same thing in every lane.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import ColumnElement

from journey.errors import ConfigError
from journey.journey_map.model import Filters, Period
from journey.journey_map.sql import json_text
from journey.models import Conversation, Source

DEFAULT_PERIOD = timedelta(days=28)

# Segment keys that name a conversation column; anything else is a helpdesk custom field id.
_COLUMN_SEGMENTS = {
    "status": Conversation.status,
    "kind": Conversation.kind,
    "channel": Conversation.channel,
    "requester": Conversation.requester_id,
}


def conversation_conditions(period: Period | None, filters: Filters) -> list[ColumnElement[bool]]:
    """WHERE clauses on `conversation` for a period and filters (never deleted rows)."""
    conditions: list[ColumnElement[bool]] = [Conversation.deleted.is_(False)]
    if period is not None:
        conditions += [
            Conversation.created_at >= period.start,
            Conversation.created_at < period.end,
        ]
    if filters.source is not None:
        conditions.append(
            Conversation.source_id.in_(select(Source.id).where(Source.name == filters.source))
        )
    if filters.channel is not None:
        conditions.append(Conversation.channel == filters.channel)
    for key, value in sorted(filters.segment.items()):
        column = _COLUMN_SEGMENTS.get(key)
        if column is not None:
            conditions.append(column == value)
        else:
            conditions.append(json_text(Conversation.__table__.c.custom_fields, key) == value)
    return conditions


def parse_segment(pairs: list[str] | None) -> dict[str, str]:
    """`["brand=acme", "plan=pro"]` → `{"brand": "acme", "plan": "pro"}`; else a usage error."""
    segment: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--segment {pair!r}: use FIELD=VALUE, e.g. --segment plan=pro")
        segment[key.strip()] = value.strip()
    return segment


def resolve_period(
    engine: Engine,
    since: datetime | None,
    until: datetime | None,
    filters: Filters,
    *,
    default: timedelta = DEFAULT_PERIOD,
) -> Period:
    """The map's window. Missing ends come from the data, not the clock, so re-running a map on
    the same database gives the same document: `until` defaults to the start of the day after the
    newest conversation, `since` to `until` minus four weeks."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ConfigError(f"--{name} must be timezone-aware (UTC)")
    if until is None:
        with engine.connect() as connection:
            newest = connection.execute(
                select(func.max(Conversation.created_at)).where(
                    *conversation_conditions(None, filters)
                )
            ).scalar_one_or_none()
        if newest is None:
            newest = since + default if since is not None else datetime(1970, 1, 1, tzinfo=UTC)
        newest = newest.astimezone(UTC)
        until = datetime(newest.year, newest.month, newest.day, tzinfo=UTC) + timedelta(days=1)
    if since is None:
        since = until - default
    if since >= until:
        raise ConfigError(f"--since ({since.date()}) must be before --until ({until.date()})")
    return Period(since.astimezone(UTC), until.astimezone(UTC))
