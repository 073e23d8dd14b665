"""The live journey map of `cjm serve` (`GET /map`, and `/api/v1/map/{source}` for the apps'
map pages): the `cjm map` renderer over the current database, with the CLI's filters as query
parameters (`since`, `until`, `source`, `channel`, repeated `segment=FIELD=VALUE`, `format`).
Values are checked exactly as the CLI checks them (journey_map.filters): a bad one is a
ConfigError whose one line the handler returns with 400."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Engine

from journey.dates import parse_day
from journey.errors import ConfigError
from journey.journey_map import FORMATS, build_map, render
from journey.journey_map.filters import parse_segment
from miner import Taxonomy

PARAMETERS = ("since", "until", "source", "channel", "segment", "format")
MEDIA_TYPES = {"html": "text/html", "md": "text/markdown", "json": "application/json"}


def _date(value: str | None, name: str) -> datetime | None:
    return parse_day(value, f"{name}={value!r}")


def live_map(
    engine: Engine,
    taxonomy: Taxonomy,
    params: Mapping[str, Sequence[str]],
    *,
    source: str | None = None,
) -> tuple[str, str]:
    """(body, media type) of the map the query asks for; `source` pins the source (apps)."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}: use {', '.join(PARAMETERS)}")

    def one(name: str) -> str | None:
        values = params.get(name) or []
        if len(values) > 1:
            raise ConfigError(f"{name} given {len(values)} times: give it once")
        return values[0] if values else None

    fmt = one("format") or "html"
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} is not supported: use html, md or json")
    journey_map = build_map(
        engine,
        taxonomy,
        since=_date(one("since"), "since"),
        until=_date(one("until"), "until"),
        source=source if source is not None else one("source"),
        channel=one("channel"),
        segment=parse_segment(list(params.get("segment") or [])),
    )
    return render(journey_map, fmt), MEDIA_TYPES[fmt]
