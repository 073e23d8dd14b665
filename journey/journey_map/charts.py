"""The map's charts as inline SVG, drawn with matplotlib's SVG backend.

Deterministic by construction: the Agg backend (no display), object-oriented `Figure`s (no pyplot
global state), DejaVu Sans (ships with matplotlib) drawn as paths (`svg.fonttype = "path"`, so the
browser's fonts cannot change the layout), a fixed `svg.hashsalt`, and no date in the metadata.
The same map therefore gives byte-identical SVG, and the page needs no fonts or scripts.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from journey.journey_map.formatting import sentiment as sentiment_text  # noqa: E402
from journey.journey_map.model import JourneyMap  # noqa: E402
from journey.journey_map.palette import (  # noqa: E402
    ACCENT,
    GRID,
    INK,
    MUTED,
    SPIKE,
    STOPS,
    sentiment_colour,
    text_on,
)
from journey.journey_map.sql import week_of  # noqa: E402

RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "cjm-journey-map",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": False,
}
_ID = re.compile(r'\bid="([^"]+)"')


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        yield Figure(figsize=(width, height), dpi=100)


def _svg(fig: Figure, prefix: str) -> str:
    """The figure as an inline <svg> element, ids prefixed so several charts share one page."""
    buffer = io.StringIO()
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        fig.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    ids = set(_ID.findall(text))
    for old in sorted(ids, key=len, reverse=True):
        new = f"{prefix}-{old}"
        text = text.replace(f'id="{old}"', f'id="{new}"')
        text = text.replace(f'"#{old}"', f'"#{new}"').replace(f"url(#{old})", f"url(#{new})")
    return text.replace("<svg ", f'<svg role="img" aria-label="{prefix} chart" ', 1)


def emotion_curve_svg(jm: JourneyMap) -> str:
    """Mean sentiment per stage with ±1 sd band and 95 % CI whiskers; x aligned to the matrix
    columns (stage i is centred at (i + 0.5) / N of the width) so it reads as a lane."""
    stages = jm.stages
    n = max(len(stages), 1)
    with _figure(12.0, 1.9) as fig:
        ax = fig.add_axes((0.0, 0.04, 1.0, 0.92))
        ax.set_xlim(-0.5, n - 0.5)
        points = [(i, s) for i, s in enumerate(stages) if s.sentiment.mean is not None]
        lows = [(s.sentiment.mean or 0.0) - (s.sentiment.sd or 0) for _, s in points]
        highs = [(s.sentiment.mean or 0.0) + (s.sentiment.sd or 0) for _, s in points]
        bottom = max(-1.0, min([-0.3, *lows]) - 0.12)
        top = min(1.0, max([0.3, *highs]) + 0.18)
        ax.set_ylim(bottom, top)
        ax.axhspan(0, top, color=sentiment_colour(0.5), alpha=0.12, lw=0)
        ax.axhspan(bottom, 0, color=sentiment_colour(-0.5), alpha=0.10, lw=0)
        ax.axhline(0, color=MUTED, lw=0.8, alpha=0.6)
        for boundary in range(1, n):
            ax.axvline(boundary - 0.5, color=GRID, lw=0.8)
        ax.text(n - 0.52, 0.015, "neutral", fontsize=8, color=MUTED, va="bottom", ha="right")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if points:
            xs = [i for i, _ in points]
            means = [s.sentiment.mean or 0.0 for _, s in points]  # only stages with a mean
            ax.fill_between(xs, lows, highs, color=MUTED, alpha=0.10, lw=0)
            prev = [
                (i, s.previous_sentiment)
                for i, s in enumerate(stages)
                if s.previous_sentiment is not None
            ]
            if prev:
                ax.plot(
                    [i for i, _ in prev],
                    [v for _, v in prev],
                    color=MUTED,
                    lw=1.2,
                    ls=(0, (4, 3)),
                    zorder=2,
                )
            ax.plot(xs, means, color=INK, lw=2.2, zorder=3, solid_capstyle="round")
            for i, s in points:
                mean = s.sentiment.mean or 0.0
                if s.sentiment.ci_low is not None and s.sentiment.ci_high is not None:
                    ax.vlines(
                        i, s.sentiment.ci_low, s.sentiment.ci_high, color=INK, lw=1.2, zorder=3
                    )
                ax.scatter(
                    [i],
                    [mean],
                    s=150,
                    color=sentiment_colour(mean),
                    edgecolors=INK,
                    linewidths=1.4,
                    zorder=4,
                )
                above = mean >= (s.previous_sentiment if s.previous_sentiment is not None else mean)
                offset = 15 if above else -15
                ax.annotate(
                    sentiment_text(mean),
                    (i, mean),
                    xytext=(0, offset),
                    textcoords="offset points",
                    ha="center",
                    va="bottom" if above else "top",
                    fontsize=11,
                    fontweight="bold",
                    color=INK,
                    zorder=5,
                )
                ax.annotate(
                    f"n={s.sentiment.n:,} · sd {s.sentiment.sd or 0:.2f}",
                    (i, bottom),
                    xytext=(0, 4),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color=MUTED,
                )
        else:
            ax.text((n - 1) / 2, 0, "no classified conversations", ha="center", color=MUTED)
        return _svg(fig, "emotion")


def heatmap_svg(jm: JourneyMap) -> str:
    """Stage × theme: cell text = conversations, colour = their mean sentiment (diverging)."""
    stages = list(jm.stages)
    cells = {(c.stage, c.theme): c for c in jm.heatmap}
    totals: dict[str, int] = {}
    for c in jm.heatmap:
        totals[c.theme] = totals.get(c.theme, 0) + c.conversations
    themes = sorted(totals, key=lambda t: (-totals[t], t))
    labels = {t.theme: t.label for t in jm.themes}
    rows, cols = max(len(themes), 1), max(len(stages), 1)
    height = 0.42 + 0.245 * rows
    with _figure(13.5, height) as fig:
        left, right = 0.19, 0.05
        ax = fig.add_axes((left, 0.05 / height, 1 - left - right, 1 - 0.42 / height))
        ax.set_xlim(0, cols)
        ax.set_ylim(rows, 0)
        ax.set_xticks([i + 0.5 for i in range(cols)])
        ax.set_xticklabels([s.label for s in stages], fontsize=10, fontweight="bold", color=INK)
        ax.xaxis.tick_top()
        ax.set_yticks([i + 0.5 for i in range(len(themes))])
        ax.set_yticklabels([labels.get(t, t) for t in themes], fontsize=9.5, color=INK)
        ax.tick_params(length=0, pad=4)
        for spine in ax.spines.values():
            spine.set_visible(False)
        peak = max((c.conversations for c in jm.heatmap), default=1)
        for r, theme in enumerate(themes):
            for col, stage in enumerate(stages):
                cell = cells.get((stage.name, theme))
                if cell is None or cell.conversations == 0:
                    ax.add_patch(_rect(col, r, "#fafbfc", GRID))
                    ax.text(col + 0.5, r + 0.5, "·", ha="center", va="center", color=GRID)
                    continue
                colour = sentiment_colour(cell.mean_sentiment)
                ax.add_patch(_rect(col, r, colour, "#ffffff"))
                weight = "bold" if cell.conversations >= 0.25 * peak else "normal"
                ax.text(
                    col + 0.5,
                    r + 0.5,
                    f"{cell.conversations:,}",
                    ha="center",
                    va="center",
                    fontsize=10,
                    color=text_on(cell.mean_sentiment),
                    fontweight=weight,
                )
            ax.text(
                cols + 0.08,
                r + 0.5,
                f"{totals[theme]:,}",
                ha="left",
                va="center",
                fontsize=9,
                color=MUTED,
            )
        ax.text(cols + 0.08, -0.2, "all", ha="left", va="bottom", fontsize=9, color=MUTED)
        if not themes:
            ax.text(
                cols / 2, 0.5, "no themes in this period", ha="center", va="center", color=MUTED
            )
        return _svg(fig, "heatmap")


def _rect(col: int, row: int, face: str, edge: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((col, row), 1, 1, facecolor=face, edgecolor=edge, linewidth=1.5)


def trends_svg(jm: JourneyMap, *, panels: int = 5) -> str:
    """Small multiples in one row: every theme that spiked, then the biggest themes, up to
    `panels`; the current period shaded, volume spikes as dots, sentiment spikes as triangles,
    and a partial last week dashed (its count is not comparable to a full week's)."""
    volume = {t.theme: t.conversations for t in jm.themes}
    trends = {t.theme: t for t in jm.trends}
    spiking = sorted({s.theme for s in jm.spikes}, key=lambda t: (-volume.get(t, 0), t))
    biggest = sorted(volume, key=lambda t: (-volume[t], t))
    chosen: list[str] = []
    for theme in [*spiking, *biggest]:
        if theme in trends and theme not in chosen and len(chosen) < panels:
            chosen.append(theme)
    chosen.sort(key=lambda t: (-volume.get(t, 0), t))
    weeks = jm.weeks
    period_start = week_of(jm.period.start)
    first_in = weeks.index(period_start) if period_start in weeks else 0
    last_days = (jm.period.end - datetime.combine(date.fromisoformat(weeks[-1]), time(),
                 tzinfo=UTC)).total_seconds() / 86400 if weeks else 7  # fmt: skip
    partial = last_days < 7
    with _figure(13.5, 2.15) as fig:
        gs = fig.add_gridspec(1, panels, wspace=0.2, left=0.03, right=0.98, top=0.77, bottom=0.12)
        for k, theme in enumerate(chosen):
            ax = fig.add_subplot(gs[0, k])
            trend = trends[theme]
            ys = [p.conversations for p in trend.points]
            xs = list(range(len(ys)))
            full = len(xs) - 1 if partial else len(xs)
            ax.axvspan(first_in - 0.5, len(xs) - 0.5, color=ACCENT, alpha=0.07, lw=0)
            ax.fill_between(xs[:full], ys[:full], color=ACCENT, alpha=0.12, lw=0)
            ax.plot(xs[:full], ys[:full], color=ACCENT, lw=1.8)
            if partial and len(xs) >= 2:
                ax.plot(xs[-2:], ys[-2:], color=ACCENT, lw=1.4, ls=(0, (2, 2)))
            for s in jm.spikes:
                if s.theme != theme or s.week not in weeks:
                    continue
                i = weeks.index(s.week)
                volume_spike = s.metric == "volume"
                ax.scatter(
                    [i],
                    [ys[i]],
                    s=52,
                    marker="o" if volume_spike else "v",
                    color=SPIKE if volume_spike else "#7b2cbf",
                    zorder=4,
                    edgecolors="white",
                    linewidths=1,
                )
            ax.set_ylim(0, max(ys + [1]) * 1.18)
            ax.set_xlim(-0.5, len(xs) - 0.5)
            ax.grid(axis="y", color=GRID, lw=0.6)
            ax.set_axisbelow(True)
            ax.tick_params(labelsize=8.5, length=0)
            ticks = sorted({0, len(xs) // 2, len(xs) - 1})
            ax.set_xticks(ticks)
            ax.set_xticklabels([_short(weeks[i]) for i in ticks])
            ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
            # a long theme name gets a smaller font before it is ever shortened
            size = max(8.5, min(10.5, 10.5 * 28 / len(trend.label)))
            room = int(28 * 10.5 / size)
            title = trend.label if len(trend.label) <= room else trend.label[: room - 1] + "…"
            ax.set_title(title, loc="left", fontsize=size, fontweight="bold", color=INK, pad=15)
            note = f"{volume.get(theme, 0):,} this period"
            if theme in spiking:
                note += " · spike"
            ax.text(0, 1.03, note, transform=ax.transAxes, fontsize=8.5, va="bottom",
                    color=SPIKE if theme in spiking else MUTED)  # fmt: skip
        if not chosen:
            ax = fig.add_subplot(gs[0, :])
            ax.axis("off")
            ax.text(0.5, 0.5, "no theme activity", ha="center", color=MUTED)
        return _svg(fig, "trends")


def _short(week: str) -> str:
    return date.fromisoformat(week).strftime("%b %d")


def legend_svg() -> str:
    """A small horizontal colour bar for the sentiment scale (hand-written SVG, no figure)."""
    stops = "".join(
        f'<stop offset="{(x + 1) / 2:.2f}" stop-color="{colour}"/>' for x, colour in STOPS
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 260 30" role="img" '
        'aria-label="sentiment colour scale">'
        f'<defs><linearGradient id="legend-grad">{stops}</linearGradient></defs>'
        '<rect x="10" y="2" width="240" height="10" rx="3" fill="url(#legend-grad)"/>'
        f'<g font-size="10" fill="{MUTED}" font-family="DejaVu Sans, sans-serif">'
        '<text x="10" y="26">negative</text><text x="130" y="26" text-anchor="middle">0</text>'
        '<text x="250" y="26" text-anchor="end">positive</text></g></svg>'
    )
