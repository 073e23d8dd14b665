"""The journey map: stages × lanes (touchpoints, actions, emotion, pain points, opportunities),
aggregated in SQL from the theme database and rendered as self-contained HTML, Markdown or JSON.

`build_map` returns the plain data (`JourneyMap`); `write_map` renders it to a file. Modules:
`aggregate` (SQL), `spikes`/`stats` (tests), `opportunities` (ranking), `charts` (SVG),
`render_html`/`render_md`/`render_json` (outputs), `queries` (the `cjm themes` analyst queries),
`steps`/`rollups` (stored journey steps and daily rollups the map reads at scale; the store keeps
them, migration 0012).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from journey.errors import ConfigError
from journey.journey_map.aggregate import MapOptions, build_map
from journey.journey_map.model import JourneyMap
from miner import Taxonomy

FORMATS = ("html", "md", "json")
STDOUT = "-"  # --out -: the map on stdout
log = logging.getLogger("cjm.map")

__all__ = [
    "FORMATS",
    "JourneyMap",
    "MapOptions",
    "build_map",
    "render",
    "write_comparison",
    "write_map",
]


def render(journey_map: JourneyMap, fmt: str) -> str:
    """The map as text in `fmt` (html, md or json)."""
    if fmt == "html":
        from journey.journey_map.render_html import render_html

        return render_html(journey_map)
    if fmt == "md":
        from journey.journey_map.render_md import render_md

        return render_md(journey_map)
    if fmt == "json":
        from journey.journey_map.render_json import render_json

        return render_json(journey_map)
    raise ConfigError(f"--format {fmt!r} is not supported: use html, md or json")


def write_map(
    engine: Engine,
    taxonomy: Taxonomy,
    *,
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    out_path: Path,
    source: str | None = None,
    channel: str | None = None,
    segment: Mapping[str, str] | None = None,
    options: MapOptions = MapOptions(),
) -> Path:
    """Aggregate and render the journey map to `out_path` (parents created); returns the path.

    `out_path` may be `-` (the map goes to stdout, for pipes) or an existing directory (the map
    is written inside it as journey-map.<fmt>). The file is written to a temporary sibling and
    renamed, so a reader (a wiki sync, a BI tool) never sees half a map, and the temporary file
    does not outlive a failure.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not supported: use html, md or json")
    if str(out_path) != STDOUT and out_path.is_dir():
        out_path = out_path / f"journey-map.{fmt}"
    journey_map = build_map(
        engine,
        taxonomy,
        since=since,
        until=until,
        source=source,
        channel=channel,
        segment=segment,
        options=options,
    )
    if journey_map.notice:
        log.warning("%s", journey_map.notice)  # the file says it too; this is for the terminal
    return _write(render(journey_map, fmt), out_path)


def write_comparison(
    engine: Engine,
    taxonomy: Taxonomy,
    compare: str,
    *,
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    out_path: Path,
    source: str | None = None,
    channel: str | None = None,
    segment: Mapping[str, str] | None = None,
    options: MapOptions = MapOptions(),
) -> Path:
    """`cjm map --compare segment=FIELD`: segments side by side, written like `write_map`."""
    from journey.journey_map.compare import build_comparison, parse_compare

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not supported: use html, md or json")
    spec = parse_compare(compare)
    if str(out_path) != STDOUT and out_path.is_dir():
        out_path = out_path / f"journey-map-by-{spec.field}.{fmt}"
    comparison = build_comparison(
        engine, taxonomy, spec, since=since, until=until, source=source, channel=channel,
        segment=segment, options=options,
    )  # fmt: skip
    if fmt == "html":
        from journey.journey_map.render_html import render_compare_html

        text = render_compare_html(comparison)
    elif fmt == "md":
        from journey.journey_map.render_compare_md import render_compare_md

        text = render_compare_md(comparison)
    else:
        import json

        text = json.dumps(comparison.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    return _write(text, out_path)


def _write(text: str, out_path: Path) -> Path:
    if str(out_path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return out_path
    partial = out_path.with_name(f".{out_path.name}.partial")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        partial.replace(out_path)
    except OSError as exc:
        with suppress(OSError):
            partial.unlink(missing_ok=True)
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, FileExistsError | NotADirectoryError):
            reason = "part of that path is a file, not a directory"
        raise ConfigError(f"cannot write the map to {out_path}: {reason} (--out)") from None
    return out_path
