"""Which conversations a map (or an analyst query) covers: period, source, channel, segment.

Every query of the map starts from `conversation_conditions`, so deleted conversations are
excluded in exactly one place and the filters mean the same thing in every lane.

`check_filters` runs first: a filter value the database has never seen (a typo, the wrong case,
a theme's label instead of its id) is a usage error that lists the values it does hold, instead
of an empty map that looks like "nothing happened".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import col

from journey.errors import ConfigError
from journey.journey_map.model import Filters, Period
from journey.journey_map.sql import json_text
from journey.models import Classification, Conversation, ConversationTheme, Source, table
from miner import Taxonomy

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
    conditions: list[ColumnElement[bool]] = [col(Conversation.deleted).is_(False)]
    if period is not None:
        conditions += [
            col(Conversation.created_at) >= period.start,
            col(Conversation.created_at) < period.end,
        ]
    if filters.source is not None:
        conditions.append(
            col(Conversation.source_id).in_(
                select(col(Source.id)).where(col(Source.name) == filters.source)
            )
        )
    if filters.channel is not None:
        conditions.append(col(Conversation.channel) == filters.channel)
    for key, value in sorted(filters.segment.items()):
        column = _COLUMN_SEGMENTS.get(key)
        if column is not None:
            conditions.append(col(column) == value)
        else:
            conditions.append(json_text(table(Conversation).c.custom_fields, key) == value)
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


def newest_conversation(engine: Engine) -> datetime | None:
    """When the newest live conversation in the whole database was created (None: there is none)."""
    with engine.connect() as connection:
        newest = connection.execute(
            select(func.max(Conversation.created_at)).where(
                *conversation_conditions(None, Filters())
            )
        ).scalar_one_or_none()
    return None if newest is None else newest.astimezone(UTC)


def resolve_period(
    engine: Engine,
    since: datetime | None,
    until: datetime | None,
    filters: Filters | None = None,
    *,
    default: timedelta = DEFAULT_PERIOD,
    now: datetime | None = None,
) -> Period:
    """The map's window. Missing ends come from the data, not the clock, so re-running a map on
    the same database gives the same document: `until` defaults to the start of the day after the
    newest conversation, `since` to `until` minus four weeks.

    The newest conversation is taken over the whole database, whatever the filters, so a channel
    or segment map covers the same weeks as the unfiltered map and the two can sit side by side.
    Only a database with no conversations at all falls back to the clock (`now`), so an empty map
    shows this month, never 1970. `filters` is accepted for callers' symmetry and not used.
    """
    del filters  # the default period deliberately ignores them (see above)
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ConfigError(f"--{name} must be timezone-aware (UTC)")
    defaulted = until is None
    if until is None:
        newest = newest_conversation(engine)
        if newest is None:
            newest = since + default if since is not None else (now or datetime.now(UTC))
        newest = newest.astimezone(UTC)
        until = datetime(newest.year, newest.month, newest.day, tzinfo=UTC) + timedelta(days=1)
    if since is None:
        since = until - default
    if since >= until:
        if defaulted:
            last = (until - timedelta(days=1)).date()
            raise ConfigError(
                f"--since {since.date()} is after the newest conversation ({last}): "
                "pass an earlier --since, or an --until"
            )
        raise ConfigError(f"--since ({since.date()}) must be before --until ({until.date()})")
    return Period(since.astimezone(UTC), until.astimezone(UTC))


def period_note(
    since: datetime | None, until: datetime | None, *, weeks: int = 4, empty: bool = False
) -> str:
    """How the period was chosen, in words, for the map's header ('' when both ends were given).
    `empty`: the database has no conversations, so a missing end came from the clock."""
    if since is not None and until is not None:
        return ""
    newest = "the newest conversation in the database"
    if empty:
        newest = "today (the database has no conversations)"
    if until is None and since is None:
        return f"default period: the {weeks} weeks up to {newest}"
    if until is None:
        return f"default end: {newest}"
    return f"default start: {weeks} weeks before --until"


# ---- checking filter values against the database ---------------------------------------------

SHOWN_VALUES = 15  # a longer list of valid values is cut, with a count of the rest


@dataclass(frozen=True, slots=True)
class Checked:
    """Filters, stage and theme as the database spells them (case and labels resolved)."""

    filters: Filters
    stage: str | None = None
    theme: str | None = None


def check_filters(
    engine: Engine,
    filters: Filters,
    taxonomy: Taxonomy | None = None,
    *,
    stage: str | None = None,
    theme: str | None = None,
) -> Checked:
    """Resolve every filter value to one the database holds, or raise a one-line ConfigError that
    lists the valid values (the CLI exits 2).

    Lenient where a person would be: case does not matter, a stage or theme may be given by its
    label ("Delivery problems"), and a segment value may leave out the prefix its helpdesk option
    carries (`plan=plus` finds `plan_plus`).
    """
    source = filters.source
    if source is not None:
        source = _pick("source", source, _distinct(engine, select(col(Source.name)).distinct()))
    channel = filters.channel
    if channel is not None:
        channel = _pick("channel", channel, _distinct(engine, _live(Conversation.channel)))
    segment = {key: _segment_value(engine, key, value) for key, value in filters.segment.items()}
    if stage is not None:
        names = dict.fromkeys(taxonomy.stage_names if taxonomy else ())
        names.update(dict.fromkeys(_distinct(engine, select(col(Classification.stage)).distinct())))
        labels = {s.label: s.name for s in taxonomy.stages} if taxonomy else {}
        stage = _pick("stage", stage, list(names), labels)
    if theme is not None:
        names = dict.fromkeys(taxonomy.theme_names if taxonomy else ())
        names.update(
            dict.fromkeys(_distinct(engine, select(col(ConversationTheme.theme)).distinct()))
        )
        labels = {t.label: t.name for t in taxonomy.themes} if taxonomy else {}
        theme = _pick("theme", theme, list(names), labels)
    return Checked(Filters(source, channel, segment), stage, theme)


def _live(column: Any) -> Select[Any]:
    """The distinct values of `column` over live (not deleted) conversations."""
    return select(column).distinct().where(Conversation.deleted.is_(False))  # type: ignore[attr-defined]


def _distinct(engine: Engine, statement: Select[Any]) -> list[str]:
    with engine.connect() as connection:
        values = connection.execute(statement).scalars()
        return sorted({str(v) for v in values if v is not None and str(v) != ""})


def _pick(
    what: str,
    value: str,
    valid: Iterable[str],
    labels: dict[str, str] | None = None,
    *,
    prefix: str | None = None,
) -> str:
    """`value` as spelled in `valid` (exact, then case-insensitive, then with `prefix_` in
    front, then by label), or a ConfigError listing `valid`."""
    valid = list(dict.fromkeys(valid))  # in the caller's order (stages: the journey's)
    if value in valid:
        return value
    folded = {v.casefold(): v for v in valid}
    candidates = [value] if prefix is None else [value, f"{prefix}_{value}"]
    for candidate in candidates:
        if candidate.casefold() in folded:
            return folded[candidate.casefold()]
    for label, name in (labels or {}).items():
        if label.casefold() == value.casefold():
            return name
    if not valid:
        raise ConfigError(
            f"unknown {what} {value!r}: the database holds no conversations yet; run `cjm sync`"
        )
    raise ConfigError(f"unknown {what} {value!r}: use {_listing(valid)}")


def _listing(values: list[str]) -> str:
    shown = ", ".join(values[:SHOWN_VALUES])
    rest = len(values) - SHOWN_VALUES
    return f"{shown}, … ({rest} more)" if rest > 0 else shown


def _segment_value(engine: Engine, key: str, value: str) -> str:
    column = _COLUMN_SEGMENTS.get(key)
    if column is None:
        keys = _custom_field_keys(engine)
        if not keys and newest_conversation(engine) is None:
            raise ConfigError(
                f"--segment {key}={value}: the database holds no conversations yet; run `cjm sync`"
            )
        if key not in keys:
            fields = sorted(set(_COLUMN_SEGMENTS) | set(keys))
            raise ConfigError(
                f"--segment {key}={value}: no conversation has a field {key!r}; "
                f"fields: {_listing(fields)}"
            )
        field = json_text(table(Conversation).c.custom_fields, key)
        statement = select(field).distinct().where(Conversation.deleted.is_(False))  # type: ignore[attr-defined]
        values = _distinct(engine, statement)
    else:
        values = _distinct(engine, _live(column))
    try:
        return _pick(key, value, values, prefix=key)
    except ConfigError:
        raise ConfigError(
            f"--segment {key}={value}: no conversation has {key}={value}; "
            f"values seen: {_listing(values)}"
        ) from None


def _custom_field_keys(engine: Engine) -> list[str]:
    """Every key of `conversation.custom_fields` in the database (SQLite or PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        statement = text(
            "SELECT DISTINCT json_object_keys(custom_fields) FROM conversation WHERE NOT deleted"
        )
    else:
        statement = text(
            "SELECT DISTINCT j.key FROM conversation, json_each(conversation.custom_fields) AS j "
            "WHERE NOT conversation.deleted"
        )
    with engine.connect() as connection:
        return sorted(str(k) for k in connection.execute(statement).scalars())


def segment_fields(engine: Engine) -> list[str]:
    """Every FIELD a `--segment FIELD=VALUE` (or `--compare segment=FIELD`) may name."""
    return sorted(set(_COLUMN_SEGMENTS) | set(_custom_field_keys(engine)))


def segment_expression(key: str) -> ColumnElement[Any]:
    """The SQL value a segment FIELD compares against: a conversation column or a custom field."""
    column = _COLUMN_SEGMENTS.get(key)
    if column is not None:
        return column  # type: ignore[return-value]
    return json_text(table(Conversation).c.custom_fields, key)


def check_segment_value(engine: Engine, key: str, value: str) -> str:
    """`value` as the database spells it for segment FIELD `key`, or a ConfigError listing the
    values seen (the same leniency as --segment)."""
    return _segment_value(engine, key, value)
