"""Portable SQL pieces (SQLite and PostgreSQL) that the aggregation and the analyst views share.

Only what differs between the two dialects lives here, as SQLAlchemy constructs compiled per
dialect, so every query elsewhere is written once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Float, String, cast, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class week_start(FunctionElement[str]):  # noqa: N801 - reads like the SQL function it stands for
    """ISO date ('YYYY-MM-DD') of the Monday (UTC) that starts the week of a UTC timestamp.

    Weeks start on Monday (ISO 8601), as `date_trunc('week', …)` does in PostgreSQL, so analysts'
    own SQL and the map's trends bucket identically.
    """

    type = String()
    name = "week_start"
    inherit_cache = True


@compiles(week_start, "sqlite")
def _week_start_sqlite(element: week_start, compiler: Any, **kw: Any) -> str:
    # 'weekday 0' moves forward to the next Sunday (or stays on one); minus six days is Monday.
    column = compiler.process(element.clauses, **kw)
    return f"date({column}, 'weekday 0', '-6 days')"


@compiles(week_start, "postgresql")
def _week_start_postgresql(element: week_start, compiler: Any, **kw: Any) -> str:
    # timestamptz → UTC wall time first: date_trunc would otherwise use the session time zone.
    column = compiler.process(element.clauses, **kw)
    return f"to_char(date_trunc('week', ({column}) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"


@compiles(week_start)
def _week_start_default(element: week_start, compiler: Any, **kw: Any) -> str:
    raise NotImplementedError(f"week_start is not implemented for {compiler.dialect.name}")


def json_text(column: Any, key: str) -> ColumnElement[str]:
    """The value at top-level `key` of a JSON object column, as text (numbers too)."""
    return cast(column[key].as_string(), String)


def week_of(moment: datetime) -> str:
    """Python twin of `week_start` for one aware UTC datetime."""
    day = moment.date()
    return (day - timedelta(days=day.weekday())).isoformat()


def weeks_between(start: datetime, end: datetime) -> list[str]:
    """Every week start from the week of `start` up to the week holding the last instant < end."""
    first = date.fromisoformat(week_of(start))
    last = date.fromisoformat(week_of(end - timedelta(microseconds=1)))
    weeks = []
    while first <= last:
        weeks.append(first.isoformat())
        first += timedelta(days=7)
    return weeks


def customer_words(message: Any, *, solicited: bool = False) -> tuple[ColumnElement[bool], ...]:
    """WHERE conditions for the customer's own words among `message` rows (a table or alias of
    `message`): the SQL form of `miner.customer_text`'s rule, for every query of the map.

    Unsolicited: the end user's public messages. Solicited: the end user's survey (CSAT)
    comments. Either way only redacted, non-empty text is shown.
    """
    conditions = [
        message.c.author_role == "end_user",
        message.c.solicited.is_(solicited),
        message.c.redacted.is_(True),
        func.length(message.c.text) > 0,
    ]
    if not solicited:
        conditions.append(message.c.public.is_(True))
    return tuple(conditions)


class epoch_days(FunctionElement[float]):  # noqa: N801 - reads like the SQL function it stands for
    """A UTC timestamp as fractional days on a fixed scale, so SQL can subtract two of them
    ("days since the previous contact", "no contact within N days") on either dialect."""

    type = Float()
    name = "epoch_days"
    inherit_cache = True


@compiles(epoch_days, "sqlite")
def _epoch_days_sqlite(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"julianday({compiler.process(element.clauses, **kw)})"


@compiles(epoch_days, "postgresql")
def _epoch_days_postgresql(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"(extract(epoch from {compiler.process(element.clauses, **kw)}) / 86400.0)"


@compiles(epoch_days)
def _epoch_days_default(element: epoch_days, compiler: Any, **kw: Any) -> str:
    raise NotImplementedError(f"epoch_days is not implemented for {compiler.dialect.name}")


class day_start(FunctionElement[Any]):  # noqa: N801 - reads like the SQL function it stands for
    """Midnight (UTC) of a UTC timestamp's day, in the column's own storage format, so a day
    compares with the timestamps bound for a period (the map's daily rollups)."""

    name = "day_start"
    inherit_cache = True


@compiles(day_start, "sqlite")
def _day_start_sqlite(element: day_start, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'
    return f"(date({compiler.process(element.clauses, **kw)}) || ' 00:00:00.000000')"


@compiles(day_start, "postgresql")
def _day_start_postgresql(element: day_start, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"(date_trunc('day', ({column}) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


@compiles(day_start)
def _day_start_default(element: day_start, compiler: Any, **kw: Any) -> str:
    raise NotImplementedError(f"day_start is not implemented for {compiler.dialect.name}")
