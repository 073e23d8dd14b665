"""The flow diagram: a two-column Sankey of stage-to-stage moves, drawn as static SVG text.

Left: the stage a customer came *from*; right: the stage of their next conversation. Band width is
proportional to the moves; forward moves are blue, repeats of a stage grey and backward moves
red, so "delivery → purchase again" stands out. Hand-written SVG (no JavaScript, no library, no
fonts fetched): the map stays one self-contained file, and each band carries a <title> that a
browser shows as a tooltip. Text is escaped; stage labels come from the taxonomy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from journey.journey_map.model import FlowLink

COLOURS = {"forward": "#3559c7", "same": "#9aa5b1", "backward": "#b2182b"}
WIDTH = 760
NODE_W = 12
LABEL_W = 190  # room for "Consideration  1,234" on each side
GAP = 10
TOP = 8


def sankey_svg(
    links: Sequence[FlowLink],
    stage_order: Sequence[str],
    label: Callable[[str], str],
    *,
    height: int = 300,
) -> str:
    """The diagram for `links` (moves in the period), nodes in `stage_order`."""
    links = [lk for lk in links if lk.moves > 0]
    if not links:
        return ""
    order = {name: i for i, name in enumerate(stage_order)}
    names = sorted(
        {lk.source for lk in links} | {lk.target for lk in links},
        key=lambda n: (order.get(n, len(order)), n),
    )
    out_total = {n: sum(lk.moves for lk in links if lk.source == n) for n in names}
    in_total = {n: sum(lk.moves for lk in links if lk.target == n) for n in names}
    total = sum(lk.moves for lk in links)
    left_nodes = [n for n in names if out_total[n]]
    right_nodes = [n for n in names if in_total[n]]
    gaps = GAP * (max(len(left_nodes), len(right_nodes)) - 1)
    scale = max(height - 2 * TOP - gaps, 40) / total
    x_left, x_right = LABEL_W, WIDTH - LABEL_W - NODE_W

    def place(nodes: list[str], sizes: dict[str, int]) -> dict[str, float]:
        y: float = TOP
        top: dict[str, float] = {}
        for n in nodes:
            top[n] = y
            y += max(sizes[n] * scale, 2.0) + GAP
        return top

    left_top, right_top = place(left_nodes, out_total), place(right_nodes, in_total)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sankey" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-label="moves between stages across customers\' conversations">'
    ]
    # bands: sorted so each node's outgoing bands stack in the target order, and vice versa
    out_offset = dict.fromkeys(left_nodes, 0.0)
    in_offset = dict.fromkeys(right_nodes, 0.0)
    ranked = sorted(
        links,
        key=lambda lk: (order.get(lk.source, len(order)), order.get(lk.target, len(order))),
    )
    in_order = sorted(
        links,
        key=lambda lk: (order.get(lk.target, len(order)), order.get(lk.source, len(order))),
    )
    in_start: dict[tuple[str, str], float] = {}
    for lk in in_order:
        in_start[(lk.source, lk.target)] = right_top[lk.target] + in_offset[lk.target]
        in_offset[lk.target] += lk.moves * scale
    for lk in ranked:
        band = max(lk.moves * scale, 1.0)
        y0 = left_top[lk.source] + out_offset[lk.source] + band / 2
        out_offset[lk.source] += lk.moves * scale
        y1 = in_start[(lk.source, lk.target)] + band / 2
        xa, xb = x_left + NODE_W, x_right
        mid = (xa + xb) / 2
        tip = f"{label(lk.source)} → {label(lk.target)}: {lk.moves:,} moves ({lk.direction})"
        parts.append(
            f'<path class="band {lk.direction}" d="M{xa:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} '
            f'{mid:.1f},{y1:.1f} {xb:.1f},{y1:.1f}" fill="none" '
            f'stroke="{COLOURS[lk.direction]}" stroke-opacity="0.42" stroke-width="{band:.1f}">'
            f"<title>{escape(tip)}</title></path>"
        )
    for side, nodes, tops, sizes, x in (
        ("from", left_nodes, left_top, out_total, x_left),
        ("to", right_nodes, right_top, in_total, x_right),
    ):
        for n in nodes:
            h = max(sizes[n] * scale, 2.0)
            y = tops[n]
            parts.append(
                f'<rect class="node {side}" x="{x}" y="{y:.1f}" width="{NODE_W}" '
                f'height="{h:.1f}" fill="#1f2933"><title>{escape(label(n))}: '
                f"{sizes[n]:,} moves {side} here</title></rect>"
            )
            tx, anchor = (x - 6, "end") if side == "from" else (x + NODE_W + 6, "start")
            parts.append(
                f'<text x="{tx}" y="{y + h / 2 + 4:.1f}" text-anchor="{anchor}" '
                f'font-size="12" fill="#1f2933">{escape(label(n))} '
                f'<tspan fill="#5f6b7a">{sizes[n]:,}</tspan></text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def flow_height(links: Sequence[FlowLink]) -> int:
    """A height that leaves each stage's node room for its label (about 34 px per stage)."""
    nodes = {lk.source for lk in links} | {lk.target for lk in links}
    return max(160, 34 * len(nodes) + 40)
