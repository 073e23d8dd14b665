"""The flow diagram is static, escaped SVG: one band per move, coloured by direction."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from journey.journey_map.model import FlowLink
from journey.journey_map.sankey import COLOURS, sankey_svg

ORDER = ["purchase", "delivery", "support"]
LINKS = [
    FlowLink("purchase", "delivery", 6, 4, 0.5, "forward"),
    FlowLink("delivery", "purchase", 2, 0, None, "backward"),
    FlowLink("delivery", "delivery", 1, 1, 0.0, "same"),
]
SVG = "{http://www.w3.org/2000/svg}"


def test_one_band_per_move_coloured_by_direction() -> None:
    root = ET.fromstring(sankey_svg(LINKS, ORDER, lambda n: n.title()))
    bands = root.findall(f"{SVG}path")
    assert [b.get("class") for b in bands] == ["band forward", "band backward", "band same"]
    assert [b.get("stroke") for b in bands] == [
        COLOURS["forward"], COLOURS["backward"], COLOURS["same"]
    ]  # fmt: skip
    widths = [float(b.get("stroke-width") or 0) for b in bands]
    # proportional to moves (drawn to 0.1 px)
    assert widths[0] == pytest.approx(6 * widths[2], abs=0.5)
    assert widths[1] == pytest.approx(2 * widths[2], abs=0.5)
    tips = [b.find(f"{SVG}title").text for b in bands]  # type: ignore[union-attr]
    assert tips[1] == "Delivery → Purchase: 2 moves (backward)"
    assert not root.findall(f".//{SVG}script")


def test_labels_are_escaped_and_no_moves_draw_nothing() -> None:
    svg = sankey_svg(LINKS, ORDER, lambda n: f"<b>{n}</b>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert sankey_svg([], ORDER, str) == ""
