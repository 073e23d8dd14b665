"""A self-contained HTML journey map: one file, inline CSS and SVG, no scripts, no network.

Works offline and survives being mailed or attached to a wiki. Charts come from `charts` as SVG
text; everything else is a Jinja template (`journey/templates/journey_map.html.j2`) with
autoescaping on, so customer text in verbatims can never inject markup.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from journey.journey_map import formatting
from journey.journey_map.compare import Comparison
from journey.journey_map.model import JourneyMap
from journey.journey_map.palette import SCALE_LIMIT, sentiment_colour, text_on
from journey.journey_map.sankey import flow_height, sankey_svg

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LEAD_CHARS = 120  # longer text shows this much (whole sentences where possible), then "more ▸"
_BOUNDARY = re.compile(r"(?<=[.!?…:;])\s+")


def split_lead(text: str, limit: int = LEAD_CHARS) -> tuple[str, str]:
    """`(lead, rest)` of a description or quote: the first sentences (or clauses) that fit in
    `limit` characters, and the rest ("" when the whole text is short enough to show).

    The page shows the lead and opens the rest on a click (`<details>`), so nothing is cut
    mid-sentence and nothing is lost; a single sentence longer than `limit` splits between words.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit * 5 // 4:
        return flat, ""
    end = None
    for match in _BOUNDARY.finditer(flat):
        if match.start() > limit:
            break
        end = match
    if end is not None:
        return flat[: end.start()], flat[end.end() :]
    cut = flat.rfind(" ", 0, limit)
    if cut <= 0:
        return flat, ""
    return flat[:cut], flat[cut + 1 :]


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pct=formatting.pct,
        change=formatting.change,
        sentiment=formatting.sentiment,
        mood=formatting.mood,
        colour=sentiment_colour,
        ink=text_on,
        split_lead=split_lead,
    )
    return env


def render_html(jm: JourneyMap, *, charts: bool = True) -> str:
    """The page. `charts=False` skips matplotlib (tests of the text content run faster)."""
    svgs: dict[str, Any] = {}
    if charts:
        from journey.journey_map import charts as c

        svgs = {
            "emotion": Markup(c.emotion_curve_svg(jm)),
            "heatmap": Markup(c.heatmap_svg(jm)),
            "trends": Markup(c.trends_svg(jm)),
            "legend": Markup(c.legend_svg()),
        }
    labels = {
        "stage": {s.name: s.label for s in jm.stages},
        "theme": {t.theme: t.label for t in jm.themes},
    }
    svgs["sankey"] = Markup(
        sankey_svg(
            jm.flows.links,
            [s.name for s in jm.stages],
            lambda name: labels["stage"].get(name, name),
            height=flow_height(jm.flows.links),
        )
    )
    top_channels = max((len(s.channels) for s in jm.stages), default=0)
    return (
        _environment()
        .get_template("journey_map.html.j2")
        .render(
            jm=jm,
            svg=svgs,
            labels=labels,
            period=formatting.period_label(jm.period),
            previous=formatting.period_label(jm.previous),
            total_change=(
                (jm.conversations - jm.previous_conversations) / jm.previous_conversations
                if jm.previous_conversations
                else None
            ),
            max_stage=max((s.conversations for s in jm.stages), default=0) or 1,
            max_score=max((o.score for o in jm.opportunities), default=0) or 1,
            scale_limit=SCALE_LIMIT,
            top_channels=top_channels,
            volume_spikes=[s for s in jm.spikes if s.metric == "volume"],
            sentiment_spikes=[s for s in jm.spikes if s.metric == "sentiment"],
        )
    )


def render_compare_html(cmp: Comparison) -> str:
    """Segments side by side (`cjm map --compare`), one self-contained page like the map."""
    sankeys = [
        Markup(
            sankey_svg(
                seg.map.flows.links,
                cmp.stage_names,
                lambda name: cmp.stage_labels.get(name, name),
                height=flow_height(seg.map.flows.links),
            )
        )
        for seg in cmp.segments
    ]
    return (
        _environment()
        .get_template("journey_compare.html.j2")
        .render(cmp=cmp, sankeys=sankeys, period=formatting.period_label(cmp.period))
    )
