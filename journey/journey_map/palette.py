"""One colour scale for sentiment, used by the SVG charts and the HTML cells alike.

Diverging red (negative) → neutral grey → green (positive). Mean sentiment per stage or theme
rarely leaves ±0.6, so the scale saturates there: the differences analysts care about get the
colour range instead of the unused extremes.
"""

from __future__ import annotations

SCALE_LIMIT = 0.6
# (position in [-1, 1] of the normalised value, colour)
STOPS: tuple[tuple[float, str], ...] = (
    (-1.0, "#b2182b"),
    (-0.5, "#ef8a62"),
    (0.0, "#eeeeee"),
    (0.5, "#8fcf8a"),
    (1.0, "#1a7f4b"),
)
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e3e7ec"
ACCENT = "#3559c7"
SPIKE = "#d6336c"


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def sentiment_colour(value: float | None) -> str:
    """Hex colour for a sentiment in [-1, 1] (None → neutral grey)."""
    if value is None:
        return "#f4f5f7"
    x = max(-1.0, min(1.0, value / SCALE_LIMIT))
    for (x0, c0), (x1, c1) in zip(STOPS, STOPS[1:], strict=False):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            rgb = [round(a + (b - a) * t) for a, b in zip(_hex(c0), _hex(c1), strict=True)]
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return STOPS[-1][1]


def text_on(value: float | None) -> str:
    """Dark or white text, whichever reads on `sentiment_colour(value)`."""
    if value is None:
        return INK
    return "#ffffff" if abs(value) / SCALE_LIMIT > 0.72 else INK
